"""One codec for the whole bus: msgpack via msgspec, typed tagged-union decoding, size limits."""

from __future__ import annotations

import functools
import os
import struct
from typing import Any

import msgspec

from contracts import AnyMessage, Message
from contracts.control import (
    Ack,
    CatchUpReply,
    ControlRequest,
    ErrorReply,
    ExportClosed,
    ExportOpened,
    ExportPage,
    Nack,
    RebuildReply,
    StatusReply,
)

DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024


@functools.cache
def max_frame_bytes() -> int:
    """The largest frame decoded: OH_MAX_FRAME_BYTES, read on first use (never at import, so a process forked from one
    that imported this module still reads its own environment)."""
    return int(os.environ.get("OH_MAX_FRAME_BYTES", str(DEFAULT_MAX_FRAME_BYTES)))


_encoder = msgspec.msgpack.Encoder()
_message_decoder = msgspec.msgpack.Decoder(AnyMessage)
_request_decoder = msgspec.msgpack.Decoder(ControlRequest)
_ingress_reply_decoder = msgspec.msgpack.Decoder(Ack | Nack)
_control_reply_decoder = msgspec.msgpack.Decoder(
    ErrorReply | StatusReply | CatchUpReply | RebuildReply | ExportOpened | ExportPage | ExportClosed
)
_SEQ = struct.Struct(">Q")


class FrameError(ValueError):
    """A frame that is not a valid message: too large, not msgpack, unknown type or bad fields."""


def encode(obj: Any) -> bytes:
    """Encode a message (or any msgspec-supported value) to msgpack bytes."""
    return _encoder.encode(obj)


def decode_message(frame: bytes) -> Message:
    """Decode one journaled-or-ephemeral message, raising FrameError with a one-line reason."""
    limit = max_frame_bytes()
    if len(frame) > limit:
        raise FrameError(f"frame of {len(frame)} bytes exceeds the {limit}-byte limit")
    try:
        return _message_decoder.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # ValidationError is a DecodeError
        raise FrameError(str(exc).splitlines()[0][:300]) from None


def decode_request(frame: bytes) -> Any:
    """Decode a control request (query, catch-up, status, rebuild, export)."""
    try:
        return _request_decoder.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise FrameError(str(exc).splitlines()[0][:300]) from None


def decode_ingress_reply(frame: bytes) -> Ack | Nack:
    """Decode the ledger's answer to a producer."""
    return _ingress_reply_decoder.decode(frame)


def decode_control_reply(frame: bytes) -> Any:
    """Decode the header frame of the ledger's answer to a control request."""
    return _control_reply_decoder.decode(frame)


BULK_FRAME_BYTES = 65536  # a payload this big travels in a frame of its own, never packed with others
_raw_list_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])


def pack_messages(payloads: list[bytes]) -> bytes:
    """Several encoded messages as ONE frame (a msgpack array of them): one ZeroMQ frame for a batch
    instead of one per message (pyzmq sends and receives frames one Python call at a time)."""
    return msgspec.msgpack.encode([msgspec.Raw(payload) for payload in payloads])


def split_messages(frame: bytes) -> list[bytes] | None:
    """The encoded messages packed in `frame`, or None when it is a single message (a msgpack map;
    a packed batch is a msgpack array, which no message is). Raises FrameError if it does not parse."""
    if not frame or not (0x90 <= frame[0] <= 0x9F or frame[0] in (0xDC, 0xDD)):
        return None
    try:
        return [bytes(raw) for raw in _raw_list_decoder.decode(frame)]
    except msgspec.DecodeError as exc:
        raise FrameError(f"malformed batch of messages: {str(exc).splitlines()[0][:200]}") from None


def frames_for(payloads: list[bytes]) -> list[bytes]:
    """The frames that carry `payloads` in order: one packed frame when they are several and all small,
    else one frame each (bulk rows are never copied into a batch)."""
    if len(payloads) > 1 and max(map(len, payloads)) < BULK_FRAME_BYTES:
        return [pack_messages(payloads)]
    return payloads


HEAD_TOPIC = b"\0head"  # the ledger's once-a-second head tick on the events channel


def pack_seqs(seqs: list[int]) -> bytes:
    """Encode sequence numbers as one frame of 8-byte words (the events channel's second frame; one seq
    packs exactly as `pack_seq`)."""
    return struct.pack(f">{len(seqs)}Q", *seqs)


def unpack_seqs(data: bytes) -> tuple[int, ...]:
    """Decode a frame of 8-byte sequence numbers."""
    return struct.unpack(f">{len(data) // 8}Q", data)


def pack_seq(seq: int) -> bytes:
    """Encode a sequence number as the 8-byte frame used on the events channel."""
    return _SEQ.pack(seq)


def unpack_seq(data: bytes) -> int:
    """Decode an 8-byte sequence-number frame."""
    return _SEQ.unpack(data)[0]


def topic_of(type_name: str) -> bytes:
    """The PUB/SUB topic frame for a message type (NUL-terminated so prefixes never collide)."""
    return type_name.encode() + b"\0"
