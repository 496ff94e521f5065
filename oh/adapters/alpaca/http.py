"""Alpaca's transport and failures: retries and timeouts on alpaca-py's session, errors in a trader's words.

alpaca-py sends every request through one `requests.Session` per client and has no timeout at all;
its own retry sleeps a fixed 3 s on 429 and ignores Retry-After. `harden` mounts an HTTPAdapter
on that session with the provider's RetryPolicy (urllib3 Retry: per request, Retry-After
honoured) and a default timeout. The session is the SDK's private `_session` attribute, the one
hook it offers below its request code; a test fails loudly if a new alpaca-py renames it.

`translate` turns what alpaca-py raises (APIError carrying the HTTP status and Alpaca's JSON
message, requests' RetryError, Timeout and ConnectionError) into oh.adapters.errors types whose
messages say what to do, with every credential redacted.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from oh.adapters.base import ProviderError, UnknownSymbol
from oh.adapters.errors import (
    BadCredentials,
    NotEntitled,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from oh.adapters.retry import RetryPolicy, urllib3_retry
from oh.adapters.settings import ProviderSettings

_TOO_MANY = re.compile(r"too many (\d{3}) error responses")
_ENTITLEMENT_WORDS = ("subscription", "sip", "opra", "feed", "agreement", "permit", "entitle")


class _TimeoutAdapter(HTTPAdapter):
    """An HTTPAdapter that applies a default timeout to requests sent without one."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.default_timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().send(request, *args, **kwargs)


def harden(client: Any, policy: RetryPolicy) -> Any:
    """Give an alpaca-py client's session the policy's retries and timeout; returns the client."""
    session = getattr(client, "_session", None)
    if not isinstance(session, requests.Session):
        raise ProviderError(
            f"alpaca: this alpaca-py ({type(client).__name__}) has no requests session to configure; "
            "install the version in pyproject.toml"
        )
    adapter = _TimeoutAdapter(policy.timeout, max_retries=urllib3_retry(policy))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return client


def _alpaca_message(body: str) -> str:
    """Alpaca's own `message` from an error body (JSON, sometimes with a numeric code), else the text."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return " ".join(body.split())[:200] or "no message"


def _status_error(status: int, message: str, settings: ProviderSettings, what: str, symbol: str,
                  feed: tuple[str, str] | None) -> ProviderError:
    """The ProviderError for an HTTP error status Alpaca answered `what` for `symbol` with."""
    alpaca = settings.alpaca
    keys = f"APCA_API_KEY_ID and APCA_API_SECRET_KEY (environment or {alpaca.env_file})"
    if status == 401:
        return BadCredentials(f"alpaca: the API keys were refused ({status} {message}): check {keys} "
                              f"hold valid {alpaca.environment} keys")
    if status == 403:
        if any(word in message.lower() for word in _ENTITLEMENT_WORDS):
            if feed is None:
                return NotEntitled(f"alpaca: your account is not entitled to {what} ({message})")
            kind, name = feed
            other = {"sip": "iex", "opra": "indicative"}.get(name)
            fix = (f"; use the {other} feed: {kind}_feed = \"{other}\" under [alpaca] in providers.toml "
                   f"or OH_ALPACA_{kind.upper()}_FEED={other}") if other else ""
            return NotEntitled(f"alpaca: your account is not entitled to the {name} {kind} feed for {what} "
                               f"({message}){fix}")
        return BadCredentials(f"alpaca: access forbidden for {what} ({status} {message}): the keys may belong to "
                              f"the other environment (paper vs live) or lack market-data access; check {keys}")
    if status == 404 or (status in (400, 422) and "symbol" in message.lower()):
        return UnknownSymbol(f"alpaca does not know the symbol {symbol} ({status} {message})")
    if status == 429:
        return RateLimited(f"alpaca: rate limited (429 {message}) on {what}; wait a minute before the next run")
    if status >= 500:
        return ProviderUnavailable(f"alpaca: server error ({status} {message}) on {what}; try again later")
    return ProviderError(f"alpaca refused the request for {what} of {symbol} ({status} {message})")


def translate(exc: BaseException, settings: ProviderSettings, what: str, symbol: str,
              feed: tuple[str, str] | None = None) -> ProviderError | None:
    """Our error for an exception raised by alpaca-py while fetching `what` for `symbol`, or None when
    it is not a vendor or network failure (a bug should surface as itself).

    `feed` is (kind, name), e.g. ("stock", "sip"), when the request named a feed, so a 403 can say
    which entitlement is missing.
    """
    from alpaca.common.exceptions import APIError

    policy = settings.retry
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, APIError):
        status = exc.status_code or 0
        error: ProviderError = _status_error(status, _alpaca_message(str(exc)), settings, what, symbol, feed)
    elif isinstance(exc, requests.exceptions.RetryError):
        if _exhausted_status(exc) == 429:
            error = RateLimited(f"alpaca: rate limited (HTTP 429) on {what} after {policy.attempts + 1} tries; "
                                "wait a minute before the next run")
        else:
            error = ProviderUnavailable(f"alpaca: server errors on {what} after {policy.attempts + 1} tries; "
                                        "try again later")
    elif isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
        error = ProviderTimeout(f"alpaca: no answer within {policy.timeout:g}s on {what} "
                                f"after {policy.attempts + 1} tries; try again later")
    elif isinstance(exc, requests.exceptions.ConnectionError):
        host = _host(exc)
        error = ProviderUnavailable(f"alpaca: cannot reach {host} for {what}: check the network "
                                    "(or APCA_API_BASE_URL / APCA_API_DATA_URL)")
    else:
        return None
    return type(error)(settings.redact(str(error)))


def _exhausted_status(exc: requests.exceptions.RetryError) -> int | None:
    """The HTTP status whose retries ran out, from urllib3's "too many 503 error responses" reason.

    Only the reason is read: the rest of the message holds the host, port and URL, where any
    digits (a port such as 43429) may appear.
    """
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", None)
    found = _TOO_MANY.search(str(reason)) if reason is not None else None
    return int(found.group(1)) if found else None


def _host(exc: requests.exceptions.RequestException) -> str:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None) or ""
    return urlsplit(url).netloc or "the Alpaca API"
