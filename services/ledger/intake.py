"""One drain of the ledger's ingress: decode, sort and answer what arrived, before anything is journaled.

`Intake.admit_frame` takes one ZeroMQ frame from a producer (a packed batch, a msgpack array of
encoded messages, or one message) and sorts every message in it into exactly one of:

- *fresh*: a new, valid, storable event, to be journaled in arrival order (`types`, `payloads`,
  `messages`, `identities`: parallel lists, one entry per event; `decoded`: the Arrow rows `validate`
  decoded, which the projection of this drain uses instead of decoding them again);
- a *duplicate* of an event journaled before (`seen` knows its seq): acknowledged with that seq, never
  journaled again;
- a *late duplicate*: the same id earlier in this drain; acknowledged with the seq the first gets;
- *ephemeral* (a heartbeat): recorded, never journaled nor acknowledged;
- *rejected* (malformed, unknown type, oversized, invalid payload): answered with a Nack, counted, logged,
  by the ledger's `reject` callback, and nothing else of the frame is lost;
- *refused* (the ledger is halted or stalled: `refusal` is set): answered with `Nack(retry=True)` by
  `refuse`, so the producer keeps it and resends it later.

A packed batch is decoded in one call (`list[AnyMessage]`: msgspec's C loop, not one Python call per
message); when any message in it fails to decode, the batch is decoded again one message at a time,
so one bad message is rejected alone and the others are admitted as usual.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from bus.codec import FrameError, decode_message, max_frame_bytes, split_messages
from contracts import EPHEMERAL_TYPES, MESSAGE_TYPES, AnyMessage, Heartbeat, Message
from services.ledger.dedup import RecentIds
from services.ledger.projections import VALIDATED_TYPES, Decoded, validate

_batch_decoder = msgspec.msgpack.Decoder(list[AnyMessage])  # type: ignore[valid-type]
_EPHEMERAL = frozenset(MESSAGE_TYPES[name] for name in EPHEMERAL_TYPES)


def reject_kind(reason: str) -> str:
    """The counter a decoding failure is filed under (`rejected_<kind>` in `oh status`)."""
    return "oversized" if "exceeds" in reason else "unknown_type" if "`$.type`" in reason else "malformed"


class Intake:
    """The messages of one drain, sorted; see the module docstring."""

    def __init__(
        self,
        seen: RecentIds,
        heartbeats: dict[str, dict[str, Any]],
        refusal: str | None,
        reject: Callable[[bytes, str, str, str | None], None],
        refuse: Callable[[bytes, str | None, str], None],
        count: Callable[[str, int], None],
    ) -> None:
        self.types: list[str] = []
        self.payloads: list[bytes] = []
        self.messages: list[Message] = []
        self.identities: list[bytes] = []
        self.duplicates: list[tuple[bytes, str, int]] = []  # (identity, id, seq journaled before)
        self.late_duplicates: list[tuple[bytes, str, int]] = []  # (identity, id, index into the fresh lists)
        self.size = 0  # bytes received in this drain
        self.decoded: Decoded = {}  # the fresh events' rows as `validate` decoded them (projections.decoded_rows)
        self._in_batch: dict[str, int] = {}
        self._seen = seen
        self._heartbeats = heartbeats
        self._refusal = refusal
        self._reject = reject
        self._refuse = refuse
        self._count = count

    def admit_frame(self, identity: bytes, frame: bytes) -> None:
        """Sort every message of one received frame."""
        self.size += len(frame)
        try:
            batch = split_messages(frame)  # a producer's batch travels as one packed frame
        except FrameError as exc:
            self._reject(identity, str(exc), "malformed", None)
            return
        if batch is None:
            self._admit_one(identity, frame)
            return
        messages: list[Message] | None = None
        if len(frame) <= max_frame_bytes():  # then no message in it exceeds the limit either
            try:
                messages = _batch_decoder.decode(frame)
            except (msgspec.DecodeError, UnicodeDecodeError):
                messages = None  # one of them is bad: decode one by one to reject only that one
        if messages is None:
            for payload in batch:
                self._admit_one(identity, payload)
            return
        for payload, message in zip(batch, messages, strict=True):
            self._admit(identity, payload, message)

    def _admit_one(self, identity: bytes, payload: bytes) -> None:
        try:
            message = decode_message(payload)
        except FrameError as exc:
            reason = str(exc)
            self._reject(identity, reason, reject_kind(reason), None)
            return
        self._admit(identity, payload, message)

    def _admit(self, identity: bytes, payload: bytes, message: Message) -> None:
        kind = type(message)
        if kind in _EPHEMERAL:
            if isinstance(message, Heartbeat):
                self._heartbeats[message.service] = {"pid": message.pid, "state": message.state,
                                                     "run_id": message.run_id, "last_seen": time.time()}
            return
        event_id = message.id
        seq = self._seen.get(event_id)
        if seq is not None:
            self._count("duplicates_dropped", 1)
            self.duplicates.append((identity, event_id, seq))
            return
        index = self._in_batch.get(event_id)
        if index is not None:
            self._count("duplicates_dropped", 1)
            self.late_duplicates.append((identity, event_id, index))
            return
        if self._refusal is not None:  # halted or stalled: not stored, so not acknowledged; the producer resends it
            self._refuse(identity, event_id, self._refusal)
            return
        if kind in VALIDATED_TYPES:
            try:
                table = validate(message)
            except FrameError as exc:
                self._reject(identity, str(exc), "invalid_payload", event_id)
                return
            rows = message.rows  # type: ignore[attr-defined]
            self.decoded[id(rows)] = (rows, table)  # type: ignore[assignment]
        self._in_batch[event_id] = len(self.messages)
        self.types.append(kind.__name__)
        self.payloads.append(payload)
        self.messages.append(message)
        self.identities.append(identity)

    def drop_fresh(self) -> None:
        """Forget the fresh events (they could not be journaled and were refused)."""
        self.types, self.payloads, self.messages, self.identities = [], [], [], []
        self.late_duplicates = []
        self.decoded = {}
