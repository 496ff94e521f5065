"""Stream supervision shared by every live feed: states, backoff with jitter, silence, errors in words.

A feed (oh.adapters.sim.stream, oh.adapters.alpaca.stream) runs one or more streams (`stocks`, `options`, `fills`); each
has a `StreamMonitor` that the feed tells what happens (connecting, connected, an event, an error,
a disconnect, a reconnect wait) and that the status publisher reads. States:

    stopped -> connecting -> connected -> (disconnect) -> reconnecting -> connecting -> ...
                    \\-> error (a failure retrying cannot fix: no credentials, no entitlement)

`Backoff` is exponential with "equal jitter" (a wait drawn in [d/2, d], d = base x 2^(n-1) capped):
the half that is fixed keeps a floor between attempts, the random half spreads clients that
dropped together. It is a ten-line function rather than a library because the waits are taken
inside alpaca-py's own reconnect loop (its `_reconnect_delay(retries)` hook) and shown as "next
retry in" on the page: tenacity and backoff wrap a call to retry, which is not the shape here.

The silence watchdog is `StreamMonitor.silent(now, after)`: connected, yet no event for `after`
seconds; the manager then asks the feed to reconnect that stream.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from contracts.live import StreamHealth

DEFAULT_SILENCE_SECONDS = 60.0


@dataclass(frozen=True)
class Backoff:
    """Reconnect waits: attempt n waits in [d/2, d] with d = min(cap, base x 2^(n-1))."""

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before reconnect attempt `attempt` (1 for the first)."""
        d = min(self.cap, self.base * 2 ** max(attempt - 1, 0))
        return d / 2 + (rng or random).uniform(0, d / 2)


# Alpaca's stream error codes and messages (https://docs.alpaca.markets/docs/streaming-market-data),
# in words a trader can act on, and whether retrying can help.
_ALPACA_ERRORS: dict[str, tuple[int, str, bool]] = {
    "invalid syntax": (400, "the server did not understand a message (invalid syntax)", False),
    "not authenticated": (401, "not authenticated: the stream was used before logging in", True),
    "auth failed": (402, "authentication failed: check APCA_API_KEY_ID and APCA_API_SECRET_KEY", False),
    "failed to authenticate": (402, "authentication failed: check APCA_API_KEY_ID and APCA_API_SECRET_KEY", False),
    "already authenticated": (403, "already authenticated (harmless)", True),
    "auth timeout": (404, "authentication timed out", True),
    "symbol limit exceeded": (405, "symbol limit exceeded: lower --max-option-contracts", False),
    "connection limit exceeded": (406, ("connection limit exceeded: another client uses this feed with the "
                                        "same keys (Alpaca allows one connection per feed)"), True),
    "slow client": (407, "the server dropped us as a slow client", True),
    "v2 not enabled": (408, "the data API v2 is not enabled for this account", False),
    "insufficient subscription": (409, ("no entitlement for this feed (insufficient subscription): use "
                                        "--stock-feed iex / --options-feed indicative, or subscribe to SIP/OPRA"), False),
    "internal error": (500, "Alpaca internal error", True),
}
_BY_CODE = {code: (words, retry) for code, words, retry in _ALPACA_ERRORS.values()}


def describe_error(error: BaseException | str, code: int | None = None) -> tuple[str, bool]:
    """(the error in words, whether reconnecting may help) for an exception or an Alpaca error message."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    text = str(error).strip()
    lowered = text.lower()
    for key, (_, words, retry) in _ALPACA_ERRORS.items():
        if key in lowered:
            return words, retry
    if isinstance(error, BaseException):
        name = type(error).__name__
        if isinstance(error, TimeoutError):
            return "timed out connecting", True
        if isinstance(error, ConnectionRefusedError):
            return "cannot connect: connection refused", True
        if isinstance(error, OSError):
            return f"cannot connect: {text or name}", True
        if "ConnectionClosed" in name:
            return f"disconnected by the server ({text or 'no reason given'})", True
        if "InvalidStatus" in name or "InvalidStatusCode" in name:
            if "429" in text:
                return "too many connections (HTTP 429): the server refused a new connection", True
            return f"the server refused the websocket ({text})", True
        return f"{name}: {text}" if text else name, True
    return text or "unknown error", True


class StreamMonitor:
    """The supervised state of one stream, written by its feed, read by the publisher (see module doc).

    Single writer per stream (its feed thread), plain attribute stores: readers may see a state a
    moment old, never a torn one worth locking for. `clock` is seconds since the epoch.
    """

    def __init__(self, name: str, symbols: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.symbols = symbols
        self.clock = clock
        self.state = "stopped"
        self.since = clock()
        self.connected_at: float | None = None
        self.last_event: float | None = None
        self.events = 0
        self.reconnects = 0
        self.retry_at: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.detail = ""
        self._lock = threading.Lock()

    def _set(self, state: str, detail: str | None = None) -> None:
        if state != self.state:
            self.state = state
            self.since = self.clock()
        if detail is not None:
            self.detail = detail

    def connecting(self) -> None:
        """An attempt to connect (and log in, and subscribe) begins."""
        self.retry_at = None
        self._set("connecting")

    def connected(self, detail: str = "") -> None:
        """Connected and subscribed: events may flow."""
        self.connected_at = self.clock()
        self.retry_at = None
        self._set("connected", detail)

    def event(self) -> None:
        """One market-data or trade-update event arrived."""
        self.last_event = self.clock()
        self.events += 1

    def error(self, words: str, retry: bool = True) -> None:
        """Something failed; `retry` False means reconnecting cannot fix it (the state becomes error)."""
        self.last_error = words
        self.last_error_at = self.clock()
        if not retry:
            self._set("error")

    def reconnecting(self, wait: float, reason: str | None = None) -> None:
        """The stream is down and will try again after `wait` seconds (one more reconnect attempt)."""
        with self._lock:
            self.reconnects += 1
        if reason:
            self.error(reason)
        self.retry_at = self.clock() + wait
        if self.state != "error":
            self._set("reconnecting")

    def stopped(self, detail: str = "", force: bool = False) -> None:
        """The stream was stopped on purpose (a stop command, or nothing to subscribe to).

        An `error` state is kept (its cause stays visible) unless `force` (a stop command)."""
        self.retry_at = None
        if force or self.state != "error":
            self._set("stopped", detail)

    def silent(self, now: float, after: float) -> bool:
        """Connected, but no event for `after` seconds (counted from the connection when none came yet);
        or stuck connecting (no subscription acknowledged) for that long."""
        if self.state == "connecting":
            return now - self.since > after
        if self.state != "connected":
            return False
        since = max(self.last_event or 0.0, self.connected_at or 0.0)
        return now - since > after

    def health(self, now: float | None = None) -> StreamHealth:
        """The wire form for the tick channel's status."""
        now = self.clock() if now is None else now
        retry_in = max(self.retry_at - now, 0.0) if self.retry_at is not None and self.state == "reconnecting" else None
        return StreamHealth(
            name=self.name, state=self.state, since=self.since, last_event=self.last_event,  # type: ignore[arg-type]
            events=self.events, reconnects=self.reconnects, next_retry_in=retry_in, last_error=self.last_error,
            last_error_at=self.last_error_at, symbols=self.symbols, detail=self.detail,
        )


class Feed(Protocol):
    """What the live manager needs of a feed: start, stop, its monitors, and a forced reconnect."""

    monitors: list[StreamMonitor]

    def start(self) -> None:
        """Begin streaming in background threads; never blocks on the network."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every stream and wait up to `timeout` for the threads."""

    def reconnect(self, name: str, reason: str) -> None:
        """Drop and re-open stream `name` (the silence watchdog calls this)."""
