"""The live page's moving parts without a browser: the one server-wide marker (once per batch of ticks,
once per distinct setting, woken by ticks, aged by the clock, coalesced), its fan-out into sessions (one
pending delivery per session, a slow session skips to the newest marks, closed sessions dropped), the
marks channel that sends each tab only the changed cells (its window, its riders, its token's end), and
the trader words of the tables.

The ticks are real: a ZeroMQ PUB socket bound at the home's tick endpoint sends `TickBatch`es in the
tick channel's wire format to a real `bus.ticks.TickFeed`. Only the Bokeh document, Tornado's event loop
and the tab's socket are stand-ins (callbacks collected and run when the test says; frames recorded). Waits are for conditions, never for time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
import zmq

from bus.home import Home
from contracts.live import TICKS_ENDPOINT, TOPIC_TICKS, Quote, TickBatch, encode_live
from oh.domain.live_plan import option_symbol
from oh.domain.marks import mark_portfolio
from oh.domain.portfolio import Portfolio, from_data
from panel_app.live_channel import ACK_TIMEOUT, CLOSE_SESSION_GONE, WINDOW, Channel, Outlet, channel_for, open_channel
from panel_app.live_marks import LiveMarker, LiveMarks, MarkKey
from panel_app.live_tables import (
    contract_text,
    fills_html,
    leg_rows,
    position_rows,
    symbol_text,
)
from panel_app.live_ticks import SharedTicks
from tests.lazy import lazy

live_grid = lazy("panel_app.live_grid")  # imports Panel: by the worker that runs these tests only (tests/lazy.py)

WAIT = 30.0  # seconds: generous, the machine is shared
PORTFOLIO = from_data({"cash": 10_000, "positions": [
    {"type": "stock", "id": "aapl", "symbol": "AAPL", "quantity": 10, "cost_basis": 180.0},
    {"type": "option", "id": "aapl-call", "symbol": "AAPL", "expiry": "2030-01-18", "right": "call", "strike": 252.5,
     "quantity": 2, "cost_basis": 4.00},
    {"type": "structure", "id": "spy-bull-put", "symbol": "SPY", "kind": "vertical", "net_debit": -1.25,
     "legs": [{"expiry": "2030-01-18", "right": "put", "strike": 500, "quantity": -1, "cost": 6.40},
              {"expiry": "2030-01-18", "right": "put", "strike": 490, "quantity": 1, "cost": 5.15}]},
]})
CALL = option_symbol(PORTFOLIO.positions[1].occ, "sim")  # type: ignore[union-attr]


class FakeDoc:
    """A Bokeh document stand-in: next-tick callbacks (scheduled from any thread) run when the test says."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []
        self.session_context = None
        self._lock = threading.Lock()

    def add_next_tick_callback(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self.callbacks.append(callback)

    def run(self) -> int:
        with self._lock:
            callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()
        return len(callbacks)


class Session:
    """One page's side: a fake document and the marks it applied."""

    def __init__(self) -> None:
        self.doc = FakeDoc()
        self.applied: list[LiveMarks] = []

    def handler(self, result: LiveMarks) -> None:
        self.applied.append(result)

    def wait_for(self, done: Callable[[LiveMarks], bool]) -> LiveMarks:
        """Run this session's pending deliveries until one satisfies `done`."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            self.doc.run()
            if self.applied and done(self.applied[-1]):
                return self.applied[-1]
            time.sleep(0.01)
        raise AssertionError(f"no delivered marks satisfied the condition; last: {self.applied[-1:]}")


class Publisher:
    """The live_stream side of the tick channel: a PUB socket sending quote batches."""

    def __init__(self, home: Home) -> None:
        self.sock = zmq.Context.instance().socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(home.endpoint(TICKS_ENDPOINT))
        self.seq = 0

    def send(self, prices: dict[str, tuple[float, float]], at: float | None = None) -> None:
        stamp = time.time() if at is None else at
        self.seq += 1
        quotes = [Quote(symbol, "option" if len(symbol) > 8 else "stock", bid, ask, 0.0, 1, 1, stamp, stamp)
                  for symbol, (bid, ask) in prices.items()]
        self.sock.send_multipart([TOPIC_TICKS, encode_live(TickBatch(self.seq, stamp, False, quotes))])

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def publisher(home: Home) -> Iterator[Publisher]:
    pub = Publisher(home)
    yield pub
    pub.close()


@pytest.fixture
def ticks(home: Home, publisher: Publisher) -> Iterator[SharedTicks]:
    shared = SharedTicks(home)
    yield shared
    shared.close()


def key(stale_after: float = 30.0, portfolio: str = "p1") -> MarkKey:
    return MarkKey(portfolio=portfolio, provider="sim", stale_after=stale_after)


def mark_of(result: LiveMarks, position_id: str) -> float | None:
    return next(p.mark for p in result.marks.positions if p.position_id == position_id)


def feed_until(publisher: Publisher, ticks: SharedTicks, prices: dict[str, tuple[float, float]]) -> None:
    """Publish until the feed has the quotes (a SUB socket misses what is sent before it joined)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        publisher.send(prices)
        time.sleep(0.02)
        quotes = ticks.feed.quotes
        if all(s in quotes and quotes[s].bid == bid for s, (bid, _) in prices.items()):
            return
    raise AssertionError("the tick feed never received the quotes")


# ---------------------------------------------------------------- one marking, many sessions
def test_sessions_with_the_same_settings_share_one_marking_per_round(ticks: SharedTicks, publisher: Publisher) -> None:
    """Three tabs on the same portfolio and stale threshold: each round marks the portfolio once and every
    tab gets that same result (not three markings); a tab with another stale threshold adds one marking."""
    feed_until(publisher, ticks, {"AAPL": (199.9, 200.1), CALL: (5.0, 5.2)})
    marker = LiveMarker(ticks)  # not started: the test drives the rounds
    sessions = [Session() for _ in range(3)]
    for s in sessions:
        marker.subscribe(s.doc, key(), PORTFOLIO, s.handler)
    assert marker.mark_round() == 1
    for s in sessions:
        assert s.doc.run() == 1
    results = [s.applied[-1] for s in sessions]
    assert results[0] is results[1] is results[2]
    expected = mark_portfolio(PORTFOLIO, ticks.feed.quotes, now=results[0].now, provider="sim")
    assert results[0].marks == expected and mark_of(results[0], "aapl") == pytest.approx(200.0)
    other = Session()
    marker.subscribe(other.doc, key(stale_after=5.0), PORTFOLIO, other.handler)
    assert marker.mark_round() == 2
    assert sum(s.doc.run() for s in [*sessions, other]) == 4
    assert other.applied[-1] is not sessions[0].applied[-1]
    assert other.applied[-1].key.stale_after == 5.0 and sessions[0].applied[-1].key.stale_after == 30.0


def test_a_slow_session_skips_to_the_newest_marks_without_queueing(ticks: SharedTicks) -> None:
    """A tab whose event loop is busy has one delivery pending however many rounds pass, and applies the
    newest marks when it runs; a fast tab gets every round; neither holds the other back."""
    marker = LiveMarker(ticks)
    slow, fast = Session(), Session()
    marker.subscribe(slow.doc, key(), PORTFOLIO, slow.handler)
    marker.subscribe(fast.doc, key(), PORTFOLIO, fast.handler)
    rounds = 5
    for _ in range(rounds):
        marker.mark_round()
        assert fast.doc.run() == 1
    assert len(slow.doc.callbacks) == 1
    assert slow.doc.run() == 1
    assert len(slow.applied) == 1 and slow.applied[0] is fast.applied[-1]
    assert slow.applied[0].number == marker.markings and len(fast.applied) == rounds


def test_a_closed_session_gets_nothing_more_and_an_empty_marker_marks_nothing(ticks: SharedTicks) -> None:
    """A closed tab (session destroyed) is dropped: no more deliveries, and with no tab left a round marks
    nothing at all."""
    marker = LiveMarker(ticks)
    session = Session()
    subscription = marker.subscribe(session.doc, key(), PORTFOLIO, session.handler)
    marker.mark_round()
    subscription.close()
    assert session.doc.run() == 1 and session.applied == []  # the pending delivery finds it closed
    assert marker.sessions == 0 and marker.mark_round() == 0 and session.doc.callbacks == []
    subscription.close()  # twice is fine


def test_a_session_that_loads_another_portfolio_is_marked_with_it(ticks: SharedTicks, publisher: Publisher) -> None:
    """The portfolio file changed: the session's next marks are of the new portfolio (its own key)."""
    feed_until(publisher, ticks, {"AAPL": (199.9, 200.1)})
    marker = LiveMarker(ticks)
    session = Session()
    subscription = marker.subscribe(session.doc, key(), PORTFOLIO, session.handler)
    marker.mark_round()
    session.doc.run()
    smaller = Portfolio(cash=PORTFOLIO.cash, positions=PORTFOLIO.positions[:1])
    subscription.change(key(portfolio="p2"), smaller)
    marker.mark_round()
    session.doc.run()
    latest = session.applied[-1]
    assert latest.key.portfolio == "p2" and [p.position_id for p in latest.marks.positions] == ["aapl"]


# ---------------------------------------------------------------- the thread: woken by ticks, aged by the clock
def test_new_ticks_wake_the_marker(ticks: SharedTicks, publisher: Publisher) -> None:
    """With the clock tick far away (an hour), only new ticks can make the marker mark again: a new price
    reaches the session's marks."""
    marker = LiveMarker(ticks, mark_every=0.01, clock_every=3600.0)
    marker.start()
    try:
        session = Session()
        marker.subscribe(session.doc, key(), PORTFOLIO, session.handler)
        for bid in (199.9, 299.9, 149.9):
            deadline = time.monotonic() + WAIT
            while not (session.applied and mark_of(session.applied[-1], "aapl") == pytest.approx(bid + 0.1)):
                assert time.monotonic() < deadline, f"the price {bid} never reached the marks"
                publisher.send({"AAPL": (bid, bid + 0.2)})  # again: the first may precede the SUB's join
                time.sleep(0.02)
                session.doc.run()
    finally:
        marker.stop()


def test_without_ticks_the_clock_turns_marks_stale(ticks: SharedTicks, publisher: Publisher) -> None:
    """The feed stops completely: the marker still marks by the clock, so the quote's age grows and the
    position turns stale after the session's threshold (ages are measured against the clock)."""
    feed_until(publisher, ticks, {"AAPL": (199.9, 200.1)})
    marker = LiveMarker(ticks, mark_every=0.01, clock_every=0.1)
    marker.start()
    try:
        session = Session()
        marker.subscribe(session.doc, key(stale_after=0.5), PORTFOLIO, session.handler)
        first = session.wait_for(lambda r: mark_of(r, "aapl") is not None)
        stale = session.wait_for(lambda r: next(p for p in r.marks.positions if p.position_id == "aapl").stale)
        assert stale.now > first.now and stale.number > first.number
    finally:
        marker.stop()


def test_a_burst_of_ticks_is_coalesced_into_few_markings(ticks: SharedTicks, publisher: Publisher) -> None:
    """Hundreds of batches as fast as they can be sent: the marker never marks more often than once per
    `mark_every` (so fewer markings than batches), and the last price is the one shown."""
    feed_until(publisher, ticks, {"AAPL": (199.9, 200.1)})
    marker = LiveMarker(ticks, mark_every=0.05, clock_every=3600.0)
    marker.start()
    try:
        session = Session()
        marker.subscribe(session.doc, key(), PORTFOLIO, session.handler)
        session.wait_for(lambda r: mark_of(r, "aapl") is not None)
        rounds0, batches0, started = marker.rounds, ticks.feed.batches, time.monotonic()
        for i in range(400):
            publisher.send({"AAPL": (100.0 + i, 100.2 + i)})
        session.wait_for(lambda r: mark_of(r, "aapl") == pytest.approx(499.1))
        elapsed = time.monotonic() - started
        rounds, batches = marker.rounds - rounds0, ticks.feed.batches - batches0
        assert rounds < batches
        assert rounds <= elapsed / marker.mark_every + 2
    finally:
        marker.stop()


# ---------------------------------------------------------------- the channel sends only what changed
class FakeLoop:
    """Tornado's IOLoop stand-in: callbacks (added from any thread) run when the test says."""

    def __init__(self) -> None:
        self.callbacks: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self.timers: list[tuple[float, Callable[..., None], tuple[Any, ...]]] = []  # (delay, callback, args)

    def add_callback(self, callback: Callable[..., None], *args: Any) -> None:
        self.callbacks.append((callback, args))

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> object:
        self.timers.append((delay, callback, args))
        return object()

    def fire(self) -> int:
        """Run the timeouts set so far (as if their time had come)."""
        timers, self.timers = self.timers, []
        for _, callback, args in timers:
            callback(*args)
        return len(timers)

    def run(self) -> int:
        callbacks, self.callbacks = self.callbacks, []
        for callback, args in callbacks:
            callback(*args)
        return len(callbacks)


class FakeSocket:
    """A tab's socket as the channel sees it: the frames written (decoded), the close; `slow`: writes stay
    under way until `drain()` (the kernel's buffer is full)."""

    def __init__(self, slow: bool = False) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed: int | None = None
        self.slow = slow
        self.pending: list[Future[None]] = []

    def write_message(self, text: str) -> Future[None]:
        self.frames.append(json.loads(text))
        future: Future[None] = Future()
        if self.slow:
            self.pending.append(future)
        else:
            future.set_result(None)
        return future

    def drain(self) -> None:
        pending, self.pending = self.pending, []
        for future in pending:
            future.set_result(None)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = code


@dataclass
class Marking:
    """A marking as the channel's page takes it: rows per table (and no trace)."""

    positions: list[tuple[str, ...]]
    legs: list[tuple[str, ...]] = field(default_factory=list)
    summary: str = ""
    trace: tuple[float, ...] = ()


def channel_of(positions: live_grid.PatchedTable, legs: live_grid.PatchedTable | None = None,
               summary: live_grid.LiveHTML | None = None) -> tuple[Channel, FakeLoop]:
    loop = FakeLoop()

    def apply(marking: Marking) -> None:
        if legs is not None:
            legs.update(marking.legs)
        if summary is not None:
            summary.show(marking.summary)
        positions.update(marking.positions)

    channel = open_channel(loop, positions, apply)  # type: ignore[arg-type]
    channel.frame_every = 0.0  # no cadence, and every marking fresh: the tests below that are about the window
    channel.fresh = float("inf")  # (the cadence's and the freshness's own tests set them)
    return channel, loop


def offer(channel: Channel, loop: FakeLoop, marking: Marking) -> None:
    """The marker hands a marking over; the event loop runs the flush."""
    channel.offer(marking)  # type: ignore[arg-type]
    loop.run()


def test_the_channel_sends_only_the_cells_that_changed() -> None:
    """A new socket gets the full rows; then only changed cells travel ([row, column, text]); an unchanged
    marking sends nothing; a different set of rows (new portfolio) or the browser's resync sends the rows
    again; frame numbers follow each other so the browser can tell a missed one."""
    table = live_grid.PatchedTable((("position", "Position"), ("mark", "Mark"), ("pnl", "PnL")), "t")
    channel, loop = channel_of(table)
    socket = FakeSocket()
    rows = [("a", "1.00", "+$1.00"), ("b", "2.00", "-$2.00")]
    offer(channel, loop, Marking(rows))  # no socket yet: kept
    assert socket.frames == []
    channel.bind(socket)
    assert socket.frames[-1] == {"seq": 1, "positions": {"rows": [list(r) for r in rows]}}
    assert channel.acknowledged(socket, 1)
    offer(channel, loop, Marking([("a", "1.05", "+$1.00"), ("b", "2.00", "-$2.50")]))
    assert socket.frames[-1] == {"seq": 2, "positions": {"cells": [[0, 1, "1.05"], [1, 2, "-$2.50"]]}}
    assert channel.acknowledged(socket, 2)
    offer(channel, loop, Marking([("a", "1.05", "+$1.00"), ("b", "2.00", "-$2.50")]))
    assert len(socket.frames) == 2
    offer(channel, loop, Marking([("a", "1.05", "+$1.00")]))
    assert socket.frames[-1] == {"seq": 3, "positions": {"rows": [["a", "1.05", "+$1.00"]]}}
    channel.resync(socket)
    assert socket.frames[-1] == {"seq": 4, "positions": {"rows": [["a", "1.05", "+$1.00"]]}}
    assert not channel.acknowledged(socket, 5)  # a frame it was never sent: the socket is closed for it
    channel.close()


@pytest.mark.parametrize("slow_write", [False, True])
def test_a_slow_tab_gets_the_newest_cells_in_one_frame_not_a_queue(slow_write: bool) -> None:
    """While the tab has WINDOW frames unacknowledged (or, `slow_write`, while a write is still under way),
    markings only replace the newest rows and the marker is told not to mark for it (`ready`); the
    acknowledgement (or the write's end) sends, in one frame, the cells that differ from what the tab has,
    with their newest text. Once there is room again and nothing left to send, the marker is woken. An old
    acknowledgement releases nothing."""
    table = live_grid.PatchedTable((("position", "Position"), ("mark", "Mark")), "t")
    channel, loop = channel_of(table)
    woken: list[bool] = []
    socket = FakeSocket(slow=slow_write)
    offer(channel, loop, Marking([("a", "1.00"), ("b", "2.00")]))
    channel.bind(socket)  # the full rows: frame 1
    channel.on_ready = lambda: woken.append(True)
    if slow_write:
        assert channel.acknowledged(socket, 1)  # the tab has it, but its write has not ended here yet
        assert not channel.ready()  # frame 1 is still being written
    else:
        for i in range(1, WINDOW):  # fill the window
            offer(channel, loop, Marking([("a", f"1.0{i}"), ("b", "2.00")]))
        assert len(socket.frames) == WINDOW and not channel.ready()
    sent = len(socket.frames)
    for i in range(10, 50):  # the browser is busy: 40 markings arrive meanwhile
        offer(channel, loop, Marking([("a", f"1.{i:02d}"), ("b", "2.00" if i < 40 else "2.50")]))
    assert len(socket.frames) == sent and woken == []
    if slow_write:
        socket.drain()
    else:
        assert channel.acknowledged(socket, 1)
    assert len(socket.frames) == sent + 1
    assert socket.frames[-1]["positions"]["cells"] == [[0, 1, "1.49"], [1, 1, "2.50"]]
    assert woken == [] and not channel.ready()  # the catch-up frame fills the window (is being written) again
    if not slow_write:
        assert channel.acknowledged(socket, 1)  # old: releases nothing
        offer(channel, loop, Marking([("a", "9.99"), ("b", "2.50")]))
        assert len(socket.frames) == sent + 1
        while socket.frames[-1]["seq"] > channel.outlets[socket].acked:  # the tab catches up
            assert channel.acknowledged(socket, socket.frames[-1]["seq"])
        assert socket.frames[-1]["positions"]["cells"] == [[0, 1, "9.99"]]
    else:
        socket.drain()  # the catch-up frame is written, and the tab acknowledges it
        assert channel.acknowledged(socket, sent + 1)
    assert woken and channel.ready()  # room, nothing left to send: the marker may mark again
    channel.close()


def test_a_tab_that_stops_acknowledging_gets_one_frame_per_timeout_never_a_stream() -> None:
    """A window unacknowledged for ACK_TIMEOUT after its newest frame lets one more go out, and then the channel
    waits again (the timeout counts from the newest frame): a tab that cannot keep up never receives a stream
    of frames that would queue in front of it, however many markings come."""
    table = live_grid.PatchedTable((("position", "Position"), ("mark", "Mark")), "t")
    channel, loop = channel_of(table)
    socket = FakeSocket()
    channel.bind(socket)
    for i in range(WINDOW):
        offer(channel, loop, Marking([("a", f"1.0{i}")]))
    outlet = channel.outlets[socket]
    assert len(socket.frames) == WINDOW
    outlet.sent_at[outlet.seq] -= 2 * ACK_TIMEOUT  # the newest frame went long ago, never acknowledged
    offer(channel, loop, Marking([("a", "1.50")]))
    assert len(socket.frames) == WINDOW + 1
    for i in range(2, 40):
        offer(channel, loop, Marking([("a", f"1.{i + 50:02d}")]))
    assert len(socket.frames) == WINDOW + 1 and not channel.ready()
    assert channel.acknowledged(socket, WINDOW + 1)
    assert socket.frames[-1]["positions"] == {"cells": [[0, 1, "1.89"]]}
    channel.close()


def test_a_socket_gets_its_frames_at_its_cadence_and_the_newest_cells_when_its_turn_comes() -> None:
    """Frames to one socket take the turns of the server's grid, `frame_every` apart (OH_LIVE_FRAME_MS), one frame a
    turn at most, however fast the markings and the acknowledgements come: a marking between two turns waits (and the marker is told the tab cannot take
    one, `ready`); the socket's turn (a timeout set when its acknowledgement came early) sends the newest cells in
    one frame. A new socket's full rows do not wait."""
    table = live_grid.PatchedTable((("position", "Position"), ("mark", "Mark")), "t")
    channel, loop = channel_of(table)
    channel.frame_every = 0.2
    socket = FakeSocket()
    offer(channel, loop, Marking([("a", "1.00")]))
    channel.bind(socket)
    assert socket.frames == [{"seq": 1, "positions": {"rows": [["a", "1.00"]]}}]
    assert channel.acknowledged(socket, 1)  # acknowledged before the next turn: the turn is set for later
    assert [0.0 < delay <= 0.2 for delay, _, _ in loop.timers] == [True]  # the grid's next point
    for i in range(1, 30):  # markings meanwhile: none goes, and the marker is told this tab cannot take one
        offer(channel, loop, Marking([("a", f"1.{i:02d}")]))
        assert not channel.ready()
    assert len(socket.frames) == 1
    channel.outlets[socket].due -= 0.2  # its time has come
    assert loop.fire() == 1
    assert socket.frames[-1] == {"seq": 2, "positions": {"cells": [[0, 1, "1.29"]]}}
    assert channel.acknowledged(socket, 2) and len(loop.timers) == 1  # the next turn
    channel.close()


@pytest.mark.parametrize("marker_has_news", [True, False])
def test_a_turn_asks_the_marker_for_fresh_marks_rather_than_sending_old_ones(marker_has_news: bool) -> None:
    """When a socket's turn comes (here: its acknowledgement) and the newest marking is older than `fresh`
    (OH_LIVE_MARK_MS), the marker is asked for a fresh one, which then goes at once; only when the marker has
    nothing newer to mark does the old marking go. (Sending the held one, its quotes had aged by up to a frame.)"""
    table = live_grid.PatchedTable((("position", "Position"), ("mark", "Mark")), "t")
    channel, loop = channel_of(table)
    socket = FakeSocket()
    channel.bind(socket)
    offer(channel, loop, Marking([("a", "1.00")]))  # the window is full: held
    assert len(socket.frames) == 1
    channel.fresh = 0.0  # every marking is old by now
    asked: list[bool] = []
    channel.on_ready = lambda: asked.append(True) or marker_has_news
    assert channel.acknowledged(socket, 1)
    assert asked == [True]
    if marker_has_news:
        assert len(socket.frames) == 1 and channel.ready()  # nothing old went; the marker's marking goes at once:
        offer(channel, loop, Marking([("a", "1.07")]))
        assert socket.frames[-1] == {"seq": 2, "positions": {"rows": [["a", "1.07"]]}}
    else:
        assert socket.frames[-1] == {"seq": 2, "positions": {"rows": [["a", "1.00"]]}}
    channel.close()


def test_a_turn_waits_for_a_marking_already_on_its_way_rather_than_sending_old_rows() -> None:
    """Every tab's turn opens at one point of the server's grid; the first asks the marker for a marking, and a turn
    that comes while that marking is on its way to the event loop (handed over, its flush not yet run) waits for it:
    the marker, asked again, has nothing new (it took the news already), and sending then would send the old rows."""
    table = live_grid.PatchedTable((("position", "Position"), ("mark", "Mark")), "t")
    channel, loop = channel_of(table)
    socket = FakeSocket()
    channel.bind(socket)
    offer(channel, loop, Marking([("a", "1.00")]))  # the window is full: held
    channel.fresh = 0.0  # every marking applied so far is old
    channel.on_ready = lambda: False  # the marker took the news: nothing new to mark
    channel.offer(Marking([("a", "1.07")]))  # type: ignore[arg-type]  # a marking on its way, its flush not yet run
    assert channel.acknowledged(socket, 1)  # the turn comes meanwhile
    assert len(socket.frames) == 1  # nothing old went
    loop.run()
    assert socket.frames[-1] == {"seq": 2, "positions": {"rows": [["a", "1.07"]]}}
    channel.close()


def test_the_marker_says_a_marking_is_coming_while_one_is_under_way(ticks: SharedTicks, publisher: Publisher) -> None:
    """`wake(dirty=False)` (a tab's turn) answers True while a round is marking, though the round took the news:
    its result is coming, and a tab whose turn opened meanwhile waits for it instead of sending old rows. After
    the round, with nothing new, it answers False."""
    feed_until(publisher, ticks, {"AAPL": (199.9, 200.1), CALL: (5.0, 5.2)})
    marker = LiveMarker(ticks)  # not started: the test drives the rounds
    answers: list[bool] = []
    first, second = Session(), Session()
    marker.subscribe(first.doc, key(), PORTFOLIO, lambda result: answers.append(marker.wake(dirty=False)), direct=True)
    marker.subscribe(second.doc, key(), PORTFOLIO, second.handler)
    assert marker.mark_round() == 1
    assert answers == [True]  # asked during the round (the first session's turn, while the second's result is coming)
    assert not marker.wake(dirty=False)  # after it: nothing new since


def test_the_legs_and_the_summary_ride_in_the_positions_frame() -> None:
    """One frame per marking and tab: the legs table and the summary cards travel inside it under their roles,
    only when they changed; a resync (or a new socket) sends every part whole. Each socket of a session is
    diffed against what it was sent."""
    legs = live_grid.PatchedTable((("position", "Position"), ("leg", "Leg"), ("mark", "Mark")), "l", role="legs", carrier=False)
    summary = live_grid.LiveHTML(html="", role="summary")
    positions = live_grid.PatchedTable((("position", "Position"), ("mark", "Mark")), "p", riders=[legs, summary])
    channel, loop = channel_of(positions, legs, summary)
    first, second = FakeSocket(), FakeSocket()
    channel.bind(first)
    channel.acknowledged(first, 1)
    offer(channel, loop, Marking([("v", "1.25")], [("v", "v 500 put", "6.40")], "<div>cards 1</div>"))
    assert first.frames[-1] == {"seq": 2, "positions": {"rows": [["v", "1.25"]]},
                                "legs": {"rows": [["v", "v 500 put", "6.40"]]}, "summary": {"html": "<div>cards 1</div>"}}
    channel.acknowledged(first, 2)
    offer(channel, loop, Marking([("v", "1.25")], [("v", "v 500 put", "6.45")], "<div>cards 1</div>"))
    assert first.frames[-1] == {"seq": 3, "positions": {"cells": []}, "legs": {"cells": [[0, 2, "6.45"]]}}
    channel.acknowledged(first, 3)
    channel.bind(second)  # another socket of the session (a reconnect): everything, whole
    assert second.frames[-1] == {"seq": 1, "positions": {"rows": [["v", "1.25"]]},
                                 "legs": {"rows": [["v", "v 500 put", "6.45"]]}, "summary": {"html": "<div>cards 1</div>"}}
    channel.acknowledged(second, 1)
    offer(channel, loop, Marking([("v", "1.30")], [("v", "v 500 put", "6.45")], "<div>cards 2</div>"))
    for socket, seq in ((first, 4), (second, 2)):
        assert socket.frames[-1] == {"seq": seq, "positions": {"cells": [[0, 1, "1.30"]]},
                                     "summary": {"html": "<div>cards 2</div>"}}
    channel.resync(first)
    assert first.frames[-1] == {"seq": 5, "positions": {"rows": [["v", "1.30"]]},
                                "legs": {"rows": [["v", "v 500 put", "6.45"]]}, "summary": {"html": "<div>cards 2</div>"}}
    channel.close()


def test_an_acknowledgement_sends_the_next_frame_in_its_own_turn() -> None:
    """The tab's acknowledgement reaches the channel in the socket's handler, and the frame waiting for it leaves
    in that same turn of the event loop: nothing is scheduled for later."""
    table = live_grid.PatchedTable((("position", "Position"), ("mark", "Mark")), "t")
    channel, loop = channel_of(table)
    socket = FakeSocket()
    offer(channel, loop, Marking([("a", "1.00")]))
    channel.bind(socket)
    assert channel.acknowledged(socket, 1)
    for i in range(1, WINDOW + 2):  # fills the window; the last one waits
        offer(channel, loop, Marking([("a", f"1.0{i}")]))
    assert len(socket.frames) == 1 + WINDOW
    assert channel.acknowledged(socket, 1 + WINDOW) and loop.callbacks == []
    assert socket.frames[-1] == {"seq": WINDOW + 2, "positions": {"cells": [[0, 1, f"1.0{WINDOW + 1}"]]}}
    channel.close()


def test_a_closed_session_kills_its_token_and_closes_its_sockets() -> None:
    """The session ended: its token no longer names a channel, its sockets are closed (4001), and a marking that
    was on its way sends nothing."""
    table = live_grid.PatchedTable((("position", "Position"), ("mark", "Mark")), "t")
    channel, loop = channel_of(table)
    socket = FakeSocket()
    channel.bind(socket)
    assert channel_for(channel.token) is channel
    channel.offer(Marking([("a", "1.00")]))  # type: ignore[arg-type]
    channel.close()
    loop.run()
    assert channel_for(channel.token) is None and socket.closed == CLOSE_SESSION_GONE and len(socket.frames) == 1
    channel.close()  # twice is fine


def test_a_direct_subscription_is_handed_its_marks_in_the_markers_thread(ticks: SharedTicks) -> None:
    """A page with a marks channel takes each result in the marker's own round, without its document: nothing
    is scheduled on the document, and the page's `ready` (its socket can take a frame) decides whether the
    marker marks for it."""
    marker = LiveMarker(ticks)
    session = Session()
    subscription = marker.subscribe(session.doc, key(), PORTFOLIO, session.handler, direct=True)
    marker.mark_round()
    assert len(session.applied) == 1 and session.doc.callbacks == [] and subscription.delivered == 1
    subscription.ready = lambda: False
    assert not subscription.wants()
    subscription.close()


# ---------------------------------------------------------------- trader words
def test_contracts_and_numbers_read_as_a_trader_reads_them() -> None:
    """A single-leg option shows underlying, expiry, strike and right; a structure its kind, expiry and
    strikes, each leg in the same words; money has a currency sign and separators, PnL a sign, missing
    values a dash (never 0 or blank); a warning names a contract in words, not its OCC symbol."""
    now = time.time()
    quotes = {"AAPL": Quote("AAPL", "stock", 1999.9, 2000.1, 0, 1, 1, now, now),
              CALL: Quote(CALL, "option", 5.0, 9.0, 0, 1, 1, now, now)}
    marks = mark_portfolio(PORTFOLIO, quotes, now=now, provider="sim", today=date(2029, 12, 1))
    by_id = {p.position_id: p for p in marks.positions}
    assert contract_text(by_id["aapl"]) == "AAPL shares"
    assert contract_text(by_id["aapl-call"]) == "AAPL 18 Jan 30 252.5 call"
    assert contract_text(by_id["spy-bull-put"]) == "SPY put vertical 18 Jan 30 490/500"
    rows = {r[0]: r for r in position_rows(marks, quotes)}
    assert rows["aapl"][2:7] == ("+10", "2,000.00", "+$18,200.00", "+1011.1%", "$20,000.00")
    assert rows["aapl-call"][7] == "48" and rows["aapl-call"][8] == "57.1%"
    assert rows["aapl-call"][11] == "wide spread (57%)"
    assert rows["spy-bull-put"][3] == "—" and "SPY 18 Jan 30 500 put" in rows["spy-bull-put"][11]
    assert CALL not in " ".join(" ".join(r) for r in rows.values())
    legs = leg_rows(marks, quotes)
    assert [leg[1] for leg in legs] == ["SPY 18 Jan 30 500 put", "SPY 18 Jan 30 490 put"] and legs[0][2] == "-1"
    assert legs[0][3:7] == ("—", "—", "—", "—")  # no quote: mark, PnL, bid, ask
    assert symbol_text(CALL) == "AAPL 18 Jan 30 252.5 call" and symbol_text("AAPL") == "AAPL"
    fills = fills_html([{"ts": None, "symbol": CALL, "event": "fill", "side": "buy", "qty": 2.0, "price": 4.1,
                         "order_id": "o1"}])
    assert "AAPL 18 Jan 30 252.5 call" in fills and ">2<" in fills and ">4.10<" in fills and "2.00" not in fills


# ---------------------------------------------------------------- one message per marking, marked on demand
def test_a_tab_that_cannot_take_a_frame_is_not_marked_for_until_its_socket_wakes_the_marker(
    ticks: SharedTicks, publisher: Publisher,
) -> None:
    """While the only tab cannot take marks (its socket's window is full), new ticks mark nothing (the result
    would only wait): the marker holds. The acknowledgement wakes it, and the tab then gets the newest price
    at once, without waiting for another tick or the clock (an hour away)."""
    feed_until(publisher, ticks, {"AAPL": (199.9, 200.1)})
    marker = LiveMarker(ticks, mark_every=0.01, clock_every=3600.0)
    marker.start()
    try:
        session = Session()
        subscription = marker.subscribe(session.doc, key(), PORTFOLIO, session.handler)
        session.wait_for(lambda r: mark_of(r, "aapl") == pytest.approx(200.0))
        can_take = threading.Event()
        subscription.ready = can_take.is_set
        rounds, held = marker.rounds, marker.held
        deadline = time.monotonic() + WAIT
        while marker.held == held or ticks.feed.quotes["AAPL"].bid != 299.9:
            assert time.monotonic() < deadline, "the marker never looked at the new ticks"
            publisher.send({"AAPL": (299.9, 300.1)})
            time.sleep(0.02)
        assert marker.rounds == rounds and session.doc.run() == 0
        can_take.set()
        marker.wake(dirty=False)  # what the page's channel does on an acknowledgement
        session.wait_for(lambda r: mark_of(r, "aapl") == pytest.approx(300.0))
        assert marker.rounds == rounds + 1
    finally:
        marker.stop()


def test_every_socket_s_turns_fall_on_the_server_s_one_grid() -> None:
    """A socket's next turn opens at the next multiple of the cadence on the monotonic clock: the same points for
    every socket of the server, so the tabs' turns come at one instant and one marking serves them all (each tab on
    a grid of its own took a marking made up to `fresh` earlier for another tab, its quotes older by that). A turn
    counts from the grid, not from the write (the marking and the send after a turn take a few ms); a frame that
    went late (a slow acknowledgement, a resync) takes the next point after it: never a gap over a cadence, and at
    most one frame per point."""
    a, b = Outlet(FakeSocket()), Outlet(FakeSocket())
    a.wrote(10.03, 0.1)  # two tabs' first frames (their resyncs), at other moments
    b.wrote(10.07, 0.1)
    assert a.due == pytest.approx(10.1) and b.due == pytest.approx(10.1)  # one turn for both
    a.wrote(10.13, 0.1)  # went 30 ms into its turn (marking, send)
    assert a.due == pytest.approx(10.2)  # on the grid; counted from the write it would open at 10.23
    a.wrote(10.29, 0.1)  # 90 ms late (an acknowledgement came late)
    assert a.due == pytest.approx(10.3)  # the next point: 10 ms on, not a cadence on
    a.wrote(10.3, 0.1)  # right on a point (the clock's float): the next one, never the same
    assert a.due == pytest.approx(10.4)
    zero = Outlet(FakeSocket())
    zero.wrote(10.3, 0.0)  # no cadence: a turn as soon as the acknowledgement comes
    assert zero.due == pytest.approx(10.3)
