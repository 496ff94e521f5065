"""History for the dashboard: read-only SQL through the ledger, cached per query, invalidated by events.

The dashboard never opens the DuckDB file: every query goes to the ledger's query endpoint through
the one `ControlClient`. Results are cached per (SQL, params). Each cache entry remembers which
tables its SQL reads; a committed event drops exactly the entries over the tables that event
changes (`TABLES_OF_EVENT`), so an idle dashboard answers from memory and a busy one re-reads only
what moved. A query whose tables changed while it was in flight is returned but not cached.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from bus.control_client import ControlClient, LedgerUnavailable, QueryError
from bus.home import Home
from contracts import MESSAGE_TYPES, AssetFailed
from contracts.catalog import JOBS, writes_of

__all__ = ["ANY_TABLE", "TABLES_OF_EVENT", "LedgerDown", "Queries", "QueryError", "tables_of"]

ANY_TABLE = "*"  # an entry whose tables are unknown (catalog queries, free SQL): any event drops it
_ASSETS = ("ingestion_run_assets", "asset_watermarks")



def _bare(name: str) -> frozenset[str]:
    """The dashboard's names for what the catalog says an event writes (no schema; asset rows as their two tables)."""
    return frozenset(_ASSETS) if name.startswith("asset:") else frozenset({name.rpartition(".")[2]})


# What each committed event changes in the warehouse (contracts.catalog, as the ledger projects it).
TABLES_OF_EVENT: dict[str, frozenset[str]] = {
    name: frozenset().union(*(_bare(w) for w in writes_of(cls))) if cls is not AssetFailed else frozenset(_ASSETS[:1])
    for name, cls in MESSAGE_TYPES.items()
    if writes_of(cls) or cls is AssetFailed
}
KNOWN_TABLES = frozenset().union(*TABLES_OF_EVENT.values())
LEDGER_TABLES = frozenset({"ledger_events", "ledger_offsets", "ledger_rejected"})  # every journaled message
_NAME = re.compile(r"\b(?:(ledger)\s*\.\s*)?([a-z_][a-z0-9_]*)\b", re.IGNORECASE)


def tables_of(sql: str) -> frozenset[str]:
    """The warehouse tables `sql` names ({ANY_TABLE} when it names none we know, e.g. catalog functions)."""
    found: set[str] = set()
    for schema, name in _NAME.findall(sql):
        name = name.lower()
        if schema:
            found.add(f"ledger_{name}")
        elif name in KNOWN_TABLES:
            found.add(name)
    return frozenset(found) if found else frozenset({ANY_TABLE})


def changed_by(event_type: str) -> frozenset[str]:
    """The tables one committed event of this type may change (all of them for a type we do not know)."""
    known = TABLES_OF_EVENT.get(event_type)
    if known is None and event_type[:1].isupper() and event_type not in _COMMANDS:
        return KNOWN_TABLES | LEDGER_TABLES | {ANY_TABLE}
    return (known or frozenset()) | LEDGER_TABLES | {ANY_TABLE}


_COMMANDS = frozenset(job.command.__name__ for job in JOBS)


class LedgerDown(RuntimeError):
    """The ledger is not answering: nothing can be read until it runs (`oh up`)."""


T = TypeVar("T")


@dataclass
class _Entry:
    table: Any  # a query's pa.Table, or a value computed from query results (Queries.memo)
    tables: frozenset[str]


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _key(sql: str, params: Iterable[Any] | None) -> tuple[str, tuple[Any, ...]]:
    return sql, _freeze(list(params or ()))


class Queries:
    """The dashboard's one query client: serialized requests, an LRU result cache, fast failure when down."""

    def __init__(self, home: Home, timeout: float = 5.0, max_entries: int = 512,
                 client: ControlClient | None = None) -> None:
        self.home = home
        self.endpoint = home.endpoint("control")
        self.max_entries = max_entries
        self._client = client or ControlClient(home, timeout=timeout)
        self._client_lock = threading.Lock()  # one REQ socket: one request at a time
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, tuple[Any, ...]], _Entry] = OrderedDict()
        self._generation: dict[str, int] = {}
        self._epoch = 0  # bumped by clear(): results read before it are never cached
        self._down = False
        self.hits = 0
        self.misses = 0

    # ---------------------------------------------------------------- reading
    def read(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run one read-only statement (cached); raise LedgerDown or QueryError (kind `refused` for a write)."""
        key = _key(sql, params)
        with self._cache_lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return entry.table
            self.misses += 1
            tables = tables_of(sql)
            before = self._generations(tables)
        table = self._query(sql, params)
        with self._cache_lock:
            if self._generations(tables) == before:  # nothing it reads changed while it ran
                self._cache[key] = _Entry(table, tables)
                if len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return table

    def memo(self, key: Any, tables: Iterable[str] | None, compute: Callable[[], T]) -> T:
        """A value computed from query results (a health report, a portfolio's performance series), cached
        like a query and dropped by the same events: those that change one of `tables` (None: any
        committed event). Shared by every session of the server, so a page opened again costs nothing."""
        names = frozenset(tables) if tables is not None else frozenset({ANY_TABLE})
        cache_key = ("memo", _freeze(key))
        with self._cache_lock:
            entry = self._cache.get(cache_key)  # type: ignore[call-overload]
            if entry is not None:
                self._cache.move_to_end(cache_key)  # type: ignore[arg-type]
                self.hits += 1
                return entry.table  # type: ignore[no-any-return]
            self.misses += 1
            before = self._generations(names)
        value = compute()
        with self._cache_lock:
            if self._generations(names) == before:
                self._cache[cache_key] = _Entry(value, names)  # type: ignore[index]
                if len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return value

    def __call__(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """`read` as the `read(sql, params)` callable oh.read.health expects."""
        return self.read(sql, params)

    def _query(self, sql: str, params: list[Any] | None) -> pa.Table:
        if self._down or not self.socket_exists():
            raise LedgerDown(self.down_message())
        with self._client_lock:
            try:
                return self._client.query(sql, params)
            except LedgerUnavailable:
                self._down = True  # fail fast until the live hub hears the ledger again
                raise LedgerDown(self.down_message()) from None

    def socket_exists(self) -> bool:
        """False when the ledger's control socket file is absent (it is not running): no need to wait."""
        return not self.endpoint.startswith("ipc://") or Path(self.endpoint[len("ipc://"):]).exists()

    def down_message(self) -> str:
        """What a page says when the ledger does not answer."""
        return f"The ledger is not running (nothing answers at {self.endpoint})."

    # ---------------------------------------------------------------- invalidation
    def _generations(self, tables: frozenset[str]) -> tuple[int, ...]:
        return (self._epoch, *(self._generation.get(t, 0) for t in sorted(tables)))

    def invalidate(self, event_type: str) -> int:
        """Drop the cached results over the tables a committed `event_type` changes; return how many."""
        changed = changed_by(event_type)
        with self._cache_lock:
            for table in changed:
                self._generation[table] = self._generation.get(table, 0) + 1
            stale = [key for key, entry in self._cache.items() if entry.tables & changed]
            for key in stale:
                del self._cache[key]
        return len(stale)

    def clear(self) -> None:
        """Forget every result (the ledger restarted or rebuilt its warehouse)."""
        with self._cache_lock:
            self._epoch += 1
            self._cache.clear()

    @property
    def is_down(self) -> bool:
        """Whether the ledger is known not to answer (results from before may still be cached)."""
        return self._down or not self.socket_exists()

    def set_up(self, up: bool) -> None:
        """The live hub's verdict on the ledger; while down, queries fail at once instead of timing out."""
        self._down = not up

    @property
    def size(self) -> int:
        """How many results are cached."""
        return len(self._cache)

    def close(self) -> None:
        """Close the socket."""
        with self._client_lock:
            self._client.close()
