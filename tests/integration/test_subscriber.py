"""Subscribers see every committed event once, in order, even when PUB/SUB drops or they join late."""

from __future__ import annotations

import time

import pytest

from bus.home import Home
from bus.producer import Producer
from bus.subscriber import Subscriber
from contracts import TradeUpdated
from devtools.processes import wait_applied
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration


def _collect(subscriber: Subscriber, count: int, timeout: float = 60.0) -> list[int]:
    seqs: list[int] = []
    deadline = time.monotonic() + timeout
    while len(seqs) < count and time.monotonic() < deadline:
        seqs += [seq for seq, _ in subscriber.poll(100)]
    return seqs


def test_dropped_messages_are_repaired_and_late_joiners_catch_up(home: Home) -> None:
    """A subscriber with a tiny buffer that does not read while 20k events flow still gets all of them, in order.

    The ledger publishes a run of same-type events as one message (up to 1,000), so 20k events are a few
    dozen messages: a one-message queue on both sides makes PUB/SUB drop most of them."""
    services = Stack(home, ledger_env={"OH_PUB_HWM": "1"})
    services.start_ledger()
    slow = Subscriber(home, types=["TradeUpdated"], rcvhwm=1)
    try:
        slow.poll(50)
        time.sleep(0.3)  # let the SUB connection settle so it receives (and drops) live messages
        producer = Producer(home)
        events = [TradeUpdated(order_id=str(i), symbol="AAPL", event="fill", side="buy", qty=1.0) for i in range(20_000)]
        for start in range(0, len(events), 500):
            producer.send_many(events[start : start + 500])
        producer.flush(60)
        head = producer.last_acked_seq
        wait_applied(home, head)
        seqs = _collect(slow, len(events))
        assert seqs == list(range(1, head + 1)), "events missing, duplicated or out of order"
        assert slow.catch_ups > 0, "no gap was repaired: the test did not exercise the repair path"

        late = Subscriber(home, types=["TradeUpdated"], from_seq=101)
        assert _collect(late, head - 100) == list(range(101, head + 1))
        late.close()
        producer.close()
    finally:
        slow.close()
        services.stop()
