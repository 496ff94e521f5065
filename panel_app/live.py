"""Live through the bus: one subscriber per server process, fanned out to every browser session.

A single thread owns the `bus.subscriber.Subscriber` (committed events in seq order, gaps repaired
from the journal) and polls the ledger's status once a second. For each committed event it first
drops the cached query results the event makes stale, then hands a small `LiveEvent` (no row
payloads) to every session's `SessionFeed`. A feed is a bounded buffer: when a session falls behind,
the oldest items are dropped and the session is told it lost some (it then re-reads from queries).
The thread never touches a session's Bokeh document itself: it schedules one drain on the
document's own event loop (`add_next_tick_callback`, the thread-safe way in), and the drain runs
the page's handler with the document lock held. Closing a session removes its feed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bus.control_client import ControlClient, LedgerUnavailable
from bus.home import Home
from bus.subscriber import Subscriber
from contracts import Message
from panel_app.data import Queries

log = logging.getLogger(__name__)

STATUS_EVERY = 1.0  # seconds between ledger status polls (liveness, ledger up/down)
STATUS_TIMEOUT = 2.0  # seconds a status poll waits
STATS_EVERY = 60.0  # seconds between the hub's counters in the log


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """What a page needs to know of one committed event: its kind, run and partition, never its rows."""

    seq: int
    type: str
    received: float
    run_id: str | None = None
    job_name: str | None = None
    status: str | None = None
    partition: str | None = None
    asset_key: str | None = None
    error: str | None = None
    at: datetime | None = None
    symbols: tuple[str, ...] = ()


def _partition(message: Message) -> str | None:
    symbol = getattr(message, "symbol", None)
    day = next((getattr(message, n) for n in ("snapshot_date", "bar_date", "as_of") if hasattr(message, n)), None)
    if symbol and isinstance(day, date):
        return f"{symbol}|{day}"
    if symbol:
        return str(symbol)
    return str(day) if day is not None else getattr(message, "partition_key", None)


def _symbols(message: Message) -> tuple[str, ...]:
    symbol = getattr(message, "symbol", None)
    if symbol:
        return (str(symbol),)
    args = getattr(message, "args_json", None)
    if args:
        try:
            found = json.loads(args).get("symbols") or ()
            return tuple(str(s) for s in found)
        except (ValueError, AttributeError):
            return ()
    return ()


def summarize(seq: int, message: Message, received: float | None = None) -> LiveEvent:
    """The LiveEvent of one committed message."""
    at = next((getattr(message, n) for n in ("ended_at", "started_at", "checked_at") if getattr(message, n, None)),
              getattr(message, "ts", None))
    return LiveEvent(
        seq=seq, type=type(message).__name__, received=time.time() if received is None else received,
        run_id=getattr(message, "run_id", None), job_name=getattr(message, "job_name", None),
        status=getattr(message, "status", None), partition=_partition(message),
        asset_key=getattr(message, "asset_key", None), error=getattr(message, "error_message", None), at=at,
        symbols=_symbols(message),
    )


@dataclass(frozen=True, slots=True)
class LedgerState:
    """The ledger as last polled: up or not, its seqs, and every service's last heartbeat."""

    up: bool
    checked: float
    head_seq: int = 0
    applied_seq: int = 0
    started_at: float = 0.0
    heartbeats: dict[str, dict[str, Any]] = field(default_factory=dict)


Handler = Callable[[list[LiveEvent], LedgerState | None, bool], None]


class SessionFeed:
    """One browser session's bounded buffer; drained on the session's own event loop."""

    def __init__(self, hub: LiveHub, doc: Any, handler: Handler, maxlen: int = 256) -> None:
        self.hub = hub
        self.doc = doc
        self.handler = handler
        self.events: deque[LiveEvent] = deque(maxlen=maxlen)
        self.state: LedgerState | None = None
        self.lost = 0
        self.delivered = 0
        self.closed = False
        self._lock = threading.Lock()
        self._scheduled = False

    def push(self, event: LiveEvent | None = None, state: LedgerState | None = None) -> None:
        """Queue an event and/or the latest ledger state (called from the hub thread)."""
        with self._lock:
            if self.closed:
                return
            if event is not None:
                if len(self.events) == self.events.maxlen:
                    self.lost += 1
                self.events.append(event)
            if state is not None:
                self.state = state
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.doc.add_next_tick_callback(self._drain)
        except Exception:
            self.close()

    def _drain(self) -> None:
        with self._lock:
            events, state, lost = list(self.events), self.state, self.lost
            self.events.clear()
            self.state = None
            self.lost = 0
            self._scheduled = False
        if self.closed:
            return
        self.delivered += len(events)
        try:
            from panel.io.state import set_curdoc

            with set_curdoc(self.doc):
                self.handler(events, state, lost > 0)
        except Exception:
            log.exception("a page failed to apply live updates")

    def close(self) -> None:
        """Stop receiving (the session was destroyed); safe to call twice."""
        with self._lock:
            self.closed = True
            self.events.clear()
        self.hub.remove(self)


class LiveHub:
    """The server's one subscriber thread and the feeds of the open sessions."""

    def __init__(self, home: Home, queries: Queries, maxlen: int = 256) -> None:
        self.home = home
        self.queries = queries
        self.maxlen = maxlen
        self.state = LedgerState(up=False, checked=0.0)
        self.events_seen = 0
        self._misses = 0
        self._feeds: list[SessionFeed] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oh-ui-live", daemon=True)

    def start(self) -> LiveHub:
        """Start the subscriber thread."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close its sockets."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def subscribe(self, doc: Any, handler: Handler) -> SessionFeed:
        """Register a session; it gets the current ledger state at once, then every event."""
        feed = SessionFeed(self, doc, handler, self.maxlen)
        with self._lock:
            self._feeds.append(feed)
        if self.state.checked:  # not before the first poll: "down" would only mean "not asked yet"
            feed.push(state=self.state)
        return feed

    def remove(self, feed: SessionFeed) -> None:
        """Forget a feed (idempotent)."""
        with self._lock:
            if feed in self._feeds:
                self._feeds.remove(feed)

    @property
    def sessions(self) -> int:
        """How many sessions are subscribed."""
        with self._lock:
            return len(self._feeds)

    def _fan_out(self, event: LiveEvent | None = None, state: LedgerState | None = None) -> None:
        with self._lock:
            feeds = list(self._feeds)
        for feed in feeds:
            feed.push(event, state)

    def _run(self) -> None:
        subscriber = Subscriber(self.home)
        status_client = ControlClient(self.home, timeout=STATUS_TIMEOUT)
        next_status = next_stats = 0.0
        try:
            while not self._stop.is_set():
                try:
                    self._step(subscriber)
                    if time.monotonic() >= next_status:
                        next_status = time.monotonic() + STATUS_EVERY
                        self._poll_status(status_client)
                    if time.monotonic() >= next_stats:
                        next_stats = time.monotonic() + STATS_EVERY
                        log.info("live hub: %d events, %d sessions, cache %d entries (%d hits, %d misses)",
                                 self.events_seen, self.sessions, self.queries.size, self.queries.hits,
                                 self.queries.misses)
                except Exception:
                    log.exception("live hub iteration failed; going on")
                    time.sleep(0.5)
        finally:
            subscriber.close()
            status_client.close()

    def _step(self, subscriber: Subscriber) -> None:
        """Deliver what the subscriber has (waiting up to 100 ms)."""
        batch = subscriber.poll(100)
        received = time.time()
        for seq, message in batch:
            self.events_seen += 1
            event = summarize(seq, message, received)
            self.queries.invalidate(event.type)
            self._fan_out(event=event)

    def _poll_status(self, client: ControlClient) -> None:
        """Ask the ledger's status; it is down when its socket is gone or after two unanswered polls in a row
        (one slow answer on a busy machine is not an outage)."""
        previous = self.state
        reply = None
        if self.queries.socket_exists():
            try:
                reply = client.status(timeout=STATUS_TIMEOUT)
            except LedgerUnavailable:
                self._misses += 1
                if self._misses < 2 and previous.up:
                    return
        now = time.time()
        if reply is None:
            state = LedgerState(up=False, checked=now, heartbeats={})
        else:
            self._misses = 0
            state = LedgerState(up=True, checked=now, head_seq=reply.head_seq, applied_seq=reply.applied_seq,
                                started_at=reply.started_at, heartbeats=dict(reply.heartbeats))
        if state.up and (not previous.up or previous.started_at != state.started_at):
            self.queries.clear()  # a restarted ledger may have rebuilt its warehouse
        if state.up != previous.up and previous.checked:
            log.warning("the ledger is %s", "answering again" if state.up else "not answering")
        self.queries.set_up(state.up)
        self.state = state
        self._fan_out(state=state)
