"""oh.read.quotes: the many-days readers give, day by day, exactly what the one-day readers give.

The dashboard's performance series reads every session's chains in one query (`chains_by_day`,
`closes_by_day`) where `oh portfolio analyze` and the briefing read one day (`latest_chains`,
`latest_closes`); the portfolio must be valued the same way by all of them, so these tests compare
the two on one warehouse (the real DDL, in memory) with the cases that matter: a symbol without a
snapshot on a day (the newest earlier one is used), a day before any snapshot, a symbol with candles
but no chain, an unknown symbol, a weekend day, days given out of order and twice.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from oh.read.quotes import chains_by_day, closes_by_day, latest_chains, latest_closes
from services.ledger.schema import create_schema

FIRST = date(2026, 3, 2)  # a Monday


def _snapshot_rows(underlying: str, day: date, spot: float) -> list[tuple[Any, ...]]:
    rows = []
    for k, strike in enumerate((spot - 10, spot, spot + 10)):
        for right in ("C", "P"):
            expiry = day + timedelta(days=30)
            symbol = f"{underlying}{expiry:%y%m%d}{right}{int(strike * 1000):08d}"
            rows.append((underlying, day, symbol, expiry, right, strike, spot, 1.0 + k, 1.2 + k, 1.1 + k, 1.1 + k,
                         10 * k, 100 + k, 0.2 + 0.01 * k, 0.5, 0.01, 0.1, -0.05, 0.02, "sim"))
    return rows


@pytest.fixture
def read() -> Any:
    """A `read(sql, params) -> pa.Table` over an in-memory warehouse: SPY snapshotted every weekday of two
    weeks, AAPL only on the Mondays and Wednesdays, MSFT only candles (every weekday, closes rising)."""
    con = duckdb.connect(":memory:")
    create_schema(con)
    days = [FIRST + timedelta(days=i) for i in range(12) if (FIRST + timedelta(days=i)).weekday() < 5]
    for i, day in enumerate(days):
        con.executemany("INSERT INTO option_snapshots VALUES (" + ", ".join(["?"] * 20) + ")",
                        _snapshot_rows("SPY", day, 500.0 + i))
        if day.weekday() in (0, 2):
            con.executemany("INSERT INTO option_snapshots VALUES (" + ", ".join(["?"] * 20) + ")",
                            _snapshot_rows("AAPL", day, 200.0 + i))
        con.execute("INSERT INTO candles_daily VALUES ('MSFT', ?, 1, 1, 1, ?, 10, 'sim')", [day, 400.0 + i])
    yield lambda sql, params: con.sql(sql, params=params).to_arrow_table()
    con.close()


WANTED = [FIRST + timedelta(days=9), FIRST - timedelta(days=1), FIRST + timedelta(days=1), FIRST + timedelta(days=5),
          FIRST, FIRST + timedelta(days=3), FIRST + timedelta(days=1)]  # out of order, a weekend, before all, twice
SYMBOLS = ["SPY", "AAPL", "MSFT", "NOPE"]


def test_chains_by_day_equal_latest_chains_day_by_day(read: Any) -> None:
    """Each day's chains (which symbols, which session, every row and column in order) are the one-day reader's."""
    many = chains_by_day(read, SYMBOLS, WANTED)
    assert set(many) == set(WANTED)
    for day in WANTED:
        one = latest_chains(read, SYMBOLS, day)
        assert sorted(many[day]) == sorted(one), day
        for symbol, table in one.items():
            assert many[day][symbol].schema == table.schema
            assert many[day][symbol].equals(table), (day, symbol)
    assert many[FIRST - timedelta(days=1)] == {}  # before any snapshot: no chain at all
    tuesday = many[FIRST + timedelta(days=1)]
    assert set(tuesday) == {"SPY", "AAPL"}
    assert tuesday["AAPL"].column("snapshot_date")[0].as_py() == FIRST  # Monday's, the newest on or before Tuesday


def test_closes_by_day_equal_latest_closes_day_by_day(read: Any) -> None:
    """Each day's closes are the one-day reader's (the newest candle on or before the day; none before any)."""
    many = closes_by_day(read, SYMBOLS, WANTED)
    for day in WANTED:
        assert many[day] == latest_closes(read, SYMBOLS, day), day
    assert many[FIRST + timedelta(days=5)] == {"MSFT": 404.0}  # Saturday: Friday's close


def test_nothing_wanted_reads_nothing() -> None:
    """No symbols or no days: empty answers, and no query is sent."""

    def refuse(sql: str, params: list[Any]) -> pa.Table:
        raise AssertionError("no query expected")

    assert chains_by_day(refuse, [], [FIRST]) == {FIRST: {}}
    assert closes_by_day(refuse, ["SPY"], []) == {}
