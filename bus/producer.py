"""The one producer: keeps every event until the ledger acknowledges it, and resends after a timeout.

Events carry their own id, so a resend after a ledger crash is harmless: the ledger drops the
duplicate and acknowledges it again. `flush()` returns once everything sent so far is durable in
the journal, which is how a worker knows its run's data is safe before it reports the run done.

A `Nack(retry=True)` means the ledger could not store the event right now (its disk is full, or it
is halted on a damaged journal): the event is kept and resent like an unacknowledged one, and
`refusal` holds the ledger's reason, so a waiting client can say why instead of hanging
(`flush(give_up_on_refusal=True)` raises LedgerRefused with it).

Order: messages reach the ledger in the order sent, including those that waited for a connection.
Across a ledger crash, a message lost with the old connection is resent after its timeout and may
land after newer ones; a producer that needs order across a crash flushes in between (the worker
runtime flushes after RunStarted and before RunFinished).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import zmq

from bus.codec import decode_ingress_reply, encode
from bus.home import Home
from contracts import Message
from contracts.control import Ack

log = logging.getLogger(__name__)


class EventRejected(RuntimeError):
    """The ledger refused an event (malformed or invalid); resending would not help."""


class LedgerRefused(RuntimeError):
    """The ledger cannot store events right now (disk full, or halted); the message is its reason."""


@dataclass
class _Pending:
    payload: bytes
    sent_at: float = 0.0  # 0 = not sent yet (no ledger connected)
    attempts: int = 0


class Producer:
    """Sends messages to the ledger's ingress with at-least-once delivery and de-duplicated effect."""

    def __init__(
        self,
        home: Home,
        resend_after: float = 2.0,
        max_pending: int = 20_000,
        ctx: zmq.Context | None = None,
    ) -> None:
        self.resend_after = resend_after
        self.max_pending = max_pending
        self.pending: OrderedDict[str, _Pending] = OrderedDict()
        self.rejected: list[tuple[str, str]] = []
        self.acked = 0
        self.last_acked_seq = 0
        self._unsent = 0  # pending messages never sent (no ledger connected when they were queued)
        self.resent = 0
        self.refusal: str | None = None  # the ledger's reason for not storing our events now (None once it acks again)
        self.sock = (ctx or zmq.Context.instance()).socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue into a dead connection: we resend ourselves
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.connect(home.endpoint("ingress"))

    # -- sending -----------------------------------------------------------------------------
    def send(self, message: Message) -> str:
        """Queue one message for the ledger; returns its id. Blocks only when too much is unacknowledged."""
        return self.send_many([message])[0]

    def send_many(self, messages: Iterable[Message]) -> list[str]:
        """Send messages as one multipart frame (one ingress read for the ledger)."""
        ids: list[str] = []
        payloads: list[bytes] = []
        for message in messages:
            payload = encode(message)
            self.pending[message.id] = _Pending(payload)
            ids.append(message.id)
            payloads.append(payload)
        if self._unsent:
            self._unsent += len(ids)
            self._resend_due()  # earlier messages are still unsent: keep the order, send them first
        elif payloads and self._send_frames(payloads):
            now = time.monotonic()
            for event_id in ids:
                self.pending[event_id].sent_at = now
        else:
            self._unsent += len(ids)
        self._read_replies(0)
        if len(self.pending) >= self.max_pending:
            self._wait_until(lambda: len(self.pending) < self.max_pending // 2, None)
        return ids

    def _send_frames(self, payloads: list[bytes]) -> bool:
        try:
            self.sock.send_multipart(payloads, flags=zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            return False  # no ledger connected right now; resent by flush/send

    # -- acknowledgements ------------------------------------------------------------------
    def _read_replies(self, timeout_ms: int) -> None:
        if not self.sock.poll(timeout_ms):
            return
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
                for event_id, seq in zip(reply.ids, reply.seqs, strict=True):
                    if self.pending.pop(event_id, None) is not None:
                        self.acked += 1
                        self.last_acked_seq = max(self.last_acked_seq, seq)
            elif reply.retry:  # not stored now: keep it; it is resent after its backoff
                if self.refusal is None:
                    log.info("the ledger cannot store events now; keeping them to resend: %s", reply.reason)
                self.refusal = reply.reason
            else:
                if reply.id is not None:
                    self.pending.pop(reply.id, None)
                self.rejected.append((reply.id or "?", reply.reason))
                log.error("ledger rejected an event: %s", reply.reason)

    def _resend_due(self) -> None:
        now = time.monotonic()
        due: list[tuple[str, _Pending]] = []
        for event_id, item in self.pending.items():
            backoff = min(self.resend_after * (2 ** max(item.attempts - 1, 0)), 16.0)
            if item.sent_at == 0.0 or now - item.sent_at >= backoff:
                due.append((event_id, item))
            if len(due) >= 1000:
                break
        for start in range(0, len(due), 200):
            chunk = due[start : start + 200]
            if not self._send_frames([item.payload for _, item in chunk]):
                return
            for _, item in chunk:
                if item.sent_at:
                    self.resent += 1
                else:
                    self._unsent -= 1
                item.sent_at = now
                item.attempts += 1

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
        self.sock.close()
