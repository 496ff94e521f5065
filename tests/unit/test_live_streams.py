"""Stream supervision pieces: backoff with jitter, errors in words, monitor states and silence,
Alpaca trade-update parsing, and the restart rule (resume only a keep_running start)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from contracts import StartLive, StopLive
from oh.adapters.alpaca.activities import fill_id
from oh.adapters.alpaca.stream import trade_update_event, trading_stream_url
from oh.adapters.streams import Backoff, StreamMonitor, describe_error
from services.live_stream import resume_plan


def test_backoff_grows_exponentially_within_equal_jitter_and_caps() -> None:
    backoff, rng = Backoff(base=0.5, cap=8.0), random.Random(7)
    for attempt, full in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)):
        waits = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(full / 2 <= w <= full for w in waits)
        assert max(waits) - min(waits) > full / 4  # jittered, not constant


@pytest.mark.parametrize(("error", "code", "words", "retry"), [
    ("insufficient subscription", None, "no entitlement for this feed", False),
    ("", 409, "no entitlement for this feed", False),
    ("auth failed", None, "authentication failed", False),
    ("failed to authenticate", None, "authentication failed", False),
    ("connection limit exceeded", None, "connection limit exceeded", True),
    ("symbol limit exceeded", 405, "symbol limit exceeded", False),
    (ConnectionRefusedError(111, "Connection refused"), None, "cannot connect: connection refused", True),
    (TimeoutError(), None, "timed out", True),
])
def test_errors_in_words(error: object, code: int | None, words: str, retry: bool) -> None:
    said, may_retry = describe_error(error, code)  # type: ignore[arg-type]
    assert words in said and may_retry is retry


def test_monitor_states_reconnects_and_silence() -> None:
    now = [100.0]
    m = StreamMonitor("stocks", symbols=3, clock=lambda: now[0])
    assert m.state == "stopped"
    m.connecting()
    assert not m.silent(110.0, 60) and m.silent(161.0, 60)  # stuck connecting counts as silent
    now[0] = 101.0
    m.connected("subscribed")
    assert not m.silent(150.0, 60) and m.silent(162.0, 60)
    now[0] = 120.0
    m.event()
    assert not m.silent(179.0, 60) and m.silent(181.0, 60)
    m.reconnecting(2.0, "disconnected by the server")
    h = m.health(120.5)
    assert (h.state, h.reconnects, h.last_error, h.events, h.symbols) == ("reconnecting", 1, "disconnected by the server", 1, 3)
    assert h.next_retry_in == pytest.approx(1.5) and not m.silent(999.0, 60)
    m.error("no entitlement", retry=False)
    m.stopped()
    assert m.state == "error"  # the cause stays visible
    m.stopped(force=True)
    assert m.state == "stopped" and m.health().next_retry_in is None


ORDER = {"id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "symbol": "AAPL300118C00250000", "side": "sell", "qty": "3",
         "filled_qty": "2", "filled_avg_price": "4.1"}


def test_trade_updates_become_events_with_stable_ids() -> None:
    fill = {"stream": "trade_updates", "data": {"event": "partial_fill", "order": ORDER, "price": "4.1", "qty": "2",
            "execution_id": "e1", "timestamp": "2026-11-23T15:30:00.123456789Z"}}
    event = trade_update_event(fill)
    assert event is not None
    assert (event.event, event.symbol, event.side, event.qty, event.price) == ("partial_fill", ORDER["symbol"], "sell", 2.0, 4.1)
    assert event.filled_at == datetime(2026, 11, 23, 15, 30, 0, 123456, tzinfo=UTC)
    assert trade_update_event(fill).id == event.id  # type: ignore[union-attr]
    # a fill's id is the order's and its filled quantity after the execution: the id REST gives it too
    assert event.id == fill_id(ORDER["id"], "2")
    other = dict(fill, data=dict(fill["data"], execution_id="e2", order=dict(ORDER, filled_qty="3")))
    assert trade_update_event(other).id != event.id  # type: ignore[union-attr]
    new = trade_update_event({"data": {"event": "new", "order": ORDER, "timestamp": "2026-11-23T15:29:59Z"}})
    assert new is not None and (new.qty, new.price, new.filled_at) == (3.0, None, None)
    no_price = trade_update_event({"data": {"event": "fill", "order": ORDER, "timestamp": "2026-11-23T15:29:59Z"}})
    assert no_price is not None and (no_price.qty, no_price.price) == (2.0, 4.1)  # from the order
    assert trade_update_event({"data": {"event": "fill"}}) is None
    assert trade_update_event({}) is None


def test_trading_stream_url_follows_the_trading_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OH_ALPACA_TRADING_STREAM_URL", raising=False)
    assert trading_stream_url("https://paper-api.alpaca.markets") == "wss://paper-api.alpaca.markets/stream"
    assert trading_stream_url("http://127.0.0.1:8080/") == "ws://127.0.0.1:8080/stream"
    monkeypatch.setenv("OH_ALPACA_TRADING_STREAM_URL", "ws://elsewhere/stream")
    assert trading_stream_url("https://api.alpaca.markets") == "ws://elsewhere/stream"


def test_restart_resumes_only_a_handled_keep_running_start() -> None:
    keep, plain, stop = StartLive(keep_running=True), StartLive(), StopLive()
    assert resume_plan([], 0) == (None, set())
    assert resume_plan([(5, keep)], 5) == (keep, set())
    assert resume_plan([(5, plain)], 5) == (None, set())
    assert resume_plan([(5, keep), (9, stop)], 9) == (None, set())
    # commands the worker never handled are delivered by the runtime: resume nothing, skip all but the last
    later = StartLive()
    resume, superseded = resume_plan([(5, keep), (7, stop), (8, plain), (9, later)], 5)
    assert resume is None and superseded == {stop.id, plain.id}
