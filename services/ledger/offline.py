"""The ledger's offline tools: the one module outside the ledger's process that opens the warehouse.

When no ledger runs, the CLI may still read the warehouse (the file opened read-only, so a
ledger that starts meanwhile is not blocked for long), create it, or rebuild it from the journal.
Every other reader goes through the ledger's query endpoint. Errors are OfflineError with a
one-line message; `refused` says the query itself was refused (not a failure of the warehouse).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import duckdb

from bus.home import Home
from bus.journal import Journal
from services.ledger import schema
from services.ledger.readonly import QueryRefused, check_read_only
from services.ledger.warehouse import Warehouse, connect

if TYPE_CHECKING:
    import pyarrow as pa

Read = Callable[[str, list[Any] | None], "pa.Table"]


class OfflineError(RuntimeError):
    """The warehouse could not be opened or the query failed; `refused` when the query was refused."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@contextmanager
def reader(home: Home) -> Iterator[Read]:
    """Yield `read(sql, params)` on the warehouse opened read-only; only read statements pass."""
    if not home.warehouse.exists():
        raise OfflineError(f"no warehouse at {home.warehouse}: run `oh db init` or `oh up`")
    try:
        con = connect(home.warehouse, read_only=True)
    except duckdb.IOException:
        raise OfflineError("the warehouse is locked by a ledger that does not answer; check `oh status`") from None
    found = schema.stored_version(con)
    if found is not None and found != schema.SCHEMA_VERSION:
        con.close()
        message = schema.too_new if found > schema.SCHEMA_VERSION else schema.too_old
        raise OfflineError(message(home.warehouse, found))

    def read(sql: str, params: list[Any] | None = None) -> pa.Table:
        try:
            check_read_only(con, sql)
            return con.sql(sql, params=params).to_arrow_table()
        except QueryRefused as exc:
            raise OfflineError(str(exc), refused=True) from None
        except duckdb.Error as exc:
            raise OfflineError(str(exc).splitlines()[0]) from None

    try:
        yield read
    finally:
        con.close()


def init(home: Home) -> None:
    """Create the warehouse and its tables (safe to repeat)."""
    Warehouse(home.warehouse).close()


def rebuild(home: Home) -> tuple[int, float]:
    """Rebuild the warehouse from the whole journal; (events applied, seconds)."""
    started = time.perf_counter()
    journal = Journal(home.ensure().journal)
    warehouse = Warehouse(home.warehouse)
    try:
        events = warehouse.rebuild(journal)
    finally:
        warehouse.close()
        journal.close()
    return events, time.perf_counter() - started
