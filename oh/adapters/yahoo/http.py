"""The curl_cffi session yfinance runs on: retries with the provider policy, short timeouts, a base URL.

yfinance accepts a caller's curl_cffi Session (`yf.Ticker(symbol, session=...)`); this is one,
impersonating Chrome as yfinance's own does. It adds three things at the HTTP layer:

- retries: a 429 or 5xx answer, a timeout or a dropped connection is retried per RetryPolicy
  (Retry-After honoured). When retries run out on a data request it raises RateLimited,
  ProviderTimeout or ProviderUnavailable, which yfinance passes through untouched;
- a timeout cap: no request waits longer than the policy's timeout, whatever yfinance asks;
- an optional base URL: when set (a proxy, or the test suite's recorded-response server), every
  `https://*.yahoo.com/PATH?QUERY` becomes `BASE/PATH?QUERY`. Unset, URLs go to Yahoo unchanged.

The cookie and crumb requests yfinance makes on its own (fc.yahoo.com, getcrumb, consent pages) are
retried but never raised on: yfinance already degrades gracefully when they fail.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from curl_cffi import requests as curl_requests

from oh.adapters.errors import ProviderTimeout, ProviderUnavailable, RateLimited
from oh.adapters.retry import RETRY_STATUSES, RetryPolicy

_AUXILIARY_PATHS = ("/v1/test/getcrumb", "/consent", "/v2/collectConsent", "/copyConsent")
_AUXILIARY_HOSTS = ("fc.yahoo.com", "guce.yahoo.com", "consent.yahoo.com")


def rebase(url: str, base_url: str | None) -> str:
    """`url` with its Yahoo scheme and host replaced by `base_url` (unchanged if base_url is None or not Yahoo)."""
    if not base_url:
        return url
    parts = urlsplit(url)
    if not (parts.hostname or "").endswith("yahoo.com"):
        return url
    query = f"?{parts.query}" if parts.query else ""
    return f"{base_url.rstrip('/')}{parts.path or '/'}{query}"


def _auxiliary(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.hostname or "") in _AUXILIARY_HOSTS or parts.path.startswith(_AUXILIARY_PATHS)


class YahooSession(curl_requests.Session):  # type: ignore[misc]
    """A curl_cffi Session with the provider's retry policy, timeout cap and optional base URL."""

    def __init__(self, policy: RetryPolicy, base_url: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("impersonate", "chrome")
        super().__init__(**kwargs)
        self.policy = policy
        self.base_url = base_url

    def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        """Send one request as yfinance asked, retrying per the policy; raise ours when retries run out."""
        target = rebase(url, self.base_url)
        given = kwargs.get("timeout")
        cap = self.policy.timeout
        kwargs["timeout"] = min(given, cap) if isinstance(given, (int, float)) and given > 0 else cap
        auxiliary = _auxiliary(url)
        where = urlsplit(url).path
        for attempt in range(self.policy.attempts + 1):
            last_try = attempt == self.policy.attempts
            try:
                response = super().request(method, target, *args, **kwargs)
            except curl_requests.exceptions.Timeout:
                if last_try:
                    if auxiliary:
                        raise
                    raise ProviderTimeout(
                        f"yahoo: no answer within {cap:g}s for {where} after {attempt + 1} tries; try again later"
                    ) from None
            except curl_requests.exceptions.ConnectionError as exc:
                if last_try:
                    if auxiliary:
                        raise
                    raise ProviderUnavailable(f"yahoo: cannot reach {urlsplit(target).netloc}: {_short(exc)}") from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                if last_try:
                    if auxiliary:
                        return response
                    if response.status_code == 429:
                        raise RateLimited(
                            f"yahoo: rate limited (HTTP 429) on {where} after {attempt + 1} tries; "
                            "wait a few minutes before the next run"
                        )
                    raise ProviderUnavailable(
                        f"yahoo: server error (HTTP {response.status_code}) on {where} after {attempt + 1} tries"
                    )
                self.policy.sleep(self.policy.wait(attempt + 1, response.headers.get("Retry-After")))
                continue
            self.policy.sleep(self.policy.wait(attempt + 1))
        raise AssertionError("unreachable: the loop returns or raises on its last try")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160]
