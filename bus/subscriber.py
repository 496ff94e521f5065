"""The one subscriber: committed events in seq order, with no gaps, whenever it joins.

The ledger publishes each run of consecutive events of one type as one message: [topic, seqs,
payloads packed in one frame] for small events, [topic, seqs, payload, ...] for bulk ones; the
head tick is [HEAD_TOPIC, seq, journal id].
PUB/SUB drops messages under load and a process may join late or restart, so the subscriber
never trusts the live stream alone: every committed event has a global seq, the ledger ticks its
head once a second, and whenever the subscriber sees a seq (or a head) beyond the next one it
expects, it fetches the missing range from the ledger's journal before going on. A catch-up the
ledger refuses (a halted ledger whose journal is damaged in that range) is logged and retried a
few seconds later, never raised: the events are delivered once the journal is repaired.

Seqs count in one journal (`bus/journal_identity.py`). The head tick and every catch-up reply name the
ledger's journal; a subscriber that was reading another one (the journal and warehouse were deleted to
start over, the old worker offsets kept) starts over in the new one: from its first seq when it
replays (`from_seq` given), from its head when it is live only. Without that, the old seqs would
silently swallow the new journal's first events as already delivered.

What reaches the socket. By default everything the ledger publishes does, and the types not chosen are
dropped here. With `only_types`, the socket subscribes to the chosen types' topics and the head tick only, so
nothing else is even queued in this process (a worker that reads nothing while a long job runs otherwise holds
every payload published meanwhile: 0.8-1.3 GB each at 5,000 symbols). The seqs of the other types then read as
gaps, filled by a catch-up filtered to the chosen types (the ledger seeks past the other frames): once per head
tick, and once more for each message that arrives after such a gap, a round trip to the ledger. So it suits
types that come rarely (commands, RunFinished), not a stream of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import zmq

from bus.codec import HEAD_TOPIC, FrameError, decode_message, split_messages, topic_of, unpack_seq, unpack_seqs
from bus.control_client import ControlClient, LedgerUnavailable, QueryError
from bus.home import Home
from contracts import Message

log = logging.getLogger(__name__)

REFUSED_RETRY_SECONDS = 5.0


class Subscriber:
    """Delivers committed events of the chosen types, in seq order, exactly once per subscriber.

    `from_seq=None` starts at whatever is published next (live only); `from_seq=N` first replays
    everything from N out of the journal. `journal_id` is the journal `from_seq` counts in (None: the
    first one the ledger names); `journal_id` afterwards is the one being read. `only_types`: the socket
    subscribes to `types` and the head tick only (see the module docstring).
    """

    def __init__(
        self,
        home: Home,
        types: Iterable[str] | None = None,
        from_seq: int | None = None,
        ctx: zmq.Context | None = None,
        rcvhwm: int = 200_000,
        journal_id: str | None = None,
        only_types: bool = False,
    ) -> None:
        self.types = frozenset(types) if types is not None else None
        self.last_seq: int | None = None if from_seq is None else from_seq - 1
        self.journal_id = journal_id
        self._replays = from_seq is not None
        self.catch_ups = 0
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)  # beyond it PUB drops; the gap is repaired from the journal
        if only_types and self.types is not None:
            for topic in (HEAD_TOPIC, *sorted(topic_of(name) for name in self.types)):
                self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        else:
            self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        home.connect(self.sock, "events")
        self.control = ControlClient(home, ctx=self.ctx)
        self._needs_catch_up = from_seq is not None
        self._refused_until = 0.0

    def _wanted(self, type_name: str) -> bool:
        return self.types is None or type_name in self.types

    def _fetch(self, upto: int, out: list[tuple[int, Message]]) -> None:
        """Append committed events after last_seq up to `upto` (0 = the ledger's head) from the journal."""
        assert self.last_seq is not None
        types = sorted(self.types) if self.types is not None else None
        while True:
            header, frames = self.control.catch_up(self.last_seq + 1, upto, types)
            self.catch_ups += 1
            if not self._same_journal(header.journal_id, header.head_seq):
                if not self._replays:
                    return
                upto = 0  # what was missing counted in the other journal: read this one to its head
                continue
            for seq, _, payload in frames:
                out.append((seq, decode_message(payload)))
            self.last_seq = max(self.last_seq, header.last_seq)
            target = header.head_seq if upto == 0 else min(upto, header.head_seq)
            if self.last_seq >= target:
                return

    def poll(self, timeout_ms: int = 100) -> list[tuple[int, Message]]:
        """Return the next committed events (possibly none within the timeout), in seq order."""
        out: list[tuple[int, Message]] = []
        if self._needs_catch_up:
            if time.monotonic() < self._refused_until:
                return out
            try:
                self._fetch(0, out)
                self._needs_catch_up = False
            except LedgerUnavailable:
                return out
            except QueryError as exc:
                self._refused(exc)
                return out
        if not self.sock.poll(timeout_ms):
            return out
        while True:
            try:
                topic, seq_frame, *payloads = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return out
            if topic == HEAD_TOPIC:
                head = unpack_seq(seq_frame)
                if payloads and not self._same_journal(payloads[0].decode("ascii", "replace"), head):
                    if self._replays:
                        self._repair(head, out)
                    continue
                if self.last_seq is None:
                    self.last_seq = head
                elif head > self.last_seq:
                    self._repair(head, out)
                continue
            wanted = self._wanted(topic[:-1].decode())
            seqs = unpack_seqs(seq_frame)
            if len(seqs) > 1 and len(payloads) == 1:  # small events packed in one frame
                try:
                    payloads = split_messages(payloads[0]) or payloads
                except FrameError as exc:  # the ledger only publishes what it validated
                    log.error("undecodable batch of committed events %d..%d: %s", seqs[0], seqs[-1], exc)
                    continue
            for seq, payload in zip(seqs, payloads, strict=True):
                self._deliver(seq, payload, wanted, out)

    def _same_journal(self, journal_id: str, head: int) -> bool:
        """Whether the ledger's journal `journal_id` is the one being read; if not, start over in it.

        "" (a ledger from before journal ids) and the first id heard of count as the same. Starting
        over: a replaying subscriber goes back to before seq 1; a live one to the new journal's `head`.
        """
        if not journal_id or journal_id == self.journal_id:
            return True
        if self.journal_id is None:
            self.journal_id = journal_id
            return True
        log.warning("the ledger's journal changed (%s -> %s): its seqs start over, so this subscriber reads it "
                    "from %s", self.journal_id, journal_id, "seq 1" if self._replays else f"its head, seq {head}")
        self.journal_id = journal_id
        self.last_seq = 0 if self._replays else head
        return False

    def _deliver(self, seq: int, payload: bytes, wanted: bool, out: list[tuple[int, Message]]) -> None:
        """One published event: in order after the last one, else the gap repaired from the journal first."""
        if self.last_seq is None:
            self.last_seq = seq - 1
        if seq <= self.last_seq:
            return  # already delivered through a catch-up
        if seq > self.last_seq + 1:
            self._repair(seq - 1, out)
            if seq != self.last_seq + 1:
                return  # the gap is still open (ledger busy): the next head tick repairs it
        self.last_seq = seq
        if wanted:
            try:
                out.append((seq, decode_message(payload)))
            except FrameError as exc:  # the ledger only publishes what it validated
                log.error("undecodable committed event %d: %s", seq, exc)

    def _repair(self, upto: int, out: list[tuple[int, Message]]) -> None:
        if time.monotonic() < self._refused_until:
            return
        try:
            self._fetch(upto, out)
        except LedgerUnavailable:
            log.warning("gap before seq %d and the ledger is not answering; will retry", upto)
        except QueryError as exc:
            self._refused(exc)

    def _refused(self, exc: QueryError) -> None:
        log.warning("the ledger refused a catch-up from seq %d (retrying in %gs): %s",
                    (self.last_seq or 0) + 1, REFUSED_RETRY_SECONDS, exc)
        self._refused_until = time.monotonic() + REFUSED_RETRY_SECONDS

    def close(self) -> None:
        """Close the sockets."""
        self.sock.close()
        self.control.close()
