"""When the producer resends: after its connection to the ledger dropped, or when a later event's Ack shows
one was lost (both at once), or one probe per silence of the ledger; never because a steadily working
ledger has not reached an event yet.

The ledger's side is a real ZeroMQ ROUTER on the home's ingress endpoint that answers with the ledger's
own Ack messages when the test says, so each step is decided by the test, not by timing. The producer's
clock is a fake that only moves when the test moves it (plus a microsecond per reading, so its own waits
end): "2 s later" costs no real time, and no outcome depends on how fast this machine is.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
import zmq

import bus.producer as producer_module
from bus.codec import decode_message, encode, split_messages
from bus.home import Home
from bus.producer import Producer
from contracts import TradeUpdated
from contracts.control import Ack


class FakeTime:
    """Stands in for the `time` module inside bus.producer."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        self.now += 1e-6
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Peer:
    """The ledger's ingress, scripted: receives frames and acknowledges exactly what it is told to."""

    def __init__(self, home: Home) -> None:
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(home.endpoint("ingress"))
        self.identity = b""
        self.received: list[str] = []
        self.seq = 0

    def receive(self) -> list[str]:
        """Every event id that arrived since the last call, in order."""
        got: list[str] = []
        while self.sock.poll(20):
            identity, *frames = self.sock.recv_multipart()
            self.identity = identity
            for frame in frames:  # a batch may travel packed in one frame
                got += [decode_message(payload).id for payload in split_messages(frame) or [frame]]
        self.received += got
        return got

    def got(self, n: int) -> bool:
        """True once `n` events have arrived in all."""
        self.receive()
        return len(self.received) >= n

    def ack(self, ids: list[str]) -> None:
        seqs = list(range(self.seq + 1, self.seq + 1 + len(ids)))
        self.seq += len(ids)
        self.sock.send_multipart([self.identity, encode(Ack(ids=ids, seqs=seqs))])

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(producer_module, "time", fake)
    return fake


@pytest.fixture
def peer(home: Home) -> Iterator[Peer]:
    ledger = Peer(home)
    yield ledger
    ledger.close()


def _events(n: int) -> list[TradeUpdated]:
    return [TradeUpdated(order_id=f"o{i}", symbol="AAPL", event="fill", side="buy", qty=1.0) for i in range(n)]


def pump(producer: Producer) -> None:
    """Let the producer read replies and resend whatever is due (a short flush, never waiting for all)."""
    with contextlib.suppress(TimeoutError):
        producer.flush(timeout=1e-5)


def until(condition: object, producer: Producer, what: str) -> None:
    """Pump until `condition()` holds (real time bound only against a hang)."""
    deadline = time.monotonic() + 20
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        pump(producer)


def test_a_burst_acknowledged_steadily_is_never_resent(home: Home, clock: FakeTime, peer: Peer) -> None:
    """20 events; the ledger acknowledges one every 1.5 s, so the last waits 30 s. The ledger never goes
    silent for the 2 s timeout, so nothing is resent (the old rule resent all still waiting 2 s after sending)."""
    producer = Producer(home, resend_after=2.0)
    ids = producer.send_many(_events(20))
    until(lambda: peer.got(20), producer, "the burst reached the ledger")
    assert peer.received == ids
    for n, event_id in enumerate(ids, start=1):
        clock.now += 1.5
        pump(producer)
        assert peer.receive() == [], f"resent while the ledger was acknowledging (after {n - 1} acks)"
        peer.ack([event_id])
        until(lambda n=n: producer.acked == n, producer, "the ack was read")
    assert producer.resent == 0 and not producer.pending
    producer.close()


def test_events_lost_with_the_connection_go_again_at_once(home: Home, clock: FakeTime, peer: Peer) -> None:
    """The ledger reads 10 events and dies before acknowledging; a new one starts. The producer sends the 10
    again as soon as it is connected, without waiting for any timeout (the clock does not move)."""
    producer = Producer(home, resend_after=2.0)
    ids = producer.send_many(_events(10))
    until(lambda: peer.got(10), producer, "the events reached the first ledger")
    started = clock.now
    peer.close()
    second = Peer(home)
    try:
        until(lambda: second.got(10), producer, "the events reached the new ledger")
        assert second.received == ids
        assert clock.now - started < 0.5  # the fake clock moved by its readings only: no timer was waited for
        second.ack(ids)
        until(lambda: not producer.pending, producer, "acknowledged by the new ledger")
        assert producer.resent == 10
    finally:
        producer.close()
        second.close()


def test_an_event_overtaken_by_a_later_ack_was_lost_and_goes_again_at_once(home: Home, clock: FakeTime,
                                                                          peer: Peer) -> None:
    """The ledger answers each connection in order: an Ack for events sent after one still waiting means that
    one was lost (here: the ledger never saw it). It goes again at once; the clock does not move."""
    producer = Producer(home, resend_after=2.0)
    ids = producer.send_many(_events(5))
    until(lambda: peer.got(5), producer, "sent")
    started = clock.now
    peer.ack(ids[2:])
    until(lambda: peer.got(7), producer, "the two overtaken events resent")
    assert peer.received[5:] == ids[:2]
    assert clock.now - started < 0.5
    peer.ack(ids[:2])
    until(lambda: not producer.pending, producer, "acknowledged")
    assert peer.receive() == [] and producer.resent == 2
    producer.close()


def test_a_silent_ledger_gets_one_probe_per_silence_with_backoff(home: Home, clock: FakeTime, peer: Peer) -> None:
    """A ledger connected but silent (busy, or its answers lost): after 2 s only the oldest event is resent,
    as a probe, then again after 4 s more. When the probe's Ack comes back alone, the events sent before it
    were lost too, and they all go again at once."""
    producer = Producer(home, resend_after=2.0)
    ids = producer.send_many(_events(5))
    until(lambda: peer.got(5), producer, "sent")
    clock.now += 1.9
    pump(producer)
    assert peer.receive() == []
    clock.now += 0.2
    until(lambda: peer.got(6), producer, "a probe after 2 s of silence")
    clock.now += 3.8
    pump(producer)
    assert peer.receive() == []  # the next probe waits 4 s
    clock.now += 0.3
    until(lambda: peer.got(7), producer, "a second probe after 4 s")
    assert peer.received[5:] == [ids[0], ids[0]]
    peer.ack([ids[0]])
    until(lambda: peer.got(11), producer, "the rest, overtaken by the probe's Ack")
    assert peer.received[7:] == ids[1:]
    peer.ack(ids[1:])
    until(lambda: not producer.pending, producer, "acknowledged")
    assert producer.resent == 6
    producer.close()


def test_pump_alone_resends_what_a_dropped_connection_lost(home: Home, clock: FakeTime, peer: Peer) -> None:
    """A producer that sent and never flushes (a worker's reaction) still resends: `pump()`, which the worker
    calls between messages, sends the events lost with a ledger that died again to the new one."""
    producer = Producer(home, resend_after=2.0)
    ids = producer.send_many(_events(3))
    deadline = time.monotonic() + 20
    while not peer.got(3):
        assert time.monotonic() < deadline, "sent"
        producer.pump()
    peer.close()
    second = Peer(home)
    try:
        deadline = time.monotonic() + 20
        while not second.got(3):
            assert time.monotonic() < deadline, "pump() never resent the lost events"
            producer.pump()
            time.sleep(0.01)
        assert second.received == ids
        second.ack(ids)
        while producer.pending:
            assert time.monotonic() < deadline, "the Ack was never read"
            producer.pump()
    finally:
        producer.close()
        second.close()


def test_an_event_the_ledger_could_not_store_is_kept_and_resent_after_its_backoff(
    home: Home, clock: FakeTime, peer: Peer
) -> None:
    """Nack(retry=True) (disk full, halted ledger): the event stays pending, `refusal` says why, and it goes
    again only after the backoff (2 s), not at once; an Ack then clears both."""
    from contracts.control import Nack

    producer = Producer(home, resend_after=2.0)
    (event_id,) = producer.send_many(_events(1))
    until(lambda: peer.got(1), producer, "sent")
    peer.sock.send_multipart([peer.identity, encode(Nack(id=event_id, reason="disk full", retry=True))])
    until(lambda: producer.refusal == "disk full", producer, "the refusal was read")
    assert event_id in producer.pending and not producer.rejected
    clock.now += 1.0
    pump(producer)
    assert peer.receive() == []  # not before its backoff
    clock.now += 1.5
    until(lambda: peer.got(2), producer, "resent after the backoff")
    peer.ack([event_id])
    until(lambda: not producer.pending, producer, "acknowledged")
    assert producer.refusal is None
    producer.close()


def test_a_producer_never_runs_more_than_its_byte_bound_ahead_of_the_ledger(home: Home, peer: Peer) -> None:
    """The ledger's ingress never drops, so whatever a producer sends unacknowledged waits in the ledger's
    memory (issue #14.4: flow's 564 MB sat there at 5,000 symbols). `send` blocks once `max_pending_bytes`
    of payloads are unacknowledged, until half are: the ledger never holds more than the bound (plus the
    event that crossed it) from one producer, and every event still arrives once, in order."""
    import threading

    events = _events(100)
    size = max(len(encode(event)) for event in events)
    bound = 10 * size
    producer = Producer(home, resend_after=3600.0, max_pending_bytes=bound)
    sender = threading.Thread(target=lambda: [producer.send(event) for event in events], daemon=True)
    sender.start()
    deadline = time.monotonic() + 30
    while sender.is_alive() or len(peer.received) < len(events):
        assert time.monotonic() < deadline, f"only {len(peer.received)} of {len(events)} events arrived"
        unacked = peer.receive()
        while peer.sock.poll(50):  # whatever the producer could send before it waits for acks
            unacked += peer.receive()
        assert len(unacked) * size <= bound + size, f"{len(unacked)} events ({len(unacked) * size} B) unacknowledged"
        if unacked:
            peer.ack(unacked)
    sender.join(5)
    assert peer.received == [event.id for event in events]
    producer.flush(timeout=10)
    assert producer.pending_bytes == 0
    producer.close()
