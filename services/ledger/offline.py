"""The ledger's offline tools: the one module outside the ledger's process that opens the warehouse.

When no ledger runs, the CLI may still read the warehouse, create it, rebuild it from the journal,
or read what it committed (to check and repair the journal). Every other reader goes through the
ledger's query endpoint.

Reading offline is sandboxed exactly like the endpoint: the file is opened `read_only=True` by
`warehouse.connect` (external access off, configuration locked) and each query runs under the same
contract (sandbox.py): a fresh cursor in a READ ONLY transaction, the friendly check, a time budget
enforced by interrupting the query from a timer thread, and the row and byte caps.

Errors are OfflineError with a one-line message; `refused` says the query itself was refused (not a
failure of the warehouse).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bus.home import Home
from bus.journal import Journal, JournalCorrupt
from bus.journal_lock import JournalLock, JournalLocked
from bus.query_limits import QueryLimits
from services.ledger import schema
from services.ledger.sandbox import Interrupter, QueryFailed, run_read_only
from services.ledger.warehouse import Warehouse, WarehouseAhead, connect

Read = Callable[[str, list[Any] | None], pa.Table]


class OfflineError(RuntimeError):
    """The warehouse could not be opened or the query failed; `refused` when the query was refused, `locked` when
    another process (a ledger) holds the file."""

    def __init__(self, message: str, refused: bool = False, locked: bool = False) -> None:
        super().__init__(message)
        self.refused = refused
        self.locked = locked


class OfflineReader:
    """Sandboxed read-only queries on a warehouse file, one at a time."""

    def __init__(self, path: Path, limits: QueryLimits | None = None) -> None:
        self.limits = limits or QueryLimits.from_env()
        self._con = connect(path, read_only=True)
        self._interrupter = Interrupter()
        self._interrupter.start()

    def query(self, sql: str, params: list[Any] | None = None, budget: float | None = None) -> pa.Table:
        """Run one read statement; raise sandbox.QueryFailed (one line, with a kind) if it does not answer."""
        seconds = self.limits.budget if budget is None else min(budget, self.limits.budget)
        return run_read_only(
            self._con.cursor, sql, params, self.limits, time.monotonic() + seconds, self._interrupter, seconds
        )

    def stored_version(self) -> int | None:
        """The schema version the file says it has (None: written before versions were stored)."""
        return schema.stored_version(self._con)

    def close(self) -> None:
        """Stop the timer thread and close the file."""
        self._interrupter.stop()
        self._con.close()


def open_sandboxed(path: Path, limits: QueryLimits | None = None) -> OfflineReader:
    """Open the warehouse at `path` read-only for sandboxed queries (limits from OH_QUERY_* by default)."""
    return OfflineReader(path, limits)


@contextmanager
def reader(home: Home) -> Iterator[Read]:
    """Yield `read(sql, params)` on the warehouse opened read-only, each query sandboxed (OfflineError on failure)."""
    if not home.warehouse.exists():
        raise OfflineError(f"no warehouse at {home.warehouse}: run `oh db init` or `oh up`")
    try:
        offline = open_sandboxed(home.warehouse)
    except duckdb.IOException as exc:
        raise OfflineError("the warehouse is locked by a ledger that does not answer; check `oh status`",
                           locked="lock" in str(exc).lower()) from None
    except ValueError as exc:  # a malformed OH_QUERY_* setting
        raise OfflineError(str(exc), refused=True) from None
    found = offline.stored_version()
    if found is not None and found != schema.SCHEMA_VERSION:
        offline.close()
        message = schema.too_new if found > schema.SCHEMA_VERSION else schema.too_old
        raise OfflineError(message(home.warehouse, found))

    def read(sql: str, params: list[Any] | None = None) -> pa.Table:
        try:
            return offline.query(sql, params)
        except QueryFailed as exc:
            raise OfflineError(str(exc), refused=exc.kind == "refused") from None

    try:
        yield read
    finally:
        offline.close()


class CommittedRecord:
    """What the warehouse has committed, opened read-only: its offset (`seq`) and what `ledger.events`
    recorded of each event (`event(seq)`: id, type, ts, size), for checking and repairing the journal."""

    def __init__(self, home: Home) -> None:
        self.con: duckdb.DuckDBPyConnection | None = None
        self.seq = 0
        if not home.warehouse.exists():
            return
        try:
            self.con = connect(home.warehouse, read_only=True)
        except duckdb.IOException:
            raise OfflineError(f"the warehouse {home.warehouse} is open read-write by a running ledger") from None
        row = self.con.execute("SELECT seq FROM ledger.offsets WHERE projection = 'warehouse'").fetchone()
        self.seq = int(row[0]) if row else 0

    def event(self, seq: int) -> dict[str, Any] | None:
        """What the warehouse recorded of the event with this seq, or None."""
        if self.con is None:
            return None
        row = self.con.execute("SELECT id, type, ts, bytes FROM ledger.events WHERE seq = ?", [seq]).fetchone()
        if row is None:
            return None
        return {"seq": seq, "id": row[0], "type": row[1], "ts": row[2], "bytes": row[3], "applied_to_warehouse": True}

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None


def committed_record(home: Home) -> CommittedRecord:
    """The warehouse's committed record, read-only (OfflineError if a ledger holds the file)."""
    return CommittedRecord(home)


def init(home: Home) -> None:
    """Create the warehouse and its tables (safe to repeat)."""
    Warehouse(home.warehouse).close()


def rebuild(home: Home) -> tuple[int, float]:
    """Rebuild the warehouse from the whole journal, holding the journal's lock; (events applied, seconds).

    Refused (OfflineError, the warehouse unchanged) while another process holds the journal, or when
    the journal is damaged or shorter than what the warehouse has committed (`oh journal check`).
    """
    started = time.perf_counter()
    lock = JournalLock(home.ensure().journal, "oh replay --rebuild")
    try:
        lock.acquire()
    except JournalLocked as exc:
        raise OfflineError(f"{exc}: a ledger that does not answer? (`oh status`)") from None
    try:
        warehouse = Warehouse(home.warehouse)
        journal = Journal(home.journal, committed_seq=warehouse.applied_seq, lock=lock)
        try:
            events = warehouse.rebuild(journal)
        except (WarehouseAhead, JournalCorrupt) as exc:
            raise OfflineError(f"not rebuilt, the warehouse is unchanged: {exc}; see `oh journal check`") from None
        finally:
            warehouse.close()
            journal.close()
    finally:
        lock.release()
    return events, time.perf_counter() - started
