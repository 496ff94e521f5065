"""The latest stored quotes, read through a `read(sql, params) -> pa.Table` callable (no connection of its own).

`oh portfolio analyze` passes `oh.cli.data.reader` (the ledger, or the warehouse file read-only when it
is down), the briefing worker passes `Worker.query`, the dashboard its query client: one SQL text for
"the chain of the newest snapshot session on or before D", so they all value a portfolio the same way.

`chains_by_day` / `closes_by_day` answer the same question for many days at once in ONE query each (the
dashboard's performance series values the portfolio at each of the last 20 sessions: 60 chain queries
and their round trips before): the same rows, per day and symbol, as `latest_chains` / `latest_closes`
called day by day (a unit test compares them on one warehouse).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import pyarrow as pa

Read = Callable[[str, list[Any]], pa.Table]

# What a stored chain row holds as every reader gets it, in this order (the stored put_call is read as `right`).
CHAIN_COLUMNS = ("contract_symbol", "underlying", "snapshot_date", "expiry", "right", "strike", "spot", "bid", "ask",
                 "last", "mark", "volume", "open_interest", "iv", "delta", "gamma", "vega", "theta", "rho")


def chain_select(columns: Sequence[str] = CHAIN_COLUMNS, table: str = "") -> str:
    """The SELECT list reading `columns` (names of CHAIN_COLUMNS) of option_snapshots, aliased `table` if given."""
    prefix = f"{table}." if table else ""
    return ", ".join(f'{prefix}put_call AS "right"' if name == "right" else f"{prefix}{name}" for name in columns)


LATEST_CHAIN_SQL = f"""
SELECT {chain_select()}
FROM option_snapshots WHERE underlying = ? AND snapshot_date = (
    SELECT max(snapshot_date) FROM option_snapshots WHERE underlying = ? AND snapshot_date <= ?)
ORDER BY contract_symbol
"""

LATEST_CLOSE_SQL = "SELECT close FROM candles_daily WHERE symbol = ? AND date <= ? ORDER BY date DESC LIMIT 1"

# For each wanted day and symbol: the newest snapshot session on or before the day, then that session's chain
# (the columns of LATEST_CHAIN_SQL after `as_of`, in its order within each day and symbol).
CHAINS_BY_DAY_SQL = f"""
WITH days AS (SELECT DISTINCT unnest(?::DATE[]) AS as_of),
sessions AS (
    SELECT DISTINCT underlying, snapshot_date FROM option_snapshots WHERE underlying IN (SELECT unnest(?::VARCHAR[]))),
picked AS (
    SELECT d.as_of, s.underlying, max(s.snapshot_date) AS snapshot_date
    FROM days d JOIN sessions s ON s.snapshot_date <= d.as_of GROUP BY d.as_of, s.underlying)
SELECT p.as_of, {chain_select(table="o")}
FROM picked p JOIN option_snapshots o ON o.underlying = p.underlying AND o.snapshot_date = p.snapshot_date
ORDER BY p.as_of, o.underlying, o.contract_symbol
"""

# For each wanted day and symbol: the close of its newest candle on or before the day (as LATEST_CLOSE_SQL: the
# newest row, whatever its close).
CLOSES_BY_DAY_SQL = """
WITH days AS (SELECT DISTINCT unnest(?::DATE[]) AS as_of),
ranked AS (
    SELECT d.as_of, c.symbol, c.close, row_number() OVER (PARTITION BY d.as_of, c.symbol ORDER BY c.date DESC) AS n
    FROM days d JOIN candles_daily c ON c.date <= d.as_of WHERE c.symbol IN (SELECT unnest(?::VARCHAR[])))
SELECT as_of, symbol, close FROM ranked WHERE n = 1
"""


def latest_chains(read: Read, symbols: Sequence[str], as_of: date) -> dict[str, pa.Table]:
    """Each symbol's chain of its newest snapshot session on or before `as_of`; absent when it has none."""
    out: dict[str, pa.Table] = {}
    for symbol in symbols:
        table = read(LATEST_CHAIN_SQL, [symbol, symbol, as_of])
        if table.num_rows:
            out[symbol] = table
    return out


def latest_closes(read: Read, symbols: Sequence[str], as_of: date) -> dict[str, float]:
    """Each symbol's last daily close on or before `as_of` (for stock without a chain); absent when none."""
    out: dict[str, float] = {}
    for symbol in symbols:
        table = read(LATEST_CLOSE_SQL, [symbol, as_of])
        if table.num_rows and table.column(0)[0].as_py() is not None:
            out[symbol] = float(table.column(0)[0].as_py())
    return out


def chains_by_day(read: Read, symbols: Sequence[str], days: Sequence[date]) -> dict[date, dict[str, pa.Table]]:
    """`latest_chains(read, symbols, day)` for every day of `days`, in one query: day -> symbol -> chain."""
    out: dict[date, dict[str, pa.Table]] = {day: {} for day in days}
    if not symbols or not days:
        return out
    table = read(CHAINS_BY_DAY_SQL, [sorted(set(days)), sorted(set(symbols))])
    as_of, underlying = table.column("as_of").to_pylist(), table.column("underlying").to_pylist()
    rows = table.drop_columns(["as_of"])
    start = 0
    for end in range(1, len(as_of) + 1):  # rows are sorted by (as_of, underlying): one slice per run
        if end == len(as_of) or (as_of[end], underlying[end]) != (as_of[start], underlying[start]):
            out.setdefault(as_of[start], {})[underlying[start]] = rows.slice(start, end - start)
            start = end
    return out


def closes_by_day(read: Read, symbols: Sequence[str], days: Sequence[date]) -> dict[date, dict[str, float]]:
    """`latest_closes(read, symbols, day)` for every day of `days`, in one query: day -> symbol -> close."""
    out: dict[date, dict[str, float]] = {day: {} for day in days}
    if not symbols or not days:
        return out
    for row in read(CLOSES_BY_DAY_SQL, [sorted(set(days)), sorted(set(symbols))]).to_pylist():
        if row["close"] is not None:
            out.setdefault(row["as_of"], {})[row["symbol"]] = float(row["close"])
    return out
