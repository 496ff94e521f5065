"""The notification hook's configuration and command line (oh/adapters/notify.py), without processes.

Protects: notify.toml is strict (a misspelt key, a wrong type or an unknown trigger is one error naming the file
and the key, never a silently ignored setting); placeholders are replaced inside arguments without a shell, so a
message cannot run anything; which runs and checks notify follows the settings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from oh.adapters.notify import Notice, NotifyConfigError, NotifySettings, argv_for, load_settings, run_hook


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "notify.toml").write_text(text)
    return tmp_path


def test_no_file_means_no_hook(tmp_path: Path) -> None:
    """Without notify.toml nothing notifies, whatever failed."""
    settings = load_settings(tmp_path)
    assert not settings.enabled and not settings.notifies_run("daily") and not settings.notifies_check("error")


@pytest.mark.parametrize(("text", "said"), [
    ('comand = ["x"]', "comand: unknown key (allowed: command, jobs, max_age_hours, on, severities, timeout_seconds)"),
    ('command = "notify-send"', "command: expected `array`, got `str`"),
    ('command = ["x"]\non = ["run_fail"]', "on[0]: invalid enum value 'run_fail'"),
    ('command = ["x"]\nseverities = ["fatal"]', "severities[0]: invalid enum value 'fatal'"),
    ('command = ["x"]\ntimeout_seconds = 0', "timeout_seconds and max_age_hours must be positive"),
    ('command = [" "]', "command: the first item must name a program"),
    ("command = [", "not valid TOML"),
])
def test_a_malformed_file_is_one_error_naming_file_and_key(tmp_path: Path, text: str, said: str) -> None:
    """Each mistake: NotifyConfigError with the file's path and what is wrong, on one line."""
    with pytest.raises(NotifyConfigError) as error:
        load_settings(_write(tmp_path, text))
    message = str(error.value)
    assert str(tmp_path / "notify.toml") in message and said in message and "\n" not in message


def test_what_notifies_follows_the_settings() -> None:
    """Defaults: failed daily runs and failed error checks; `*` takes every job; severities choose the checks."""
    default = NotifySettings(command=["x"])
    assert default.notifies_run("daily") and not default.notifies_run("ingest_candles")
    assert default.notifies_check("error") and not default.notifies_check("warn")
    every = NotifySettings(command=["x"], jobs=["*"], on=["run_failed"])
    assert every.notifies_run("ingest_candles") and not every.notifies_check("error")
    assert NotifySettings(command=["x"], severities=["warn", "error"]).notifies_check("warn")


def test_placeholders_are_replaced_inside_arguments_without_a_shell(tmp_path: Path) -> None:
    """{title}, {message} and {json} are replaced in place; a message full of shell syntax is passed as one argument
    and runs nothing."""
    notice = Notice("run_failed", "oh: daily run failed", "boom; touch PWNED $(touch PWNED2) `touch PWNED3`",
                    job="daily", run_id="r1")
    argv = argv_for(["echo", "T={title}", "{message}", "-d", "{json}", "{unknown}"], notice)
    assert argv[:3] == ["echo", "T=oh: daily run failed", notice.message] and argv[-1] == "{unknown}"
    body = json.loads(argv[4])
    assert body == {"kind": "run_failed", "title": notice.title, "message": notice.message, "job": "daily",
                    "run_id": "r1", "partition": "", "text": f"{notice.title}: {notice.message}"}
    script = tmp_path / "args.py"
    script.write_text("import json, sys; print(json.dumps(sys.argv[1:]))")
    settings = NotifySettings(command=[sys.executable, str(script), "{message}"])
    outcome = run_hook(settings, notice)
    assert outcome.status == "sent" and outcome.program == Path(sys.executable).name
    assert not any(tmp_path.glob("PWNED*")) and not any(Path.cwd().glob("PWNED*"))
