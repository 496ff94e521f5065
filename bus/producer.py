"""The one producer: keeps every event until the ledger acknowledges it, and resends what was lost.

Events carry their own id, so a resend after a ledger crash is harmless: the ledger drops the
duplicate and acknowledges it again. `flush()` returns once everything sent so far is durable in
the journal, which is how a worker knows its run's data is safe before it reports the run done.

When to resend. The ledger reads each connection in order and answers everything it reads, all of
one read in a single Ack; so an event is lost only with its connection (the ledger died or
restarted), or, against all expectation, on its own. Three rules follow (and a fourth for refusals):
1. A ZeroMQ socket monitor reports a dropped connection (EVENT_DISCONNECTED): everything sent and
   not yet acknowledged goes again, first thing, once a ledger is connected. No timer is waited for.
2. An Ack for an event sent after X, while X is still waiting, means X was lost: X goes again at once.
3. While the ledger stays silent (no reply at all) for `resend_after` s, doubling up to 16 s, only the
   oldest waiting event is resent, as a probe: a busy ledger answers it with the rest (one duplicate
   per silence), and if only the acknowledgements were lost, the probe's Ack triggers rule 2.
The old rule, "resend anything unacknowledged `resend_after` s after its send", resent a large burst
while the ledger was still working through it (issue #11: 75,600 resends it had to drop; measured by
bench/producer_resends).

4. A `Nack(retry=True)` means the ledger could not store the event right now (its disk is full, or
   it is halted on a damaged journal): the event is kept and resent after a backoff (`resend_after`,
   doubling per send, up to 16 s), and `refusal` holds the ledger's reason, so a waiting client can
   say why instead of hanging (`flush(give_up_on_refusal=True)` raises LedgerRefused with it).

How far ahead a producer may run. `send` blocks while `max_pending` events or `max_pending_bytes` of
payloads are unacknowledged, until half of that is acknowledged. The ledger's ingress queue is unbounded
(it must never drop), so without a bound in bytes a fast worker's output waits in the ledger's memory
instead of in the worker: at 5,000 symbols flow's 564 MB of FlowComputed sat there at the end of the
run (~1 GB of the ledger's heap for ~40 s, issue #14.4). 32 MB is one of the ledger's drains
(MAX_DRAIN_BYTES), so a producer still keeps a whole drain waiting for it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import zmq

from bus.codec import decode_ingress_reply, encode, frames_for
from bus.home import Home
from contracts import Message
from contracts.control import Ack

log = logging.getLogger(__name__)


class EventRejected(RuntimeError):
    """The ledger refused an event (malformed or invalid); resending would not help."""


class LedgerRefused(RuntimeError):
    """The ledger cannot store events right now (disk full, or halted); the message is its reason."""


MAX_BACKOFF = 16.0
MAX_PENDING_BYTES = 32 * 1024 * 1024  # payload bytes unacknowledged before `send` waits (see the docstring)


@dataclass
class _Pending:
    payload: bytes
    sent_at: float = 0.0  # 0 = waiting to be sent (no ledger connected yet, or lost with a dropped connection)
    sends: int = 0
    order: int = 0  # the producer-wide number of its latest send
    refused: bool = False  # the ledger answered Nack(retry=True): resend after a backoff (rule 4)


class Producer:
    """Sends messages to the ledger's ingress with at-least-once delivery and de-duplicated effect."""

    def __init__(
        self,
        home: Home,
        resend_after: float = 2.0,
        max_pending: int = 20_000,
        ctx: zmq.Context | None = None,
        max_pending_bytes: int = MAX_PENDING_BYTES,
    ) -> None:
        self.resend_after = resend_after
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.pending_bytes = 0  # the payload bytes of `pending`
        self.pending: OrderedDict[str, _Pending] = OrderedDict()
        self.rejected: list[tuple[str, str]] = []
        self.acked = 0
        self.last_acked_seq = 0
        self._unsent = 0  # pending messages waiting to be sent (sent_at == 0)
        self._sends = 0  # sends so far (each one numbered, resends included)
        self._acked_order = 0  # the latest-sent event the ledger has acknowledged (its `order`)
        self._last_reply = 0.0  # when the ledger last answered (monotonic)
        self._last_probe = 0.0
        self._probes = 0  # probes since the ledger last answered
        self.resent = 0
        self.refusal: str | None = None  # the ledger's reason for not storing our events now (None once it acks again)
        self.sock = (ctx or zmq.Context.instance()).socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue into a dead connection: we resend ourselves
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self._monitor = self.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        home.connect(self.sock, "ingress")

    # -- sending -----------------------------------------------------------------------------
    def send(self, message: Message) -> str:
        """Queue one message for the ledger; returns its id. Blocks only when too much is unacknowledged."""
        return self.send_many([message])[0]

    def send_many(self, messages: Iterable[Message]) -> list[str]:
        """Send messages as one multipart frame (one ingress read for the ledger)."""
        batch = list(messages)
        ids = [message.id for message in batch]
        payloads = [encode(message) for message in batch]
        self.pending_bytes += sum(map(len, payloads))
        if self._unsent == 0 and payloads and self._send_frames(payloads):
            # the usual case: nothing older is waiting to be sent, and this batch went out now
            now, order, pending = time.monotonic(), self._sends, self.pending
            for event_id, payload in zip(ids, payloads, strict=True):
                order += 1
                pending[event_id] = _Pending(payload, now, 1, order)
            self._sends = order
        else:
            for event_id, payload in zip(ids, payloads, strict=True):
                self.pending[event_id] = _Pending(payload)
            self._unsent += len(ids)
            if self._unsent > len(ids):
                self._resend_due()  # earlier messages are still waiting: keep the order, send them first
            elif payloads and self._send_frames(payloads):
                self._mark_sent([self.pending[event_id] for event_id in ids], time.monotonic())
        self._read_replies(0)
        if len(self.pending) >= self.max_pending or self.pending_bytes >= self.max_pending_bytes:
            self._wait_until(lambda: len(self.pending) < self.max_pending // 2
                             and self.pending_bytes < self.max_pending_bytes // 2, None)
        return ids

    def _mark_sent(self, items: list[_Pending], now: float) -> None:
        for item in items:
            if item.sent_at == 0.0:
                self._unsent -= 1
            if item.sends:
                self.resent += 1
            self._sends += 1
            item.sent_at, item.sends, item.order, item.refused = now, item.sends + 1, self._sends, False

    def _send_frames(self, payloads: list[bytes]) -> bool:
        try:
            self.sock.send_multipart(frames_for(payloads), flags=zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            return False  # no ledger connected right now; sent by flush/send once one is

    # -- acknowledgements ------------------------------------------------------------------
    def _forget(self, event_id: str) -> _Pending | None:
        item = self.pending.pop(event_id, None)
        if item is None:
            return None
        self.pending_bytes -= len(item.payload)
        if item.sent_at == 0.0:
            self._unsent -= 1  # answered after its connection dropped: no need to send it again
        return item

    def _read_replies(self, timeout_ms: int) -> None:
        self._check_connection()
        if not self.sock.poll(timeout_ms):
            return
        self._last_reply, self._probes = time.monotonic(), 0
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            reply = decode_ingress_reply(frame)
            if isinstance(reply, Ack):
                if self.refusal is not None and reply.ids:
                    log.info("the ledger stores events again")
                    self.refusal = None
                self._acknowledged(reply)
            elif reply.retry:  # not stored now: keep it; it is resent after its backoff
                refused = self.pending.get(reply.id) if reply.id is not None else None
                if refused is not None:
                    refused.refused = True
                if self.refusal is None:
                    log.info("the ledger cannot store events now; keeping them to resend: %s", reply.reason)
                self.refusal = reply.reason
            else:
                if reply.id is not None:
                    self._forget(reply.id)
                self.rejected.append((reply.id or "?", reply.reason))
                log.error("ledger rejected an event: %s", reply.reason)

    def _acknowledged(self, ack: Ack) -> None:
        """Forget every acknowledged event (one Ack answers a whole drain of the ledger: thousands of ids)."""
        pop, acked, last_seq, acked_order, unsent = self.pending.pop, 0, self.last_acked_seq, self._acked_order, 0
        freed = 0
        for event_id, seq in zip(ack.ids, ack.seqs, strict=True):
            item = pop(event_id, None)
            if item is None:
                continue
            freed += len(item.payload)
            if item.sent_at == 0.0:
                unsent += 1  # answered after its connection dropped: no need to send it again
            acked += 1
            if seq > last_seq:
                last_seq = seq
            if item.order > acked_order:
                acked_order = item.order
        self.acked += acked
        self.pending_bytes -= freed
        self._unsent -= unsent
        self.last_acked_seq, self._acked_order = last_seq, acked_order

    def _check_connection(self) -> None:
        """Rule 1: after the connection to the ledger dropped, everything unacknowledged goes again."""
        dropped = False
        while self._monitor.poll(0):
            self._monitor.recv_multipart()  # only EVENT_DISCONNECTED is monitored
            dropped = True
        if not dropped:
            return
        for item in self.pending.values():
            if item.sent_at != 0.0:
                item.sent_at = 0.0
                self._unsent += 1

    def _due(self, item: _Pending, now: float) -> bool:
        """Rule 2: sent, and an event sent after it was acknowledged (so this one was lost); rule 4: the
        ledger could not store it then (Nack retry) and its backoff (per send, doubling up to 16 s) is over."""
        if item.refused:
            return now - item.sent_at >= min(self.resend_after * (2 ** max(item.sends - 1, 0)), MAX_BACKOFF)
        return item.order < self._acked_order

    def _probe_due(self, oldest: _Pending, now: float) -> bool:
        """Rule 3: the ledger silent for `resend_after` s (doubling per probe, up to 16 s)."""
        backoff = min(self.resend_after * (2 ** self._probes), MAX_BACKOFF)
        return now - max(self._last_reply, self._last_probe, oldest.sent_at) >= backoff

    def _resend_due(self) -> None:
        self._check_connection()
        now = time.monotonic()
        due: list[_Pending] = []
        oldest: _Pending | None = None
        for item in self.pending.values():
            if item.sent_at == 0.0 or self._due(item, now):
                due.append(item)
            elif oldest is None:
                oldest = item  # the oldest waiting event (pending keeps the order events were queued in)
            if len(due) >= 1000:
                break
        if not due and oldest is not None and self._probe_due(oldest, now):
            due, self._last_probe, self._probes = [oldest], now, self._probes + 1
        for start in range(0, len(due), 200):
            chunk = due[start : start + 200]
            if not self._send_frames([item.payload for item in chunk]):
                return
            self._mark_sent(chunk, now)

    def _wait_until(self, done: object, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():  # type: ignore[operator]
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self._resend_due()
            if self._unsent and self.sock.poll(50, zmq.POLLOUT):
                continue  # the connection just came up: send what waited for it now, not 50 ms later
            self._read_replies(50)
        return True

    def pump(self) -> None:
        """Without waiting: resend what is due and read the ledger's answers. A long-lived producer that
        sends now and then without flushing (a worker's reactions) calls this between messages, so an
        event lost with a ledger that died before journaling it is resent once the ledger is back."""
        if self.pending:
            self._resend_due()
            self._read_replies(0)

    def flush(self, timeout: float | None = None, give_up_on_refusal: bool = False) -> None:
        """Wait until every message sent so far is acknowledged; raise TimeoutError otherwise.

        With `give_up_on_refusal`, raise LedgerRefused as soon as the ledger says it cannot store them now.
        """
        if give_up_on_refusal:
            done = self._wait_until(lambda: not self.pending or self.refusal is not None, timeout)
            if self.pending and self.refusal is not None:
                raise LedgerRefused(self.refusal)
        else:
            done = self._wait_until(lambda: not self.pending, timeout)
        if not done:
            raise TimeoutError(f"{len(self.pending)} events not acknowledged by the ledger after {timeout}s")

    def close(self) -> None:
        """Close the socket; unacknowledged messages are dropped (call flush first)."""
        if self.pending:
            log.warning("closing producer with %d unacknowledged events", len(self.pending))
        self.sock.disable_monitor()
        self._monitor.close()
        self.sock.close()
