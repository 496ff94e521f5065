"""The sim market answers like a real one: only listed symbols, only sessions that have closed."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from oh.adapters.base import SessionNotClosed, UnknownSymbol
from oh.adapters.sim.provider import SimProvider
from oh.adapters.sim.universe import (
    NAMED,
    SYNTHETIC_DEFAULT,
    SYNTHETIC_ENV,
    is_listed,
    synthetic_count,
    synthetic_symbols,
    universe,
)
from oh.adapters.watchlists import DEFAULT_WATCHLIST

REPO = Path(__file__).resolve().parents[2]
FRIDAY_NOON = datetime(2025, 6, 6, 16, 0, tzinfo=UTC)  # 12:00 New York: Friday 2025-06-06 is still trading
FRIDAY_EVENING = datetime(2025, 6, 6, 21, 0, tzinfo=UTC)


def _calls(provider: SimProvider, symbol: str, start: date, end: date) -> list:  # type: ignore[type-arg]
    """Every provider method, asked for `symbol` over [start, end] (one-day methods on `end`)."""
    return [
        lambda: provider.daily_candles(symbol, start, end),
        lambda: provider.option_chain(symbol, end),
        lambda: provider.option_contracts(symbol, end, 30),
        lambda: provider.option_bars(symbol, [], start, end),
    ]


@pytest.mark.parametrize("method", range(4), ids=["candles", "chain", "contracts", "bars"])
@pytest.mark.parametrize(("start", "end"), [(date(2025, 6, 2), date(2025, 6, 6)), (date(2025, 6, 9), date(2025, 6, 13))],
                         ids=["today-still-trading", "next-week"])
def test_a_session_that_has_not_closed_is_refused_by_every_method(method: int, start: date, end: date) -> None:
    """On Friday at noon (the sim's clock), any request reaching Friday or later fails with SessionNotClosed naming
    the last closed session (Thursday); nothing is made up."""
    provider = SimProvider(clock=lambda: FRIDAY_NOON)
    with pytest.raises(SessionNotClosed, match="last closed session is 2025-06-05"):
        _calls(provider, "AAPL", start, end)[method]()


@pytest.mark.parametrize("method", range(4), ids=["candles", "chain", "contracts", "bars"])
def test_a_closed_session_is_served(method: int) -> None:
    """After Friday's close, Friday is served by every method."""
    provider = SimProvider(clock=lambda: FRIDAY_EVENING)
    _calls(provider, "AAPL", date(2025, 6, 2), date(2025, 6, 6))[method]()


def test_the_wall_clock_is_the_default() -> None:
    """With no clock given, the sim refuses the session after the last one that really closed."""
    from oh.domain import calendar

    last = calendar.last_closed_session(calendar.wall_clock())
    after = calendar.all_sessions()[calendar.session_index(last) + 1].astype(date)
    SimProvider().daily_candles("AAPL", last, last)
    with pytest.raises(SessionNotClosed, match=f"last closed session is {last}"):
        SimProvider().daily_candles("AAPL", last, after)


@pytest.mark.parametrize("method", range(4), ids=["candles", "chain", "contracts", "bars"])
@pytest.mark.parametrize("symbol", ["AAPLL", "APPL", "MSFTT", "SPYY", "ZZNOPE", "S1000", "S0999X"])
def test_a_symbol_the_sim_does_not_list_is_unknown_everywhere(method: int, symbol: str) -> None:
    """Typos (and ZZ names, and numbered names past the configured count) are UnknownSymbol from every method,
    as from Alpaca or Yahoo, with the symbol named."""
    provider = SimProvider(clock=lambda: FRIDAY_EVENING)
    with pytest.raises(UnknownSymbol, match=re.escape(symbol)):
        _calls(provider, symbol, date(2025, 6, 2), date(2025, 6, 6))[method]()


def test_the_universe_holds_what_the_project_uses() -> None:
    """The default watchlist, the demo, the live benchmarks' names and the numbered names the benchmarks use
    (S0000..S0199 for candles, S0000..S0049 for the daily chain) are listed; typos of them are not."""
    from bench.live_ticks import SYMBOLS as LIVE_SYMBOLS

    for symbol in (*DEFAULT_WATCHLIST, *LIVE_SYMBOLS, "BRK.B", "IWM", "DIA", "XLF", "GLD", "TLT",
                   *synthetic_symbols(200)):
        assert is_listed(symbol), symbol
    for typo in ("AAPLL", "APPL", "NVDAA", "GOOOGL", "SPYY", "QQQQ", "MSFTT", "TSLAA", "AMZNN"):
        assert not is_listed(typo), typo
    assert len(NAMED) > 300 and len(set(NAMED)) == len(NAMED) and list(NAMED) == sorted(NAMED)
    assert universe() == NAMED + tuple(synthetic_symbols(SYNTHETIC_DEFAULT))


def test_more_numbered_symbols_come_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """OH_SIM_SYNTHETIC=5000 lists S0000..S4999 (what a 5,000-underlying benchmark needs), deterministically; it
    never shrinks the default, and a malformed value is an error naming the variable."""
    assert not is_listed("S4999")
    monkeypatch.setenv(SYNTHETIC_ENV, "5000")
    assert is_listed("S4999") and not is_listed("S5000")
    assert universe()[-1] == "S4999" and len(universe()) == len(NAMED) + 5000
    assert SimProvider(clock=lambda: FRIDAY_EVENING).daily_candles("S4999", date(2025, 6, 2), date(2025, 6, 6)).num_rows == 5
    monkeypatch.setenv(SYNTHETIC_ENV, "10")
    assert synthetic_count() == SYNTHETIC_DEFAULT
    monkeypatch.setenv(SYNTHETIC_ENV, "lots")
    with pytest.raises(ValueError, match=SYNTHETIC_ENV):
        is_listed("S0001")


def test_the_docs_list_the_universe() -> None:
    """docs/sim_market.md lists every named symbol (the user can see what the sim serves without running it)."""
    text = (REPO / "docs" / "sim_market.md").read_text()
    missing = [s for s in NAMED if not re.search(rf"(?<![A-Z.]){re.escape(s)}(?![A-Z.])", text)]
    assert missing == []
