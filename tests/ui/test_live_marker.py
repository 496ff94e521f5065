"""The live page's moving parts without a browser: the one server-wide marker (once per batch of ticks,
once per distinct setting, woken by ticks, aged by the clock, coalesced), its fan-out into sessions (one
pending delivery per session, a slow session skips to the newest marks, closed sessions dropped), the
grid that sends only changed cells, and the trader words of the tables.

The ticks are real: a ZeroMQ PUB socket bound at the home's tick endpoint sends `TickBatch`es in the
tick channel's wire format to a real `bus.ticks.TickFeed`. Only the Bokeh document is a stand-in
(next-tick callbacks collected and run when the test says). Waits are for conditions, never for time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
import zmq
from panel.models.esm import DataEvent

from bus.home import Home
from contracts.live import TICKS_ENDPOINT, TOPIC_TICKS, Quote, TickBatch, encode_live
from oh.domain.live_plan import option_symbol
from oh.domain.marks import mark_portfolio
from oh.domain.portfolio import Portfolio, from_data
from panel_app.live_grid import LiveHTML, PatchedTable
from panel_app.live_marks import LiveMarker, LiveMarks, MarkKey
from panel_app.live_tables import (
    contract_text,
    fills_html,
    leg_rows,
    position_rows,
    symbol_text,
)
from panel_app.live_ticks import SharedTicks

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


# ---------------------------------------------------------------- the grid sends only what changed
class Sent:
    def __init__(self, table: PatchedTable) -> None:
        self.messages: list[dict[str, Any]] = []
        table.widget._send_msg = self.messages.append  # type: ignore[method-assign]


def test_the_grid_sends_only_the_cells_that_changed() -> None:
    """The first rows go whole; then only changed cells travel ([row, column, text]); an unchanged update
    sends nothing; a different set of rows (new portfolio) or the browser's resync sends the rows again;
    message numbers follow each other so the browser can tell a missed one."""
    table = PatchedTable((("position", "Position"), ("mark", "Mark"), ("pnl", "PnL")), "t")
    sent = Sent(table)
    browser = table.widget._handle_msg  # what the grid's JavaScript sends back
    rows = [("a", "1.00", "+$1.00"), ("b", "2.00", "-$2.00")]
    assert table.update(rows) == 6
    assert sent.messages[-1] == {"seq": 1, "rows": [list(r) for r in rows]}
    browser({"ack": 1})
    assert table.update([("a", "1.05", "+$1.00"), ("b", "2.00", "-$2.50")]) == 2
    assert sent.messages[-1] == {"seq": 2, "cells": [[0, 1, "1.05"], [1, 2, "-$2.50"]]}
    browser({"ack": 2})
    assert table.update([("a", "1.05", "+$1.00"), ("b", "2.00", "-$2.50")]) == 0 and len(sent.messages) == 2
    assert table.update([("a", "1.05", "+$1.00")]) == 3 and sent.messages[-1]["rows"] == [["a", "1.05", "+$1.00"]]
    browser({"resync": 3})
    assert sent.messages[-1] == {"seq": 4, "rows": [["a", "1.05", "+$1.00"]]} and table.widget.resync_requests == 1


@pytest.mark.parametrize("window", [1, 2])
def test_a_bounded_window_so_a_slow_tab_gets_the_newest_cells_not_a_queue(window: int) -> None:
    """While `window` messages await the browser's acknowledgement, updates only replace the newest rows
    (nothing is sent); an acknowledgement sends, in one message, the cells that differ from what the browser
    will have, with their newest text. A message never acknowledged is taken as lost after the timeout."""
    table = PatchedTable((("position", "Position"), ("mark", "Mark")), "t", window=window, ack_timeout=3600.0)
    sent = Sent(table)
    browser = table.widget._handle_msg
    table.update([("a", "1.00"), ("b", "2.00")])
    browser({"ack": 1})
    for i in range(1, window + 1):  # fill the window
        assert table.update([("a", f"1.0{i}"), ("b", "2.00")]) == 1
    for i in range(10, 50):  # the browser is busy: 40 markings arrive meanwhile
        assert table.update([("a", f"1.{i:02d}"), ("b", "2.00" if i < 40 else "2.50")]) == 0
    assert len(sent.messages) == 1 + window
    browser({"ack": 2})
    assert sent.messages[-1] == {"seq": 2 + window, "cells": [[0, 1, "1.49"], [1, 1, "2.50"]]}
    browser({"ack": 1})  # an old acknowledgement releases nothing: the window is full again
    assert table.update([("a", "9.99"), ("b", "2.50")]) == 0 and len(sent.messages) == 2 + window
    lossy = PatchedTable((("position", "Position"), ("mark", "Mark")), "t", window=1, ack_timeout=0.0)
    lost = Sent(lossy)
    lossy.update([("a", "1.00")])
    assert lossy.update([("a", "1.01")]) == 1 and len(lost.messages) == 2


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
def test_a_tab_awaiting_its_acknowledgement_is_not_marked_for_until_the_acknowledgement_wakes_the_marker(
    ticks: SharedTicks, publisher: Publisher,
) -> None:
    """While the only tab cannot take marks (its last message is not acknowledged), new ticks mark nothing
    (the result would only wait): the marker holds. The acknowledgement wakes it, and the tab then gets the
    newest price at once, without waiting for another tick or the clock (an hour away)."""
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
        marker.wake(dirty=False)  # what the page's table does on an acknowledgement
        session.wait_for(lambda r: mark_of(r, "aapl") == pytest.approx(300.0))
        assert marker.rounds == rounds + 1
    finally:
        marker.stop()


def test_the_legs_and_the_summary_ride_in_the_positions_message() -> None:
    """One websocket message per update and tab: the legs table and the summary cards travel inside the
    positions table's message (`riders`), only when they changed, and never send updates of their own. A
    resync of the positions sends every rider whole; a rider's own component that (re)renders gets its full
    content directly."""
    legs = PatchedTable((("position", "Position"), ("leg", "Leg"), ("mark", "Mark")), "l", role="legs")
    summary = LiveHTML(html="", role="summary")
    positions = PatchedTable((("position", "Position"), ("mark", "Mark")), "p", riders=[legs, summary])
    sent, legs_sent = Sent(positions), Sent(legs)
    summary_sent: list[dict[str, Any]] = []
    summary._send_msg = summary_sent.append  # type: ignore[method-assign]
    browser = positions.widget._handle_msg

    legs.update([("v", "v 500 put", "6.40")])
    summary.show("<div>cards 1</div>")
    assert positions.update([("v", "1.25")]) == 2
    assert sent.messages[-1] == {"seq": 1, "rows": [["v", "1.25"]], "riders": {
        "legs": {"rows": [["v", "v 500 put", "6.40"]]}, "summary": {"html": "<div>cards 1</div>"}}}
    browser({"ack": 1})
    legs.update([("v", "v 500 put", "6.45")])
    assert positions.update([("v", "1.25")]) == 0  # only the legs changed: they still go, in a positions message
    assert sent.messages[-1] == {"seq": 2, "cells": [], "riders": {"legs": {"cells": [[0, 2, "6.45"]]}}}
    browser({"ack": 2})
    summary.show("<div>cards 2</div>")
    assert positions.update([("v", "1.30")]) == 1
    assert sent.messages[-1] == {"seq": 3, "cells": [[0, 1, "1.30"]], "riders": {"summary": {"html": "<div>cards 2</div>"}}}
    assert legs_sent.messages == [] and summary_sent == []
    browser({"resync": 3})
    assert sent.messages[-1] == {"seq": 4, "rows": [["v", "1.30"]], "riders": {
        "legs": {"rows": [["v", "v 500 put", "6.45"]]}, "summary": {"html": "<div>cards 2</div>"}}}
    legs.widget._handle_msg({"resync": 0})
    summary._handle_msg({"resync": True})
    assert legs_sent.messages == [{"seq": 1, "rows": [["v", "v 500 put", "6.45"]]}]
    assert summary_sent == [{"html": "<div>cards 2</div>"}]


def test_an_acknowledgement_is_handled_in_bokehs_own_turn_not_scheduled() -> None:
    """The browser's acknowledgement reaches the table in the same turn of the event loop that received it
    (Bokeh's handler, document locked), and the next patch leaves in that turn: nothing is scheduled on
    the document for later (Panel would add a callback, then a coroutine, then a tick for the send)."""
    table = PatchedTable((("position", "Position"), ("mark", "Mark")), "t")
    sent = Sent(table)
    table.update([("a", "1.00")])
    table.update([("a", "1.01")])  # waits: message 1 is not acknowledged
    assert len(sent.messages) == 1
    doc = FakeDoc()
    doc.session_context = object()  # a served document
    table.widget._server_event(doc, DataEvent(model=None, data={"ack": 1}))
    assert doc.callbacks == [] and table.acked == 1
    assert sent.messages[-1] == {"seq": 2, "cells": [[0, 1, "1.01"]]}


def test_a_tab_that_stops_acknowledging_gets_one_message_per_timeout_never_a_stream() -> None:
    """A message unacknowledged for the timeout lets one more go out, and then the table waits again (the
    timeout counts from the newest message sent): a tab that cannot keep up never receives a stream of
    updates that would queue in front of it, however many markings come."""
    table = PatchedTable((("position", "Position"), ("mark", "Mark")), "t", window=1, ack_timeout=3600.0)
    sent = Sent(table)
    table.update([("a", "1.00")])
    table._sent_at[1] -= 7200.0  # message 1 went two hours ago and was never acknowledged
    assert table.update([("a", "1.01")]) == 1 and len(sent.messages) == 2
    for i in range(2, 40):  # markings keep coming; the tab still acknowledges nothing
        assert table.update([("a", f"1.{i:02d}")]) == 0
    assert len(sent.messages) == 2 and table.blocked
    table.widget._handle_msg({"ack": 2})
    assert sent.messages[-1] == {"seq": 3, "cells": [[0, 1, "1.39"]]}
