"""The journal is the truth: rebuilding the warehouse from it gives identical tables."""

from __future__ import annotations

from typing import Any

import pytest

from bus.home import Home
from bus.producer import Producer
from contracts import TradeUpdated
from devtools.processes import wait_applied
from services.ledger.schema import PROJECTED_TABLES
from services.ledger.warehouse import connect
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration


def _snapshot(read: Any) -> dict[str, list[dict[str, Any]]]:
    return {table: read(f"SELECT * FROM {table} ORDER BY ALL").to_pylist() for table in PROJECTED_TABLES}


def test_rebuild_online_and_offline_gives_identical_tables(stack: Stack, home: Home) -> None:
    """Runs (one failed), fills and a re-ingest; rebuild via the running ledger, then from a deleted file."""
    for args in (
        ("--symbols", "AAPL,MSFT", "--start", "2025-01-01", "--end", "2025-06-30"),
        ("--symbols", "AAPL,ZZBAD", "--start", "2025-06-01", "--end", "2025-12-31"),
    ):
        run_oh("emit", "ingest-candles", *args, "--wait")
    producer = Producer(home)
    producer.send_many(
        [TradeUpdated(order_id=f"o{i}", symbol="AAPL", event="fill", side="sell", qty=2.0, price=None) for i in range(50)]
    )
    producer.flush(30)
    producer.close()
    wait_applied(home, producer.last_acked_seq)
    before = _snapshot(stack.client.query)
    assert len(before["candles_daily"]) == 122 + 250  # MSFT H1, AAPL the whole year (June overlapped)
    assert len(before["trade_updates"]) == 50
    assert {r["status"] for r in before["meta.ingestion_runs"]} == {"success", "failed"}

    online = run_oh("replay", "--rebuild")
    assert online.returncode == 0, online.stderr
    assert "rebuilt by the running ledger" in online.stdout
    assert _snapshot(stack.client.query) == before

    stack.stop()
    home.warehouse.unlink()
    offline = run_oh("replay", "--rebuild")
    assert offline.returncode == 0, offline.stderr
    con = connect(home.warehouse, read_only=True)
    try:
        assert _snapshot(lambda sql: con.sql(sql).to_arrow_table()) == before
    finally:
        con.close()


def test_query_works_with_services_down(home: Home) -> None:
    """`oh query` reads the file read-only when no ledger runs, and still refuses writes."""
    assert run_oh("db", "init").returncode == 0
    ok = run_oh("query", "SELECT count(*) AS n FROM candles_daily", "--format", "csv")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ['"n"', "0"]
    refused = run_oh("query", "DELETE FROM candles_daily")
    assert refused.returncode == 2
    assert "read-only" in refused.stderr
