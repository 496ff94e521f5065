"""The yahoo provider through the real yfinance, against recorded Yahoo responses served over HTTP.

yfinance runs unmodified on our curl_cffi session, whose only change to the wire is the base URL:
its cookie/crumb dance, chart (v8) and options (v7) requests and its parsing are all yfinance's.
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import date

import pytest

from contracts import rows
from oh.adapters.base import ProviderError, UnknownSymbol
from oh.adapters.errors import ProviderTimeout, RateLimited, SnapshotNotAvailable
from oh.adapters.retry import RetryPolicy
from oh.adapters.settings import ProviderSettings
from oh.adapters.yahoo.provider import YahooProvider, yahoo_symbol, yfinance
from tests.http_replay import FIXTURES, ReplayServer

JUNE_6 = date(2025, 6, 6)


def _chart(name: str) -> dict:
    return json.loads((FIXTURES / "yahoo" / name).read_text())["chart"]["result"][0]


def test_candles_use_the_split_adjusted_close_and_leave_dividends_out(settings: ProviderSettings) -> None:
    """Over AAPL's 2025-05-12 ex-dividend date: five candles with Yahoo's close (not its dividend-adjusted
    adjclose), and the dividend event is not a row."""
    table = YahooProvider(settings).daily_candles("AAPL", date(2025, 5, 8), date(2025, 5, 14))
    assert table.schema == rows.CANDLES
    recorded = _chart("v8_chart_AAPL_2025-05-08_2025-05-14.json")
    quote = recorded["indicators"]["quote"][0]
    assert "dividends" in recorded["events"]
    assert table.column("close").to_pylist() == quote["close"]
    assert table.column("close").to_pylist() != recorded["indicators"]["adjclose"][0]["adjclose"]
    assert table.column("volume").to_pylist() == quote["volume"]
    assert [d.isoformat() for d in table.column("date").to_pylist()] == [
        "2025-05-08", "2025-05-09", "2025-05-12", "2025-05-13", "2025-05-14"]


def test_a_429_is_retried_after_its_retry_after(settings: ProviderSettings, server: ReplayServer,
                                                waits: list[float]) -> None:
    """Yahoo's 429 (Retry-After: 1) then 200: five TSLA candles, and the one wait was the server's second."""
    assert YahooProvider(settings).daily_candles("TSLA", date(2025, 6, 2), JUNE_6).num_rows == 5
    history = [s for s in server.hits("yahoo", "/v8/finance/chart/TSLA") if "period1" in s.query]
    assert [s.status for s in history] == [429, 200]
    assert waits == [1.0]


def test_rate_limits_timeouts_and_unknown_symbols(settings: ProviderSettings) -> None:
    """A 429 that outlasts the retries is RateLimited; an answer slower than the timeout is ProviderTimeout;
    Yahoo's 404 for a ticker is UnknownSymbol."""
    impatient = ProviderSettings(yahoo=settings.yahoo, retry=RetryPolicy(attempts=0, timeout=0.3),
                                 cache_dir=settings.cache_dir)
    with pytest.raises(ProviderTimeout, match=r"no answer within 0\.3s"):
        YahooProvider(impatient).daily_candles("NVDA", date(2025, 6, 2), JUNE_6)
    provider = YahooProvider(settings)
    with pytest.raises(RateLimited, match="yahoo: rate limited"):
        provider.daily_candles("NFLX", date(2025, 6, 2), JUNE_6)
    with pytest.raises(UnknownSymbol, match="yahoo does not know the symbol ZZNOPE"):
        provider.daily_candles("ZZNOPE", date(2025, 6, 2), JUNE_6)


def test_option_chain_with_yahoos_quirks(settings: ProviderSettings, server: ReplayServer) -> None:
    """Every expiry's chain (one v7 request each) in our schema, spot from the underlying quote; missing
    volume/openInterest are 0; a stale last (weeks old, no quote) is no last, its old volume is no volume (0, as
    documented and as Alpaca's rows give) and its IV is not Yahoo's 1e-5 placeholder; Yahoo's IV is kept where both sides are quoted; Greeks are computed for every priced row."""
    table = YahooProvider(settings).option_chain("AAPL", JUNE_6)
    assert table.schema == rows.CHAIN and table.num_rows == 24
    dated = [s for s in server.hits("yahoo", "/v7/finance/options/AAPL") if "date" in s.query]
    assert sorted(s.query["date"] for s in dated) == ["1749772800", "1750377600", "1752796800"]
    by = {r["contract_symbol"]: r for r in table.to_pylist()}
    assert {r["spot"] for r in by.values()} == {203.92}
    missing = by["AAPL250620P00195000"]  # Yahoo left out volume and openInterest
    assert (missing["volume"], missing["open_interest"]) == (0, 0)
    stale = by["AAPL250718C00210000"]  # bid = ask = 0, lastTradeDate in May with that day's volume 4, IV 1e-05
    assert (stale["bid"], stale["ask"], stale["last"], stale["volume"]) == (0.0, 0.0, 0.0, 0)
    assert math.isnan(stale["mark"]) and math.isnan(stale["iv"])
    yahoo = json.loads((FIXTURES / "yahoo" / "v7_options_AAPL_2025-06-20.json").read_text())
    calls = yahoo["optionChain"]["result"][0]["options"][0]["calls"]
    recorded = next(c for c in calls if c["contractSymbol"] == "AAPL250620C00200000")
    quoted = by["AAPL250620C00200000"]
    assert quoted["iv"] == recorded["impliedVolatility"] and quoted["open_interest"] == recorded["openInterest"]
    assert quoted["last"] == recorded["lastPrice"] and quoted["volume"] == recorded["volume"]
    priced = [r for r in by.values() if not math.isnan(r["mark"])]
    assert len(priced) == 23 and all(math.isfinite(r["delta"]) and math.isfinite(r["vega"]) for r in priced)


def test_option_chain_of_an_earlier_session_is_refused(settings: ProviderSettings) -> None:
    """Yahoo's chain is live: it cannot stand for the session before its quote's."""
    with pytest.raises(SnapshotNotAvailable, match=r"quote is from 2025-06-06.*2025-06-05"):
        YahooProvider(settings).option_chain("AAPL", date(2025, 6, 5))


def test_contracts_and_bars_per_contract_chart(settings: ProviderSettings, server: ReplayServer) -> None:
    """Contracts within 7 days come from the 2025-06-13 chain; each contract's bars from its own v8 chart;
    contracts Yahoo has no chart for, and days with null prices, give no bar; Yahoo has no trade counts or
    VWAPs (0 and NaN)."""
    provider = YahooProvider(settings)
    contracts = provider.option_contracts("AAPL", JUNE_6, 7)
    assert contracts == sorted(f"AAPL250613{r}00{k}000" for r in "CP" for k in (195, 200, 205, 210))
    table = provider.option_bars("AAPL", contracts, date(2025, 6, 2), JUNE_6)
    assert table.schema == rows.OPTION_BARS
    charted = {f.name.removeprefix("v8_chart_").removesuffix(".json") for f in (FIXTURES / "yahoo").glob(
        "v8_chart_AAPL2506*.json")}
    assert set(table.column("contract_symbol").to_pylist()) == charted and len(charted) == 6
    expected = 0
    for contract in charted:
        closes = _chart(f"v8_chart_{contract}.json")["indicators"]["quote"][0]["close"]
        expected += sum(c is not None for c in closes)
    assert table.num_rows == expected < 6 * 5
    assert set(table.column("trade_count").to_pylist()) == {0}
    assert all(math.isnan(v) for v in table.column("vwap").to_pylist())
    assert server.hits("yahoo", "/v8/finance/chart/AAPL250613C00200000")  # asked, answered 404, skipped


def test_unknown_underlyings_for_options(settings: ProviderSettings) -> None:
    """An empty options answer plus a 404 chart is UnknownSymbol, for chains and contract lists alike."""
    provider = YahooProvider(settings)
    with pytest.raises(UnknownSymbol, match="ZZNOPE"):
        provider.option_chain("ZZNOPE", JUNE_6)
    with pytest.raises(UnknownSymbol, match="ZZNOPE"):
        provider.option_contracts("ZZNOPE", JUNE_6, 30)
    with pytest.raises(ProviderError, match="no chart for any"):
        provider.option_bars("AAPL", ["AAPL250613C00200000", "AAPL250613P00205000"], JUNE_6, JUNE_6)


def test_class_shares_are_spelt_the_yahoo_way() -> None:
    """BRK.B is BRK-B at Yahoo; plain tickers are unchanged."""
    assert (yahoo_symbol("BRK.B"), yahoo_symbol("AAPL")) == ("BRK-B", "AAPL")


def test_deprecations_raised_inside_yfinance_stay_out_of_the_logs() -> None:
    """yfinance's import puts a filter showing the DeprecationWarnings raised in its modules in front of every filter
    (pandas' inplace deprecations, three per candles fetch, in every yahoo worker's log): ours goes back in front."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.filterwarnings("default", category=DeprecationWarning, module="^yfinance")  # as its import does
        yfinance()
        warnings.warn_explicit("The inplace keyword is deprecated", DeprecationWarning, "yfinance/utils.py", 568,
                               module="yfinance.utils")
        warnings.warn_explicit("ours", DeprecationWarning, "oh/adapters/yahoo/provider.py", 1,
                               module="oh.adapters.yahoo.provider")
    assert [str(w.message) for w in shown] == ["ours"]
