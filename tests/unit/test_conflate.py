"""Conflation: the newest quote per symbol wins, quotes and trades merge, counters add up, threads are safe."""

from __future__ import annotations

import math
import threading

from oh.domain.conflate import Conflator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_newest_quote_wins_and_is_drained_once() -> None:
    clock = Clock()
    c = Conflator({"AAPL": "stock", "AAPL300118C00250000": "option"}, clock=clock)
    assert c.quote("AAPL", "stock", 10.0, 10.2, 1, 2, ts_feed=999.0)
    clock.now = 1001.0
    assert c.quote("AAPL", "stock", 10.1, 10.3)
    assert c.quote("AAPL300118C00250000", "option", 1.0, 1.1)
    assert (c.received, c.conflated, c.dropped) == (3, 1, 0)
    drained = {q.symbol: q for q in c.drain()}
    assert set(drained) == {"AAPL", "AAPL300118C00250000"}
    aapl = drained["AAPL"]
    assert (aapl.bid, aapl.ask, aapl.kind, aapl.ts_feed, aapl.ts_recv) == (10.1, 10.3, "stock", 1001.0, 1001.0)
    assert drained["AAPL300118C00250000"].kind == "option"
    assert c.drain() == [] and c.drained == 2 and c.pending() == 0
    assert {q.symbol for q in c.snapshot()} == set(drained)


def test_trades_set_last_without_wiping_the_quote_and_back() -> None:
    c = Conflator({"AAPL": "stock"})
    c.trade("AAPL", "stock", 10.15, ts_feed=5.0)
    first = c.latest("AAPL")
    assert first is not None and (first.bid, first.ask, first.last) == (0.0, 0.0, 10.15)
    c.quote("AAPL", "stock", 10.1, 10.2, 3, 4, ts_feed=6.0)
    c.trade("AAPL", "stock", 10.18, ts_feed=7.0)
    q = c.latest("AAPL")
    assert q is not None and (q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.ts_feed) == (10.1, 10.2, 10.18, 3, 4, 7.0)
    c.quote("AAPL", "stock", 10.2, 10.3)
    assert c.latest("AAPL").last == 10.18  # type: ignore[union-attr]


def test_unplanned_symbols_and_bad_prices_are_dropped_and_counted() -> None:
    c = Conflator({"AAPL": "option"})
    assert not c.quote("TSLA", "stock", 1.0, 1.1)
    assert not c.quote("AAPL", "stock", math.nan, 1.1)
    assert not c.quote("AAPL", "stock", -1.0, 1.1)
    assert not c.trade("AAPL", "stock", 0.0)
    assert not c.trade("AAPL", "stock", math.inf)
    assert not c.quote("AAPL", "stock", None, 1.0)  # type: ignore[arg-type]
    c.drop(2)
    assert (c.received, c.dropped, c.pending()) == (8, 8, 0)
    assert c.quote("AAPL", "stock", 1.0, 1.1)
    assert c.latest("AAPL").kind == "option"  # type: ignore[union-attr]  # the plan's kind wins


def test_any_symbol_without_a_plan_and_forget() -> None:
    c = Conflator()
    c.quote("X", "stock", 1, 2)
    c.quote("Y", "option", 1, 2)
    c.forget(["X"])
    assert [q.symbol for q in c.snapshot()] == ["Y"] and [q.symbol for q in c.drain()] == ["Y"]
    c.forget()
    assert c.snapshot() == []


def test_writers_on_many_threads_lose_nothing_they_did_not_supersede() -> None:
    """Every accepted update is either published by a drain or superseded (conflated): none vanishes."""
    symbols = [f"S{i}" for i in range(50)]
    c = Conflator(dict.fromkeys(symbols, "stock"))
    per_thread = 20_000
    published: list[str] = []
    done = threading.Event()

    def write(offset: int) -> None:
        for n in range(per_thread):
            c.quote(symbols[(n + offset) % len(symbols)], "stock", 1.0 + n, 2.0 + n)

    def drain() -> None:
        while not done.is_set():
            published.extend(q.symbol for q in c.drain())
        published.extend(q.symbol for q in c.drain())

    drainer = threading.Thread(target=drain)
    drainer.start()
    writers = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    drainer.join()
    assert c.received == 4 * per_thread and c.dropped == 0
    assert len(published) + c.conflated == c.received
    assert c.drained == len(published)
