"""The dashboard's one tick-channel reader, shared by every live-page session of the server process.

Why one: each SUB socket costs the live_stream publisher a send per batch, and each reader must
drain continuously (ZeroMQ drops the *newest* batches once a queue is full, see bus.ticks).
So the server runs a single `bus.ticks.TickFeed` (a daemon thread that drains the channel and
keeps only the latest state: the newest quote per symbol and the newest LiveStatus) and every
session reads an immutable `TickView` of it at its own pace. Nothing queues per session, so a slow
tab or a burst of quotes never grows memory: the state is bounded by the number of symbols.

The feed starts with the first live-page session (a server whose users never open the page never
subscribes) and runs until the process exits.

Silence rule: live_stream publishes a LiveStatus every 0.5 s, idle or not. When none is newer than
`SILENT_AFTER` seconds by the clock (the status's own `ts` against `time.time()`, same machine),
the page says "live_stream not answering" (crashed, killed, or never started).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from dataclasses import dataclass

from bus.home import Home
from bus.ticks import TickFeed
from contracts.live import LiveStatus, Quote

log = logging.getLogger(__name__)

SILENT_AFTER = 2.0  # seconds without a LiveStatus before the page says live_stream is not answering


@dataclass(frozen=True, slots=True)
class TickView:
    """What one session reads at one instant: the newest quotes and status, and how old the status is."""

    quotes: dict[str, Quote]
    status: LiveStatus | None
    status_age: float | None  # seconds since the newest status was published (None: never heard)
    lost: int  # tick batches the shared subscriber's high-water mark dropped since it started
    batches: int

    @property
    def answering(self) -> bool:
        """Whether live_stream published a status within the last SILENT_AFTER seconds."""
        return self.status_age is not None and self.status_age <= SILENT_AFTER


class SharedTicks:
    """The process-wide TickFeed and a count of the sessions reading it."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.feed = TickFeed(home)
        self.feed.start()
        self.sessions = 0
        self._lock = threading.Lock()

    def view(self, now: float | None = None) -> TickView:
        """The latest state (the feed replaces its maps after each drain, so this needs no lock)."""
        feed = self.feed
        status = feed.status
        clock = time.time() if now is None else now
        age = max(clock - status.ts, 0.0) if status is not None else None
        return TickView(quotes=feed.quotes, status=status, status_age=age, lost=feed.lost, batches=feed.batches)

    def attach(self) -> None:
        """A session started reading."""
        with self._lock:
            self.sessions += 1

    def detach(self) -> None:
        """A session ended (its tab closed)."""
        with self._lock:
            self.sessions = max(self.sessions - 1, 0)

    def close(self) -> None:
        """Stop the feed thread and close its socket."""
        self.feed.close()


_shared: dict[str, SharedTicks] = {}
_lock = threading.Lock()


def shared(home: Home) -> SharedTicks:
    """The server's one SharedTicks for `home`, started on first use."""
    key = str(home.root)
    with _lock:
        ticks = _shared.get(key)
        if ticks is None or not ticks.feed.is_alive():
            ticks = _shared[key] = SharedTicks(home)
            log.info("tick feed started on %s", home.endpoint("ticks"))
        return ticks


def close_all() -> None:
    """Stop every shared feed (at exit; tests)."""
    with _lock:
        for ticks in _shared.values():
            ticks.close()
        _shared.clear()


atexit.register(close_all)
