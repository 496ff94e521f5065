"""The tick channel's publisher thread and the fills journal thread of the live_stream worker.

TickPublisher owns the PUB socket at Home.endpoint("ticks") (ZeroMQ sockets are not thread-safe, so
one thread does all the sending). Every `flush` seconds it drains the conflator and sends what
changed as one TickBatch; every `snapshot_every` seconds it sends every symbol's newest quote; every
`status_every` seconds it sends a LiveStatus and runs the manager's watchdog. SNDHWM is small: a
subscriber that cannot keep up loses whole batches at its own socket (healed by the next snapshot)
and never slows the feed, the other subscribers or the ledger, which this channel does not touch.

FillJournal journals trade updates (facts, invariant 6) through a Producer of its own: stream
callbacks hand events over a queue and return at once; this thread sends them and pumps the
producer's acknowledgements and resends. A Producer is one DEALER socket, usable by one thread only,
which is why it is not the worker's. `put_batch` hands over several and returns an Event set once
the ledger has acknowledged (journaled) every one of them: the fills reconciliation waits on it
before it moves its watermark (services/live/fills.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Protocol

import zmq

from bus.home import Home
from bus.producer import Producer
from contracts import TradeUpdated
from contracts.live import TOPIC_STATUS, TOPIC_TICKS, LiveStatus, TickBatch, encode_live
from oh.domain.conflate import Conflator

log = logging.getLogger(__name__)

SNDHWM = 64  # batches queued per subscriber before its own copies are dropped (~0.3 s at full rate)


class StreamingSession(Protocol):
    """What the publisher reads of a session: its conflated quotes."""

    conflator: Conflator


class Streams(Protocol):
    """What the publisher needs of the one that owns the sessions (services.live.manager.LiveManager)."""

    session: StreamingSession | None

    def watchdog(self, now: float) -> None: ...

    def status(self, now: float, seq: int = 0, tick_seq: int = 0) -> LiveStatus: ...


class TickPublisher(threading.Thread):
    """Publishes tick batches, snapshots and status for the current streaming session (see module doc)."""

    def __init__(self, endpoint: str, manager: Streams, *, flush: float = 0.005, status_every: float = 0.5,
                 snapshot_every: float = 1.0, sndhwm: int = SNDHWM) -> None:
        super().__init__(name="live-publisher", daemon=True)
        self.endpoint = endpoint
        self.manager = manager
        self.flush = flush
        self.status_every = status_every
        self.snapshot_every = snapshot_every
        self.sndhwm = sndhwm
        self.seq = 0
        self.status_seq = 0
        self.batches = 0
        self.quotes = 0
        self.stopped = threading.Event()
        self.ready = threading.Event()

    def _send_batch(self, sock: zmq.Socket, quotes: list, snapshot: bool) -> None:  # type: ignore[type-arg]
        self.seq += 1
        batch = TickBatch(seq=self.seq, ts_sent=time.time(), snapshot=snapshot, quotes=quotes)
        sock.send_multipart([TOPIC_TICKS, encode_live(batch)], flags=zmq.NOBLOCK)
        self.batches += 1
        self.quotes += len(quotes)

    def run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.PUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, self.sndhwm)
        sock.bind(self.endpoint)
        self.ready.set()
        next_status = next_snapshot = 0.0
        try:
            while True:
                session = self.manager.session
                if self.stopped.wait(self.flush if session is not None else min(self.status_every, 0.05)):
                    break
                now = time.time()
                try:
                    if session is not None:
                        quotes = session.conflator.drain()
                        if quotes:
                            self._send_batch(sock, quotes, False)
                        if now >= next_snapshot:
                            next_snapshot = now + self.snapshot_every
                            everything = session.conflator.snapshot()
                            if everything:
                                self._send_batch(sock, everything, True)
                    if now >= next_status:
                        next_status = now + self.status_every
                        self.manager.watchdog(now)
                        self.status_seq += 1
                        status = self.manager.status(now, self.status_seq, self.seq)
                        sock.send_multipart([TOPIC_STATUS, encode_live(status)], flags=zmq.NOBLOCK)
                except zmq.Again:  # PUB drops rather than blocks; Again only if the socket is wedged
                    pass
                except Exception:  # one bad round must never stop the channel
                    log.exception("tick publisher round failed")
        finally:
            sock.close()


class _Batch:
    """A marker queued after a batch of trade updates: `done` is set once the ledger acknowledged them all."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.done = threading.Event()


class FillJournal(threading.Thread):
    """Sends trade updates to the ledger through its own Producer (see module doc)."""

    def __init__(self, home: Home) -> None:
        super().__init__(name="live-fills", daemon=True)
        self.home = home
        self.queue: queue.SimpleQueue[TradeUpdated | _Batch] = queue.SimpleQueue()
        self.sent = 0
        self.stopped = threading.Event()

    def put(self, event: TradeUpdated) -> None:
        """Hand over one trade update (any thread; never blocks)."""
        self.queue.put(event)

    def put_batch(self, events: list[TradeUpdated]) -> threading.Event:
        """Hand over several (any thread; never blocks); the Event is set once all are journaled."""
        batch = _Batch([event.id for event in events])
        for event in events:
            self.queue.put(event)
        self.queue.put(batch)
        return batch.done

    def run(self) -> None:
        producer = Producer(self.home)
        batches: list[_Batch] = []
        try:
            while not (self.stopped.is_set() and self.queue.empty()):
                try:
                    item = self.queue.get(timeout=0.1)
                    if isinstance(item, _Batch):
                        batches.append(item)  # its events were sent before it: they are pending or acked
                    else:
                        producer.send(item)
                        self.sent += 1
                        log.info("trade update %s %s %s %g @ %s sent to the ledger", item.event, item.side,
                                 item.symbol, item.qty, item.price)
                except queue.Empty:
                    pass
                if producer.pending:
                    try:
                        producer.flush(timeout=0.05)  # pump acks and resends
                    except TimeoutError:
                        pass
                for batch in [b for b in batches if not any(i in producer.pending for i in b.ids)]:
                    batch.done.set()
                    batches.remove(batch)
            try:
                producer.flush(timeout=5.0)
            except TimeoutError:
                log.warning("exiting with %d unacknowledged trade updates", len(producer.pending))
        finally:
            producer.close()
