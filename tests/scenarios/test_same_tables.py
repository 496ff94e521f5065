"""The in-process stack and the real bus write the same warehouse for the same commands.

A snapshot, then a daily for two symbols (one of them unknown, so failures and skips are part of
it) run on both;
every data table, the run ledger and the check results come out equal, timestamps aside. This is
what makes the in-process scenario tests evidence about the real system.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from bus.home import Home
from contracts import RunDaily, SnapshotOptions
from tests.scenarios.harness import BusHarness, Harness, InProcessHarness

TABLES = {  # table -> the columns compared (no wall-clock timestamps), in a stable order
    "candles_daily": "symbol, date, open, high, low, close, volume, provider",
    "options_bars": "* EXCLUDE (provider)",
    "option_snapshots": "*",
    "options_flow": "*",
    "derived_daily": "*",
    "briefings": "as_of, markdown, symbols, run_id",
    "meta.ingestion_runs": "run_id, job_name, status, parent_run_id, triggered_by, provider, error_type, error_message",
    "meta.ingestion_run_assets": "run_id, asset_key, partition_key, status, rows_inserted, rows_updated, extra_json",
    "meta.asset_checks": "run_id, asset_key, partition_key, check_name, severity, status, message",
}


def snapshot(harness: Harness) -> dict[str, list[dict[str, Any]]]:
    """Every compared table as rows; the home's own path (briefing paths and text) written as $OH_HOME."""
    root = str(harness.home.root)
    tables = {table: harness.query(f"SELECT {columns} FROM {table} ORDER BY ALL").to_pylist()
              for table, columns in TABLES.items()}
    for rows in tables.values():
        for row in rows:
            row.update({k: v.replace(root, "$OH_HOME") for k, v in row.items() if isinstance(v, str)})
    return tables


def test_a_daily_writes_identical_tables_in_process_and_on_the_bus(tmp_path: Path) -> None:
    """The day before is snapshotted first, so the daily's flow and derived have something to compare."""
    before = SnapshotOptions(id="4b" * 16, symbols=["AAPL"], start=date(2025, 6, 3), end=date(2025, 6, 3))
    daily = RunDaily(id="5a" * 16, symbols=["AAPL", "ZZNOPE"], as_of=date(2025, 6, 4), with_portfolio=False,
                     candle_days=60)
    tables = {}
    for kind in (InProcessHarness, BusHarness):
        harness = kind(Home(tmp_path / kind.name / "oh_home").ensure())
        try:
            assert harness.run(before).status == "success"
            assert harness.run(daily).status == "failed"
            tables[kind.name] = snapshot(harness)
        finally:
            harness.close()
    for table in TABLES:
        assert tables["inprocess"][table] == tables["bus"][table], table
    assert all(tables["bus"][t] for t in ("candles_daily", "option_snapshots", "options_flow", "meta.asset_checks"))
