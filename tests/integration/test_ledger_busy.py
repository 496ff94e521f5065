"""A busy ledger is not a down one: a command that first asks whether the ledger runs (`oh db init`, `oh replay`
with a range or `--rebuild`) waits for a ledger that holds the journal but is slow to answer (a loaded machine, a
long commit: staged by stopping the real ledger with SIGSTOP), instead of saying it is not running after one second
and going the offline way beside it; and a ledger killed with -9, whose socket file and lock line stay behind, is
still told apart as down (`live_holder`)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from bus.control_client import ControlClient
from bus.home import Home
from bus.journal_lock import live_holder
from tests.integration.conftest import Stack, run_oh

PAUSE_S = 2.5  # how long the ledger is stopped: well past `answers`' first wait (1 s), well inside the client's


def _paused(stack: Stack) -> threading.Timer:
    """Stop the real ledger now and let it go on after PAUSE_S (a timer the caller joins)."""
    proc = stack.ledger.proc
    assert proc is not None
    proc.send_signal(signal.SIGSTOP)
    state = Path(f"/proc/{proc.pid}/stat")
    while state.read_text().rsplit(")", 1)[1].split()[0] != "T":  # the kill returns before the stop takes hold
        time.sleep(0.005)
    timer = threading.Timer(PAUSE_S, proc.send_signal, args=(signal.SIGCONT,))
    timer.start()
    return timer


def test_a_stopped_ledger_that_holds_the_journal_is_waited_for(home: Home) -> None:
    stack = Stack(home)
    stack.start_ledger()
    try:
        assert live_holder(home.journal) == "ledger"
        timer = _paused(stack)
        try:
            assert ControlClient(home, timeout=30).answers()
        finally:
            timer.join()
        timer = _paused(stack)
        try:
            result = run_oh("db", "init")
        finally:
            timer.join()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "the ledger is running" in result.stdout, result.stdout + result.stderr
    finally:
        stack.stop()


def test_a_ledger_killed_with_minus_9_is_down_though_its_lock_line_stays(home: Home) -> None:
    stack = Stack(home)
    stack.start_ledger()
    try:
        stack.ledger.kill()
        assert "(ledger)" in (home.journal / "LOCK").read_text()  # the line a -9 leaves behind
        assert live_holder(home.journal) is None
        assert not ControlClient(home, timeout=30).answers()
        result = run_oh("replay", "--rebuild")  # offline, under the journal's lock the dead ledger no longer holds
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"rebuilt{home.warehouse}from" in "".join(result.stdout.split()), result.stdout  # rich wraps the path
    finally:
        stack.stop()
