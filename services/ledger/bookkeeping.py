"""The run ledger's bookkeeping: how journaled events change the `meta.*` tables.

Runs (`meta.ingestion_runs`), the assets each run wrote or failed (`meta.ingestion_run_assets`, chunks of
one partition within a run accumulating), watermarks that never move backwards (`meta.asset_watermarks`),
check results once per identity (`meta.asset_checks`), forgotten symbols and notifications. The data
projections (services/ledger/projections.py) call `upsert_assets` and `upsert_watermarks` for the
deliveries they store. As there, every value comes from the events themselves (never `now()`), so a
rebuild from the journal gives the same rows.

Within `deferred(con)` (the ledger applies each group commit inside one) the asset rows, watermarks and
check results of every batch are only collected, folded in seq order exactly as the SQL upserts fold
one event after another, and written at the end: one statement per table per transaction, however many
events, symbols or batches it holds. Outside it each call writes at once, through the same path.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from contracts import AssetChecked, AssetFailed, Message, NotificationSent, RunFinished, RunStarted

Applied = tuple[int, Message]


# Up to this many rows go into a table as one INSERT of parameters (`insert_values`) rather than as an Arrow table:
# a quiet ledger commits one event at a time (a run's start, a check result), and DuckDB binds a few rows of
# parameters for about a third of what a relation over an Arrow table costs (one row 0.34 against 1.2 ms of CPU,
# eight 0.6 against 0.75; the table wins from ~12 rows on). A lone event's whole commit: 4.5 -> 2.6 ms.
VALUES_MAX_ROWS = 8


def insert_values(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """INSERT `rows` (each a value per column of `table`, in its order) as the parameters of one statement."""
    row = f"({', '.join('?' * len(rows[0]))})"
    con.execute(f"INSERT INTO {table} VALUES {', '.join([row] * len(rows))}", [value for r in rows for value in r])


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
    """Upsert asset rows; chunks of one partition within a run accumulate their metrics (written at the end of
    `deferred`, or at once outside it)."""
    _write_through(con).add_assets(rows)


Marks = dict[str, tuple[datetime, datetime | None, str]]


def advance(marks: Marks, scope: str, watermark: datetime, event: Any) -> None:
    """Fold one event into a batch's watermarks exactly as the SQL upsert folds batches together:
    the watermark is the maximum seen, `updated_at` and `last_run_id` come from the latest event."""
    previous = marks.get(scope)
    highest = watermark if previous is None else max(previous[0], watermark)
    marks[scope] = (highest, naive_utc(event.ts), event.run_id)


def upsert_watermarks(con: duckdb.DuckDBPyConnection, asset_key: str, marks: Marks) -> None:
    """Advance watermarks; a backfill of older data never moves a watermark backwards."""
    _write_through(con).add_marks(asset_key, marks)


# -- one statement per table per transaction ---------------------------------------------------
_ASSET_FIELDS = ("run_id", "asset_key", "asset_kind", "partition_key", "status", "rows_inserted", "rows_updated",
                 "bytes_written", "min_event_ts", "max_event_ts", "extra_json", "started_at", "ended_at")
_ASSET_SCHEMA = pa.schema(
    [(name, pa.int64() if name in ("rows_inserted", "rows_updated", "bytes_written")
      else pa.timestamp("us") if name.endswith(("_ts", "_at")) else pa.string()) for name in _ASSET_FIELDS]
)
_CHECK_FIELDS = ("check_id", "asset_key", "partition_key", "check_name", "severity", "status", "checked_at",
                 "metrics_json", "message", "run_id")
_CHECK_SCHEMA = pa.schema([(name, pa.timestamp("us") if name == "checked_at" else pa.string()) for name in _CHECK_FIELDS])


def _least(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)  # SQL least(): NULLs are skipped


def _greatest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _fold_asset(stored: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Two chunks of one (run, asset, partition) as one row, so that upserting it gives what upserting the
    first, then the second gives (the ON CONFLICT clause in `Pending._write_assets`)."""
    return {
        "run_id": stored["run_id"], "asset_key": stored["asset_key"], "partition_key": stored["partition_key"],
        "asset_kind": stored["asset_kind"],  # an upsert keeps the kind of the row first inserted
        "status": later["status"],
        **{k: (stored[k] or 0) + (later[k] or 0) for k in ("rows_inserted", "rows_updated", "bytes_written")},
        "min_event_ts": _least(stored["min_event_ts"], later["min_event_ts"]),
        "max_event_ts": _greatest(stored["max_event_ts"], later["max_event_ts"]),
        "extra_json": later["extra_json"] if later["extra_json"] is not None else stored["extra_json"],
        "started_at": _least(stored["started_at"], later["started_at"]),
        "ended_at": _greatest(stored["ended_at"], later["ended_at"]),
    }


class Pending:
    """The `meta.*` rows of one transaction: asset rows, watermarks and check results, folded in seq order as
    they come, then written by `flush` with one statement per table."""

    def __init__(self, new_ids: bool = False) -> None:
        self.new_ids = new_ids  # check results are inserted unchecked (see `deferred`)
        self.assets: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.marks: dict[tuple[str, str], tuple[datetime, datetime | None, str]] = {}
        self.checks: dict[str, tuple[Any, ...]] = {}

    def add_assets(self, rows: Sequence[dict[str, Any]]) -> None:
        """Fold asset rows (in seq order) into those of the transaction."""
        for row in rows:
            key = (row["run_id"], row["asset_key"], row["partition_key"])
            earlier = self.assets.get(key)
            self.assets[key] = {f: row[f] for f in _ASSET_FIELDS} if earlier is None else _fold_asset(earlier, row)

    def add_marks(self, asset_key: str, marks: Marks) -> None:
        """Fold a batch's watermarks of `asset_key` (see `advance`) into those of the transaction."""
        for scope, (watermark, updated_at, run_id) in marks.items():
            previous = self.marks.get((asset_key, scope))
            highest = watermark if previous is None else max(previous[0], watermark)
            self.marks[(asset_key, scope)] = (highest, updated_at, run_id)

    def add_checks(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Check results (fields as `_CHECK_FIELDS`, in seq order); a later result of one check replaces the earlier."""
        for row in rows:
            self.checks[row[0]] = row

    def flush(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write what was collected (one statement per table that has rows) and forget it."""
        if self.assets:
            self._write_assets(con)
        if self.marks:
            self._write_marks(con)
        if self.checks:
            self._write_checks(con)
        self.assets, self.marks, self.checks = {}, {}, {}

    def _write_assets(self, con: duckdb.DuckDBPyConnection) -> None:
        rows = list(self.assets.values())
        table = pa.table({f: pa.array([r[f] for r in rows], _ASSET_SCHEMA.field(f).type) for f in _ASSET_FIELDS})
        insert = """
            INSERT INTO meta.ingestion_run_assets (run_id, asset_key, asset_kind, partition_key, status,
                rows_inserted, rows_updated, bytes_written, min_event_ts, max_event_ts, extra_json,
                started_at, ended_at, duration_ms)
            SELECT run_id, asset_key, asset_kind, partition_key, status, rows_inserted, rows_updated, bytes_written,
                min_event_ts, max_event_ts, extra_json, started_at, ended_at,
                date_diff('millisecond', started_at, ended_at)
            FROM _assets
            """
        upsert = insert + """
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
        stored = ("SELECT count(*) FROM _assets a SEMI JOIN meta.ingestion_run_assets t ON t.run_id = a.run_id "
                  "AND t.asset_key = a.asset_key AND t.partition_key = a.partition_key")
        _insert_or_upsert(con, "_assets", table, stored, insert, upsert)

    def _write_marks(self, con: duckdb.DuckDBPyConnection) -> None:
        keys, values = list(self.marks), list(self.marks.values())
        table = pa.table(
            {
                "asset_key": [k[0] for k in keys],
                "scope_key": [k[1] for k in keys],
                "watermark_ts": pa.array([m[0] for m in values], pa.timestamp("us")),
                "updated_at": pa.array([m[1] for m in values], pa.timestamp("us")),
                "last_run_id": pa.array([m[2] for m in values], pa.string()),
            }
        )
        _run_registered(con, "_marks", table, """
            INSERT INTO meta.asset_watermarks
            SELECT asset_key, scope_key, watermark_ts, updated_at, last_run_id FROM _marks
            ON CONFLICT (asset_key, scope_key) DO UPDATE SET
                watermark_ts = greatest(watermark_ts, excluded.watermark_ts),
                updated_at = excluded.updated_at, last_run_id = excluded.last_run_id
            """)

    def _write_checks(self, con: duckdb.DuckDBPyConnection) -> None:
        rows = list(self.checks.values())  # each in _CHECK_FIELDS order, the table's own
        replace = not self.new_ids and any_check_stored(con, [row[0] for row in rows])
        if not replace and len(rows) <= VALUES_MAX_ROWS:  # the usual case, one delivery's results
            insert_values(con, "meta.asset_checks", rows)
            return
        table = pa.table({f: pa.array([r[i] for r in rows], _CHECK_SCHEMA.field(f).type)
                          for i, f in enumerate(_CHECK_FIELDS)})
        if replace:
            _run_registered(con, "_checks", table,
                            f"INSERT OR REPLACE INTO meta.asset_checks SELECT {', '.join(_CHECK_FIELDS)} FROM _checks")
        else:  # a relation's insert skips the view `register` makes (half the statement's CPU)
            con.from_arrow(table).insert_into("meta.asset_checks")


# Check ids asked about per existence query: DuckDB answers `list_contains(?, check_id)` from the primary key's
# ART index (an index scan) for up to `index_scan_max_count` (2048) values; above that it scans the table.
CHECK_PROBE = 1000
CHECK_EXISTS_SQL = "SELECT 1 FROM meta.asset_checks WHERE list_contains(?, check_id) LIMIT 1"


def any_check_stored(con: duckdb.DuckDBPyConnection, check_ids: Sequence[str]) -> bool:
    """Whether any of `check_ids` is in meta.asset_checks, looked up in its primary key's index.

    A join against the table (the previous form) read every stored check id, once per group commit: its cost
    grew with the table (~150,000 results a day at full width, kept for ever). Index lookups cost the same
    however long the table is (tests/unit/test_checks_existence.py shows the plan)."""
    return any(
        bool(con.execute(CHECK_EXISTS_SQL, [list(check_ids[start:start + CHECK_PROBE])]).fetchall())
        for start in range(0, len(check_ids), CHECK_PROBE)
    )


def _insert_or_upsert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, stored: str, insert: str,
                      upsert: str) -> None:
    """A plain INSERT when no key of `table` is stored yet (the usual case: a run's new partitions),
    else the upsert: DuckDB's conflict handling costs more CPU than the existence query and the INSERT together."""
    con.register(name, table)
    try:
        [(found,)] = con.execute(stored).fetchall()
        con.execute(upsert if found else insert)
    finally:
        con.unregister(name)


def _run_registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, sql: str) -> None:
    con.register(name, table)
    try:
        con.execute(sql)
    finally:
        con.unregister(name)


_pending: ContextVar[Pending | None] = ContextVar("pending_bookkeeping", default=None)


@contextmanager
def deferred(con: duckdb.DuckDBPyConnection, new_ids: bool = False) -> Iterator[Pending]:
    """Collect the bookkeeping of the block and write it once when the block ends without an error.

    `new_ids`: the caller takes every check result as new (its first attempt at a transaction), so they are
    inserted without asking the index which are stored (~5% of the ledger's CPU at width: a probe per group
    commit); a result stored before (a redone run's check of a partition checked before) then fails the
    INSERT with duckdb.ConstraintException, and the caller applies the transaction again without `new_ids`
    (`Warehouse.commit`), which replaces it."""
    pending = Pending(new_ids)
    token = _pending.set(pending)
    try:
        yield pending
        pending.flush(con)
    finally:
        _pending.reset(token)


class _Immediate(Pending):
    """Outside `deferred`: each add is written at once, through the same statements."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__()
        self.con = con

    def add_assets(self, rows: Sequence[dict[str, Any]]) -> None:
        super().add_assets(rows)
        self.flush(self.con)

    def add_marks(self, asset_key: str, marks: Marks) -> None:
        super().add_marks(asset_key, marks)
        self.flush(self.con)

    def add_checks(self, rows: Sequence[tuple[Any, ...]]) -> None:
        super().add_checks(rows)
        self.flush(self.con)


def _write_through(con: duckdb.DuckDBPyConnection) -> Pending:
    pending = _pending.get()
    return pending if pending is not None else _Immediate(con)


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
    return _uuid5(key)


_NAMESPACE_BYTES = CHECK_NAMESPACE.bytes


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(CHECK_NAMESPACE, name))` without building a UUID object: 4 us instead of 10 a check result
    (the full market stores ~150,000 a day: ~30 per symbol over its chains, bars, flow, derived and candles)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def apply_checks(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    """Upsert check results on their identity (`check_id`): the latest result of a check wins, in seq order."""
    rows = []
    for _, ev in batch:
        assert isinstance(ev, AssetChecked)
        checked_at = naive_utc(ev.checked_at)
        for result in ev.results:
            rows.append((check_id(ev, result.check_name), ev.asset_key, ev.partition_key, result.check_name,
                         result.severity, result.status, checked_at, result.metrics_json, result.message, ev.run_id))
    if rows:
        _write_through(con).add_checks(rows)


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
