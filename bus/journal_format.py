"""The journal's frame layout, shared by the journal, its checks and its repair.

    u32 payload length | u32 crc32(seq, type, payload) | u64 seq | u8 type length | type | payload

all little-endian. The crc covers the seq, the type name and the payload (not the two lengths: a
damaged length shows as a frame whose crc fails, or that runs past the end of the segment).

A frame of type `HOLE_TYPE` stands for a seq whose frame was destroyed and could not be restored
(`oh journal repair --mark-lost`): its payload is JSON saying what the warehouse knew of the lost
event. It keeps seqs contiguous; `Journal.read` never yields it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from struct import Struct

HEADER = Struct("<IIQB")
MAX_PAYLOAD = 1 << 31
HOLE_TYPE = "\0lost"


@dataclass(frozen=True)
class Frame:
    """One journaled message: its sequence number, type name and raw msgpack payload."""

    seq: int
    type: str
    payload: bytes


def frame_crc(seq: int, type_bytes: bytes, payload: bytes | memoryview) -> int:
    """The checksum stored in a frame's header."""
    return zlib.crc32(payload, zlib.crc32(type_bytes, zlib.crc32(seq.to_bytes(8, "little"))))


def encode_frame(seq: int, type_name: str, payload: bytes) -> bytes:
    """Lay out one frame (header, type, payload) as it is stored on disk."""
    type_bytes = type_name.encode()
    header = HEADER.pack(len(payload), frame_crc(seq, type_bytes, payload), seq, len(type_bytes))
    return header + type_bytes + payload
