"""Crashes lose nothing acknowledged and apply nothing twice; a torn journal tail is cut on start, a lost committed one halts."""

from __future__ import annotations

import subprocess
import time
from datetime import date

import pytest

from bus.home import Home
from bus.journal import encode_frame
from bus.producer import Producer
from contracts import TradeUpdated
from devtools.processes import REPO, wait_applied
from oh.domain import calendar
from tests.integration.conftest import OH, Stack

pytestmark = pytest.mark.integration


def test_kill_9_ledger_mid_ingest_then_restart_completes_exactly(stack: Stack) -> None:
    """kill -9 the ledger during a 400-symbol, 10-year ingest; after a restart the run succeeds, rows exact."""
    symbols = [f"S{i:04d}" for i in range(400)]
    start, end = date(2015, 1, 1), date(2024, 12, 31)
    waiter = subprocess.Popen(
        [OH, "emit", "ingest-candles", "--symbols", ",".join(symbols), "--start", str(start), "--end", str(end), "--wait"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while stack.scalar("SELECT count(*) FROM candles_daily") == 0:
        assert time.monotonic() < deadline, "no candles arrived"
        time.sleep(0.02)
    status_at_kill = stack.scalar("SELECT max(status) FROM meta.ingestion_runs")
    stack.ledger.kill()
    assert status_at_kill == "started", "the run finished before the crash; the test would prove nothing"
    time.sleep(0.5)
    stack.start_ledger()
    _out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err
    expected = len(symbols) * len(calendar.sessions(start, end))
    assert stack.scalar("SELECT count(*) FROM candles_daily") == expected
    assert stack.scalar("SELECT count(DISTINCT symbol) FROM candles_daily") == len(symbols)
    assert stack.scalar("SELECT status FROM meta.ingestion_runs") == "success"
    assert stack.scalar("SELECT count(*) FROM meta.ingestion_run_assets WHERE status = 'success'") == len(symbols)
    assert stack.scalar("SELECT sum(rows_inserted) FROM meta.ingestion_run_assets") == expected
    assert stack.scalar("SELECT count(*) - count(DISTINCT id) FROM ledger.events") == 0, "an event was journaled twice"


def _send_trades(home: Home, count: int) -> int:
    producer = Producer(home)
    producer.send_many(
        [TradeUpdated(order_id=f"o{i}", symbol="AAPL", event="fill", side="buy", qty=1.0, price=10.0) for i in range(count)]
    )
    producer.flush(timeout=30)
    producer.close()
    return producer.last_acked_seq


def _last_segment(home: Home):  # type: ignore[no-untyped-def]
    return sorted(home.journal.glob("*.seg"))[-1]


def test_half_written_frame_is_cut_on_start(home: Home) -> None:
    """A frame cut in half by a crash is removed on start; the journal goes on from the last whole frame."""
    services = Stack(home)
    services.start_ledger()
    try:
        head = _send_trades(home, 10)
        wait_applied(home, head)
        services.ledger.stop()
        frame = encode_frame(head + 1, "TradeUpdated", b"\x81\xa4type\xacTradeUpdated" + b"x" * 200)
        with _last_segment(home).open("ab") as fh:
            fh.write(frame[: len(frame) // 2])
        services.start_ledger()
        assert services.client.status().head_seq == head
        assert "torn or corrupt tail" in services.ledger.log_text()
        assert _send_trades(home, 1) == head + 1
        wait_applied(home, head + 1)
        assert services.scalar("SELECT count(*) FROM trade_updates") == 11
    finally:
        services.stop()


def test_journal_losing_an_applied_frame_halts_instead_of_rebuilding(home: Home) -> None:
    """If the journal's tail was lost after the warehouse applied it, the warehouse is kept (never rebuilt from the
    shorter journal): the ledger halts naming the damage; once the frame is marked lost it goes on from there."""
    services = Stack(home, ledger_env={"OH_FSYNC": "off"})
    services.start_ledger()
    try:
        head = _send_trades(home, 10)
        wait_applied(home, head)
        services.ledger.stop()
        segment = _last_segment(home)
        with segment.open("r+b") as fh:
            fh.truncate(segment.stat().st_size - 5)
        services.start_ledger()
        status = services.client.status()
        assert status.applied_seq == head
        assert status.fault is not None and f"after seq {head - 1}" in status.fault and segment.name in status.fault
        assert services.scalar("SELECT count(*) FROM trade_updates") == 10
        services.ledger.stop()
        repaired = subprocess.run([OH, "journal", "repair", "--mark-lost"], capture_output=True, text=True, cwd=REPO,
                                  timeout=120, check=False)
        assert repaired.returncode == 0, repaired.stderr
        services.start_ledger()
        assert services.client.status().fault is None
        assert services.scalar("SELECT count(*) FROM trade_updates") == 10
        assert _send_trades(home, 1) == head + 1
    finally:
        services.stop()
