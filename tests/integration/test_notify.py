"""The notification hook, through the real ledger, ingest and notify workers: a failed run or a failed check runs
the user's command once, its outcome is journaled (NotificationSent -> meta.notifications), and a hook that
fails, hangs or is misconfigured is recorded, never fatal, and never holds up the pipeline.

The hook is a real program (a small Python script) that appends what it was given to a file; a gate file
makes it wait, so the tests can order events without timing assumptions.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from bus.producer import Producer
from contracts import AssetChecked, CheckRecord, utc_now
from devtools.processes import Service, wait_for_heartbeat
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

WEEK = ("--start", "2025-03-03", "--end", "2025-03-07")
HOOK = """
import json, os, pathlib, sys, time
log, gate, code = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with log.open("a") as f:
    f.write(json.dumps({"event": "started", "argv": sys.argv[4:],
                        "env": {k: v for k, v in os.environ.items() if k.startswith("OH_NOTIFY_")}}) + "\\n")
while gate != "-" and not os.path.exists(gate):
    time.sleep(0.02)
with log.open("a") as f:
    f.write(json.dumps({"event": "done"}) + "\\n")
print("hook said no" if code else "ok", file=sys.stderr if code else sys.stdout)
sys.exit(code)
"""


class Hook:
    """The hook program, its log, and its gate."""

    def __init__(self, home: Home, tmp_path: Path) -> None:
        self.home = home
        self.script = tmp_path / "hook.py"
        self.script.write_text(HOOK)
        self.log = tmp_path / "hook.log"
        self.gate = tmp_path / "gate"

    def configure(self, *, exit_code: int = 0, gated: bool = False, extra: str = "", timeout: float = 60.0,
                  program: str | None = None) -> None:
        command = [program or sys.executable, str(self.script), str(self.log), str(self.gate) if gated else "-",
                   str(exit_code), "{title}", "{message}", "{json}"]
        (self.home.config / "notify.toml").write_text(
            f"command = {json.dumps(command)}\njobs = [\"*\"]\ntimeout_seconds = {timeout}\n{extra}")

    def calls(self, event: str = "started") -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [r for r in map(json.loads, self.log.read_text().splitlines()) if r["event"] == event]


@pytest.fixture
def notify_stack(home: Home) -> Iterator[tuple[Stack, Service]]:
    """Ledger, ingest worker and notify worker, as real processes."""
    stack = Stack(home)
    stack.start_ledger()
    stack.start_ingest()
    notify = Service(home, "notify").start()
    wait_for_heartbeat(home, "notify")
    yield stack, notify
    if notify.proc is not None and notify.proc.poll() is None:
        notify.stop()
    stack.stop()


@pytest.fixture
def hook(home: Home, tmp_path: Path) -> Hook:
    return Hook(home, tmp_path)


def _rows(stack: Stack) -> list[dict[str, Any]]:
    return stack.client.query("SELECT * FROM meta.notifications ORDER BY started_at").to_pylist()


def _wait_rows(stack: Stack, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(rows := _rows(stack)) < count:
        assert time.monotonic() < deadline, f"{len(rows)} notifications recorded, expected {count}"
        time.sleep(0.1)
    return rows


def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _caught_up(stack: Stack) -> None:
    """Wait until the notify worker has handled every RunFinished and AssetChecked journaled so far (it saves its
    offset after each), so a notification it wrongly ran would be there by now."""
    last = stack.scalar("SELECT max(seq) FROM ledger.events WHERE type IN ('RunFinished', 'AssetChecked')") or 0
    offset = stack.home.state / "notify.offset"
    _wait_for(lambda: offset.exists() and int((offset.read_text().split() or ["0"])[0]) >= last, "the notify worker fell behind")


def _fail_a_run() -> str:
    result = run_oh("emit", "ingest-candles", "--symbols", "ZZNOPE", *WEEK, "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stderr


def test_a_failed_run_runs_the_hook_once_and_journals_it(notify_stack: tuple[Stack, Service], hook: Hook) -> None:
    """The failed ingest run: the hook gets the title, the reason and the JSON body (arguments and environment);
    meta.notifications holds one `sent` row for the run (the event journaled, its program name only)."""
    stack, _ = notify_stack
    hook.configure()
    _fail_a_run()
    [row] = _wait_rows(stack, 1)
    run_id = stack.scalar("SELECT run_id FROM meta.ingestion_runs WHERE status = 'failed'")
    assert (row["trigger"], row["run_id"], row["subject"], row["status"], row["exit_code"]) == (
        "run_failed", run_id, "ingest_candles", "sent", 0)
    assert row["program"] == Path(sys.executable).name and str(hook.script) not in json.dumps(row, default=str)
    [call] = hook.calls()
    title, message, body = call["argv"]
    assert title == "oh: ingest_candles run failed" and "ZZNOPE" in message and "UnknownSymbol" in message
    assert json.loads(body)["run_id"] == run_id and json.loads(body)["text"] == f"{title}: {message}"
    assert call["env"]["OH_NOTIFY_TITLE"] == title and call["env"]["OH_NOTIFY_KIND"] == "run_failed"
    assert stack.scalar("SELECT count(*) FROM ledger.events WHERE type = 'NotificationSent'") == 1
    shown = run_oh("notify", "list")
    assert shown.returncode == 0 and "ingest_candles" in shown.stdout and "sent" in shown.stdout


def test_a_hung_hook_never_holds_up_the_pipeline(notify_stack: tuple[Stack, Service], hook: Hook) -> None:
    """While the hook of the first failure waits on its gate, another ingest runs to success; released, the hook's
    notification is recorded."""
    stack, _ = notify_stack
    hook.configure(gated=True)
    _fail_a_run()
    _wait_for(lambda: hook.calls(), "the hook never started")
    ok = run_oh("emit", "ingest-candles", "--symbols", "SPY", *WEEK, "--wait")
    assert ok.returncode == 0, ok.stderr
    assert _rows(stack) == [] and hook.calls("done") == []  # the hook is still running
    hook.gate.touch()
    [row] = _wait_rows(stack, 1)
    assert row["status"] == "sent"


@pytest.mark.parametrize("fault", ["exit-1", "timeout", "missing-program"])
def test_a_failing_hook_is_recorded_and_the_worker_goes_on(notify_stack: tuple[Stack, Service], hook: Hook,
                                                           fault: str) -> None:
    """A hook that exits 1, runs past timeout_seconds or does not exist: the notification is recorded as failed or
    timeout with the reason, the notify worker keeps running, and the next failure is notified too."""
    stack, notify = notify_stack
    if fault == "exit-1":
        hook.configure(exit_code=1)
    elif fault == "timeout":
        hook.configure(gated=True, timeout=0.5)
    else:
        hook.configure(program=str(hook.script.parent / "no-such-notifier"))
    _fail_a_run()
    [row] = _wait_rows(stack, 1)
    expected = {"exit-1": ("failed", "exit 1: hook said no"), "timeout": ("timeout", "killed after 0.5s"),
                "missing-program": ("failed", "no-such-notifier: No such file or directory")}[fault]
    assert (row["status"], row["error"]) == expected
    assert notify.proc is not None and notify.proc.poll() is None
    hook.gate.touch()
    hook.configure()
    _fail_a_run()
    rows = _wait_rows(stack, 2)
    assert rows[-1]["status"] == "sent"


def test_failed_checks_notify_once_per_run(notify_stack: tuple[Stack, Service], hook: Hook) -> None:
    """Failed error checks on three partitions of one run give one notification; a warn-only failure (not in the
    default severities) and passing checks give none."""
    stack, _ = notify_stack
    hook.configure()
    producer = Producer(stack.home)

    def checked(run_id: str, partition: str, severity: str, status: str) -> AssetChecked:
        return AssetChecked(run_id=run_id, asset_key="candles_daily", partition_key=partition, checked_at=utc_now(),
                            results=[CheckRecord("candles_ohlc_consistent", severity, status, f"{partition}: high < low")])

    producer.send_many([checked("run-a", symbol, "error", "fail") for symbol in ("AAPL", "MSFT", "SPY")]
                       + [checked("run-b", "QQQ", "warn", "fail"), checked("run-c", "NVDA", "error", "pass")])
    producer.flush(timeout=30)
    producer.close()
    [row] = _wait_rows(stack, 1)
    assert (row["trigger"], row["run_id"], row["subject"]) == ("check_failed", "run-a", "candles_ohlc_consistent")
    _caught_up(stack)
    assert len(_rows(stack)) == 1 and len(hook.calls()) == 1


def test_no_config_no_notification_and_a_bad_config_is_recorded(notify_stack: tuple[Stack, Service],
                                                                 hook: Hook, home: Home) -> None:
    """Without notify.toml nothing runs or is recorded; with a misspelt key the failure is recorded as config_error
    naming the file and the key (so the trader sees why no notification came)."""
    stack, _ = notify_stack
    _fail_a_run()
    _caught_up(stack)
    assert _rows(stack) == [] and hook.calls() == []
    (home.config / "notify.toml").write_text('comand = ["notify-send", "{title}"]\n')
    _fail_a_run()
    [row] = _wait_rows(stack, 1)
    assert row["status"] == "config_error" and "notify.toml: comand: unknown key" in row["error"]


def test_a_notify_worker_restarted_from_scratch_does_not_notify_again(notify_stack: tuple[Stack, Service],
                                                                        hook: Hook, home: Home) -> None:
    """kill -9 of the notify worker after it notified, its offset deleted (it re-reads the whole journal): the
    recorded notification is not run again."""
    stack, notify = notify_stack
    hook.configure()
    _fail_a_run()
    _wait_rows(stack, 1)
    notify.kill()
    (home.state / "notify.offset").unlink(missing_ok=True)
    again = Service(home, "notify").start()
    try:
        wait_for_heartbeat(home, "notify")
        _caught_up(stack)
        assert len(hook.calls()) == 1 and len(_rows(stack)) == 1
    finally:
        again.stop()


def test_notify_test_runs_the_hook_or_says_why_not(home: Home, hook: Hook) -> None:
    """`oh notify test` runs the hook once (exit 0 `sent`), exits 1 with its error when it fails, and 2 when no hook
    is configured or the file is malformed."""
    assert run_oh("notify", "test").returncode == 2
    hook.configure()
    sent = run_oh("notify", "test")
    assert sent.returncode == 0 and "sent" in sent.stdout, sent.stderr
    assert hook.calls()[0]["argv"][0] == "oh: test notification"
    hook.configure(exit_code=1)
    failed = run_oh("notify", "test")
    assert failed.returncode == 1 and "hook said no" in failed.stderr
    (home.config / "notify.toml").write_text("timeout_seconds = 'soon'\n")
    bad = run_oh("notify", "test")
    assert bad.returncode == 2 and "timeout_seconds" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
