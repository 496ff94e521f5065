"""Backpressure by conflation: the newest quote per symbol wins (pure: no sockets, no threads of its own).

Stream callbacks write here and return at once; a publisher drains what changed every few
milliseconds. Whatever the feed rate and however slow the publisher, memory is bounded by the
number of symbols and a reader always gets the newest price, never a backlog (invariant 6).

Each symbol's entry merges its last quote (bid/ask and sizes) with its last trade (`last`), so a
trade does not wipe the quote and a quote does not wipe the last price.

Thread safety: callbacks may run on several stream threads while one publisher drains. One tiny
uncontended lock guards a dict assignment and a few integer increments on each side (a plain
dict swap without it could lose an update written into the old dict just after the swap).

Counters: `received` every update offered, `conflated` updates superseded by a newer one for the
same symbol before a drain published them, `dropped` updates refused (a symbol not in the plan,
a non-finite or negative price), `drained` quotes handed to the publisher.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable

from contracts.live import Quote


class Conflator:
    """The per-symbol newest-quote map with its counters (see the module doc).

    `symbols` maps each accepted symbol to its kind ('stock' or 'option'); None accepts any
    symbol with the kind the caller gives. `clock` stamps `ts_recv` (seconds since the epoch).
    """

    def __init__(self, symbols: dict[str, str] | None = None, clock: Callable[[], float] = time.time) -> None:
        self._symbols = symbols
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, Quote] = {}
        self._dirty: dict[str, Quote] = {}
        self.received = 0
        self.conflated = 0
        self.dropped = 0
        self.drained = 0

    def _kind(self, symbol: str, kind: str) -> str | None:
        if self._symbols is None:
            return kind
        return self._symbols.get(symbol)

    def _put(self, quote: Quote) -> None:
        # called with the lock held
        self._latest[quote.symbol] = quote
        if quote.symbol in self._dirty:
            self.conflated += 1
        self._dirty[quote.symbol] = quote

    def quote(
        self, symbol: str, kind: str, bid: float, ask: float, bid_size: float = 0.0, ask_size: float = 0.0,
        ts_feed: float = 0.0,
    ) -> bool:
        """Record a quote (bid/ask); keeps the symbol's last trade price. False if it was dropped."""
        now = self._clock()
        with self._lock:
            self.received += 1
            known = self._kind(symbol, kind)
            if known is None or not _price_ok(bid) or not _price_ok(ask) or not _price_ok(bid_size) \
                    or not _price_ok(ask_size):
                self.dropped += 1
                return False
            previous = self._latest.get(symbol)
            self._put(Quote(symbol, known, float(bid), float(ask), previous.last if previous else 0.0,  # type: ignore[arg-type]
                            float(bid_size), float(ask_size), ts_feed or now, now))
            return True

    def trade(self, symbol: str, kind: str, price: float, ts_feed: float = 0.0) -> bool:
        """Record a trade (the `last` price); keeps the symbol's bid/ask. False if it was dropped."""
        now = self._clock()
        with self._lock:
            self.received += 1
            known = self._kind(symbol, kind)
            if known is None or not _price_ok(price) or price == 0:
                self.dropped += 1
                return False
            p = self._latest.get(symbol)
            quote = (Quote(symbol, known, p.bid, p.ask, float(price), p.bid_size, p.ask_size, ts_feed or now, now)  # type: ignore[arg-type]
                     if p else Quote(symbol, known, last=float(price), ts_feed=ts_feed or now, ts_recv=now))  # type: ignore[arg-type]
            self._put(quote)
            return True

    def drop(self, count: int = 1) -> None:
        """Count updates refused before they reached the map (e.g. a message a feed could not read)."""
        with self._lock:
            self.received += count
            self.dropped += count

    def drain(self) -> list[Quote]:
        """The newest quote of each symbol updated since the last drain (then forgets them)."""
        with self._lock:
            dirty, self._dirty = self._dirty, {}
            self.drained += len(dirty)
        return list(dirty.values())

    def snapshot(self) -> list[Quote]:
        """The newest quote of every symbol seen so far."""
        with self._lock:
            return list(self._latest.values())

    def latest(self, symbol: str) -> Quote | None:
        """The newest quote of one symbol, or None."""
        return self._latest.get(symbol)

    def pending(self) -> int:
        """How many symbols changed since the last drain."""
        return len(self._dirty)

    def forget(self, symbols: Iterable[str] | None = None) -> None:
        """Drop the stored quotes of `symbols` (all when None), e.g. when a new plan starts."""
        with self._lock:
            if symbols is None:
                self._latest.clear()
                self._dirty.clear()
                return
            for symbol in symbols:
                self._latest.pop(symbol, None)
                self._dirty.pop(symbol, None)


def _price_ok(value: float) -> bool:
    try:
        return math.isfinite(value) and value >= 0
    except TypeError:
        return False
