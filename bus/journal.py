"""The append-only journal: the source of truth every projection is rebuilt from.

Segment files `<first seq>.seg` hold frames laid out as

    u32 payload length | u32 crc32(seq, type, payload) | u64 seq | u8 type length | type | payload

A torn or corrupt tail (a crash mid-write) is detected on open and cut off, so the journal
always ends on a whole, checksummed frame; the cut bytes are kept beside the segment
(`<segment>.cut-<offset>`), so a bit flip mid-segment never silently destroys the frames after it. The fsync policy decides durability:

- `always`: fsync before `append` returns, once per appended batch (group commit), so an
  acknowledged event survives a power cut;
- `batch` (default): `append` returns once the frames are in the page cache (killing any process
  loses nothing); the ledger calls `sync()` once per batch before committing the projections, so
  the warehouse never runs ahead of the durable journal;
- `off`: never fsync explicitly (the OS decides).
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HEADER = struct.Struct("<IIQB")
SEGMENT_BYTES = int(os.environ.get("OH_SEGMENT_BYTES", str(128 * 1024 * 1024)))
FSYNC_POLICIES = ("always", "batch", "off")


class JournalCorrupt(RuntimeError):
    """A sealed segment failed its checksum: the journal needs a person to look at it."""


@dataclass(frozen=True)
class Frame:
    """One journaled message: its sequence number, type name and raw msgpack payload."""

    seq: int
    type: str
    payload: bytes


def _crc(seq: int, type_bytes: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(type_bytes, zlib.crc32(seq.to_bytes(8, "little"))))


def encode_frame(seq: int, type_name: str, payload: bytes) -> bytes:
    """Lay out one frame (header, type, payload) as it is stored on disk."""
    type_bytes = type_name.encode()
    header = HEADER.pack(len(payload), _crc(seq, type_bytes, payload), seq, len(type_bytes))
    return header + type_bytes + payload


def _scan(path: Path, types: frozenset[str] | None = None) -> Iterator[tuple[int, Frame]]:
    """Yield (end offset, frame) for each valid frame; stop silently at the first invalid one.

    With `types`, frames of other types are skipped by seeking past them (not checksummed, and
    yielded with an empty payload), which keeps a filtered catch-up cheap on a journal of bulk rows.
    """
    with path.open("rb") as fh:
        offset = 0
        last_seq = 0
        while True:
            header = fh.read(HEADER.size)
            if len(header) < HEADER.size:
                return
            length, crc, seq, type_len = HEADER.unpack(header)
            if length > 1 << 31 or seq <= last_seq:
                return
            type_bytes = fh.read(type_len)
            if len(type_bytes) < type_len:
                return
            type_name = type_bytes.decode(errors="replace")
            if types is not None and type_name not in types:
                fh.seek(length, os.SEEK_CUR)
                payload = b""
            else:
                payload = fh.read(length)
                if len(payload) < length or _crc(seq, type_bytes, payload) != crc:
                    return
            offset += HEADER.size + type_len + length
            last_seq = seq
            yield offset, Frame(seq, type_name, payload)


class Journal:
    """Segmented, checksummed, append-only log of every journaled message, in seq order."""

    def __init__(self, directory: Path, fsync: str = "batch") -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy must be one of {', '.join(FSYNC_POLICIES)}, not {fsync!r}")
        self.directory = directory
        self.fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)
        self.head_seq = 0
        self.truncated_bytes = 0
        self._fd: int | None = None
        self._segment_size = 0
        self._dirty = False
        self._recover()

    # -- opening -------------------------------------------------------------------------
    def segments(self) -> list[tuple[int, Path]]:
        """Return (first seq, path) for every segment, oldest first."""
        found = []
        for path in self.directory.glob("*.seg"):
            try:
                found.append((int(path.stem), path))
            except ValueError:
                log.warning("ignoring stray file in journal: %s", path.name)
        return sorted(found)

    def _recover(self) -> None:
        segments = self.segments()
        while segments:
            first, path = segments[-1]
            good_end, last_seq = 0, 0
            for good_end, frame in _scan(path):
                last_seq = frame.seq
            size = path.stat().st_size
            if good_end < size:
                self.truncated_bytes += size - good_end
                kept = self._set_aside(path, good_end)
                log.warning("journal: cut %d bytes of torn or corrupt tail from %s (kept in %s)",
                            size - good_end, path.name, kept.name)
                with path.open("r+b") as fh:
                    fh.truncate(good_end)
                    os.fsync(fh.fileno())
            if good_end == 0 and len(segments) > 1:
                path.unlink()  # an empty last segment: resume in the one before
                segments.pop()
                continue
            self.head_seq = last_seq if good_end else first - 1
            self._open_segment(path)
            return
        self.head_seq = 0

    @staticmethod
    def _set_aside(path: Path, good_end: int) -> Path:
        """Copy the bytes about to be cut to `<segment>.cut-<offset>`, so a corrupt frame in the middle of
        the tail (a bit flip, not a torn write) never destroys the whole frames after it: a person can
        still recover them. The copy is fsynced before the segment is truncated."""
        kept = path.with_name(f"{path.name}.cut-{good_end}")
        with path.open("rb") as src, kept.open("wb") as dst:
            src.seek(good_end)
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        return kept

    def _open_segment(self, path: Path) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._segment_size = os.fstat(self._fd).st_size

    # -- writing -------------------------------------------------------------------------
    def append(self, frames: Iterable[tuple[str, bytes]]) -> list[int]:
        """Append messages as (type, payload) in one write; return the sequence numbers given."""
        parts: list[bytes] = []
        seqs: list[int] = []
        seq = self.head_seq
        size = 0
        for type_name, payload in frames:
            seq += 1
            frame = encode_frame(seq, type_name, payload)
            if self._fd is None or (self._segment_size + size > SEGMENT_BYTES and (parts or self._segment_size)):
                self._write(parts)
                parts, size = [], 0
                self._open_segment(self.directory / f"{seq:020d}.seg")
            parts.append(frame)
            size += len(frame)
            seqs.append(seq)
        self._write(parts)
        self.head_seq = seq
        if self.fsync == "always":
            self.sync()
        return seqs

    def _write(self, parts: list[bytes]) -> None:
        if not parts:
            return
        assert self._fd is not None
        data = b"".join(parts)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._segment_size += len(data)
        self._dirty = True

    def sync(self) -> None:
        """Make every appended frame durable (a no-op under `off` or when nothing is pending)."""
        if self._fd is not None and self._dirty and self.fsync != "off":
            os.fdatasync(self._fd)
        self._dirty = False

    def close(self) -> None:
        """Flush to disk and close the open segment."""
        if self._fd is not None:
            if self._dirty:
                os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = None

    # -- reading -------------------------------------------------------------------------
    def read(self, from_seq: int = 1, to_seq: int | None = None, types: frozenset[str] | None = None) -> Iterator[Frame]:
        """Yield frames with from_seq <= seq <= to_seq (default: head), optionally of some types only.

        Safe to call while the same process appends: it never reads past the head it saw at the call.
        """
        last = self.head_seq if to_seq is None else min(to_seq, self.head_seq)
        segments = self.segments()
        for index, (first, path) in enumerate(segments):
            next_first = segments[index + 1][0] if index + 1 < len(segments) else None
            if next_first is not None and next_first <= from_seq:
                continue
            if first > last:
                return
            expected = first
            for _, frame in _scan(path, types):
                if frame.seq != expected:
                    raise JournalCorrupt(f"{path.name}: expected seq {expected}, found {frame.seq}")
                expected += 1
                if frame.seq > last:
                    return
                if frame.seq >= from_seq and (types is None or frame.type in types):
                    yield frame
            if next_first is not None and expected != next_first:
                raise JournalCorrupt(f"{path.name} ends at seq {expected - 1} but the next segment starts at {next_first}")
        return
