"""meta.asset_checks keeps one row per check result identity (run, asset, partition, scope, check), the latest.

The identity, not the event id, names a row: a run redone after a crash sends its check results again under
new event ids and must replace them, in any batching, live or rebuilt from the journal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import AssetChecked, CheckRecord
from services.ledger import projections
from services.ledger.warehouse import Warehouse
from tests.unit.factories import MiniLedger, at, table_rows


def _checked(t: float, status: str = "pass", partition: str = "AAPL|2025-06-03", run_id: str | None = "r1",
             scope: str | None = None, asset: str = "options_flow") -> AssetChecked:
    return AssetChecked(run_id=run_id, asset_key=asset, partition_key=partition, scope=scope, checked_at=at(t), ts=at(t),
                        results=[CheckRecord("flow_no_null_primary_keys", "error", status, f"{status} at {t}"),
                                 CheckRecord("flow_unknown_doi_share", "info", "pass", "0 unknown")])


def _keys(rows: list[dict]) -> list[tuple]:  # type: ignore[type-arg]
    return sorted((r["run_id"], r["asset_key"], r["partition_key"], r["check_name"]) for r in rows)


@pytest.mark.parametrize("together", [True, False], ids=["one-batch", "one-by-one"])
def test_a_redone_run_replaces_its_check_rows_instead_of_adding_to_them(tmp_path: Path, together: bool) -> None:
    """The same checks of the same partition in the same run, sent again by new events (a run redone after a
    kill -9), leave one row per check: the latest result, whatever the batching."""
    first, again = _checked(1, "fail"), _checked(2, "pass")
    assert first.id != again.id
    ledger = MiniLedger(tmp_path)
    if together:
        ledger.submit([first, again])
    else:
        ledger.submit([first])
        ledger.submit([again])
    rows = table_rows(ledger.warehouse.con, "meta.asset_checks")
    assert _keys(rows) == [("r1", "options_flow", "AAPL|2025-06-03", "flow_no_null_primary_keys"),
                           ("r1", "options_flow", "AAPL|2025-06-03", "flow_unknown_doi_share")]
    latest = next(r for r in rows if r["check_name"] == "flow_no_null_primary_keys")
    assert (latest["status"], latest["message"]) == ("pass", "pass at 2")


def test_other_runs_partitions_and_chunks_keep_their_own_rows(tmp_path: Path) -> None:
    """Identity is (run, asset, partition, scope, check): another run, partition, asset or chunk (scope) of a long
    candle delivery is another row, so trends across runs and every chunk's failure stay visible."""
    ledger = MiniLedger(tmp_path)
    ledger.submit([
        _checked(1), _checked(2, run_id="r2"), _checked(3, partition="SPY|2025-06-03"),
        _checked(4, asset="derived_metrics"),
        _checked(5, "fail", asset="candles_daily", partition="AAPL", scope="1990-01-02"),
        _checked(6, "pass", asset="candles_daily", partition="AAPL", scope="2009-11-20"),
    ])
    rows = table_rows(ledger.warehouse.con, "meta.asset_checks")
    assert len(rows) == 12
    chunks = sorted(r["status"] for r in rows
                    if r["asset_key"] == "candles_daily" and r["check_name"] == "flow_no_null_primary_keys")
    assert chunks == ["fail", "pass"]


def test_results_without_a_run_stay_apart_per_event(tmp_path: Path) -> None:
    """A result with no run has no identity beyond its event: two such events are two rows each."""
    ledger = MiniLedger(tmp_path)
    ledger.submit([_checked(1, run_id=None), _checked(2, run_id=None)])
    assert len(table_rows(ledger.warehouse.con, "meta.asset_checks")) == 4


def test_the_rebuilt_table_equals_the_live_one(tmp_path: Path) -> None:
    """Live commits of one event at a time and one rebuild batch give the same rows (latest result wins)."""
    events = [_checked(1, "fail"), _checked(2, run_id="r2"), _checked(3, "pass"), _checked(4, "fail", run_id="r2")]
    live = Warehouse(tmp_path / "live.duckdb")
    rebuilt = Warehouse(tmp_path / "rebuilt.duckdb")
    applied = list(enumerate(events, start=1))

    def commit(warehouse: Warehouse, items: list) -> None:  # type: ignore[type-arg]
        warehouse.con.execute("BEGIN")  # as Warehouse.commit does
        projections.apply_events(warehouse.con, items)
        warehouse.con.execute("COMMIT")

    for item in applied:
        commit(live, [item])
    commit(rebuilt, applied)
    assert table_rows(live.con, "meta.asset_checks") == table_rows(rebuilt.con, "meta.asset_checks")
    statuses = {(r["run_id"], r["check_name"]): r["status"] for r in table_rows(live.con, "meta.asset_checks")}
    assert statuses[("r1", "flow_no_null_primary_keys")] == "pass"
    assert statuses[("r2", "flow_no_null_primary_keys")] == "fail"
