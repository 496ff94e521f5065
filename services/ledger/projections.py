"""Projections: how each journaled event changes the DuckDB tables (the `meta.*` bookkeeping they share
is in services/ledger/bookkeeping.py).

Every value written here comes from the events themselves (never `now()`), so re-applying the
journal into an empty file gives the same tables. Consecutive events of one type are applied
as one batch: one Arrow table, one upsert.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bus.arrow_ipc import from_ipc
from bus.codec import FrameError
from contracts import (
    AssetChecked,
    AssetFailed,
    BriefingBuilt,
    CandlesIngested,
    ChainSnapshotted,
    DerivedComputed,
    FlowComputed,
    Message,
    NotificationSent,
    OptionBarsIngested,
    RunFinished,
    RunStarted,
    SymbolsForgotten,
    SymbolsRemembered,
    TradeUpdated,
)
from contracts import rows as row_schemas
from contracts.catalog import asset_of, writes_of
from services.ledger import schema
from services.ledger.bookkeeping import (
    VALUES_MAX_ROWS,
    Applied,
    advance,
    apply_asset_failed,
    apply_checks,
    apply_forgotten,
    apply_notifications,
    apply_remembered,
    apply_run_finished,
    apply_run_started,
    deferred,
    insert_values,
    naive_utc,
    upsert_assets,
    upsert_watermarks,
)

log = logging.getLogger(__name__)


_UTC_US = pa.timestamp("us", tz="UTC")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NAIVE_US = pa.timestamp("us")


def utc_column(values: Sequence[datetime | None]) -> pa.Array:
    """A naive-UTC timestamp column from aware datetimes (the hot path: exact integer microseconds since
    the epoch, which Arrow takes as is, cost less than Arrow's own conversion of aware datetimes)."""
    try:
        return pa.array([None if v is None else (v - _EPOCH) // _MICROSECOND for v in values], pa.int64()).cast(_NAIVE_US)
    except TypeError:  # a naive datetime (taken as UTC, as Arrow did)
        return pa.array(values, _UTC_US).cast(_NAIVE_US)


# -- validation at the door (before anything is journaled) -----------------------------------
_ROW_SCHEMAS: dict[type[Message], pa.Schema] = {
    CandlesIngested: row_schemas.CANDLES, ChainSnapshotted: row_schemas.CHAIN, FlowComputed: row_schemas.FLOW,
    DerivedComputed: row_schemas.DERIVED, OptionBarsIngested: row_schemas.OPTION_BARS,
}
VALIDATED_TYPES = frozenset(_ROW_SCHEMAS)  # `validate` checks nothing for any other type


def validate(message: Message) -> pa.Table | None:
    """Reject an event whose payload a projection could not apply (bad Arrow bytes, wrong schema); return its rows
    (decoded, zero-copy over the payload) for `decoded_rows`, or None for a type without rows."""
    schema = _ROW_SCHEMAS.get(type(message))
    if schema is None:
        return None
    kind = type(message).__name__
    try:
        table = from_ipc(message.rows)
        table.validate(full=True)  # out-of-range offsets would crash DuckDB, and every replay after it
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise FrameError(f"{kind}.rows is not a valid Arrow IPC stream: {exc}") from None
    if not table.schema.equals(schema):
        raise FrameError(f"{kind}.rows schema mismatch: {table.schema.names}")
    nulls = [f.name for f, column in zip(schema, table.columns, strict=True) if not f.nullable and column.null_count]
    if nulls:
        raise FrameError(f"{kind}.rows has nulls in {', '.join(nulls)}")
    if table.num_rows != message.row_count:
        raise FrameError(f"{kind}.row_count {message.row_count} != {table.num_rows} rows")
    return table


# The rows the ledger decoded at its door (`validate`), by the id of the payload bytes they view, for the projection
# of the same drain: decoding each event's Arrow stream once, not twice (~4% of the ledger's CPU at width).
Decoded = dict[int, tuple[bytes, pa.Table]]
_decoded: ContextVar[Decoded | None] = ContextVar("decoded_rows", default=None)


@contextmanager
def decoded_rows(known: Decoded | None) -> Iterator[None]:
    """Within the block, `_rows_of` takes an event's rows from `known` (filled by the intake from `validate`)."""
    token = _decoded.set(known)
    try:
        yield
    finally:
        _decoded.reset(token)


def _rows_of(ev: Any) -> pa.Table:
    """An event's rows: the table the door decoded when it is the same payload object, else decoded now."""
    known = _decoded.get()
    if known is not None:
        entry = known.get(id(ev.rows))
        if entry is not None and entry[0] is ev.rows:  # the very bytes it was decoded from, not a reused id
            return entry[1]
    return from_ipc(ev.rows)


# -- appliers --------------------------------------------------------------------------------
def _bulk_upsert(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table, columns: str) -> dict[int, int]:
    """Upsert `rows` (tagged by `_tag_events`) into `table` on its key (`schema.FACT_KEYS`); return rows updated per
    event.

    A row counts as updated if its key is stored already or came in an earlier event of this batch,
    so a rebuild (one big batch) counts exactly as the live commits (many small ones) did. A key is stored once
    (no PRIMARY KEY enforces it; this, the tables' only writer, does): the stored rows whose keys the batch holds are
    deleted before it is inserted, and a key repeated within the batch keeps its last delivery (the last row of the
    latest event). When no key repeats and none is stored (the usual backfill, and every new day) it is a plain
    INSERT, the fastest path. Each key starts with a name and a date column (symbol or contract, session):
    `_none_stored` asks about those two first, which costs a fraction of matching every key against the table.
    """
    keys = schema.FACT_KEYS[table]
    match = " AND ".join(f"{{t}}.{k} = b.{k}" for k in keys)
    con.register("_bulk", rows)
    try:
        # a repeated key repeats its hash; a collision only sends the batch down the careful path (half the CPU of
        # counting the distinct keys themselves)
        [(repeats,)] = con.execute(f"SELECT count(*) > count(DISTINCT hash({', '.join(keys)})) FROM _bulk").fetchall()
        if not repeats and _none_stored(con, table, rows, keys[0], keys[1]):
            con.execute(f"INSERT INTO {table} SELECT {columns} FROM _bulk b")
            return {}
        earlier = f"OR EXISTS (SELECT 1 FROM _bulk e WHERE {match.format(t='e')} AND e._ev < b._ev)" if repeats else ""
        updated = dict(
            con.execute(
                f"SELECT b._ev, count(*) FROM _bulk b WHERE EXISTS (SELECT 1 FROM {table} c WHERE {match.format(t='c')}) "
                f"{earlier} GROUP BY b._ev"
            ).fetchall()
        )
        last = (f"QUALIFY row_number() OVER (PARTITION BY {', '.join('b.' + k for k in keys)} ORDER BY b._row DESC) = 1"
                if repeats else "")
        if updated:
            con.execute(f"DELETE FROM {table} c WHERE EXISTS (SELECT 1 FROM _bulk b WHERE {match.format(t='c')})")
        con.execute(f"INSERT INTO {table} SELECT {columns} FROM _bulk b {last}")
    finally:
        con.unregister("_bulk")
    return {int(k): int(v) for k, v in updated.items()}


def _none_stored(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table, name: str, day: str) -> bool:
    """Whether no stored row of `table` has one of the `name` values of `_bulk` (the registered `rows`) on a date
    within `rows`' first and last `day`: then none of their keys, which hold both columns, is stored.

    The dates' bounds are constants, so DuckDB's zone maps skip every row group of other days; what is left is a
    scan of the name column over those days, where matching every key (the EXISTS join of `_bulk_upsert`) reads
    every key column: a quarter of that join's CPU on a day of 3,000 symbols' flow rows in batches of six.
    """
    bounds = pc.min_max(rows.column(day))
    found = con.execute(
        f"SELECT 1 FROM {table} WHERE {day} BETWEEN ? AND ? AND {name} IN (SELECT {name} FROM _bulk) LIMIT 1",
        [bounds["min"].as_py(), bounds["max"].as_py()],
    ).fetchone()
    return found is None


def _tag_events(batch: Sequence[Applied], with_provider: bool = True) -> pa.Table:
    """Concatenate the events' Arrow rows with an `_ev` index (and a dictionary-encoded `provider`) and a `_row`
    ordinal (which of a repeated key's rows is the last: `_bulk_upsert`)."""
    tables = []
    for index, (_, ev) in enumerate(batch):
        table = _rows_of(ev)
        tables.append(table.append_column("_ev", pa.array(np.full(table.num_rows, index, dtype=np.int32))))
    rows = pa.concat_tables(tables)
    if with_provider:
        names = pa.array([ev.provider for _, ev in batch], pa.string())  # type: ignore[attr-defined]
        rows = rows.append_column("provider", pa.DictionaryArray.from_arrays(rows.column("_ev").combine_chunks(), names))
    return rows.append_column("_row", pa.array(np.arange(rows.num_rows, dtype=np.int64)))


def _apply_candles(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    updated = _bulk_upsert(
        con, "candles_daily", _tag_events(batch),
        "b.symbol, b.date, b.open, b.high, b.low, b.close, b.volume, b.provider::VARCHAR",
    )
    assets, marks = [], {}
    for index, (_, ev) in enumerate(batch):
        assert isinstance(ev, CandlesIngested)
        n_updated = int(updated.get(index, 0))
        assets.append(
            {
                "ord": index, "run_id": ev.run_id, "asset_key": asset_of(CandlesIngested), "asset_kind": "table",
                "partition_key": ev.symbol, "status": "success", "rows_inserted": ev.row_count - n_updated,
                "rows_updated": n_updated, "bytes_written": len(ev.rows),
                "min_event_ts": datetime.combine(ev.first_date, datetime.min.time()),
                "max_event_ts": datetime.combine(ev.last_date, datetime.min.time()),
                "extra_json": json.dumps({"provider": ev.provider}),
                "started_at": naive_utc(ev.started_at), "ended_at": naive_utc(ev.ended_at),
            }
        )
        if ev.row_count:
            advance(marks, ev.symbol, datetime.combine(ev.last_date, datetime.min.time()), ev)
    upsert_assets(con, assets)
    upsert_watermarks(con, asset_of(CandlesIngested), marks)


def _record_daily_assets(
    con: duckdb.DuckDBPyConnection,
    batch: Sequence[Applied],
    asset_key: str,
    day_of: Callable[[Any], date],
    updated: dict[int, int],
    extra: Callable[[Any], str | None] = lambda ev: None,
) -> None:
    """Asset rows (partition `SYMBOL|DAY`) and watermarks for a batch of one-session deliveries."""
    assets, marks = [], {}
    for index, (_, ev) in enumerate(batch):
        n_updated = int(updated.get(index, 0))
        day = datetime.combine(day_of(ev), datetime.min.time())
        assets.append(
            {
                "ord": index, "run_id": ev.run_id, "asset_key": asset_key, "asset_kind": "table",
                "partition_key": f"{ev.symbol}|{day_of(ev)}", "status": "success",
                "rows_inserted": ev.row_count - n_updated, "rows_updated": n_updated, "bytes_written": len(ev.rows),
                "min_event_ts": day, "max_event_ts": day, "extra_json": extra(ev),
                "started_at": naive_utc(ev.started_at), "ended_at": naive_utc(ev.ended_at),
            }
        )
        if ev.row_count:
            advance(marks, ev.symbol, day, ev)
    upsert_assets(con, assets)
    upsert_watermarks(con, asset_key, marks)


CHAIN_COLUMNS = (
    "b.underlying, b.snapshot_date, b.contract_symbol, b.expiry, b.right, b.strike, b.spot, b.bid, b.ask, "
    "b.last, b.mark, b.volume, b.open_interest, b.iv, b.delta, b.gamma, b.vega, b.theta, b.rho, b.provider::VARCHAR"
)


def _apply_chains(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    updated = _bulk_upsert(con, "option_snapshots", _tag_events(batch), CHAIN_COLUMNS)
    _record_daily_assets(con, batch, asset_of(ChainSnapshotted), lambda ev: ev.snapshot_date, updated,
                         lambda ev: json.dumps({"provider": ev.provider}))


def _apply_option_bars(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    updated = _bulk_upsert(
        con, "options_bars", _tag_events(batch),
        "b.contract_symbol, b.date, b.underlying, b.open, b.high, b.low, b.close, b.volume, b.trade_count, "
        "b.vwap, b.provider::VARCHAR",
    )
    _record_daily_assets(con, batch, asset_of(OptionBarsIngested), lambda ev: ev.bar_date, updated,
                         lambda ev: json.dumps({"provider": ev.provider}))


def _apply_briefings(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    """Upsert each day's briefing (the last delivery of a day wins) with its asset row and watermark."""
    latest = {ev.as_of: ev for _, ev in batch}  # type: ignore[attr-defined]
    stored = {
        row[0] for row in con.execute(
            "SELECT as_of FROM briefings WHERE as_of IN (SELECT unnest(?::DATE[]))", [list(latest)]
        ).fetchall()
    }
    con.executemany(
        "INSERT OR REPLACE INTO briefings VALUES (?, ?, ?, ?, ?, ?)",
        [[ev.as_of, ev.markdown, ev.path, ev.symbols, ev.run_id, naive_utc(ev.ts)] for ev in latest.values()],
    )
    assets, marks, seen = [], {}, set(stored)
    for index, (_, ev) in enumerate(batch):
        assert isinstance(ev, BriefingBuilt)
        replaced = ev.as_of in seen
        seen.add(ev.as_of)
        day = datetime.combine(ev.as_of, datetime.min.time())
        assets.append(
            {
                "ord": index, "run_id": ev.run_id, "asset_key": asset_of(BriefingBuilt), "asset_kind": "file",
                "partition_key": str(ev.as_of), "status": "success", "rows_inserted": 0 if replaced else 1,
                "rows_updated": 1 if replaced else 0, "bytes_written": len(ev.markdown.encode()),
                "min_event_ts": day, "max_event_ts": day, "extra_json": json.dumps({"path": ev.path}),
                "started_at": naive_utc(ev.started_at), "ended_at": naive_utc(ev.ended_at),
            }
        )
        advance(marks, "ALL", day, ev)
    upsert_assets(con, assets)
    upsert_watermarks(con, asset_of(BriefingBuilt), marks)


FLOW_COLUMNS = (
    "b.symbol, b.from_date, b.to_date, b.window, b.group_by, b.row_key, b.right, b.expiry, b.strike, "
    "b.oi_before, b.oi_today, b.d_oi, b.d_oi_notional, b.volume, b.volume_notional, b.volume_oi_ratio, "
    "b.delta_notional, b.rows, b.label"
)


def _apply_flow(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    rows = _tag_events(batch, with_provider=False)
    rows = rows.rename_columns(["window_sessions" if n == "window" else n for n in rows.column_names])
    updated = _bulk_upsert(con, "options_flow", rows, FLOW_COLUMNS.replace("b.window,", "b.window_sessions,"))
    _record_daily_assets(con, batch, asset_of(FlowComputed), lambda ev: ev.as_of, updated,
                         lambda ev: json.dumps({"window": ev.window}))


def _apply_derived(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied]) -> None:
    rows = _tag_events(batch, with_provider=False)
    # A metric that cannot be computed is NaN in oh.domain.derived and NULL in SQL (NaN would poison avg()).
    columns = ", ".join(
        f"CASE WHEN isnan(b.{f.name}) THEN NULL ELSE b.{f.name} END" if f.type == pa.float64() else f"b.{f.name}"
        for f in row_schemas.DERIVED
    )
    updated = _bulk_upsert(con, "derived_daily", rows, columns)
    _record_daily_assets(con, batch, asset_of(DerivedComputed), lambda ev: ev.as_of, updated)


def _apply_trade_updates(con: duckdb.DuckDBPyConnection, batch: Sequence[Applied], new_ids: bool = False) -> None:
    """Insert the fills, each once (a fill already stored under its event id is left as it is).

    `new_ids` says the caller believes no id is stored yet (the ledger dropped resent ids at its door): then a plain
    INSERT, several times cheaper in DuckDB than ON CONFLICT DO NOTHING, whose duplicate key error the caller
    answers by running the transaction again without it (`Warehouse.commit`)."""
    # one pass over the events (a tuple each), then a column per field: the hot path of small events
    rows = [(ev.id, ev.ts, ev.order_id, ev.symbol, ev.event, ev.side, ev.qty, ev.price, ev.filled_at)  # type: ignore[attr-defined]
            for _, ev in batch]
    ids, ts, order_ids, symbols, kinds, sides, qtys, prices, filled = zip(*rows, strict=True)
    table = pa.table(
        {
            "event_id": ids,
            "ts": utc_column(ts),
            "order_id": order_ids,
            "symbol": symbols,
            "event": kinds,
            "side": sides,
            "qty": pa.array(qtys, pa.float64()),
            "price": pa.array(prices, pa.float64()),
            "filled_at": utc_column(filled),
        }
    )
    con.register("_trades", table)
    try:
        con.execute("INSERT INTO trade_updates SELECT * FROM _trades" + ("" if new_ids else " ON CONFLICT DO NOTHING"))
    finally:
        con.unregister("_trades")


APPLIERS: dict[type[Message], Callable[[duckdb.DuckDBPyConnection, Sequence[Applied]], None]] = {
    RunStarted: apply_run_started,
    RunFinished: apply_run_finished,
    CandlesIngested: _apply_candles,
    ChainSnapshotted: _apply_chains,
    OptionBarsIngested: _apply_option_bars,
    BriefingBuilt: _apply_briefings,
    FlowComputed: _apply_flow,
    DerivedComputed: _apply_derived,
    AssetFailed: apply_asset_failed,
    TradeUpdated: _apply_trade_updates,
    AssetChecked: apply_checks,
    SymbolsForgotten: apply_forgotten,
    SymbolsRemembered: apply_remembered,
    NotificationSent: apply_notifications,
}


_WRITES: dict[type[Message], frozenset[str]] = {}  # writes_of per event type, looked up once


def _writes(message: Message) -> frozenset[str]:
    if isinstance(message, AssetFailed):
        return frozenset({f"asset:{message.asset_key}"})
    kind = type(message)
    writes = _WRITES.get(kind)
    if writes is None:
        writes = _WRITES[kind] = frozenset(writes_of(kind))  # tables, or `asset:KEY` for asset rows and watermarks
    return writes


def apply_events(con: duckdb.DuckDBPyConnection, events: Sequence[Applied], new_ids: bool = False) -> None:
    """Apply events in batches of one type (commands have no table).

    An event joins the latest batch of its type unless a batch after that one writes something it
    writes, so events touching the same rows keep their seq order (the tables come out as if
    applied one by one), while deliveries interleaved from several workers (chains, bars, check
    results) still cost one upsert per type instead of one per event. The asset rows, watermarks and
    check results of all the batches are written at the end, one statement per table
    (`bookkeeping.deferred`). `new_ids`: the caller takes every event's id as never applied before, so
    fills are inserted without a conflict check (`_apply_trade_updates`), and check results without asking
    which are stored (`bookkeeping.deferred`); a duplicate then fails with duckdb.ConstraintException.
    """
    batches: list[tuple[type[Message], list[Applied], set[str]]] = []
    last_kind: type[Message] | None = None
    last_group: list[Applied] = []
    for item in events:
        kind = type(item[1])
        if kind is last_kind and kind is not AssetFailed:
            # the event before was of this type and writes the same (AssetFailed's writes vary): the search
            # below would find the batch it joined again, so join it directly (a run of small events)
            last_group.append(item)
            continue
        last_kind, writes = kind, _writes(item[1])
        target = None
        for batch in reversed(batches):
            if batch[0] is kind:
                target = batch
                break
            if batch[2] & writes:
                break
        if target is None:
            target = (kind, [item], set(writes))
            batches.append(target)
        else:
            target[1].append(item)
            target[2].update(writes)
        last_group = target[1]
    with deferred(con, new_ids):  # the meta.* rows of every batch: one statement per table at the end
        for kind, group, _ in batches:
            applier = APPLIERS.get(kind)
            if applier is _apply_trade_updates and new_ids:
                _apply_trade_updates(con, group, new_ids=True)
            elif applier is not None:
                applier(con, group)


def index_events(con: duckdb.DuckDBPyConnection, events: Sequence[Applied], sizes: Sequence[int]) -> None:
    """Record (seq, id, type, ts, bytes) of each event in `ledger.events` for lookups and dedup."""
    if len(events) <= VALUES_MAX_ROWS:  # a quiet ledger's usual commit: a lone run event or check
        insert_values(con, "ledger.events", [(seq, ev.id, type(ev).__name__, naive_utc(ev.ts), size)
                                             for (seq, ev), size in zip(events, sizes, strict=True)])
        return
    table = pa.table(
        {
            "seq": pa.array([seq for seq, _ in events], pa.int64()),
            "id": [ev.id for _, ev in events],
            "type": [type(ev).__name__ for _, ev in events],
            "ts": utc_column([ev.ts for _, ev in events]),
            "bytes": pa.array(sizes, pa.int64()),
        }
    )
    con.from_arrow(table).insert_into("ledger.events")  # no view to `register`: half the statement's CPU
