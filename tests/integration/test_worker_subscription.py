"""A worker that reacts to no stream of events subscribes to its commands and the head tick only
(`Subscriber(only_types=True)`, chosen by services/runtime.Worker).

While such a worker runs a long job its loop reads nothing; subscribed to everything, its socket queued every
bulk payload published meanwhile (the scheduler 1.1 GB, ingest 1.3 GB at 5,000 symbols). Narrowed, the same
commands still arrive once each, in seq order, however many other events were committed around them (the seqs
it skips are filled from the journal). Checks and notify react to streams of events and keep the whole stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bus.codec import HEAD_TOPIC, unpack_seq, unpack_seqs
from bus.home import Home
from bus.producer import Producer
from bus.subscriber import Subscriber
from contracts import RunDaily, SymbolsForgotten, SymbolsRemembered
from devtools.processes import Service, wait_for_ledger
from services import briefing, checks, derived, flow, ingest, notify, options_bars, snapshot
from services.runtime import Worker
from services.scheduler import HANDLERS


@pytest.fixture
def ledger(home: Home) -> Iterator[Service]:
    service = Service(home, "ledger").start()
    wait_for_ledger(home)
    yield service
    service.stop()


def _send(home: Home, messages: list[object]) -> int:
    """Journal the messages through the ledger; the seq of the last one."""
    producer = Producer(home)
    try:
        for message in messages:
            producer.send(message)  # type: ignore[arg-type]
        producer.flush(timeout=60)
        return producer.last_acked_seq
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
    return Subscriber(home, types=[t.__name__ for t in HANDLERS], from_seq=1, only_types=True)


def _joined(subscriber: Subscriber) -> None:
    """Once the subscriber's catch-up is done, read its socket raw until a head tick arrives: from then on its
    subscription is in force at the ledger's publisher (a message published before that could be missed by
    any subscriber, narrowed or not, which would make a count below prove nothing)."""
    subscriber.poll(200)
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "no head tick reached the subscriber"
        if subscriber.sock.poll(200) and subscriber.sock.recv_multipart()[0] == HEAD_TOPIC:
            return


def _queued(subscriber: Subscriber, through: int) -> int:
    """Events other than head ticks that reached the subscriber's socket (read raw, without the subscriber's
    logic; a message carries a run of events, one seq each) before a head tick at or past seq `through`. The
    ledger publishes committed events before any later tick (one thread, one PUB socket, in order), so by that
    tick every event up to `through` that the subscription lets through has arrived: no quiet period to guess."""
    count = 0
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, f"no head tick at or past seq {through} reached the subscriber"
        if subscriber.sock.poll(200):
            topic, seqs, *_ = subscriber.sock.recv_multipart()
            if topic == HEAD_TOPIC:
                if unpack_seq(seqs) >= through:
                    return count
            else:
                count += len(unpack_seqs(seqs))


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
    early, early_ids = _mixed(2)
    _send(home, early)
    subscriber = _narrowed(home)
    try:
        late, late_ids = _mixed(2)
        _send(home, late)
        assert _collect(subscriber, 4) == early_ids + late_ids
    finally:
        subscriber.close()


def test_a_busy_scheduler_does_not_queue_the_other_events(home: Home, ledger: Service) -> None:
    """While it does not read (a daily running), what waits in its socket is its commands and head ticks only:
    the 100 other events committed meanwhile are not queued there (they were, subscribed to everything)."""
    subscriber = _narrowed(home)
    try:
        _joined(subscriber)
        messages, _ = _mixed(2)
        queued = _queued(subscriber, _send(home, messages))
        assert queued == 2, f"{queued} events besides head ticks reached the scheduler's socket for 2 commands"
    finally:
        subscriber.close()


NARROWED = {"ingest": True, "options_bars": True, "snapshot": True, "flow": True, "derived": True, "briefing": True, "checks": False,
            "notify": False}


@pytest.mark.parametrize("name", sorted(NARROWED))
def test_each_worker_queues_only_what_it_handles_unless_it_reacts_to_a_stream(
    home: Home, ledger: Service, name: str
) -> None:
    """The real worker's subscription (built, not served: like a worker busy in a job): 100 events of types no
    worker handles are committed. A worker reacting to RunFinished at most does not have them queued in its
    socket; checks and notify, which react to streams of events, still receive the stream."""
    module = {"ingest": ingest, "options_bars": options_bars, "snapshot": snapshot, "flow": flow, "derived": derived, "briefing": briefing,
              "checks": checks, "notify": notify}[name]
    worker = Worker(name, home, module.HANDLERS, getattr(module, "REACTIONS", None))
    try:
        _joined(worker.subscriber)
        messages, _ = _mixed(2)
        queued = _queued(worker.subscriber, _send(home, [m for m in messages if not isinstance(m, RunDaily)]))
        if NARROWED[name]:
            assert queued == 0, f"{queued} events of types {name} does not handle reached its socket"
        else:
            assert queued >= 100, f"{name} reacts to a stream of events but {queued} of the 100 reached its socket"
    finally:
        worker.subscriber.close()
        worker.bus.close(name)
