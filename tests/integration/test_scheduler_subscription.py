"""The scheduler's worker subscribes to its commands and the head tick only (services/scheduler.py, `subscribe_only`).

While it runs a daily its loop reads nothing; subscribed to everything, its socket queued every bulk payload
published meanwhile (1.1 GB at 5,000 symbols). Narrowed, the same commands still arrive once each, in seq order,
however many other events were committed around them (the seqs it skips are filled from the journal).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bus.codec import HEAD_TOPIC
from bus.home import Home
from bus.producer import Producer
from bus.subscriber import Subscriber
from contracts import RunDaily, SymbolsForgotten, SymbolsRemembered
from devtools.processes import Service, wait_for_ledger
from services.scheduler import HANDLERS, subscribe_only


@pytest.fixture
def ledger(home: Home) -> Iterator[Service]:
    service = Service(home, "ledger").start()
    wait_for_ledger(home)
    yield service
    service.stop()


def _send(home: Home, messages: list[object]) -> None:
    producer = Producer(home)
    try:
        for message in messages:
            producer.send(message)  # type: ignore[arg-type]
        producer.flush(timeout=60)
    finally:
        producer.close()


def _mixed(rounds: int) -> tuple[list[object], list[str]]:
    """Rounds of 50 other events around one RunDaily; the RunDaily ids in the order sent. The other events
    alternate two types, so the ledger publishes each as a message of its own (it packs a run of one type)."""
    messages: list[object] = []
    ids: list[str] = []
    for r in range(rounds):
        messages += [(SymbolsRemembered if i % 2 else SymbolsForgotten)(symbols=[f"S{r}_{i}"]) for i in range(50)]
        daily = RunDaily(symbols=[f"D{r}"])
        messages.append(daily)
        ids.append(daily.id)
    return messages, ids


def _narrowed(home: Home) -> Subscriber:
    subscriber = Subscriber(home, types=[t.__name__ for t in HANDLERS], from_seq=1)
    subscribe_only(subscriber, HANDLERS)
    return subscriber


def _queued(subscriber: Subscriber) -> int:
    """Messages other than head ticks that reached the subscriber's socket (read raw, without the subscriber's
    logic), until none has come for 3 s."""
    count = 0
    quiet_from = time.monotonic()
    while time.monotonic() - quiet_from < 3.0:
        if subscriber.sock.poll(200):
            topic, *_ = subscriber.sock.recv_multipart()
            if topic != HEAD_TOPIC:
                count += 1
                quiet_from = time.monotonic()
    return count


def _collect(subscriber: Subscriber, want: int, timeout: float = 60.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += [m.id for _, m in subscriber.poll(200)]
    time.sleep(1.5)  # a head tick or two more: nothing may come twice
    got += [m.id for _, m in subscriber.poll(200)]
    return got


def test_the_scheduler_gets_each_command_once_in_order_among_other_events(home: Home, ledger: Service) -> None:
    """Live (subscribed before they are sent) and behind (sent before it joins): every RunDaily once, in order."""
    early, early_ids = _mixed(5)
    _send(home, early)
    subscriber = _narrowed(home)
    try:
        late, late_ids = _mixed(5)
        _send(home, late)
        assert _collect(subscriber, 10) == early_ids + late_ids
    finally:
        subscriber.close()


def test_a_busy_scheduler_does_not_queue_the_other_events(home: Home, ledger: Service) -> None:
    """While it does not read (a daily running), what waits in its socket is its commands and head ticks only:
    the 500 other events committed meanwhile are not queued there (they were, subscribed to everything)."""
    subscriber = _narrowed(home)
    try:
        subscriber.poll(200)  # joined: the catch-up from seq 1 is done
        time.sleep(0.5)  # the subscription has reached the ledger's publisher
        messages, _ = _mixed(10)
        _send(home, messages)
        queued = _queued(subscriber)
        assert queued <= 10, f"{queued} messages besides head ticks reached the scheduler's socket for 10 commands"
    finally:
        subscriber.close()
