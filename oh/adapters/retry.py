"""One retry policy for every provider's HTTP calls: exponential backoff that honours Retry-After.

Retries happen at the HTTP layer, one request at a time, so a 429 on page 7 of a paginated
download retries page 7, not the whole download. Two transports share the policy:

- alpaca-py uses `requests`; it gets urllib3's own `Retry` (the library requests is built on, and
  the standard way to retry there), subclassed only so that the wait comes from this policy and
  the sleep is injectable (tests record waits instead of sleeping).
- yfinance uses `curl_cffi`, whose retry covers connection errors only, never a 429 response; the
  yahoo session (oh.adapters.yahoo.http) loops over `RetryPolicy.wait` itself.

No third-party retry package (tenacity, backoff) is a dependency of the project, and neither would
see the HTTP status or the Retry-After header from inside the SDKs, which is where retrying belongs.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    parsed = email.utils.parsedate_tz(text)
    if parsed is None:
        return None
    return max(float(email.utils.mktime_tz(parsed)) - now(), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a provider request, and its per-request timeout.

    attempts: retries after the first try (so attempts + 1 requests at most);
    base_delay: the first backoff in seconds, doubling each retry; max_delay: the cap on any one
    wait, a server's Retry-After included (a provider asking for an hour fails the partition
    instead of stalling the run); timeout: connect/read timeout of each request in seconds.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def wait(self, retry_number: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry `retry_number` (1 for the first): Retry-After when the server
        sent one, else base_delay * 2**(n-1); either way at most max_delay."""
        hinted = parse_retry_after(retry_after)
        if hinted is not None:
            return min(hinted, self.max_delay)
        return min(self.base_delay * 2 ** max(retry_number - 1, 0), self.max_delay)


class PolicyRetry(Retry):
    """urllib3's Retry with the wait taken from a RetryPolicy (Retry-After first, capped) and its sleep."""

    def __init__(self, *args: Any, policy: RetryPolicy | None = None, **kwargs: Any) -> None:
        self.policy = policy or RetryPolicy()
        super().__init__(*args, **kwargs)

    def new(self, **kw: Any) -> PolicyRetry:
        """Carry the policy into the copy urllib3 makes after each attempt."""
        kw.setdefault("policy", self.policy)
        return super().new(**kw)

    def sleep(self, response: Any = None) -> None:
        """Wait before the next attempt as the policy says (urllib3 calls this between attempts)."""
        retry_after = response.headers.get("Retry-After") if response is not None else None
        seconds = self.policy.wait(len(self.history), retry_after)
        if seconds > 0:
            self.policy.sleep(seconds)


def urllib3_retry(policy: RetryPolicy) -> PolicyRetry:
    """The Retry for a requests HTTPAdapter: GETs retried on 429/5xx and on connect/read errors.

    raise_on_status: when retries run out the caller gets requests' RetryError rather than the
    last 429, so an SDK's own fixed-delay retry loop (alpaca-py sleeps 3 s, ignoring Retry-After)
    never runs on top of this one.
    """
    return PolicyRetry(
        total=policy.attempts, connect=policy.attempts, read=policy.attempts, status=policy.attempts,
        other=0, redirect=0, allowed_methods=frozenset({"GET"}), status_forcelist=RETRY_STATUSES,
        raise_on_status=True, respect_retry_after_header=True, policy=policy,
    )
