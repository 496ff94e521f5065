"""The simulated market: deterministic, NYSE sessions only, sane OHLC, clear errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import rows
from oh.adapters.base import UnknownSymbol
from oh.adapters.registry import get_provider
from oh.adapters.sim.market import DEFAULT_SEED, spot_path, symbol_seed
from oh.adapters.sim.provider import SimProvider
from oh.adapters.sim.universe import universe


def _ohlc_ok(table: pa.Table, positive: bool = True) -> None:
    o, h, lo, c, v = (table.column(n).to_numpy() for n in ("open", "high", "low", "close", "volume"))
    assert (lo > 0).all() if positive else (lo >= 0).all(), "non-positive low"
    assert (lo <= np.minimum(o, c)).all()
    assert (np.minimum(o, c) <= np.maximum(o, c)).all()
    assert (np.maximum(o, c) <= h).all()
    assert (v > 0).all()


def test_same_numbers_for_overlapping_ranges() -> None:
    """A day's candle does not depend on the requested range: overlapping requests agree on the overlap."""
    sim = SimProvider()
    year = sim.daily_candles("AAPL", date(2025, 1, 1), date(2025, 12, 31))
    march = sim.daily_candles("AAPL", date(2025, 3, 1), date(2025, 3, 31))
    later = sim.daily_candles("AAPL", date(2025, 3, 15), date(2026, 2, 1))
    by_date = {r["date"]: r for r in year.to_pylist()}
    for table in (march, later):
        for row in table.to_pylist():
            if row["date"] in by_date:
                assert row == by_date[row["date"]]
    assert march.num_rows > 15


def test_same_numbers_across_instances_and_the_registry() -> None:
    """Two providers (and get_provider('sim')) give identical tables: the market is seeded, not random."""
    a = SimProvider().daily_candles("MSFT", date(2024, 6, 1), date(2025, 6, 1))
    b = SimProvider().daily_candles("MSFT", date(2024, 6, 1), date(2025, 6, 1))
    c = get_provider("sim").daily_candles("MSFT", date(2024, 6, 1), date(2025, 6, 1))
    assert a.equals(b) and a.equals(c)


def test_seeds_are_stable_and_differ_per_symbol_and_market() -> None:
    """Seeds come from a hash that does not change per process, and differ per symbol and per market seed."""
    assert symbol_seed("AAPL") == symbol_seed("AAPL")
    assert symbol_seed("AAPL") != symbol_seed("MSFT")
    assert symbol_seed("AAPL", 1) != symbol_seed("AAPL", 2)
    a = SimProvider().daily_candles("AAPL", date(2025, 1, 1), date(2025, 1, 31)).column("close")
    m = SimProvider().daily_candles("MSFT", date(2025, 1, 1), date(2025, 1, 31)).column("close")
    other_market = SimProvider(market_seed=7).daily_candles("AAPL", date(2025, 1, 1), date(2025, 1, 31)).column("close")
    assert not a.equals(m)
    assert not a.equals(other_market)


def test_only_nyse_sessions_in_2025() -> None:
    """2025 has 250 NYSE sessions: no weekends, no holidays (July 4, Thanksgiving, the Jan 9 day of mourning),
    dates ascending and unique."""
    table = SimProvider().daily_candles("SPY", date(2025, 1, 1), date(2025, 12, 31))
    days = table.column("date").to_pylist()
    assert len(days) == 250
    assert days == sorted(set(days))
    assert all(d.weekday() < 5 for d in days)
    for holiday in (date(2025, 1, 1), date(2025, 1, 9), date(2025, 1, 20), date(2025, 4, 18), date(2025, 7, 4),
                    date(2025, 11, 27), date(2025, 12, 25)):
        assert holiday not in days
    assert days[0] == date(2025, 1, 2) and days[-1] == date(2025, 12, 31)
    assert set(table.column("symbol").to_pylist()) == {"SPY"}


def test_range_bounds_are_inclusive() -> None:
    """A one-day range on a session returns that day."""
    table = SimProvider().daily_candles("SPY", date(2025, 7, 3), date(2025, 7, 3))
    assert table.column("date").to_pylist() == [date(2025, 7, 3)]


@pytest.mark.parametrize(
    ("start", "end"),
    [(date(2025, 7, 5), date(2025, 7, 6)), (date(2025, 7, 4), date(2025, 7, 4)), (date(2025, 3, 10), date(2025, 3, 9))],
    ids=["weekend", "holiday", "inverted"],
)
def test_range_without_sessions_gives_an_empty_table_with_the_schema(start: date, end: date) -> None:
    """No session in the range: zero rows, still the contracts.rows.CANDLES schema (so it can be sent as is)."""
    table = SimProvider().daily_candles("AAPL", start, end)
    assert table.num_rows == 0
    assert table.schema.equals(rows.CANDLES)


def test_schema_is_the_contract() -> None:
    """The provider's tables carry exactly the CANDLES schema the ledger validates against."""
    table = SimProvider().daily_candles("AAPL", date(2025, 1, 1), date(2025, 1, 10))
    assert table.schema.equals(rows.CANDLES)


@pytest.mark.parametrize("symbol", ["ZZ", "ZZZZ", "ZZTOP", "AAPLL", "MSFTT", "S1000", "S00001"])
def test_unknown_symbol_raises(symbol: str) -> None:
    """Symbols outside the sim universe (typos included) do not exist in the sim market; the error names them."""
    with pytest.raises(UnknownSymbol, match=symbol):
        SimProvider().daily_candles(symbol, date(2025, 1, 1), date(2025, 1, 31))


@pytest.mark.parametrize("symbol", ["AAPL", "MSFT", "SPY", "QQQ", "BRK.B", "F", "TSLA", "NVDA"])
def test_ohlc_sanity_over_two_years(symbol: str) -> None:
    """low <= min(open, close) <= max(open, close) <= high, prices positive, volume positive, every day."""
    _ohlc_ok(SimProvider().daily_candles(symbol, date(2024, 1, 1), date(2025, 12, 31)))


LATER = SimProvider(clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))  # a clock past every range drawn below


@settings(max_examples=60, deadline=None)
@given(
    symbol=st.sampled_from(universe()),
    start=st.dates(min_value=date(2015, 1, 1), max_value=date(2028, 12, 31)),
    days=st.integers(min_value=0, max_value=400),
)
def test_ohlc_sanity_for_any_symbol_and_recent_range(symbol: str, start: date, days: int) -> None:
    """Any listed symbol over any range of a decade and more has ordered OHLC and positive volume on sessions only
    (judged by a clock after the range: the paths themselves exist for every session of the calendar)."""
    table = LATER.daily_candles(symbol, start, start + timedelta(days=days))
    _ohlc_ok(table, positive=True)
    assert all(start <= d <= start + timedelta(days=days) and d.weekday() < 5 for d in table.column("date").to_pylist())


def test_prices_stay_positive_for_every_symbol() -> None:
    """Every price of a path is positive: XQC's path (a name the sim does not list, but the path generator serves
    any) decays below 0.00005 in 2021, which would round to 0.0 without the floor."""
    from oh.domain import calendar

    days = calendar.sessions(date(2021, 1, 1), date(2021, 12, 31))
    lo = calendar.session_index(date(2021, 1, 1))
    columns = [column[lo : lo + len(days)] for column in spot_path("XQC", DEFAULT_SEED)]
    _ohlc_ok(pa.table(dict(zip(("open", "high", "low", "close", "volume"), columns, strict=True))))
