"""`oh export` on the ledger's side: a consistent, read-only, paged read of whole tables or a date range.

Contract:
- `ExportRequest` opens an export: a fresh cursor of the ledger's locked-down connection (the sandbox
  of every query: external access off, configuration locked) in `BEGIN TRANSACTION READ ONLY`, held
  until the export ends. DuckDB's MVCC gives that transaction one snapshot: every page of every table
  is read from it, and the warehouse offset read in it (`ledger.offsets`, committed in the same
  transaction as the rows it covers) is the journal seq the whole export is consistent at. The answer,
  ExportOpened, holds that seq and, per table, its Arrow schema, its partition column and its row
  count per partition, all read in the same snapshot.
- `ExportFetch` answers the next page: Arrow record batches of one table (about OH_EXPORT_PAGE_BYTES), the
  tables in the order asked, each ordered by its partition column (so the client writes one file per
  partition). The last page says `done`; `ExportClose` ends an export early.
- The SQL is the ledger's own: table names come from EXPORT_TABLES, dates are parameters; nothing a
  client sends becomes SQL. Nothing is written here: DuckDB's `COPY ... TO` would need the external
  access that stays off for every connection of the warehouse; the client writes the Parquet files
  (oh/cli/export.py), and an export needs no more rights than a SELECT.
- Bounded: at most MAX_EXPORTS open at once (more is answered `busy`); a page runs on a query pool
  thread (queries.py), never the control thread, within the query budget (past it, it is interrupted
  and the export ends, `timeout`); an export not fetched for OH_EXPORT_IDLE_SECONDS is closed (its transaction
  ends, so old row versions are not kept alive). A rebuild or a shutdown closes every open export; a
  fetch then says why (`interrupted`). An export reads whole tables page by page, so the query
  endpoint's row and byte caps (OH_QUERY_MAX_ROWS, OH_QUERY_MAX_BYTES) do not apply; a page's memory does.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from bus.codec import encode
from contracts.control import ErrorReply, ExportClosed, ExportOpened, ExportPage, ExportRequest, ExportTable
from services.ledger.sandbox import Interrupter, QueryFailed, Ticket, classify

log = logging.getLogger(__name__)

PAGE_BYTES = 8 * 1024 * 1024  # Arrow bytes per page, one batch more at most (OH_EXPORT_PAGE_BYTES)
BATCH_ROWS = 65_536
MAX_EXPORTS = 4
IDLE_SECONDS = 60.0  # an export not fetched from for this long is closed (OH_EXPORT_IDLE_SECONDS)
REMEMBERED_ENDINGS = 64


@dataclass(frozen=True)
class TableSpec:
    """How a table is exported: its partition column (a DATE: hive directories `column=YYYY-MM-DD`) and
    the expression `--since/--until` filter on (default the partition column; None: the whole table)."""

    partition_by: str | None = None
    range_on: str | None = None

    @property
    def range_expression(self) -> str | None:
        return self.range_on or self.partition_by


# Every projected table (services.ledger.schema.PROJECTED_TABLES; a unit test keeps them equal).
# Session tables are partitioned by their session column; trade_updates (timestamps) and the meta
# tables are not. A date range filters trade_updates on the UTC day of `ts`; meta tables are whole.
EXPORT_TABLES: dict[str, TableSpec] = {
    "candles_daily": TableSpec(partition_by="date"),
    "option_snapshots": TableSpec(partition_by="snapshot_date"),
    "options_bars": TableSpec(partition_by="date"),
    "options_flow": TableSpec(partition_by="to_date"),
    "derived_daily": TableSpec(partition_by="session_date"),
    "briefings": TableSpec(partition_by="as_of"),
    "trade_updates": TableSpec(range_on="CAST(ts AS DATE)"),
    "meta.ingestion_runs": TableSpec(),
    "meta.ingestion_run_assets": TableSpec(),
    "meta.asset_watermarks": TableSpec(),
    "meta.asset_checks": TableSpec(),
    "meta.forgotten_symbols": TableSpec(),
    "meta.notifications": TableSpec(),
}


class ExportRefused(ValueError):
    """The request names no table we export, or a range that is empty; one line, kind `malformed`."""


@dataclass(frozen=True)
class _Plan:
    """One table of an export: the ledger's own SQL for it."""

    name: str
    spec: TableSpec
    where: str
    params: list[Any]

    @property
    def select(self) -> str:
        order = f" ORDER BY {self.spec.partition_by}" if self.spec.partition_by else ""
        return f"SELECT * FROM {self.name}{self.where}{order}"


def _setting(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SystemExit(f"ledger: {name}={raw!r} must be a positive number")
    return value


def plan(request: ExportRequest) -> list[_Plan]:
    """The tables asked for (all when none), in the order asked, with their filters; ExportRefused otherwise."""
    names = list(EXPORT_TABLES) if not request.tables else list(dict.fromkeys(request.tables))
    unknown = [name for name in names if name not in EXPORT_TABLES]
    if unknown:
        raise ExportRefused(
            f"cannot export {', '.join(repr(n) for n in unknown)}: the tables are {', '.join(EXPORT_TABLES)}"
        )
    if request.since and request.until and request.since > request.until:
        raise ExportRefused(f"the range starts ({request.since}) after it ends ({request.until})")
    plans = []
    for name in names:
        spec = EXPORT_TABLES[name]
        clauses: list[str] = []
        params: list[Any] = []
        expression = spec.range_expression
        if expression is not None:
            for bound, operator in ((request.since, ">="), (request.until, "<=")):
                if bound is not None:
                    clauses.append(f"{expression} {operator} ?")
                    params.append(bound)
        plans.append(_Plan(name, spec, f" WHERE {' AND '.join(clauses)}" if clauses else "", params))
    return plans


class _Session:
    """One open export: its cursor in a read-only transaction, and where it is in its tables."""

    def __init__(self, export_id: str, cursor: duckdb.DuckDBPyConnection, plans: list[_Plan], page_bytes: int) -> None:
        self.id = export_id
        self.page_bytes = page_bytes
        self.cursor = cursor
        self.plans = plans
        self.index = 0
        self.reader: pa.RecordBatchReader | None = None
        self.lock = threading.Lock()
        self.last_used = time.monotonic()

    def describe(self) -> ExportOpened:
        """The seq of this snapshot and each table's schema, partition column and row counts (same snapshot)."""
        [(seq,)] = self.cursor.execute(
            "SELECT seq FROM ledger.offsets WHERE projection = 'warehouse'"
        ).fetchall()
        tables = []
        for item in self.plans:
            schema = self.cursor.sql(f"SELECT * FROM {item.name} LIMIT 0").to_arrow_table().schema
            column = item.spec.partition_by
            if column:
                rows = self.cursor.execute(
                    f"SELECT CAST({column} AS VARCHAR), count(*) FROM {item.name}{item.where} GROUP BY 1 ORDER BY 1",
                    item.params,
                ).fetchall()
                partitions = {str(key): int(count) for key, count in rows}
                total = sum(partitions.values())
            else:
                [(total,)] = self.cursor.execute(f"SELECT count(*) FROM {item.name}{item.where}", item.params).fetchall()
                partitions = {}
            tables.append(ExportTable(
                name=item.name, partition_by=column, ranged=bool(item.where), rows=int(total),
                partitions=partitions, schema=schema.serialize().to_pybytes(),
            ))
        return ExportOpened(export_id=self.id, seq=int(seq), tables=tables)

    def next_page(self) -> list[bytes]:
        """The next page's frames: ExportPage, then the Arrow IPC stream of its batches (if any)."""
        batches: list[pa.RecordBatch] = []
        size = 0
        table = ""
        schema: pa.Schema | None = None
        while self.index < len(self.plans):
            item = self.plans[self.index]
            if self.reader is None:
                self.reader = self.cursor.sql(item.select, params=item.params or None).to_arrow_reader(BATCH_ROWS)
            try:
                batch = self.reader.read_next_batch()
            except StopIteration:
                self.reader.close()
                self.reader = None
                self.index += 1
                if batches:
                    break
                continue
            if batch.num_rows == 0:
                continue
            table, schema = item.name, self.reader.schema
            batches.append(batch)
            size += batch.nbytes
            if size >= self.page_bytes:
                break
        done = self.index >= len(self.plans)
        header = encode(ExportPage(table=table, rows=sum(b.num_rows for b in batches), done=done))
        if not batches:
            return [header]
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        return [header, sink.getvalue().to_pybytes()]

    def close(self) -> None:
        try:
            if self.reader is not None:
                self.reader.close()
        except Exception:  # a reader broken by an interrupt: the cursor's close ends it anyway
            pass
        self.reader = None
        try:
            self.cursor.execute("ROLLBACK")
        except duckdb.Error:
            pass
        self.cursor.close()


class Exports:
    """The open exports. `open`, `fetch` and `close` run on query pool threads; `expire` and `close_all`
    on the control thread (they skip, or wait for, nothing: a session busy on a pool thread is left alone)."""

    def __init__(self, open_cursor: Callable[[], duckdb.DuckDBPyConnection], interrupter: Interrupter,
                 count: Callable[[str], None]) -> None:
        self._open_cursor = open_cursor
        self._interrupter = interrupter
        self._count = count
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()  # why an export ended, for a late fetch
        self.page_bytes = int(_setting("OH_EXPORT_PAGE_BYTES", PAGE_BYTES))
        self.idle_seconds = _setting("OH_EXPORT_IDLE_SECONDS", IDLE_SECONDS)

    # -- pool threads ----------------------------------------------------------------------------
    def open(self, request: ExportRequest, deadline: float, budget: float) -> list[bytes]:
        """Open an export and describe it, or an ErrorReply."""
        try:
            plans = plan(request)
        except ExportRefused as exc:
            self._count("exports_refused")
            return [encode(ErrorReply(str(exc), kind="malformed"))]
        with self._lock:
            if len(self._sessions) >= MAX_EXPORTS:
                self._count("exports_busy")
                return [encode(ErrorReply(
                    f"the ledger has {MAX_EXPORTS} exports open already; try again when one has finished", kind="busy"
                ))]
            session = _Session(secrets.token_hex(16), self._open_cursor(), plans, self.page_bytes)
            self._sessions[session.id] = session
        with session.lock:
            frames = self._guarded(session, deadline, budget, lambda: [encode(session.describe())],
                                   first="BEGIN TRANSACTION READ ONLY")
        if frames and frames[0] and session.id in self._sessions:
            self._count("exports")
        return frames

    def fetch(self, export_id: str, deadline: float, budget: float) -> list[bytes]:
        """The next page of an open export, or an ErrorReply saying why there is none."""
        session = self._session(export_id)
        if isinstance(session, list):
            return session
        with session.lock:
            if export_id not in self._sessions:
                return self._unknown(export_id)
            frames = self._guarded(session, deadline, budget, session.next_page)
            session.last_used = time.monotonic()
            if session.index >= len(session.plans) and export_id in self._sessions:
                self._end(session, "finished")
        return frames

    def close(self, export_id: str) -> list[bytes]:
        """End an export early (or again: harmless)."""
        session = self._session(export_id)
        if not isinstance(session, list):
            with session.lock:
                if export_id in self._sessions:
                    self._end(session, "closed by its client")
        return [encode(ExportClosed(export_id=export_id))]

    # -- the control thread ----------------------------------------------------------------------
    def expire(self) -> None:
        """Close the exports nobody fetched from for `idle_seconds` (their transactions end)."""
        idle = self.idle_seconds
        now = time.monotonic()
        with self._lock:
            stale = [s for s in self._sessions.values() if now - s.last_used >= idle]
        for session in stale:
            if session.lock.acquire(blocking=False):
                try:
                    if session.id in self._sessions and time.monotonic() - session.last_used >= idle:
                        log.info("closing export %s: not fetched from for %.0fs", session.id, idle)
                        self._end(session, f"not fetched from for {idle:g}s, so the ledger closed it")
                finally:
                    session.lock.release()

    def close_all(self, reason: str) -> None:
        """Close every export that is not busy (call with the query pool paused or stopped: none is)."""
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            if session.lock.acquire(timeout=5):
                try:
                    if session.id in self._sessions:
                        self._end(session, reason)
                finally:
                    session.lock.release()

    def open_count(self) -> int:
        with self._lock:
            return len(self._sessions)

    # -- helpers ---------------------------------------------------------------------------------
    def _session(self, export_id: str) -> _Session | list[bytes]:
        with self._lock:
            session = self._sessions.get(export_id)
        return session if session is not None else self._unknown(export_id)

    def _unknown(self, export_id: str) -> list[bytes]:
        with self._lock:
            reason = self._ended.get(export_id)
        if reason is None:
            return [encode(ErrorReply("no such export: it was never opened, or ended long ago", kind="malformed"))]
        return [encode(ErrorReply(f"the export has ended: {reason}; run it again", kind="interrupted"))]

    def _end(self, session: _Session, reason: str) -> None:
        """Forget and close `session` (its lock held by the caller)."""
        with self._lock:
            self._sessions.pop(session.id, None)
            self._ended[session.id] = reason
            while len(self._ended) > REMEMBERED_ENDINGS:
                self._ended.popitem(last=False)
        session.close()

    def _guarded(self, session: _Session, deadline: float, budget: float, work: Callable[[], list[bytes]],
                 first: str | None = None) -> list[bytes]:
        """Run `work` on the session's cursor within the deadline; on any failure end the export and say why."""
        if deadline <= time.monotonic():
            self._end(session, "it waited for a query thread past its time budget")
            return [encode(ErrorReply("the export waited for a free query thread past its time budget; try again",
                                      kind="timeout"))]
        ticket: Ticket = self._interrupter.register(session.cursor, deadline, budget)
        try:
            if first is not None:
                session.cursor.execute(first)
            return work()
        except Exception as exc:
            failed = classify(exc, ticket) if isinstance(exc, duckdb.Error | pa.ArrowException | OSError) else (
                QueryFailed(f"{type(exc).__name__}: {exc}", "error"))
            if failed.kind == "timeout":
                failed = QueryFailed(
                    f"a page of the export ran past its time budget of {budget:g}s and was stopped "
                    "(OH_QUERY_BUDGET_SECONDS sets it)", "timeout")
            if failed.kind == "error":
                log.exception("export %s failed", session.id)
            self._count(f"exports_{failed.kind}")
            self._interrupter.release(ticket)
            self._end(session, str(failed))
            return [encode(ErrorReply(str(failed), kind=failed.kind))]
        finally:
            self._interrupter.release(ticket)
