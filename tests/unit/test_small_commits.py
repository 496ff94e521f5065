"""A small group commit writes its rows as parameters of one INSERT (`bookkeeping.insert_values`, up to
VALUES_MAX_ROWS rows), a larger one as an Arrow table: both must store exactly the same rows.

What it protects: `ledger.events` (the dedup index and every event's ts) and `meta.asset_checks` are the same
whichever way a batch was written, so a ledger that committed one event at a time and a rebuild that commits
thousands at once agree to the microsecond: aware timestamps in any zone, naive ones, a None partition, a
check's metrics and message text.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from contracts import AssetChecked, Message, RunStarted
from contracts.events import CheckRecord
from services.ledger.bookkeeping import VALUES_MAX_ROWS
from tests.unit.factories import MiniLedger, table_rows

NEW_YORK_WINTER = timezone(timedelta(hours=-5))


def _events(count: int) -> list[Message]:
    events: list[Message] = []
    for i in range(count):
        at = datetime(2025, 3, 7, 20, 15, 1, 123_457 + i, tzinfo=UTC)
        zoned = at.astimezone(NEW_YORK_WINTER) if i % 3 == 0 else at
        if i % 2:
            events.append(RunStarted(run_id=f"r{i}", job_name="ingest_candles", triggered_by="cli", started_at=zoned,
                                     ts=zoned))
        else:
            results = [CheckRecord(check_name=f"c{k}", severity="error" if k else "warn", status="fail" if k == 2 else "pass",
                                   message=f"row {i}: o'clock \"quoted\"", metrics_json=f'{{"rows": {i + k}}}')
                       for k in range(3)]
            events.append(AssetChecked(run_id=None if i % 4 == 0 else f"r{i}", asset_key="candles_daily",
                                       partition_key=None if i % 8 == 0 else f"S{i}|2025-03-07", checked_at=zoned,
                                       results=results, ts=zoned))
    return events


def _stored(groups: list[int], events: list[Message]) -> dict[str, list[dict[str, object]]]:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = MiniLedger(Path(tmp))
        ledger.submit_in_groups(events, groups)
        stored = {table: table_rows(ledger.warehouse.con, table)
                  for table in ("ledger.events", "meta.asset_checks", "meta.ingestion_runs")}
        ledger.close()
    return stored


def test_one_by_one_and_all_at_once_store_the_same_rows() -> None:
    """Each event alone (the parameters' path, every check result of a delivery in one INSERT) against all of them
    in one commit (the Arrow path): the same rows in every table they touch."""
    events = _events(24)
    assert len(events) > VALUES_MAX_ROWS  # the single commit takes the Arrow path
    one_by_one = _stored([1] * len(events), events)
    all_at_once = _stored([len(events)], events)
    assert one_by_one == all_at_once
    assert len(one_by_one["ledger.events"]) == 24 and len(one_by_one["meta.asset_checks"]) == 12 * 3
    assert {row["ts"].microsecond for row in one_by_one["ledger.events"]} == {123_457 + i for i in range(24)}


def test_groups_on_both_sides_of_the_bound_store_the_same_rows() -> None:
    """Groups of exactly VALUES_MAX_ROWS and one past it, mixed: the same rows as one commit."""
    events = _events(3 * VALUES_MAX_ROWS + 3)
    assert _stored([VALUES_MAX_ROWS, VALUES_MAX_ROWS + 1, 2], events) == _stored([len(events)], events)
