"""The run ledger's bookkeeping: how journaled events change the `meta.*` tables.

Runs (`meta.ingestion_runs`), the assets each run wrote or failed (`meta.ingestion_run_assets`, chunks of
one partition within a run accumulating), watermarks that never move backwards (`meta.asset_watermarks`),
check results once per identity (`meta.asset_checks`), forgotten symbols and notifications. The data
projections (services/ledger/projections.py) call `upsert_assets` and `upsert_watermarks` for the
deliveries they store. As there, every value comes from the events themselves (never `now()`), so a
rebuild from the journal gives the same rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from contracts import AssetChecked, AssetFailed, Message, NotificationSent, RunFinished, RunStarted

Applied = tuple[int, Message]


def naive_utc(value: datetime | None) -> datetime | None:
    """DuckDB TIMESTAMP columns hold naive UTC; convert an aware datetime to that."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def apply_run_started(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    for _, ev in batch:
        assert isinstance(ev, RunStarted)
        con.execute(
            """
            INSERT INTO meta.ingestion_runs (run_id, parent_run_id, job_name, triggered_by, status,
                started_at, provider, storage_backend, args_json, git_sha, app_version)
            VALUES (?, ?, ?, ?, 'started', ?, ?, ?, ?, ?, ?)
            ON CONFLICT (run_id) DO UPDATE SET status = 'started', started_at = excluded.started_at,
                ended_at = NULL, duration_ms = NULL, error_type = NULL, error_message = NULL,
                error_stack_hash = NULL
            """,
            [ev.run_id, ev.parent_run_id, ev.job_name, ev.triggered_by, naive_utc(ev.started_at),
             ev.provider, ev.storage_backend, ev.args_json, ev.git_sha, ev.app_version],
        )


def apply_run_finished(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    for _, ev in batch:
        assert isinstance(ev, RunFinished)
        con.execute(
            """
            UPDATE meta.ingestion_runs SET status = ?, ended_at = ?, duration_ms = ?,
                error_type = ?, error_message = ?, error_stack_hash = ?
            WHERE run_id = ?
            """,
            [ev.status, naive_utc(ev.ended_at), ev.duration_ms, ev.error_type, ev.error_message,
             ev.error_stack_hash, ev.run_id],
        )


def upsert_assets(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Upsert asset rows; chunks of one partition within a run accumulate their metrics."""
    table = pa.Table.from_pylist(rows)
    con.register("_assets", table)
    try:
        con.execute(
            """
            INSERT INTO meta.ingestion_run_assets (run_id, asset_key, asset_kind, partition_key, status,
                rows_inserted, rows_updated, bytes_written, min_event_ts, max_event_ts, extra_json,
                started_at, ended_at, duration_ms)
            SELECT run_id, asset_key, any_value(asset_kind), partition_key, last(status ORDER BY ord),
                sum(rows_inserted), sum(rows_updated), sum(bytes_written), min(min_event_ts),
                max(max_event_ts), last(extra_json ORDER BY ord), min(started_at), max(ended_at),
                date_diff('millisecond', min(started_at), max(ended_at))
            FROM _assets GROUP BY run_id, asset_key, partition_key
            ON CONFLICT (run_id, asset_key, partition_key) DO UPDATE SET
                status = excluded.status,
                rows_inserted = coalesce(rows_inserted, 0) + coalesce(excluded.rows_inserted, 0),
                rows_updated = coalesce(rows_updated, 0) + coalesce(excluded.rows_updated, 0),
                bytes_written = coalesce(bytes_written, 0) + coalesce(excluded.bytes_written, 0),
                min_event_ts = least(min_event_ts, excluded.min_event_ts),
                max_event_ts = greatest(max_event_ts, excluded.max_event_ts),
                extra_json = coalesce(excluded.extra_json, extra_json),
                started_at = least(started_at, excluded.started_at),
                ended_at = greatest(ended_at, excluded.ended_at),
                duration_ms = date_diff('millisecond', least(started_at, excluded.started_at),
                                        greatest(ended_at, excluded.ended_at))
            """
        )
    finally:
        con.unregister("_assets")


Marks = dict[str, tuple[datetime, datetime | None, str]]


def advance(marks: Marks, scope: str, watermark: datetime, event: Any) -> None:
    """Fold one event into a batch's watermarks exactly as the SQL upsert folds batches together:
    the watermark is the maximum seen, `updated_at` and `last_run_id` come from the latest event."""
    previous = marks.get(scope)
    highest = watermark if previous is None else max(previous[0], watermark)
    marks[scope] = (highest, naive_utc(event.ts), event.run_id)


def upsert_watermarks(con: duckdb.DuckDBPyConnection, asset_key: str, marks: Marks) -> None:
    """Advance watermarks; a backfill of older data never moves a watermark backwards."""
    if not marks:
        return
    table = pa.table(
        {
            "scope_key": list(marks),
            "watermark_ts": pa.array([m[0] for m in marks.values()], pa.timestamp("us")),
            "updated_at": pa.array([m[1] for m in marks.values()], pa.timestamp("us")),
            "last_run_id": [m[2] for m in marks.values()],
        }
    )
    con.register("_marks", table)
    try:
        con.execute(
            """
            INSERT INTO meta.asset_watermarks
            SELECT ?, scope_key, watermark_ts, updated_at, last_run_id FROM _marks
            ON CONFLICT (asset_key, scope_key) DO UPDATE SET
                watermark_ts = greatest(watermark_ts, excluded.watermark_ts),
                updated_at = excluded.updated_at, last_run_id = excluded.last_run_id
            """,
            [asset_key],
        )
    finally:
        con.unregister("_marks")


def apply_asset_failed(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    assets = []
    for index, (_, ev) in enumerate(batch):
        assert isinstance(ev, AssetFailed)
        assets.append(
            {
                "ord": index, "run_id": ev.run_id, "asset_key": ev.asset_key, "asset_kind": ev.asset_kind,
                "partition_key": ev.partition_key, "status": ev.status, "rows_inserted": None,
                "rows_updated": None, "bytes_written": None, "min_event_ts": None, "max_event_ts": None,
                "extra_json": json.dumps({"error_type": ev.error_type, "error_message": ev.error_message}),
                "started_at": naive_utc(ev.started_at), "ended_at": naive_utc(ev.ended_at),
            }
        )
    upsert_assets(con, assets)


CHECK_NAMESPACE = uuid.UUID("0b6a43c4-53c3-4a52-9b0e-5b3c3f1f2d77")


def check_id(event: AssetChecked, check_name: str) -> str:
    """A check result's id: derived from its identity (run, asset, partition, scope, check name), never from
    the event's id, so the same check of the same partition in the same run is one row however often the
    run is redone (a redone run sends its data, hence its check results, again under new event ids). An
    event without a run (none today) keeps its results apart by the event's id."""
    owner = event.run_id if event.run_id is not None else f"event:{event.id}"
    key = "\x1f".join((owner, event.asset_key, event.partition_key or "", event.scope or "", check_name))
    return str(uuid.uuid5(CHECK_NAMESPACE, key))


def apply_checks(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    """Upsert check results on their identity (`check_id`): the latest result of a check wins, in seq order."""
    rows = []
    for _, ev in batch:
        assert isinstance(ev, AssetChecked)
        for result in ev.results:
            rows.append(
                {
                    "ord": len(rows), "check_id": check_id(ev, result.check_name),
                    "asset_key": ev.asset_key, "partition_key": ev.partition_key,
                    "check_name": result.check_name, "severity": result.severity, "status": result.status,
                    "checked_at": naive_utc(ev.checked_at), "metrics_json": result.metrics_json,
                    "message": result.message, "run_id": ev.run_id,
                }
            )
    if not rows:
        return
    table = pa.Table.from_pylist(rows)
    con.register("_checks", table)
    try:
        con.execute(
            """
            INSERT OR REPLACE INTO meta.asset_checks SELECT check_id, asset_key, partition_key, check_name, severity,
                status, checked_at, metrics_json, message, run_id FROM _checks
            QUALIFY row_number() OVER (PARTITION BY check_id ORDER BY ord DESC) = 1
            """
        )
    finally:
        con.unregister("_checks")


def apply_forgotten(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    """Upsert each forgotten symbol with the time it was forgotten (the latest forget wins)."""
    rows = {symbol: (naive_utc(ev.ts), ev.reason) for _, ev in batch for symbol in ev.symbols}  # type: ignore[attr-defined]
    con.executemany("INSERT OR REPLACE INTO meta.forgotten_symbols VALUES (?, ?, ?)",
                    [[symbol, at, reason] for symbol, (at, reason) in rows.items()])


def apply_remembered(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    symbols = sorted({symbol for _, ev in batch for symbol in ev.symbols})  # type: ignore[attr-defined]
    con.execute("DELETE FROM meta.forgotten_symbols WHERE symbol IN (SELECT unnest(?::VARCHAR[]))", [symbols])


def apply_notifications(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    """Upsert each notification on its id (a redelivered one replaces itself)."""
    rows = []
    for _, ev in batch:
        assert isinstance(ev, NotificationSent)
        started, ended = naive_utc(ev.started_at), naive_utc(ev.ended_at)
        rows.append([ev.id, ev.trigger, ev.trigger_key, ev.run_id, ev.subject, ev.partition_key, ev.title, ev.message,
                     ev.program, ev.status, ev.exit_code, ev.error, started, ended,
                     int((ev.ended_at - ev.started_at).total_seconds() * 1000)])
    con.executemany("INSERT OR REPLACE INTO meta.notifications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
