"""The dashboard's one live marker: marks the portfolio once per batch of ticks, for every live-page session.

Before, each session marked the whole portfolio itself on a 250 ms timer and sent its whole rows
list on any change: N tabs cost N markings, and a quote waited up to 250 ms for the next timer.
Now one `LiveMarker` thread per server (per OH_HOME), next to the shared tick reader
(panel_app.live_ticks), does it once and hands the result to every open Live session:

- **Event-driven.** It sleeps on an Event that the feed's thread sets after every drain that brought
  something (`TickFeed.add_listener`), that a session sets when it subscribes or changes its
  settings, and that times out after `CLOCK_EVERY` (1 s): quote ages and the stale flag move with
  the clock, so a feed that stops completely still turns every mark stale.
- **Coalesced.** It marks at most once every `MARK_EVERY` (`OH_LIVE_MARK_MS`, default 25 ms).
  Quotes that arrive while it marks or waits are marked together the next time, so it never runs
  more often than that and never builds a backlog, however fast the feed.
- **On demand.** Between clock ticks it marks only when something is new *and* some session can
  send the result to its tab at once (`Subscription.wants`: no delivery pending, and the page's
  `ready()`: its channel's socket is not still writing the last frame, has room in its window and its
  turn in the cadence has come). A marking for tabs that all
  still wait would only be kept until then and replaced, so it is skipped (`held` counts those
  wake-ups); the end of the write wakes the marker (`wake(dirty=False)`), which then marks the newest quotes. On a
  busy machine this halved the `oh ui` process's CPU (bench/live_browser) and the marks sent are
  the freshest at the moment the tab can take them.
- **Once per distinct setting.** Sessions are grouped by their `MarkKey` (a digest of the
  portfolio they loaded, the provider, the stale threshold). Each group is marked once
  (`oh.domain.marks.mark_book`, on a MarkBook built once per portfolio and provider) and its
  display rows are formatted once (panel_app.live_tables).
- **Fan-out.** Each session's `Subscription` hands the result to its page. A page with a marks
  channel (the live page: panel_app.live_channel) takes it right here, in the marker's thread
  (`direct`): its channel keeps only the newest result and has the server's event loop write the
  changed cells to the tab's socket, without the session's document or its lock. Otherwise the
  subscription keeps only the newest result (a newer one replaces one not yet delivered) and
  schedules at most one delivery at a time on its own document's event loop with
  `Document.add_next_tick_callback`, the one Document method that is safe to call from another
  thread; the delivery runs the page's handler with the document lock held. Either way a slow tab
  skips to the newest marks instead of queueing old ones, and never slows the marker or the other tabs.
- A session's page closes its subscription when Bokeh destroys the session (tab closed); with no
  subscriptions the marker sleeps until the next one.
- **Trace** (`OH_LIVE_TRACE=1`, set by bench/live_browser): each result carries the times of its hops
  (newest feed stamp, live_stream's receipt, the feed's drain here, marking start and end, marking
  CPU); the channel adds when it was handed the result, how long it waited for the previous frame's
  write, the diff's CPU, how long the previous write took and the send time to the positions' frames, and
  the browser keeps them with its receive and apply times (window.__ohTrace).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bus.home import Home
from oh.domain.limits import Breach, breaches
from oh.domain.marks import MarkBook, PortfolioMarks, book, mark_book
from oh.domain.portfolio import Portfolio
from panel_app import live_ticks
from panel_app.live_tables import Row, leg_rows, position_rows, summary_html
from services.settings import env_int

log = logging.getLogger(__name__)

TRACE = os.environ.get("OH_LIVE_TRACE") == "1"  # stamp each hop into the page's messages (bench/live_browser)
MARK_EVERY = env_int("OH_LIVE_MARK_MS", 25, 0) / 1000.0  # at most one marking per this many seconds
CLOCK_EVERY = 1.0  # seconds: mark at least this often while anyone watches (ages move with the clock)


@dataclass(frozen=True, slots=True)
class MarkKey:
    """What decides a marking: the portfolio (a digest of its content), the provider and the stale threshold.
    Sessions with equal keys share one marking."""

    portfolio: str  # a digest of the portfolio's content (pages/live.py)
    provider: str
    stale_after: float


@dataclass(frozen=True)
class LiveMarks:
    """One marking of one portfolio, formatted for the page: what every session with this key shows."""

    key: MarkKey  # the sessions it was made for
    number: int  # the marker's count of markings so far
    now: float  # the clock the ages were measured against
    marks: PortfolioMarks
    positions: list[Row]
    legs: list[Row]
    summary: str  # the cards' HTML
    quoted: int  # symbols with a quote
    breaches: tuple[Breach, ...]  # risk-profile limits broken at these marks
    trace: tuple[float, ...] = ()  # with OH_LIVE_TRACE: (newest feed ts, newest recv ts, heard, mark start, mark end, mark cpu)


Handler = Callable[[LiveMarks], None]


class Subscription:
    """One session's place at the marker: its key and portfolio, and the way into its document."""

    def __init__(self, marker: LiveMarker, doc: Any, key: MarkKey, portfolio: Portfolio, handler: Handler,
                 direct: bool = False) -> None:
        self.marker = marker
        self.direct = direct  # the handler takes results in the marker's thread (it must be quick and thread-safe)
        self.doc = doc
        self.setting = (key, portfolio)  # replaced whole (one assignment), so the marker never reads half of it
        self.handler = handler
        self.ready: Callable[[], bool] = lambda: True  # the page: whether it can send marks to its tab right now
        self.offered = 0  # results handed over by the marker
        self.delivered = 0  # results the page applied (fewer when a newer one replaced one in waiting)
        self.closed = False
        self._latest: LiveMarks | None = None
        self._scheduled = False
        self._lock = threading.Lock()

    @property
    def key(self) -> MarkKey:
        """The setting this session is marked with."""
        return self.setting[0]

    def change(self, key: MarkKey, portfolio: Portfolio) -> None:
        """The session loaded another portfolio or changed a setting: mark it that way, now."""
        if key != self.setting[0]:
            self.setting = (key, portfolio)
            self.marker.wake()

    def wants(self) -> bool:
        """Whether a marking made now would go to the tab at once (no delivery pending, the page ready)."""
        return not self._scheduled and not self.closed and self.ready()

    def offer(self, result: LiveMarks) -> None:
        """Hand over a result (marker thread): keep only the newest; schedule one delivery at most."""
        with self._lock:
            if self.closed:
                return
            self.offered += 1
            if not self.direct:
                self._latest = result
                if self._scheduled:
                    return
                self._scheduled = True
        if self.direct:
            try:
                self.handler(result)
                self.delivered += 1
            except Exception:
                log.exception("live marks: a page failed to take its marks")
            return
        try:
            self.doc.add_next_tick_callback(self._deliver)
        except Exception:  # the document is gone (session destroyed between two checks)
            log.debug("live marks: session gone", exc_info=True)
            self.close()

    def _deliver(self) -> None:
        with self._lock:
            result, self._latest, self._scheduled = self._latest, None, False
        if result is None or self.closed:
            return
        try:
            from panel.io.state import set_curdoc

            with set_curdoc(self.doc):  # so Panel sends the page's changes now, not on a further tick
                self.handler(result)
            self.delivered += 1
        except Exception:
            log.exception("live marks: a page failed to apply its marks")

    def close(self) -> None:
        """Stop receiving (the session was destroyed); safe to call twice."""
        with self._lock:
            self.closed = True
            self._latest = None
        self.marker.remove(self)


class LiveMarker(threading.Thread):
    """The server's one marker thread for one home (see the module docstring)."""

    def __init__(self, ticks: live_ticks.SharedTicks, mark_every: float = MARK_EVERY,
                 clock_every: float = CLOCK_EVERY) -> None:
        super().__init__(name="oh-ui-live-marker", daemon=True)
        self.ticks = ticks
        self.mark_every = mark_every
        self.clock_every = clock_every
        self.markings = 0  # portfolio markings done (one per distinct key per round)
        self.rounds = 0  # wake-ups that marked something
        self.held = 0  # wake-ups that marked nothing: no tab could take a marking (each still writes its last frame)
        self._subscriptions: list[Subscription] = []
        self._books: dict[tuple[str, str], MarkBook] = {}
        self._lock = threading.Lock()
        self._signal = threading.Event()  # set by the feed after a drain, and by wake()
        self._stopped = threading.Event()
        self.heard = 0.0  # when the feed last brought something (time.time())
        self._dirty = True  # new ticks or a new setting since the last marking
        self._marking = False  # a round is under way (its result is coming)
        ticks.feed.add_listener(self._heard)

    def _heard(self) -> None:
        self.heard = time.time()
        self._dirty = True
        self._signal.set()

    # ---------------------------------------------------------------- sessions
    def subscribe(self, doc: Any, key: MarkKey, portfolio: Portfolio, handler: Handler,
                  direct: bool = False) -> Subscription:
        """Register a session; it gets its first marks at once, then after every new batch of ticks (`direct`: the
        handler is called in the marker's thread, see Subscription)."""
        subscription = Subscription(self, doc, key, portfolio, handler, direct)
        with self._lock:
            self._subscriptions.append(subscription)
        self.wake()
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Forget a subscription (idempotent)."""
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    @property
    def sessions(self) -> int:
        """How many sessions are subscribed."""
        with self._lock:
            return len(self._subscriptions)

    def wake(self, dirty: bool = True) -> bool:
        """Mark now (a session subscribed or changed its settings), without waiting for ticks; `dirty=False`:
        only look again whether a session can take what is new (its socket finished a write, its turn came).
        Returns whether there is something new to mark or a marking under way (a marking is coming if a session
        can take it: the tabs whose turns open at one instant all wait for the one marking the first turn asked for)."""
        if dirty:
            self._dirty = True
        self._signal.set()
        return self._dirty or self._marking

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread."""
        self._stopped.set()
        self.wake()
        self.join(timeout)

    # ---------------------------------------------------------------- the loop
    def run(self) -> None:
        last = -float("inf")  # no marking yet (not 0.0: time.monotonic() counts from the boot, and on a machine up
        # for less than clock_every the first round waited for the clock although a session's wake had come)
        while not self._stopped.is_set():
            try:
                if not self.sessions:
                    self._signal.wait(self.clock_every)
                    self._signal.clear()
                    continue
                self._signal.wait(max(last + self.clock_every - time.monotonic(), 0.0))
                pause = last + self.mark_every - time.monotonic()
                if pause > 0:  # coalesce: what arrives meanwhile is marked in this round
                    self._stopped.wait(pause)
                self._signal.clear()  # from here on, new ticks call for another round
                if not self._due(last):
                    self.held += 1
                    continue
                last = time.monotonic()
                self.mark_round()
            except Exception:
                log.exception("live marker: a round failed; going on")
                self._stopped.wait(0.5)

    def _due(self, last: float) -> bool:
        """Whether to mark now: once a CLOCK_EVERY in any case (ages move); otherwise when something is new and a
        session can send it to its tab at once. A tab whose socket still writes the last frame would only keep
        the result until then, so marking for it would be wasted work: the write's end wakes the marker."""
        if time.monotonic() - last >= self.clock_every:
            return True
        if not self._dirty:
            return False
        with self._lock:
            subscriptions = list(self._subscriptions)
        return any(s.wants() for s in subscriptions)

    def mark_round(self, now: float | None = None) -> int:
        """Mark each distinct key once with the newest quotes and offer the results; returns the markings. Ticks that
        come meanwhile call for another round; a tab's turn that comes meanwhile is told a marking is coming (`wake`)."""
        self._marking = True
        self._dirty = False
        try:
            return self._mark_round(now)
        finally:
            self._marking = False

    def _mark_round(self, now: float | None) -> int:
        with self._lock:
            subscriptions = list(self._subscriptions)
        if not subscriptions:
            return 0
        started, cpu0, heard = time.time(), time.thread_time(), self.heard
        view = self.ticks.view(now)
        clock = time.time() if now is None else now
        status_provider = view.status.provider if view.status is not None and view.status.provider else ""
        groups: dict[MarkKey, tuple[Portfolio, list[Subscription]]] = {}
        for subscription in subscriptions:
            key, portfolio = subscription.setting
            groups.setdefault(key, (portfolio, []))[1].append(subscription)
        used: set[tuple[str, str]] = set()
        for key, (portfolio, members) in groups.items():
            provider = status_provider or key.provider
            book_key = (key.portfolio, provider)
            used.add(book_key)
            marks_book = self._books.get(book_key)
            if marks_book is None:
                marks_book = self._books[book_key] = book(portfolio, provider)
            marks = mark_book(marks_book, view.quotes, now=clock, stale_after=key.stale_after)
            self.markings += 1
            result = LiveMarks(
                key=key, number=self.markings, now=clock, marks=marks, positions=position_rows(marks, view.quotes),
                legs=leg_rows(marks, view.quotes), summary=summary_html(marks, len(view.quotes), self.markings),
                quoted=len(view.quotes),
                breaches=tuple(breaches(marks, portfolio.risk_profile, cash=portfolio.cash,
                                        currency=portfolio.base_currency)),
            )
            if TRACE:
                newest = max((q.ts_feed for q in view.quotes.values()), default=0.0)
                recv = max((q.ts_recv for q in view.quotes.values()), default=0.0)
                result = replace(result, trace=(newest, recv, heard, started, time.time(), time.thread_time() - cpu0))
            for subscription in members:
                subscription.offer(result)
        for stale_key in set(self._books) - used:
            del self._books[stale_key]
        self.rounds += 1
        return len(groups)


_markers: dict[str, LiveMarker] = {}
_lock = threading.Lock()


def shared(home: Home) -> LiveMarker:
    """The server's one LiveMarker for `home` (with the shared tick reader), started on first use."""
    ticks = live_ticks.shared(home)
    key = str(home.root)
    with _lock:
        marker = _markers.get(key)
        if marker is None or not marker.is_alive() or marker.ticks is not ticks:
            marker = _markers[key] = LiveMarker(ticks)
            marker.start()
            log.info("live marker started (at most one marking per %.0f ms)", 1000 * marker.mark_every)
        return marker
