"""Stored option chains read back through the ledger, for the jobs that compute on them (flow, derived).

`load_chains` reads one symbol; `load_chains_many` reads a group of symbols in one query with the same
answer for each (a symbol's rows, columns and order are exactly what `load_chains` gives it, or only the
columns a job asks for, in the same rows and order), so a job over thousands of symbols costs a few
reads, not one per symbol: each read through the ledger has a fixed cost (a sandboxed read-only
transaction) that dwarfs a small symbol's rows. `read_plan` says
which symbols and sessions each read covers, keeping every job's partition order (symbol by symbol,
oldest session first).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from oh.read.quotes import CHAIN_COLUMNS, chain_select
from services.pipeline import Read

_CHAINS_SQL = f"""
SELECT {chain_select()}
FROM option_snapshots WHERE underlying = ? AND snapshot_date <= ? AND snapshot_date >= coalesce((
    SELECT min(snapshot_date) FROM (
        SELECT DISTINCT snapshot_date FROM option_snapshots WHERE underlying = ? AND snapshot_date < ?
        ORDER BY snapshot_date DESC LIMIT ?)), ?)
ORDER BY snapshot_date, contract_symbol
"""
# The same (or fewer columns: `{columns}`, select expressions of CHAIN_COLUMNS) for each of a list of symbols:
# per symbol, the `before` latest sessions stored before `first` (a window over its distinct sessions instead
# of ORDER BY ... LIMIT), then sorted by symbol.
_MANY_CHAINS_SQL = """
WITH wanted AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS underlying),
earlier AS (
    SELECT underlying, min(snapshot_date) AS since FROM (
        SELECT underlying, snapshot_date FROM (
            SELECT DISTINCT s.underlying, s.snapshot_date FROM option_snapshots s SEMI JOIN wanted w USING (underlying)
            WHERE s.snapshot_date < ?)
        QUALIFY row_number() OVER (PARTITION BY underlying ORDER BY snapshot_date DESC) <= ?)
    GROUP BY underlying)
SELECT {columns}
FROM option_snapshots s SEMI JOIN wanted w USING (underlying) LEFT JOIN earlier e USING (underlying)
WHERE s.snapshot_date <= ? AND s.snapshot_date >= coalesce(e.since, ?)
ORDER BY s.underlying, s.snapshot_date, s.contract_symbol
"""
# The same with no session before `first` (before = 0): without the window over every earlier session, which
# costs more than the read itself (2-3x over a symbol's history; a derived backfill reads 13 such chunks).
_MANY_CHAINS_IN_RANGE_SQL = """
WITH wanted AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS underlying)
SELECT {columns}
FROM option_snapshots s SEMI JOIN wanted w USING (underlying)
WHERE s.snapshot_date <= ? AND s.snapshot_date >= ?
ORDER BY s.underlying, s.snapshot_date, s.contract_symbol
"""
CHUNK_SESSIONS = 20  # sessions of one symbol's chains read at once, for a long range
SYMBOL_SESSIONS_PER_READ = 400  # symbol-sessions of chains per read for a short range (~115k contracts): well inside
# the ledger's query budget (OH_QUERY_BUDGET_SECONDS, 10 s) on a loaded box, and still a read per 200-400 symbols


def split_sorted(table: pa.Table, key: str) -> dict[Any, pa.Table]:
    """A table sorted by `key`, sliced per value (zero-copy), keyed by the value as Python gives it.

    The boundaries are found by Arrow's compute kernels on the column as it is: converting a string
    column to numpy would import pandas (pyarrow's conversion path), a fixed cost of a few hundred ms.
    """
    if not table.num_rows:
        return {}
    column = table.column(key).combine_chunks()
    changed = pc.not_equal(column.slice(1), column.slice(0, len(column) - 1))
    starts = [0, *(pc.indices_nonzero(changed).to_numpy() + 1).tolist()]
    ends = [*starts[1:], len(column)]
    return {column[s].as_py(): table.slice(s, e - s) for s, e in zip(starts, ends, strict=True)}


def load_chains(read: Read, symbol: str, first: date, last: date, before: int = 0) -> dict[date, pa.Table]:
    """The stored chains of `symbol` on the sessions in [first, last] and on the `before` sessions before
    `first` (never after `last`), by session, in one read."""
    return split_sorted(read(_CHAINS_SQL, [symbol, last, symbol, first, before, first]), "snapshot_date")


def load_chains_many(read: Read, symbols: list[str], first: date, last: date, before: int = 0,
                     columns: Sequence[str] = CHAIN_COLUMNS) -> dict[str, dict[date, pa.Table]]:
    """`load_chains` for each of `symbols` in one read: {symbol: {session: chain}} (a symbol with nothing
    stored is absent). Each symbol's chains are slices of one result, equal to what `load_chains` returns.

    `columns` (names of CHAIN_COLUMNS, in the order wanted; `underlying` and `snapshot_date` are always
    read) narrows the read to what a job uses: the chains' rows and order stay the same, and the bytes
    the ledger serializes and sends shrink (derived reads 12 of the 19 columns, no contract symbols).
    """
    unknown = sorted(set(columns) - set(CHAIN_COLUMNS))
    if unknown:
        raise ValueError(f"not a column of a stored chain: {', '.join(unknown)}")
    if not symbols:
        return {}
    wanted = [name for name in ("underlying", "snapshot_date") if name not in columns] + list(columns)
    select = chain_select(wanted, table="s")
    if before > 0:
        table: pa.Table = read(_MANY_CHAINS_SQL.format(columns=select), [symbols, first, before, last, first])
    else:
        table = read(_MANY_CHAINS_IN_RANGE_SQL.format(columns=select), [symbols, last, first])
    return {symbol: split_sorted(rows, "snapshot_date") for symbol, rows in split_sorted(table, "underlying").items()}


def in_chunks(days: list[date], size: int) -> list[list[date]]:
    """`days` (oldest first) in consecutive chunks of at most `size`, so a long range is read a piece at a time."""
    return [days[i:i + size] for i in range(0, len(days), size)]


def read_plan(symbols: list[str], days: list[date], extra: int = 0) -> Iterator[tuple[list[str], list[list[date]]]]:
    """The reads of a job over `symbols` x `days` (with `extra` more sessions per symbol read before the first):
    (a group of symbols, its session chunks), in the order the job goes through its partitions.

    A short range (at most CHUNK_SESSIONS sessions: the daily, a week) reads groups of symbols, all
    sessions at once, SYMBOL_SESSIONS_PER_READ symbol-sessions per read; a long range (a backfill) reads
    one symbol at a time, CHUNK_SESSIONS sessions per read, as before.
    """
    if len(days) > CHUNK_SESSIONS:
        for symbol in symbols:
            yield [symbol], in_chunks(days, CHUNK_SESSIONS)
        return
    per_read = max(1, SYMBOL_SESSIONS_PER_READ // (len(days) + extra))
    for start in range(0, len(symbols), per_read):
        yield symbols[start:start + per_read], [days] if days else []
