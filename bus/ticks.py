"""Reading the tick channel (contracts.live): for the dashboard, `oh live status`, tests and benchmarks.

`TickSubscriber` connects a SUB socket to Home.endpoint("ticks") and keeps what a page needs: the
newest quote per symbol (`quotes`, conflated on this side too, so a slow reader never works through
a backlog), the newest LiveStatus, and `lost` (tick batches this subscriber's high-water mark
dropped, from gaps in `seq`; the next once-a-second snapshot makes the map whole again).
`poll()` returns what arrived, each with its receive time, for callers that want every batch.

A subscriber must keep draining its socket: ZeroMQ drops the *newest* messages once its queue is
full, so a reader that only polls when it renders reads old batches. `TickFeed` is the shape for a
page: a thread drains continuously, and readers take `quotes`/`status` (fresh copies) at their own pace,
or register a listener (`add_listener`) that the thread calls after each drain that brought something
(event-driven readers, e.g. the dashboard's marker, which only sets an Event there).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import zmq

from bus.home import Home
from contracts.live import (
    TICKS_ENDPOINT,
    TOPIC_STATUS,
    TOPIC_TICKS,
    LiveMessage,
    LiveStatus,
    Quote,
    TickBatch,
    decode_live,
)

RCVHWM = 64


class TickSubscriber:
    """A subscriber of the tick channel (see module doc); `ticks=False` receives status only."""

    def __init__(self, home: Home, *, ticks: bool = True, status: bool = True, rcvhwm: int = RCVHWM,
                 ctx: zmq.Context | None = None) -> None:  # type: ignore[type-arg]
        self.endpoint = home.endpoint(TICKS_ENDPOINT)
        self.sock = (ctx or zmq.Context.instance()).socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        if ticks:
            self.sock.setsockopt(zmq.SUBSCRIBE, TOPIC_TICKS)
        if status:
            self.sock.setsockopt(zmq.SUBSCRIBE, TOPIC_STATUS)
        self.sock.connect(self.endpoint)
        self.quotes: dict[str, Quote] = {}
        self.status: LiveStatus | None = None
        self.last_seq = 0
        self.lost = 0
        self.batches = 0
        self.bad = 0

    def poll(self, timeout_ms: int = 100) -> list[tuple[float, LiveMessage]]:
        """Everything that arrived within `timeout_ms` (then without waiting), with receive times."""
        out: list[tuple[float, LiveMessage]] = []
        if not self.sock.poll(timeout_ms):
            return out
        while True:
            try:
                _, payload = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return out
            except ValueError:  # not two frames
                self.bad += 1
                continue
            received = time.time()
            try:
                message = decode_live(payload)
            except msgspec.DecodeError:
                self.bad += 1
                continue
            self._apply(message)
            out.append((received, message))

    def _apply(self, message: LiveMessage) -> None:
        if isinstance(message, TickBatch):
            self.batches += 1
            if self.last_seq and message.seq > self.last_seq + 1:
                self.lost += message.seq - self.last_seq - 1
            self.last_seq = message.seq  # a smaller seq: the publisher restarted
            for quote in message.quotes:
                known = self.quotes.get(quote.symbol)
                if known is None or quote.ts_recv >= known.ts_recv:
                    self.quotes[quote.symbol] = quote
        else:
            if self.status is not None and message.pid != self.status.pid:
                self.last_seq = 0
            self.status = message

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def read_status(home: Home, timeout: float = 3.0) -> LiveStatus | None:
    """The next LiveStatus the live_stream worker publishes, or None if none comes within `timeout`."""
    if home.endpoint(TICKS_ENDPOINT).startswith("ipc://") and not Path(home.endpoint(TICKS_ENDPOINT)[6:]).exists():
        return None
    subscriber = TickSubscriber(home, ticks=False)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            subscriber.poll(int(max(deadline - time.monotonic(), 0) * 1000) + 1)
            if subscriber.status is not None:
                return subscriber.status
        return None
    finally:
        subscriber.close()


class TickFeed(threading.Thread):
    """A TickSubscriber drained by its own thread; `quotes`, `status` and `lost` are replaced (never
    mutated) after each drain, so any thread may read them at any pace without a lock. After each
    drain that brought something, `version` goes up by one and every listener is called (on this
    thread: a listener must return at once, e.g. set an Event)."""

    def __init__(self, home: Home, *, ticks: bool = True) -> None:
        super().__init__(name="tick-feed", daemon=True)
        self.home = home
        self.ticks = ticks
        self.quotes: dict[str, Quote] = {}
        self.status: LiveStatus | None = None
        self.lost = 0
        self.batches = 0
        self.version = 0
        self.stopped = threading.Event()
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every drain that brought something (on the feed's thread)."""
        self._listeners = [*self._listeners, listener]

    def run(self) -> None:
        subscriber = TickSubscriber(self.home, ticks=self.ticks)
        try:
            while not self.stopped.is_set():
                if subscriber.poll(100):
                    self.quotes = dict(subscriber.quotes)
                    self.status, self.lost, self.batches = subscriber.status, subscriber.lost, subscriber.batches
                    self.version += 1
                    for listener in self._listeners:
                        listener()
        finally:
            subscriber.close()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread and close its socket."""
        self.stopped.set()
        self.join(timeout)
