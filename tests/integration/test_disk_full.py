"""A full disk: the ledger stops acknowledging, says so once and to every waiting client, and resumes by itself.

The home is a 30 MiB tmpfs (we run as root; the test is skipped, saying why, where mounting is not allowed). The real
ledger and ingest worker run on it; the disk is filled with a file, commands are emitted, and the file is deleted.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from bus.home import Home
from bus.journal import Journal
from oh.domain import calendar
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

SYMBOLS = [f"S{i:04d}" for i in range(900, 912)]  # synthetic sim names
START, END = "2016-01-01", "2024-12-31"
ROOM_LEFT = 96 * 1024  # enough for a command and a log line, far too little for the candles


def _mount_small(mount_point: Path) -> None:
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full test (needs root): {mounted.stderr.strip()}")


def _unmount(mount_point: Path) -> None:
    if subprocess.run(["umount", str(mount_point)], capture_output=True, check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


@pytest.fixture
def small_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """OH_HOME on a fresh 30 MiB tmpfs, unmounted afterwards."""
    mount_point = tmp_path / "small"
    _mount_small(mount_point)
    monkeypatch.setenv("OH_HOME", str(mount_point / "oh_home"))
    monkeypatch.setenv("OH_UI_PORT", "0")
    monkeypatch.delenv("OH_SOCKET_DIR", raising=False)
    monkeypatch.delenv("OH_FSYNC", raising=False)
    try:
        yield Home.from_env().ensure()
    finally:
        _unmount(mount_point)


@pytest.fixture
def small_warehouse(home: Home) -> Iterator[Home]:
    """A home whose warehouse directory (only) is a fresh 30 MiB tmpfs: the journal has room, DuckDB does not."""
    _mount_small(home.warehouse.parent)
    try:
        yield home
    finally:
        _unmount(home.warehouse.parent)


def _fill(root: Path, leave: int) -> Path:
    """Write a file until the disk is full, then give back `leave` bytes."""
    filler = root / "filler"
    with filler.open("wb") as fh:
        chunk = b"\0" * (1 << 20)
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError:
            pass
        try:
            fh.close()
        except OSError:
            pass
    os.truncate(filler, max(filler.stat().st_size - leave, 0))
    return filler


def _wait(what: str, done, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_a_full_disk_stalls_the_ledger_clearly_and_it_resumes_when_space_returns(small_home: Home) -> None:
    """Fill the disk and ingest: the ledger process neither exits nor restarts; it logs `disk full` once, naming the
    path and the free space; `oh status` shows it; `oh emit --wait` says it instead of hanging (a new command is refused
    at once, a run already started reports it while it waits). Delete the filler: the same ledger process resumes by
    itself, the stalled run finishes with every row, and the journal holds no half-written frame."""
    home = small_home
    stack = Stack(home, ledger_env={"OH_STALL_RETRY_SECONDS": "1", "OH_ABANDON_SECONDS": "600"})
    stack.start_ledger()
    stack.start_ingest()
    try:
        assert stack.ledger.proc is not None
        pid = stack.ledger.proc.pid
        warm = run_oh("emit", "ingest-candles", "--symbols", "S0999", "--start", "2025-01-01", "--end", "2025-01-31", "--wait")
        assert warm.returncode == 0, warm.stderr
        filler = _fill(home.root, ROOM_LEFT)

        waiting = run_oh("emit", "ingest-candles", "--symbols", ",".join(SYMBOLS), "--start", START, "--end", END,
                         "--wait", "--timeout", "20", timeout=120)
        said = waiting.stdout + waiting.stderr
        assert waiting.returncode != 0 and "disk full" in said, said
        status = stack.client.status()
        assert status.stalled is not None and "disk full" in status.stalled and "free there" in status.stalled
        assert str(home.journal) in status.stalled  # names the segment it could not write
        refused = run_oh("emit", "ingest-candles", "--symbols", "LATE", "--start", START, "--end", END, "--wait", timeout=60)
        assert refused.returncode == 1 and "did not store the command: disk full" in refused.stderr
        shown = run_oh("status")
        assert "ledger not storing events" in shown.stdout and "disk full" in shown.stdout
        time.sleep(5)  # several retry periods: still the same process, still one line in its log
        assert stack.ledger.proc.poll() is None and stack.ledger.proc.pid == pid
        log = stack.ledger.log_text()
        assert log.count("disk full: cannot write") == 1, log

        filler.unlink()
        _wait("the ledger did not resume after space returned", lambda: stack.client.status().stalled is None)
        _wait("the stalled run did not finish",
              lambda: stack.scalar("SELECT count(*) FILTER (WHERE status != 'started') FROM meta.ingestion_runs") == 2,
              timeout=180)
        assert stack.ledger.proc.poll() is None and stack.ledger.proc.pid == pid, "the ledger restarted"
        runs = stack.client.query("SELECT status FROM meta.ingestion_runs ORDER BY started_at").to_pylist()
        assert [r["status"] for r in runs] == ["success", "success"]
        sessions = len(calendar.sessions(date.fromisoformat(START), date.fromisoformat(END)))
        assert stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol LIKE 'S09__' AND symbol <> 'S0999'") == len(SYMBOLS) * sessions
        assert stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol = 'LATE'") == 0  # refused, never stored
        assert stack.scalar("SELECT count(*) - count(DISTINCT id) FROM ledger.events") == 0
        assert "accepting events" in stack.ledger.log_text()
    finally:
        stack.stop()
    reopened = Journal(home.journal)
    assert reopened.faults == [] and reopened.truncated_bytes == 0 and not list(home.journal.glob("*.cut-*"))
    reopened.close()


def test_a_full_warehouse_disk_keeps_the_batch_in_the_journal_and_applies_it_later(small_warehouse: Home) -> None:
    """Only DuckDB's disk is full: the events are journaled and acknowledged, the COMMIT fails for want of space and is
    not blamed on the events (nothing in ledger.rejected); the ledger says so once, naming the DuckDB file, and stops
    acknowledging; when space returns the same process applies what the journal holds and the run finishes."""
    home = small_warehouse
    stack = Stack(home, ledger_env={"OH_STALL_RETRY_SECONDS": "1", "OH_ABANDON_SECONDS": "600"})
    stack.start_ledger()
    stack.start_ingest()
    try:
        assert stack.ledger.proc is not None
        pid = stack.ledger.proc.pid
        warm = run_oh("emit", "ingest-candles", "--symbols", "S0999", "--start", "2025-01-01", "--end", "2025-01-31", "--wait")
        assert warm.returncode == 0, warm.stderr
        filler = _fill(home.warehouse.parent, ROOM_LEFT)
        waiting = run_oh("emit", "ingest-candles", "--symbols", ",".join(SYMBOLS), "--start", START, "--end", END,
                         "--wait", "--timeout", "20", timeout=120)
        said = waiting.stdout + waiting.stderr
        assert waiting.returncode != 0 and "disk full" in said, said
        status = stack.client.status()
        assert status.stalled is not None and "oh.duckdb" in status.stalled
        assert status.head_seq > status.applied_seq, "the batch should be journaled, waiting for the warehouse"
        time.sleep(3)
        assert stack.ledger.proc.poll() is None and stack.ledger.proc.pid == pid
        assert stack.ledger.log_text().count("disk full: cannot write") == 1

        filler.unlink()
        _wait("the ledger did not resume after space returned", lambda: stack.client.status().stalled is None)
        _wait("the stalled run did not finish",
              lambda: stack.scalar("SELECT count(*) FILTER (WHERE status != 'started') FROM meta.ingestion_runs") == 2,
              timeout=180)
        assert stack.ledger.proc.poll() is None and stack.ledger.proc.pid == pid, "the ledger restarted"
        sessions = len(calendar.sessions(date.fromisoformat(START), date.fromisoformat(END)))
        assert stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol LIKE 'S09__' AND symbol <> 'S0999'") == len(SYMBOLS) * sessions
        assert stack.scalar("SELECT count(*) FROM ledger.rejected") == 0
        assert stack.scalar("SELECT count(*) - count(DISTINCT id) FROM ledger.events") == 0
        assert stack.client.status().applied_seq == stack.client.status().head_seq
    finally:
        stack.stop()

