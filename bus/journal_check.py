"""Checking journal segments: seals for the sealed ones, and a map of where a segment is damaged.

A segment is *sealed* when the journal moves on to the next one: its size, seq range and the
crc32 of the whole file go into a sidecar `<segment>.sum` (written atomically). Opening the
journal checks every sealed segment against its seal, which costs one sequential read at C speed
(zlib's crc32 over 1 MiB chunks, about 2 GB/s here) instead of a frame-by-frame walk in Python.
A segment without a seal (written before seals existed) is walked frame by frame once and sealed.

When a segment does not check out, `map_buffer` says where: each `Damage` is a byte range that
holds no valid frame, the last good seq before it, and where valid frames resume. Frames resume
at the first header after the damage whose crc checks and whose seq continues (is above the last
good one); it is found by searching for the header's `type length | type name` bytes, so a
damaged length, seq or checksum field does not hide the frames after it.
"""

from __future__ import annotations

import json
import mmap
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bus.journal_format import HEADER, MAX_PAYLOAD, frame_crc

SEAL_SUFFIX = ".sum"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Seal:
    """What a sealed segment held when it was sealed."""

    first_seq: int
    last_seq: int
    size: int
    crc32: int


def seal_path(segment: Path) -> Path:
    """`<segment>.sum`, the sidecar holding a sealed segment's seal."""
    return segment.with_name(segment.name + SEAL_SUFFIX)


def read_seal(segment: Path) -> Seal | None:
    """The segment's seal, or None if it has none (or an unreadable one)."""
    try:
        data = json.loads(seal_path(segment).read_text())
        return Seal(int(data["first_seq"]), int(data["last_seq"]), int(data["size"]), int(data["crc32"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_seal(segment: Path, seal: Seal, durable: bool = True) -> None:
    """Write the seal atomically (temp file, rename); with `durable`, fsync the file and the directory."""
    target = seal_path(segment)
    tmp = target.with_name(target.name + ".tmp")
    text = json.dumps({"first_seq": seal.first_seq, "last_seq": seal.last_seq, "size": seal.size, "crc32": seal.crc32})
    with tmp.open("w") as fh:
        fh.write(text + "\n")
        fh.flush()
        if durable:
            os.fsync(fh.fileno())
    os.replace(tmp, target)
    if durable:
        sync_directory(segment.parent)


def sync_directory(directory: Path) -> None:
    """fsync a directory, so a rename or a new file in it survives a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_crc(path: Path, end: int | None = None) -> int:
    """crc32 of the file's first `end` bytes (all of it by default), read in 1 MiB chunks."""
    crc = 0
    remaining = path.stat().st_size if end is None else end
    with path.open("rb") as fh:
        while remaining > 0:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            remaining -= len(chunk)
    return crc


# -- damage maps ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Damage:
    """Bytes [offset, end) of a segment hold no valid frame.

    `last_good_seq` is the seq of the last valid frame before them (first seq - 1 at the start of
    a segment); `resume_seq` is the seq of the valid frame at `end`, or None when no valid frame
    follows (then `end` is the end of the segment). The seqs in between are unreadable.
    """

    offset: int
    end: int
    last_good_seq: int
    resume_seq: int | None

    def lost_seqs(self, next_first: int | None = None) -> range:
        """The seqs the damage made unreadable (those before the next segment, when nothing resumes here)."""
        stop = self.resume_seq if self.resume_seq is not None else (next_first if next_first is not None else self.last_good_seq + 1)
        return range(self.last_good_seq + 1, max(stop, self.last_good_seq + 1))


@dataclass(frozen=True)
class SegmentMap:
    """The valid frames and damaged ranges of one segment."""

    size: int
    last_seq: int
    good_end: int
    damages: list[Damage] = field(default_factory=list)
    types_seen: frozenset[str] = frozenset()


def frame_at(buf: bytes | mmap.mmap | memoryview, pos: int, after_seq: int) -> tuple[int, int, str] | None:
    """(end offset, seq, type) of a valid frame at `pos` whose seq is above `after_seq`, else None."""
    size = len(buf)
    if pos < 0 or pos + HEADER.size > size:
        return None
    length, crc, seq, type_len = HEADER.unpack_from(buf, pos)
    end = pos + HEADER.size + type_len + length
    if length > MAX_PAYLOAD or seq <= after_seq or end > size:
        return None
    type_bytes = bytes(buf[pos + HEADER.size : pos + HEADER.size + type_len])
    with memoryview(buf) as view, view[pos + HEADER.size + type_len : end] as payload:
        if frame_crc(seq, type_bytes, payload) != crc:
            return None
    return end, seq, type_bytes.decode(errors="replace")


def resync(buf: bytes | mmap.mmap, bad: int, after_seq: int, type_names: Iterable[str]) -> tuple[int, int] | None:
    """(offset, seq) of the first valid frame after the bad byte at `bad` whose seq is above `after_seq`.

    Two searches, the earliest hit wins: the frame where the bad frame's own length says the next
    one starts (a damaged payload, type or checksum), and every occurrence of a known
    `type length | type name` (a damaged length or seq field, or several frames destroyed).
    """
    best: int | None = None
    best_seq = 0
    if bad + HEADER.size <= len(buf):
        length, _, _, type_len = HEADER.unpack_from(buf, bad)
        hit = frame_at(buf, bad + HEADER.size + type_len + length, after_seq) if length <= MAX_PAYLOAD else None
        if hit is not None:
            best, best_seq = bad + HEADER.size + type_len + length, hit[1]
    for name in sorted(set(type_names)):
        encoded = name.encode()
        if not encoded or len(encoded) > 255:
            continue
        pattern = bytes([len(encoded)]) + encoded
        at = buf.find(pattern, bad + HEADER.size)  # the type length byte is the header's last byte
        while at != -1:
            start = at - (HEADER.size - 1)
            if best is not None and start >= best:
                break
            hit = frame_at(buf, start, after_seq)
            if hit is not None:
                best, best_seq = start, hit[1]
                break
            at = buf.find(pattern, at + 1)
    return None if best is None else (best, best_seq)


def map_buffer(buf: bytes | mmap.mmap, first_seq: int, type_names: Iterable[str] = ()) -> SegmentMap:
    """Walk every frame of a segment's bytes; name each damaged range and where frames resume after it."""
    names = set(type_names)
    size = len(buf)
    pos, last = 0, first_seq - 1
    good_end: int | None = None
    damages: list[Damage] = []
    while pos < size:
        hit = frame_at(buf, pos, last)
        if hit is not None:
            end, seq, type_name = hit
            if seq != last + 1:  # a whole frame, but seqs are missing before it
                damages.append(Damage(pos, pos, last, seq))
                good_end = pos if good_end is None else good_end
            names.add(type_name)
            pos, last = end, seq
            continue
        good_end = pos if good_end is None else good_end
        found = resync(buf, pos, last, names)
        if found is None:
            damages.append(Damage(pos, size, last, None))
            break
        damages.append(Damage(pos, found[0], last, found[1]))
        pos, last = found[0], found[1] - 1
    return SegmentMap(size=size, last_seq=last, good_end=size if good_end is None else good_end,
                      damages=damages, types_seen=frozenset(names))


def map_segment(path: Path, first_seq: int, type_names: Iterable[str] = ()) -> SegmentMap:
    """`map_buffer` over a segment file (memory-mapped, read only)."""
    size = path.stat().st_size
    if size == 0:
        return SegmentMap(size=0, last_seq=first_seq - 1, good_end=0)
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return map_buffer(buf, first_seq, type_names)


# -- faults --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JournalFault:
    """Something in the journal that does not check out, found on open; nothing was changed."""

    segment: Path
    sealed: bool
    damage: Damage | None = None  # None: a gap (the segment ends before the next one starts)
    more: int = 0  # further damaged ranges in the same segment
    segment_last_seq: int = 0
    next_first: int | None = None

    def describe(self) -> str:
        """One line naming the segment, the byte offsets and the seqs."""
        kind = "sealed segment" if self.sealed else "newest segment"
        name = f"journal {kind} {self.segment.name}"
        if self.damage is None:
            return f"{name} ends at seq {self.segment_last_seq} but the next segment starts at seq {self.next_first}"
        d = self.damage
        if d.resume_seq is None:
            text = (f"{name} fails its checksum at byte {d.offset}: no valid frame after seq {d.last_good_seq} "
                    f"in bytes {d.offset}..{d.end}")
        elif d.offset == d.end:
            text = f"{name} jumps from seq {d.last_good_seq} to seq {d.resume_seq} at byte {d.offset}"
        else:
            text = (f"{name} fails its checksum at byte {d.offset}: bytes {d.offset}..{d.end} are unreadable "
                    f"(after seq {d.last_good_seq}; valid frames resume at byte {d.end} with seq {d.resume_seq})")
        return text + (f"; {self.more} more damaged range(s) in it" if self.more else "")
