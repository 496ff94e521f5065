"""The retry policy: how long to wait (Retry-After first, capped), and that both transports use it."""

from __future__ import annotations

import email.utils

import pytest
import requests
from requests.adapters import HTTPAdapter

from oh.adapters.errors import ProviderUnavailable, RateLimited
from oh.adapters.retry import RetryPolicy, parse_retry_after, urllib3_retry
from oh.adapters.yahoo.http import YahooSession, rebase
from tests.http_replay import ReplayServer


def test_retry_after_in_seconds_or_as_a_date() -> None:
    """Both spellings the HTTP spec allows are read; junk and absence give None (then backoff applies)."""
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 12 ") == 12.0
    at = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(at, now=lambda: 1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after(at, now=lambda: 2_000_000.0) == 0.0  # a date in the past means "now"
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_wait_honours_retry_after_then_backs_off_exponentially_with_a_cap() -> None:
    """A server's Retry-After wins (up to max_delay); without one the wait doubles each retry."""
    policy = RetryPolicy(base_delay=0.5, max_delay=10.0)
    assert policy.wait(1, "3") == 3.0
    assert policy.wait(1, "3600") == 10.0  # an hour would stall the run: capped
    assert [policy.wait(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]


def _session(policy: RetryPolicy) -> requests.Session:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=urllib3_retry(policy)))
    return session


def test_requests_transport_retries_a_429_after_the_retry_after_it_names(server: ReplayServer) -> None:
    """urllib3's Retry, as alpaca-py's session gets it: 429 (Retry-After: 1) then 200 is one success, and
    the wait asked of the policy is exactly the server's 1 s, not urllib3's immediate first retry."""
    waits: list[float] = []
    response = _session(RetryPolicy(attempts=3, sleep=waits.append)).get(
        server.service_url("alpaca-data") + "/v2/stocks/bars",
        params={"symbols": "MSFT", "feed": "iex"}, headers=_alpaca_headers(),
    )
    assert response.status_code == 200
    assert waits == [1.0]
    assert [s.status for s in server.hits("alpaca-data", "/v2/stocks/bars", symbols="MSFT")] == [429, 200]


def test_requests_transport_gives_up_after_the_policy_attempts(server: ReplayServer) -> None:
    """A server that keeps failing (503) is asked attempts + 1 times, then requests raises RetryError."""
    waits: list[float] = []
    with pytest.raises(requests.exceptions.RetryError):
        _session(RetryPolicy(attempts=2, base_delay=0.25, sleep=waits.append)).get(
            server.service_url("alpaca-data") + "/v2/stocks/bars", params={"symbols": "TSLA", "feed": "iex"},
            headers=_alpaca_headers(),
        )
    assert len(server.hits("alpaca-data", "/v2/stocks/bars", symbols="TSLA")) == 3
    assert waits == [0.25, 0.5]


def test_curl_transport_retries_a_429_and_raises_ours_when_retries_run_out(server: ReplayServer) -> None:
    """The yahoo session: 429 then 200 succeeds after the Retry-After wait; a data request that keeps
    failing raises RateLimited / ProviderUnavailable with the path, not a bare HTTP error."""
    waits: list[float] = []
    session = YahooSession(RetryPolicy(attempts=1, sleep=waits.append), base_url=server.service_url("yahoo"))
    ok = session.get("https://query2.finance.yahoo.com/v8/finance/chart/TSLA", params={"interval": "1d"})
    assert ok.status_code == 200 and waits == [1.0]
    stubborn = YahooSession(RetryPolicy(attempts=1, sleep=waits.append), base_url=server.service_url("yahoo"))
    with pytest.raises(ProviderUnavailable, match=r"HTTP 503.*/v8/finance/chart/DIS after 2 tries"):
        stubborn.get("https://query2.finance.yahoo.com/v8/finance/chart/DIS")
    with pytest.raises(RateLimited, match=r"429.*/v8/finance/chart/NFLX after 2 tries"):
        stubborn.get("https://query2.finance.yahoo.com/v8/finance/chart/NFLX")
    assert len(server.hits("yahoo", "/v8/finance/chart/NFLX")) == 2


def test_rebase_moves_only_yahoo_urls() -> None:
    """The base URL replaces scheme and host of Yahoo URLs, keeps path and query, and leaves others alone."""
    assert rebase("https://query2.finance.yahoo.com/v7/finance/options/AAPL?date=1", "http://h:1/yahoo") == \
        "http://h:1/yahoo/v7/finance/options/AAPL?date=1"
    assert rebase("https://fc.yahoo.com", "http://h:1/yahoo") == "http://h:1/yahoo/"
    assert rebase("https://example.com/x", "http://h:1/yahoo") == "https://example.com/x"
    assert rebase("https://query2.finance.yahoo.com/x", None) == "https://query2.finance.yahoo.com/x"


def _alpaca_headers() -> dict[str, str]:
    from tests.unit.providers.conftest import KEY_ID, SECRET

    return {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET}
