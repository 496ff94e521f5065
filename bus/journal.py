"""The append-only journal: the source of truth every projection is rebuilt from.

Segment files `<first seq>.seg` hold checksummed frames (layout: `bus/journal_format.py`). One
process writes a journal at a time: a writer holds the flock of `<journal>/LOCK`
(`bus/journal_lock.py`); `read_only=True` opens without it and never changes a byte.
A seq is a position in one journal: `identity` names it (`<journal>/IDENTITY`, `bus/journal_identity.py`).

Opening checks everything and changes nothing it cannot prove is safe to change:

- each *sealed* segment (every one but the newest) is checked against its seal `<segment>.sum`
  (size, seq range, crc32 of the file; `bus/journal_check.py`), written when the journal moved on;
- the newest segment is walked frame by frame. A *torn tail* (bytes after the last whole frame that
  hold no valid frame, where the frames before them reach `committed_seq`, what the warehouse has
  applied) is what a crash mid-write leaves: it is cut, and the cut bytes are kept in
  `<segment>.cut-<offset>`;
- anything else is a *fault*, and the journal is left exactly as it is: a frame that fails its
  checksum with valid frames after it (a bit flip, not a torn write), a damaged tail holding frames
  the warehouse committed, a sealed segment that does not match its seal, a gap between segments.
  `faults` lists them (each names the segment, the byte offsets and the seqs); `append` raises
  JournalCorrupt, and `read` raises JournalCorrupt when it reaches a damaged range.
  `oh journal repair` (`bus/journal_repair.py`) fixes them.

`append` writes a batch with one `write`. If that fails (a full disk: ENOSPC), every byte of the
batch is removed again before the error propagates (the segment is truncated back, a segment opened
for the batch is deleted), so the journal still ends on a whole frame, the head has not moved, and
the same batch can be appended later. The fsync policy decides durability:

- `always`: fsync before `append` returns, once per appended batch (group commit), so an
  acknowledged event survives a power cut;
- `batch` (default): `append` returns once the frames are in the page cache (killing any process
  loses nothing); the ledger calls `sync()` once per batch before committing the projections, so
  the warehouse never runs ahead of the durable journal;
- `off`: never fsync explicitly (the OS decides).
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from bus.journal_check import (
    JournalFault,
    Seal,
    file_crc,
    map_segment,
    read_seal,
    seal_path,
    write_seal,
)
from bus.journal_format import (
    HEADER,
    HOLE_TYPE,
    MAX_PAYLOAD,
    Frame,
    encode_frame,
    frame_crc,
)
from bus.journal_identity import ensure_identity, read_identity
from bus.journal_lock import JournalLock, JournalLocked

__all__ = ["FSYNC_POLICIES", "HEADER", "HOLE_TYPE", "Frame", "Journal", "JournalCorrupt", "JournalFault",
           "JournalLocked", "encode_frame"]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 128 * 1024 * 1024  # OH_SEGMENT_BYTES, read when a Journal is opened (never at import)
FSYNC_POLICIES = ("always", "batch", "off")


class JournalCorrupt(RuntimeError):
    """The journal failed a check: a person has to look at it (`oh journal check`, `oh journal repair`)."""


def _scan(path: Path, types: frozenset[str] | None = None, start: int = 0,
          after_seq: int = 0) -> Iterator[tuple[int, Frame]]:
    """Yield (end offset, frame) for each valid frame; stop silently at the first invalid one.

    With `types`, frames of other types are skipped by seeking past them (not checksummed, and
    yielded with an empty payload), which keeps a filtered catch-up cheap on a journal of bulk rows.
    `start` is the byte offset of a frame boundary to begin at (whose frame's seq is above `after_seq`).
    """
    with path.open("rb") as fh:
        offset = start
        last_seq = after_seq
        if start:
            fh.seek(start)
        while True:
            header = fh.read(HEADER.size)
            if len(header) < HEADER.size:
                return
            length, crc, seq, type_len = HEADER.unpack(header)
            if length > MAX_PAYLOAD or seq <= last_seq:
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
                if len(payload) < length or frame_crc(seq, type_bytes, payload) != crc:
                    return
            offset += HEADER.size + type_len + length
            last_seq = seq
            yield offset, Frame(seq, type_name, payload)


class _ReadMarks:
    """Where frames start in the segments read lately: (seq, byte offset) every MARK_FRAMES frames or MARK_BYTES
    bytes a read passed, per segment, for the MARK_SEGMENTS segments read last.

    A read from seq N begins at the last mark at or before N instead of the segment's first byte. The ledger
    answers each narrowed subscriber's catch-up (every head tick, from where it stopped) with a read of the
    newest segment: walked from its start, that was a header read and a seek per frame up to 128 MiB back,
    each second, per subscriber. Marks are taken only from frames at or below the head the read saw, which
    nothing rewrites while this journal object is open (a rolled-back append truncates beyond the head only;
    cutting a torn tail and repairs happen before opening or in another process holding the lock)."""

    MARK_FRAMES = 64
    MARK_BYTES = 1 << 20
    MARK_SEGMENTS = 16

    def __init__(self) -> None:
        self._marks: dict[Path, tuple[list[int], list[int]]] = {}  # path -> (seqs, offsets), ascending
        self._lock = threading.Lock()

    def start(self, path: Path, first: int, from_seq: int) -> tuple[int, int]:
        """(seq, offset) of the frame to begin a read of `path` (first seq `first`) for `from_seq` at."""
        with self._lock:
            marks = self._marks.get(path)
            if marks is None:
                return first, 0
            seqs, offsets = marks
            index = bisect.bisect_right(seqs, from_seq) - 1
            return (first, 0) if index < 0 else (seqs[index], offsets[index])

    def add(self, path: Path, found: list[tuple[int, int]]) -> None:
        """Remember (seq, offset) pairs a read passed, keeping them at least MARK_FRAMES / MARK_BYTES apart."""
        if not found:
            return
        with self._lock:
            marks = self._marks.pop(path, None)
            if marks is None:
                while len(self._marks) >= self.MARK_SEGMENTS:
                    del self._marks[next(iter(self._marks))]  # the segment read longest ago
                marks = ([], [])
            self._marks[path] = marks  # now the most recently read
            seqs, offsets = marks
            for seq, offset in found:
                index = bisect.bisect_right(seqs, seq)
                if index and (seqs[index - 1] > seq - self.MARK_FRAMES and offsets[index - 1] > offset - self.MARK_BYTES):
                    continue  # a mark close enough before it
                if index < len(seqs) and seqs[index] < seq + self.MARK_FRAMES and offsets[index] < offset + self.MARK_BYTES:
                    continue  # one close enough after it
                seqs.insert(index, seq)
                offsets.insert(index, offset)

    def forget(self) -> None:
        """Drop every mark (the segments' bytes changed: a rolled-back append)."""
        with self._lock:
            self._marks.clear()


class Journal:
    """Segmented, checksummed, append-only log of every journaled message, in seq order."""

    def __init__(
        self,
        directory: Path,
        fsync: str = "batch",
        *,
        committed_seq: int = 0,
        read_only: bool = False,
        lock: JournalLock | None = None,
        type_names: Iterable[str] = (),
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy must be one of {', '.join(FSYNC_POLICIES)}, not {fsync!r}")
        self.directory = directory
        self.fsync = fsync
        self.read_only = read_only
        self.segment_bytes = int(os.environ.get("OH_SEGMENT_BYTES", str(DEFAULT_SEGMENT_BYTES)))
        self.head_seq = 0
        self.truncated_bytes = 0
        self.faults: list[JournalFault] = []
        self._type_names = set(type_names)
        self._fd: int | None = None
        self._path: Path | None = None
        self._first = 0
        self._segment_size = 0
        self._crc: int | None = 0  # crc32 of the open segment so far; None: computed from the file when it is sealed
        self._dirty = False
        self._read_marks = _ReadMarks()
        self.lock: JournalLock | None = None
        if not read_only:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.lock = (lock or JournalLock(directory, "journal")).acquire()
        try:
            self.identity = read_identity(directory) if read_only else ensure_identity(directory)
            self._recover(committed_seq)
        except BaseException:
            self.close()
            raise

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

    @property
    def writing(self) -> Path:
        """The segment appends go to (the journal directory before the first one exists)."""
        return self._path or self.directory

    def cut_files(self) -> list[Path]:
        """Bytes cut from a torn tail, kept beside their segment (`<segment>.cut-<offset>`)."""
        return sorted(self.directory.glob("*.seg.cut-*"))

    def _recover(self, committed_seq: int) -> None:
        segments = self.segments()
        newest_faults: list[JournalFault] = []
        while segments:
            first, path = segments[-1]
            smap = map_segment(path, first, self._type_names)
            self._type_names |= smap.types_seen
            self.head_seq = smap.last_seq
            damages = smap.damages
            torn = len(damages) == 1 and damages[0].resume_seq is None and smap.last_seq >= committed_seq
            if damages and torn and not self.read_only:
                self._cut(path, damages[0].offset, smap.size)
                if damages[0].offset == 0 and len(segments) > 1:
                    path.unlink()  # an empty last segment: resume in the one before
                    seal_path(path).unlink(missing_ok=True)
                    segments.pop()
                    continue
            elif damages and not torn:
                newest_faults.append(JournalFault(path, sealed=False, damage=damages[0], more=len(damages) - 1))
            break
        for index, (first, path) in enumerate(segments[:-1]):
            fault = self._check_sealed(first, path, segments[index + 1][0])
            if fault is not None:
                self.faults.append(fault)
        self.faults += newest_faults
        if segments and not self.read_only and not self.faults:
            first, path = segments[-1]
            seal_path(path).unlink(missing_ok=True)  # the newest segment is written again: no longer sealed
            self._open_segment(path, first, path.stat().st_size, None)
        if not segments:
            self.head_seq = 0
        for fault in self.faults:
            log.error("journal: %s", fault.describe())

    def _cut(self, path: Path, good_end: int, size: int) -> None:
        """Cut a torn tail at `good_end`, keeping the bytes in `<segment>.cut-<offset>` first (fsynced)."""
        self.truncated_bytes += size - good_end
        kept = path.with_name(f"{path.name}.cut-{good_end}")
        with path.open("rb") as src, kept.open("wb") as dst:
            src.seek(good_end)
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        log.warning("journal: cut %d bytes of torn or corrupt tail from %s (kept in %s)", size - good_end, path.name, kept.name)
        with path.open("r+b") as fh:
            fh.truncate(good_end)
            os.fsync(fh.fileno())

    def _check_sealed(self, first: int, path: Path, next_first: int) -> JournalFault | None:
        """Check a sealed segment against its seal; walk it frame by frame only when that fails."""
        seal = read_seal(path)
        size = path.stat().st_size
        if seal is not None and seal == Seal(first, next_first - 1, size, seal.crc32) and file_crc(path) == seal.crc32:
            return None
        smap = map_segment(path, first, self._type_names)
        if smap.damages:
            return JournalFault(path, sealed=True, damage=smap.damages[0], more=len(smap.damages) - 1,
                                segment_last_seq=smap.last_seq, next_first=next_first)
        if smap.last_seq != next_first - 1:
            return JournalFault(path, sealed=True, segment_last_seq=smap.last_seq, next_first=next_first)
        if not self.read_only:  # every frame checks out: the seal was missing (an older journal) or is itself damaged
            write_seal(path, Seal(first, smap.last_seq, size, file_crc(path)), durable=self.fsync != "off")
            if seal is not None:
                log.warning("journal: the seal of %s did not match, but every frame in it checks out: resealed", path.name)
        return None

    def _open_segment(self, path: Path, first: int, size: int, crc: int | None) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._path, self._first, self._segment_size, self._crc = path, first, size, crc

    def _seal_segment(self, last_seq: int) -> None:
        """Close the open segment for good: make it durable, then write its seal."""
        assert self._fd is not None and self._path is not None
        if self.fsync != "off":
            os.fdatasync(self._fd)  # a seal never vouches for bytes that are not on disk
        self._dirty = False
        crc = file_crc(self._path) if self._crc is None else self._crc  # once per segment reopened after a restart
        write_seal(self._path, Seal(self._first, last_seq, self._segment_size, crc), durable=self.fsync != "off")
        os.close(self._fd)
        self._fd = None

    # -- writing -------------------------------------------------------------------------
    def append(self, frames: Iterable[tuple[str, bytes]]) -> list[int]:
        """Append messages as (type, payload) in one write; return the sequence numbers given.

        All or nothing: if writing fails (OSError, e.g. ENOSPC) the journal is as it was before the call.
        """
        if self.faults:
            raise JournalCorrupt(f"the journal is damaged, nothing may be appended: {self.faults[0].describe()}")
        if self.read_only:
            raise JournalCorrupt("this journal was opened read-only")
        before = (self._path, self._first, self._segment_size, self._crc)
        parts: list[bytes] = []
        first = seq = self.head_seq + 1
        size = 0
        names: dict[str, bytes] = {}
        pack, crc32, header_size = HEADER.pack, zlib.crc32, HEADER.size
        try:
            # the layout of `encode_frame`, inlined: this loop runs once per event on the ledger's hot path
            for type_name, payload in frames:
                type_bytes = names.get(type_name)
                if type_bytes is None:
                    type_bytes = names[type_name] = type_name.encode()
                if self._fd is None or (self._segment_size + size > self.segment_bytes and (parts or self._segment_size)):
                    self._write(parts)
                    parts, size = [], 0
                    if self._fd is not None:
                        self._seal_segment(seq - 1)
                    self._open_segment(self.directory / f"{seq:020d}.seg", seq, 0, 0)
                crc = crc32(payload, crc32(seq.to_bytes(8, "little") + type_bytes))  # = frame_crc(seq, type, payload)
                parts += (pack(len(payload), crc, seq, len(type_bytes)), type_bytes, payload)
                size += header_size + len(type_bytes) + len(payload)
                seq += 1
            self._write(parts)
            if self.fsync == "always":
                self.sync()
        except OSError:
            self._roll_back(*before)
            raise
        self.head_seq = seq - 1
        return list(range(first, seq))

    def _write(self, parts: list[bytes]) -> None:
        if not parts:
            return
        assert self._fd is not None
        data = b"".join(parts)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            self._segment_size += written
            view = view[written:]
        if self._crc is not None:
            self._crc = zlib.crc32(data, self._crc)
        self._dirty = True

    def _roll_back(self, path: Path | None, first: int, size: int, crc: int | None) -> None:
        """Undo a failed append: delete segments it opened, unseal and truncate the one it started in."""
        self._read_marks.forget()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        for other_first, other in self.segments():
            if other_first > self.head_seq and other != path:
                other.unlink(missing_ok=True)
                seal_path(other).unlink(missing_ok=True)
        self._path = None
        if path is None:
            return
        seal_path(path).unlink(missing_ok=True)
        with path.open("r+b") as fh:
            fh.truncate(size)
        self._open_segment(path, first, size, crc)
        log.info("journal: a failed write was rolled back; %s ends at byte %d again (seq %d)", path.name, size, self.head_seq)

    def sync(self) -> None:
        """Make every appended frame durable (a no-op under `off` or when nothing is pending)."""
        if self._fd is not None and self._dirty and self.fsync != "off":
            os.fdatasync(self._fd)
        self._dirty = False

    def close(self) -> None:
        """Flush to disk, close the open segment and give up the writer lock."""
        try:
            if self._fd is not None:
                try:
                    self.sync()
                except OSError as exc:  # a full or failing disk: what is not durable is not acknowledged as durable
                    log.error("journal: fsync on close failed: %s", exc)
                os.close(self._fd)
                self._fd = None
        finally:
            if self.lock is not None:
                self.lock.release()

    # -- reading -------------------------------------------------------------------------
    def read(self, from_seq: int = 1, to_seq: int | None = None, types: frozenset[str] | None = None) -> Iterator[Frame]:
        """Yield frames with from_seq <= seq <= to_seq (default: head), optionally of some types only.

        Safe to call while the same process appends: it never reads past the head it saw at the call.
        Frames marked lost by a repair (`HOLE_TYPE`) are never yielded; a damaged range on the way raises
        JournalCorrupt instead of silently ending the read early.
        """
        last = self.head_seq if to_seq is None else min(to_seq, self.head_seq)
        if last < from_seq:
            return
        segments = self.segments()
        for index, (first, path) in enumerate(segments):
            next_first = segments[index + 1][0] if index + 1 < len(segments) else None
            if next_first is not None and next_first <= from_seq:
                continue
            if first > last:
                return
            expected, offset = self._read_marks.start(path, first, from_seq)
            passed: list[tuple[int, int]] = []  # (seq, offset) of frames walked past, for the next read's start
            marked = offset
            try:
                for end, frame in _scan(path, types, offset, expected - 1):
                    if frame.seq != expected:
                        raise JournalCorrupt(f"{path.name}: expected seq {expected}, found {frame.seq}")
                    expected += 1
                    if frame.seq > last:
                        return
                    if not (frame.seq - first) % _ReadMarks.MARK_FRAMES or offset - marked >= _ReadMarks.MARK_BYTES:
                        passed.append((frame.seq, offset))
                        marked = offset
                    offset = end
                    if frame.seq >= from_seq and frame.type != HOLE_TYPE and (types is None or frame.type in types):
                        yield frame
            finally:
                self._read_marks.add(path, passed)
            if next_first is not None and expected != next_first:
                raise JournalCorrupt(f"{path.name} ends at seq {expected - 1} but the next segment starts at {next_first}")
            if next_first is None and expected <= last:
                raise JournalCorrupt(f"{path.name}: the frames after seq {expected - 1} are unreadable (head {last})")
