"""The notification hook: a command the user configures in `$OH_HOME/config/notify.toml`, run on a failure.

```toml
# a desktop notification (notify-send, from libnotify)
command = ["notify-send", "--app-name=oh", "{title}", "{message}"]
# or a webhook (Slack, Mattermost, ntfy ... take a JSON body):
# command = ["curl", "-fsS", "-m", "10", "-H", "Content-Type: application/json", "-d", "{json}", "https://hooks.example/T0/B0/XXXX"]
on = ["run_failed", "check_failed"]   # what notifies (default: both)
jobs = ["daily"]                      # run_failed: whose failures notify (default: the daily run; "*" for every job)
severities = ["error"]                # check_failed: which failed checks notify (error, warn, info)
timeout_seconds = 10                  # the command is killed after this
max_age_hours = 24                    # a failure older than this when first seen (a late start) does not notify
```

Contract:
- The file decodes into `NotifySettings`, a strict msgspec struct (oh.adapters.config_files): a
  misspelt key or a wrong type is a `NotifyConfigError` naming the file and the key. No file, or an
  empty `command`, means no hook.
- `command` is an argument list run without a shell (nothing in a message can inject a command).
  In each argument `{title}`, `{message}`, `{kind}`, `{job}`, `{run_id}`, `{partition}` and `{json}`
  (all of them as one JSON object, with `text` = "title: message" for chat webhooks) are replaced;
  the same values are in the environment as OH_NOTIFY_TITLE, OH_NOTIFY_MESSAGE, OH_NOTIFY_KIND,
  OH_NOTIFY_JOB, OH_NOTIFY_RUN_ID, OH_NOTIFY_PARTITION and OH_NOTIFY_JSON.
- `run_hook` never raises for the hook's sake: a command that is missing, exits non-zero or runs
  past `timeout_seconds` is an outcome (`failed`, `timeout`) with the first line of what it said.
  Only the program's name is reported, never its arguments (a webhook URL may hold a token).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import msgspec

from contracts import utc_now
from oh.adapters.config_files import ConfigFileError, decode_toml

CONFIG_NAME = "notify.toml"
ERROR_CHARS = 300

Trigger = Literal["run_failed", "check_failed"]
Severity = Literal["error", "warn", "info"]


class NotifyConfigError(ValueError):
    """notify.toml is malformed; the message names the file and the key."""


class NotifySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What notify.toml says (see the module docstring)."""

    command: list[str] = []
    on: list[Trigger] = msgspec.field(default_factory=lambda: ["run_failed", "check_failed"])
    jobs: list[str] = msgspec.field(default_factory=lambda: ["daily"])
    severities: list[Severity] = msgspec.field(default_factory=lambda: ["error"])
    timeout_seconds: float = 10.0
    max_age_hours: float = 24.0

    @property
    def enabled(self) -> bool:
        return bool(self.command)

    def notifies_run(self, job: str | None) -> bool:
        return self.enabled and "run_failed" in self.on and ("*" in self.jobs or job in self.jobs)

    def notifies_check(self, severity: str) -> bool:
        return self.enabled and "check_failed" in self.on and severity in self.severities


def config_path(config_dir: Path) -> Path:
    return config_dir / CONFIG_NAME


def load_settings(config_dir: Path) -> NotifySettings:
    """`$OH_HOME/config/notify.toml` as NotifySettings (the defaults, with no command, when there is no file)."""
    path = config_path(config_dir)
    try:
        settings = decode_toml(path, NotifySettings)
    except ConfigFileError as exc:
        raise NotifyConfigError(str(exc)) from None
    if settings.timeout_seconds <= 0 or settings.max_age_hours <= 0:
        raise NotifyConfigError(f"{path}: timeout_seconds and max_age_hours must be positive")
    if settings.command and not settings.command[0].strip():
        raise NotifyConfigError(f"{path}: command: the first item must name a program")
    return settings


@dataclass(frozen=True)
class Notice:
    """What one notification says."""

    kind: str  # run_failed | check_failed | test
    title: str
    message: str
    job: str = ""
    run_id: str = ""
    partition: str = ""

    def values(self) -> dict[str, str]:
        """The placeholders' values; `json` is all of them as one JSON object (with `text` for chat webhooks)."""
        fields = {"kind": self.kind, "title": self.title, "message": self.message, "job": self.job,
                  "run_id": self.run_id, "partition": self.partition}
        body = {**fields, "text": f"{self.title}: {self.message}"}
        return {**fields, "json": msgspec.json.encode(body).decode()}


@dataclass(frozen=True)
class HookOutcome:
    """How one run of the hook ended."""

    status: str  # sent | failed | timeout
    program: str
    exit_code: int | None
    error: str | None
    started_at: datetime
    ended_at: datetime


def argv_for(command: list[str], notice: Notice) -> list[str]:
    """The command with every `{placeholder}` replaced in each argument (no shell, no format-string parsing)."""
    values = notice.values()
    argv = []
    for argument in command:
        for key, value in values.items():
            argument = argument.replace("{" + key + "}", value)
        argv.append(argument)
    return argv


def _first_line(text: str | bytes | None) -> str | None:
    if not text:
        return None
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:ERROR_CHARS] if lines else None


def run_hook(settings: NotifySettings, notice: Notice) -> HookOutcome:
    """Run the configured command for `notice` (at most `timeout_seconds`); its outcome, never an exception."""
    program = Path(settings.command[0]).name
    env = {**os.environ, **{f"OH_NOTIFY_{key.upper()}": value for key, value in notice.values().items()}}
    started = utc_now()
    try:
        done = subprocess.run(argv_for(settings.command, notice), env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=settings.timeout_seconds, check=False)
    except subprocess.TimeoutExpired as exc:
        said = _first_line(exc.stderr) or _first_line(exc.stdout)
        return HookOutcome("timeout", program, None,
                           f"killed after {settings.timeout_seconds:g}s" + (f": {said}" if said else ""), started,
                           utc_now())
    except OSError as exc:  # not found, not executable
        return HookOutcome("failed", program, None, f"{program}: {exc.strerror or exc}"[:ERROR_CHARS], started,
                           utc_now())
    ended = utc_now()
    if done.returncode == 0:
        return HookOutcome("sent", program, 0, None, started, ended)
    said = _first_line(done.stderr) or _first_line(done.stdout)
    error = f"exit {done.returncode}" + (f": {said}" if said else "")
    return HookOutcome("failed", program, done.returncode, error[:ERROR_CHARS], started, ended)
