"""The alpaca provider through the real alpaca-py, against recorded Alpaca responses served over HTTP.

Nothing of ours is patched: alpaca-py's clients build the requests, send them with their own
session (to the replay server via url_override) and follow next_page_token themselves.
"""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pytest
import requests

from contracts import rows
from oh.adapters.alpaca.http import translate
from oh.adapters.alpaca.provider import AlpacaProvider
from oh.adapters.base import UnknownSymbol
from oh.adapters.errors import (
    BadCredentials,
    MissingCredentials,
    NotEntitled,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SnapshotNotAvailable,
)
from oh.adapters.retry import RetryPolicy
from oh.adapters.settings import ProviderSettings
from oh.domain import pricing
from tests.http_replay import FIXTURES, ReplayServer
from tests.unit.providers.conftest import KEY_ID, SECRET, with_alpaca

JUNE_2, JUNE_6 = date(2025, 6, 2), date(2025, 6, 6)


def _recorded(name: str) -> dict:
    return json.loads((FIXTURES / "alpaca" / name).read_text())


def test_candles_follow_next_page_token_and_carry_the_feed_and_adjustment(
        settings: ProviderSettings, server: ReplayServer) -> None:
    """Two pages of /v2/stocks/bars become one table of the five sessions, in our schema, with Alpaca's
    numbers; the second request carries the first page's token; iex feed and split adjustment are asked;
    the keys go in Alpaca's headers."""
    table = AlpacaProvider(settings).daily_candles("AAPL", JUNE_2, JUNE_6)
    assert table.schema == rows.CANDLES
    recorded = _recorded("v2_stocks_bars_AAPL_iex_page1.json")["bars"]["AAPL"] + \
        _recorded("v2_stocks_bars_AAPL_iex_page2.json")["bars"]["AAPL"]
    assert table.column("close").to_pylist() == [bar["c"] for bar in recorded]
    assert table.column("volume").to_pylist() == [bar["v"] for bar in recorded]
    assert [d.isoformat() for d in table.column("date").to_pylist()] == [
        "2025-06-02", "2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06"]
    first, second = server.hits("alpaca-data", "/v2/stocks/bars", symbols="AAPL")
    assert "page_token" not in first.query and second.query["page_token"] == _recorded(
        "v2_stocks_bars_AAPL_iex_page1.json")["next_page_token"]
    assert (first.query["feed"], first.query["adjustment"], first.query["timeframe"]) == ("iex", "split", "1Day")
    assert (first.headers["apca-api-key-id"], first.headers["apca-api-secret-key"]) == (KEY_ID, SECRET)


def test_candles_keep_only_the_sessions_asked_for(settings: ProviderSettings) -> None:
    """Alpaca may answer more than asked (the recorded pages cover the whole week): only [start, end] lands."""
    table = AlpacaProvider(settings).daily_candles("AAPL", date(2025, 6, 3), date(2025, 6, 4))
    assert [d.isoformat() for d in table.column("date").to_pylist()] == ["2025-06-03", "2025-06-04"]


def test_a_429_is_retried_after_its_retry_after(settings: ProviderSettings, server: ReplayServer,
                                                waits: list[float]) -> None:
    """429 with Retry-After: 1, then 200: the candles arrive and the one wait was the server's second."""
    table = AlpacaProvider(settings).daily_candles("MSFT", JUNE_2, JUNE_6)
    assert table.num_rows == 5
    assert [s.status for s in server.hits("alpaca-data", "/v2/stocks/bars", symbols="MSFT")] == [429, 200]
    assert waits == [1.0]


def test_a_403_for_the_sip_feed_says_to_use_iex(settings: ProviderSettings) -> None:
    """Alpaca's 'subscription does not permit querying recent SIP data' becomes NotEntitled naming the
    feed and the setting that fixes it."""
    provider = AlpacaProvider(with_alpaca(settings, stock_feed="sip"))
    with pytest.raises(NotEntitled) as raised:
        provider.daily_candles("AAPL", JUNE_2, JUNE_6)
    message = str(raised.value)
    assert "not entitled to the sip stock feed" in message and 'stock_feed = "iex"' in message
    assert "subscription does not permit querying recent SIP data" in message


def test_an_unknown_symbol_is_unknownsymbol(settings: ProviderSettings, server: ReplayServer) -> None:
    """No bars for a symbol makes the provider ask the asset endpoint; its 404 is UnknownSymbol."""
    with pytest.raises(UnknownSymbol, match="alpaca does not know the symbol ZZNOPE"):
        AlpacaProvider(settings).daily_candles("ZZNOPE", JUNE_2, JUNE_6)
    assert [s.status for s in server.hits("alpaca-trading", "/v2/assets/ZZNOPE")] == [404]


def test_wrong_keys_are_badcredentials_without_the_keys(settings: ProviderSettings) -> None:
    """A 401 says the keys were refused and where they come from, and never shows them."""
    wrong = with_alpaca(settings, key_id="PKWRONG000", secret_key="wrong-secret-value")
    with pytest.raises(BadCredentials) as raised:
        AlpacaProvider(wrong).daily_candles("AAPL", JUNE_2, JUNE_6)
    message = str(raised.value)
    assert "refused" in message and "APCA_API_KEY_ID" in message
    assert "PKWRONG000" not in message and "wrong-secret-value" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # the SDK's text is not chained


def test_missing_keys_fail_before_any_request(settings: ProviderSettings, server: ReplayServer) -> None:
    """No key pair: MissingCredentials naming both variables and the file, and no HTTP request at all."""
    with pytest.raises(MissingCredentials) as raised:
        AlpacaProvider(with_alpaca(settings, secret_key=None))
    assert "APCA_API_KEY_ID" in str(raised.value) and "APCA_API_SECRET_KEY" in str(raised.value)
    assert str(settings.alpaca.env_file) in str(raised.value)
    assert server.seen == []


def test_server_errors_and_timeouts_after_the_retries(settings: ProviderSettings, server: ReplayServer) -> None:
    """A 503 that persists is ProviderUnavailable after attempts + 1 tries; an endpoint slower than the
    timeout is ProviderTimeout (not a hang: alpaca-py itself sets no timeout)."""
    with pytest.raises(ProviderUnavailable, match="after 3 tries"):
        AlpacaProvider(settings).daily_candles("TSLA", JUNE_2, JUNE_6)
    assert len(server.hits("alpaca-data", "/v2/stocks/bars", symbols="TSLA")) == 3
    impatient = ProviderSettings(alpaca=settings.alpaca, retry=RetryPolicy(attempts=0, timeout=0.3))
    with pytest.raises(ProviderTimeout, match=r"no answer within 0\.3s"):
        AlpacaProvider(impatient).daily_candles("NVDA", JUNE_2, JUNE_6)


def test_contracts_page_through_active_and_expired_within_the_window(
        settings: ProviderSettings, server: ReplayServer) -> None:
    """The trading API's contract list is paged by next_page_token (alpaca-py leaves that to us); active and
    inactive contracts are both asked; only expiries in (day, day + max_dte] are kept."""
    contracts = AlpacaProvider(settings).option_contracts("AAPL", JUNE_6, 7)
    assert contracts == sorted(f"AAPL250613{r}00{k}000" for r in "CP" for k in (195, 200, 205, 210))
    asked = server.hits("alpaca-trading", "/v2/options/contracts")
    assert [(s.query["status"], s.query.get("page_token")) for s in asked] == [
        ("active", None), ("active", "MTY="), ("inactive", None)]
    assert (asked[0].query["expiration_date_gte"], asked[0].query["expiration_date_lte"]) == ("2025-06-07", "2025-06-13")


def test_option_bars_over_two_pages(settings: ProviderSettings, server: ReplayServer) -> None:
    """/v1beta1/options/bars pages are merged; trade count and VWAP come from n and vw; contracts that did
    not trade have no bar."""
    provider = AlpacaProvider(settings)
    table = provider.option_bars("AAPL", provider.option_contracts("AAPL", JUNE_6, 7), JUNE_6, JUNE_6)
    assert table.schema == rows.OPTION_BARS
    recorded = {**_recorded("v1beta1_options_bars_AAPL_2025-06-13_page1.json")["bars"],
                **_recorded("v1beta1_options_bars_AAPL_2025-06-13_page2.json")["bars"]}
    got = {r["contract_symbol"]: r for r in table.to_pylist()}
    assert set(got) == set(recorded) and len(got) == 6
    for contract, (bar,) in recorded.items():
        assert (got[contract]["close"], got[contract]["volume"], got[contract]["trade_count"], got[contract]["vwap"]) \
            == (bar["c"], bar["v"], bar["n"], bar["vw"])
    assert len(server.hits("alpaca-data", "/v1beta1/options/bars")) == 2


def test_option_chain_merges_snapshots_open_interest_and_spot(settings: ProviderSettings, server: ReplayServer) -> None:
    """Snapshots (two pages) give quotes, trades, volume, IV and Greeks; the contract list gives open interest;
    the session's stock bar gives spot. Every contract once, in our schema."""
    table = AlpacaProvider(settings).option_chain("AAPL", JUNE_6)
    assert table.schema == rows.CHAIN and table.num_rows == 24
    assert len(server.hits("alpaca-data", "/v1beta1/options/snapshots/AAPL", feed="indicative")) == 2
    by = {r["contract_symbol"]: r for r in table.to_pylist()}
    snaps = {**_recorded("v1beta1_options_snapshots_AAPL_page1.json")["snapshots"],
             **_recorded("v1beta1_options_snapshots_AAPL_page2.json")["snapshots"]}
    contracts = _recorded("v2_options_contracts_AAPL_active_page1.json")["option_contracts"] + \
        _recorded("v2_options_contracts_AAPL_active_page2.json")["option_contracts"]
    row, snap = by["AAPL250620C00200000"], snaps["AAPL250620C00200000"]
    assert (row["bid"], row["ask"], row["last"]) == (snap["latestQuote"]["bp"], snap["latestQuote"]["ap"],
                                                     snap["latestTrade"]["p"])
    assert row["mark"] == pytest.approx((row["bid"] + row["ask"]) / 2)
    assert row["volume"] == snap["dailyBar"]["v"]
    assert (row["iv"], row["delta"], row["vega"]) == (snap["impliedVolatility"], snap["greeks"]["delta"],
                                                      snap["greeks"]["vega"])
    assert {r["contract_symbol"]: r["open_interest"] for r in by.values()} == {
        c["symbol"]: int(c["open_interest"]) for c in contracts}
    assert {r["spot"] for r in by.values()} == {203.92}


def test_option_chain_quirks_stale_quotes_old_trades_and_missing_greeks(settings: ProviderSettings) -> None:
    """A quote from an earlier session is no quote; a last trade from an earlier session is no last and no
    volume; a contract Alpaca sends no IV or Greeks for gets them from our pricing core, consistent with
    its mark."""
    by = {r["contract_symbol"]: r for r in AlpacaProvider(settings).option_chain("AAPL", JUNE_6).to_pylist()}
    stale = by["AAPL250718P00195000"]  # quote from 2025-06-04, last trade from May
    assert (stale["bid"], stale["ask"], stale["last"], stale["volume"]) == (0.0, 0.0, 0.0, 0)
    assert math.isnan(stale["mark"])
    untraded = by["AAPL250613C00200000"]
    assert (untraded["last"], untraded["volume"]) == (0.0, 0) and untraded["bid"] > 0
    computed = by["AAPL250613C00195000"]  # no impliedVolatility, no greeks in the payload
    t = 7 / 365
    assert np.isfinite([computed[k] for k in ("iv", "delta", "gamma", "vega", "theta", "rho")]).all()
    repriced = pricing.bsm_price(203.92, 195.0, t, computed["iv"], settings.rate, settings.dividend_yield, True)
    assert float(repriced) == pytest.approx(computed["mark"], abs=1e-6)


def test_option_chain_of_an_earlier_session_is_refused(settings: ProviderSettings) -> None:
    """Snapshots are live: asked for the session before the newest quote's, the provider says so rather
    than labelling today's quotes with yesterday's date."""
    with pytest.raises(SnapshotNotAvailable, match=r"newest quote of AAPL is from 2025-06-06.*2025-06-05"):
        AlpacaProvider(settings).option_chain("AAPL", date(2025, 6, 5))


def test_option_chain_feed_and_symbol_errors(settings: ProviderSettings) -> None:
    """opra without the agreement is NotEntitled with the indicative fix; an unknown underlying is
    UnknownSymbol (empty chain, then a 404 asset)."""
    with pytest.raises(NotEntitled, match=r'opra option feed.*option_feed = "indicative"'):
        AlpacaProvider(with_alpaca(settings, option_feed="opra")).option_chain("AAPL", JUNE_6)
    with pytest.raises(UnknownSymbol, match="ZZNOPE"):
        AlpacaProvider(settings).option_chain("ZZNOPE", JUNE_6)
    with pytest.raises(UnknownSymbol, match="ZZNOPE"):
        AlpacaProvider(settings).option_contracts("ZZNOPE", JUNE_6, 30)


@pytest.mark.parametrize(("status", "expected"), [(503, ProviderUnavailable), (429, RateLimited)])
def test_retries_run_out_on_the_status_urllib3_names_not_on_digits_in_the_url(
        settings: ProviderSettings, status: int, expected: type) -> None:
    """Which status exhausted the retries is read from urllib3's reason only: a port or a query holding
    "429" (127.0.0.1:43429 once made a persistent 503 read as a rate limit) does not change the error."""
    from urllib3.exceptions import MaxRetryError, ResponseError

    pool = type("Pool", (), {"__str__": lambda self: "HTTPConnectionPool(host='127.0.0.1', port=43429)"})()
    reason = ResponseError(ResponseError.SPECIFIC_ERROR.format(status_code=status))
    exc = requests.exceptions.RetryError(MaxRetryError(pool, "/v2/stocks/bars?limit=429", reason=reason))
    assert "429" in str(exc)
    error = translate(exc, settings, "daily stock bars", "TSLA")
    assert type(error) is expected and "after 3 tries" in str(error)
