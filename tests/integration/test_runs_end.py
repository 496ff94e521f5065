"""Every run ends: a run whose RunFinished can no longer come is closed as `abandoned`, with the reason, whatever the cause.

Real ledger and ingest processes; the ledger abandons after OH_ABANDON_SECONDS=10.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bus.home import Home
from bus.journal import _scan
from devtools.processes import wait_for_heartbeat
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

ABANDON = {"OH_ABANDON_SECONDS": "10"}  # long enough for a worker to start (or restart) and beat first


def _wait_status(stack: Stack, run_id: str, wanted: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        rows = stack.client.query("SELECT status, error_type, error_message FROM meta.ingestion_runs WHERE run_id = ?",
                                  [run_id]).to_pylist()
        if rows and rows[0]["status"] == wanted:
            return rows[0]
        assert time.monotonic() < deadline, f"run {run_id} is {rows[0]['status'] if rows else 'missing'}, not {wanted}"
        time.sleep(0.2)


def _lose_the_tail_from_run_finished(home: Home) -> str:
    """Cut the journal where the last RunFinished starts (as a lost tail would) and drop the warehouse, which is then
    rebuilt from what is left: the run is `started` again, for good. Returns its run id."""
    (segment,) = sorted(home.journal.glob("*.seg"))
    start, cut_at, run_id = 0, None, None
    from bus.codec import decode_message

    for end, frame in _scan(segment):
        if frame.type == "RunFinished":
            cut_at, run_id = start, decode_message(frame.payload).run_id  # type: ignore[attr-defined]
        start = end
    assert cut_at is not None and run_id is not None
    with segment.open("r+b") as fh:
        fh.truncate(cut_at)
    for path in home.warehouse.parent.glob("oh.duckdb*"):
        path.unlink()
    return run_id


def _ingest_once(stack: Stack) -> None:
    done = run_oh("emit", "ingest-candles", "--symbols", "AAPL", "--start", "2025-01-01", "--end", "2025-03-31", "--wait")
    assert done.returncode == 0, done.stderr


def test_a_run_whose_finish_was_lost_with_the_journal_tail_ends_abandoned(home: Home) -> None:
    """The RunFinished of a finished run is lost with the journal's tail and the warehouse is rebuilt from the rest: the
    run is `started` although its worker is alive, idle and heartbeating. It is closed as `abandoned` (RunLost), the
    reason naming the live worker that is not running it."""
    stack = Stack(home, ledger_env=ABANDON)
    stack.start_ledger()
    stack.start_ingest()
    _ingest_once(stack)
    stack.stop()
    run_id = _lose_the_tail_from_run_finished(home)
    stack = Stack(home, ledger_env=ABANDON)
    stack.start_ledger()
    try:
        assert stack.scalar("SELECT status FROM meta.ingestion_runs WHERE run_id = ?", [run_id]) == "started"
        stack.start_ingest()
        row = _wait_status(stack, run_id, "abandoned")
        assert row["error_type"] == "RunLost"
        assert "ingest is alive" in str(row["error_message"]) and "not been running this run" in str(row["error_message"])
    finally:
        stack.stop()


def test_a_run_whose_worker_is_gone_ends_abandoned(home: Home) -> None:
    """The same lost tail with no ingest worker running at all: closed as `abandoned` (WorkerLost), naming the service."""
    stack = Stack(home, ledger_env=ABANDON)
    stack.start_ledger()
    stack.start_ingest()
    _ingest_once(stack)
    stack.stop()
    run_id = _lose_the_tail_from_run_finished(home)
    stack = Stack(home, ledger_env=ABANDON)
    stack.start_ledger()
    try:
        row = _wait_status(stack, run_id, "abandoned")
        assert row["error_type"] == "WorkerLost" and "no heartbeat from ingest" in str(row["error_message"])
    finally:
        stack.stop()


def test_a_run_whose_command_the_restarted_worker_lost_ends_abandoned(home: Home) -> None:
    """kill -9 the ingest worker mid-run and restart it past the command (its place in the command stream moved on, as
    when the command was lost): it heartbeats, idle, and never finishes the run; the run is closed as `abandoned`
    (RunLost) instead of staying `started` forever."""
    stack = Stack(home, ledger_env=ABANDON)
    stack.start_ledger()
    stack.start_ingest()
    try:
        symbols = ",".join(f"S{i:04d}" for i in range(300))  # synthetic sim names
        sent = run_oh("emit", "ingest-candles", "--symbols", symbols, "--start", "2010-01-01", "--end", "2024-12-31")
        assert sent.returncode == 0, sent.stderr
        deadline = time.monotonic() + 60
        while stack.scalar("SELECT count(*) FROM candles_daily") == 0:
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        run_id = stack.scalar("SELECT run_id FROM meta.ingestion_runs")
        stack.ingest.kill()
        assert stack.scalar("SELECT status FROM meta.ingestion_runs") == "started", "finished before the kill"
        head = stack.client.status().head_seq
        Path(home.state / "ingest.offset").write_text(str(head))  # the command is behind it now: lost to the worker
        stack.ingest.start()
        wait_for_heartbeat(home, "ingest")
        row = _wait_status(stack, str(run_id), "abandoned")
        assert row["error_type"] == "RunLost" and "ingest is alive" in str(row["error_message"])
    finally:
        stack.stop()
