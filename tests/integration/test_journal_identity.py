"""A worker's place in the command stream counts in one journal: a new journal is read from its start.

Starting over (the journal and the warehouse deleted, `state/` with the workers' offsets kept) gives a
journal whose seqs begin at 1 again. A worker that trusted its old offset would drop the new journal's
first commands as already seen, and `oh emit --wait` would wait forever. The journal's id (written when
the journal is first opened) travels with the ledger's head tick and catch-up replies; a worker whose
offset names another journal reads the new one from seq 1. Real ledger and ingest processes.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bus.home import Home
from bus.journal_identity import read_identity
from devtools.processes import wait_for_heartbeat
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration


def _ingest(symbol: str) -> subprocess.CompletedProcess[str]:
    # a bounded wait: on a worker that drops the command, this fails instead of hanging the suite
    return run_oh("emit", "ingest-candles", "--symbols", symbol, "--start", "2025-03-03", "--end", "2025-03-07",
                  "--wait", "--timeout", "60")


def _offset(home: Home) -> tuple[int, str]:
    seq, journal_id = (home.state / "ingest.offset").read_text().split()
    return int(seq), journal_id


def _start_over(home: Home) -> None:
    """What a trader does to begin again: delete the journal and the warehouse, keep the rest of OH_HOME."""
    shutil.rmtree(home.journal)
    shutil.rmtree(home.warehouse.parent)


def _two_runs(stack: Stack) -> int:
    """Two ingests, so the worker's offset is well past where a new journal's first command lands."""
    for symbol in ("AAPL", "MSFT"):
        done = _ingest(symbol)
        assert done.returncode == 0, done.stderr
    seq, journal_id = _offset(stack.home)
    assert journal_id == read_identity(stack.home.journal) and seq > 1
    return seq


def test_a_worker_restarted_on_a_new_journal_runs_its_first_commands(home: Home) -> None:
    """Everything stopped, journal and warehouse deleted, offsets kept, everything started again: the first
    command of the new journal (a seq the old offset had passed) runs, and the offset now names the new journal."""
    stack = Stack(home)
    stack.start_ledger()
    stack.start_ingest()
    try:
        old_seq = _two_runs(stack)
        old_id = read_identity(home.journal)
        stack.stop()
        _start_over(home)
        stack = Stack(home)
        stack.start_ledger()
        stack.start_ingest()
        done = _ingest("SPY")
        assert done.returncode == 0, done.stderr
        assert stack.scalar("SELECT count(*) FROM meta.ingestion_runs WHERE status = 'success'") == 1
        new_seq, new_id = _offset(home)
        assert new_id == read_identity(home.journal) != old_id
        assert new_seq < old_seq  # the command it ran counts in the new journal
    finally:
        stack.stop()


def test_a_running_worker_follows_the_ledger_onto_a_new_journal(home: Home) -> None:
    """The ingest worker keeps running while the ledger is stopped, its journal and warehouse deleted, and the
    ledger started again: the worker hears the new journal's id (head tick or catch-up) and runs the new
    journal's first command."""
    stack = Stack(home)
    stack.start_ledger()
    stack.start_ingest()
    try:
        _two_runs(stack)
        stack.ledger.stop()
        _start_over(home)
        stack.start_ledger()
        wait_for_heartbeat(home, "ingest")
        done = _ingest("SPY")
        assert done.returncode == 0, done.stderr
        assert stack.scalar("SELECT count(*) FROM meta.ingestion_runs WHERE status = 'success'") == 1
        assert _offset(home)[1] == read_identity(home.journal)
    finally:
        stack.stop()


def test_a_restart_on_the_same_journal_keeps_the_place(home: Home) -> None:
    """The usual restart: the same journal, so the worker resumes after its offset and runs nothing again (one
    run per command), and an offset file from before journal ids (a bare seq) is still read as that seq."""
    stack = Stack(home)
    stack.start_ledger()
    stack.start_ingest()
    try:
        seq = _two_runs(stack)
        stack.ingest.stop()
        (home.state / "ingest.offset").write_text(str(seq))  # the format before journal ids
        stack.start_ingest()
        done = _ingest("SPY")
        assert done.returncode == 0, done.stderr
        assert stack.scalar("SELECT count(*) FROM meta.ingestion_runs WHERE status = 'success'") == 3
        assert stack.scalar("SELECT count(*) FROM ledger.events WHERE type = 'RunStarted'") == 3  # none twice
        assert _offset(home)[1] == read_identity(home.journal)
    finally:
        stack.stop()
