"""Repairing a damaged journal, offline, under the journal's writer lock (`oh journal repair`).

For every damaged range a check found (`bus/journal_check.py`), in every segment:

1. **Correct it exactly** when the range is one frame with one damaged byte. CRC-32 is linear, so
   the difference between the stored and the recomputed checksum (the syndrome) says which byte
   went wrong and how; a damaged length field is found from where the next frame starts. The
   corrected frame must check out and, when the warehouse committed that seq, carry the id, type and
   size the warehouse recorded in `ledger.events` (the `accept` callback). Only a unique candidate
   is taken: the journal then holds exactly the bytes it held before the damage.
2. **Resync** past it otherwise: the valid frames after the range are kept where they are (a
   `<segment>.cut-<offset>` left by an older version that cut a tail is put back the same way),
   and the seqs in between are *missing*. The warehouse has no copy of a journaled payload (its
   `ledger.events` holds only seq, id, type, ts and size), so nothing can bring their bytes back.
3. Missing seqs stop the repair unless `mark_lost` is given: then each becomes a `HOLE_TYPE` frame
   recording what the warehouse knew of it (id, type, ts, size), which keeps the seqs contiguous.
   The warehouse keeps the rows those events produced (it is never rebuilt by a repair), but a
   rebuild from the journal can no longer produce them: the report says which seqs, and whether the
   warehouse had applied them.

Nothing is lost by repairing: every rewritten segment's original bytes are kept as
`<segment>.damaged-<stamp>`, and a segment is replaced by an atomic rename after its new content is
fsynced.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bus.journal_check import (
    Damage,
    Seal,
    map_buffer,
    seal_path,
    sync_directory,
    write_seal,
)
from bus.journal_format import HEADER, HOLE_TYPE, Frame, encode_frame, frame_crc

log = logging.getLogger(__name__)

MAX_CORRECTABLE_BYTES = 16 * 1024 * 1024  # the syndrome search is a Python loop: about 0.4 s per MiB


# -- exact correction of one damaged byte ------------------------------------------------------
def _crc_table() -> list[int]:
    table = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = (value >> 1) ^ 0xEDB88320 if value & 1 else value >> 1
        table.append(value)
    return table


_TABLE = _crc_table()
_BY_TOP_BYTE = {value >> 24: index for index, value in enumerate(_TABLE)}  # the top bytes are all distinct
_BYTE_ERROR = {value: index for index, value in enumerate(_TABLE) if index}


def byte_errors(syndrome: int, span: int) -> list[tuple[int, int]]:
    """(n, v) such that XOR-ing v into the byte n places before the end of a message changes its crc32 by `syndrome`.

    The crc of `byte v followed by n zero bytes` (without init and final xor) is Z^n(T[v]), Z being one
    zero-byte step of the register; stepping the syndrome back with Z's inverse finds every such (n, v).
    """
    found = []
    value = syndrome
    for n in range(span):
        error = _BYTE_ERROR.get(value)
        if error is not None:
            found.append((n, error))
        index = _BY_TOP_BYTE[value >> 24]
        value = (((value ^ _TABLE[index]) << 8) & 0xFFFFFFFF) | index
    return found


def _one_byte(difference: int) -> bool:
    """True if the bits of `difference` (nonzero) all fall in one byte."""
    return difference != 0 and any(difference == difference & (0xFF << (8 * lane)) for lane in range(8))


def _candidates(region: bytes, seq: int) -> list[bytes]:
    """Every frame with this seq that differs from `region` in one byte (of a header field or the data) and checks out."""
    if len(region) < HEADER.size:
        return []
    length, crc, stored_seq, type_len = HEADER.unpack_from(region)
    total = len(region)
    found: list[bytes] = []

    def whole(t_len: int, p_len: int, check: int) -> bytes:
        return HEADER.pack(p_len, check, seq, t_len) + region[HEADER.size : HEADER.size + t_len + p_len]

    if HEADER.size + type_len + length != total:  # one of the two lengths is damaged: all the rest is intact
        for t_len, p_len in ((type_len, total - HEADER.size - type_len), (total - HEADER.size - length, length)):
            if 0 <= t_len <= 255 and p_len >= 0 and stored_seq == seq:
                type_bytes = region[HEADER.size : HEADER.size + t_len]
                if frame_crc(seq, type_bytes, region[HEADER.size + t_len :]) == crc:
                    found.append(whole(t_len, p_len, crc))
        return found
    type_bytes = region[HEADER.size : HEADER.size + type_len]
    payload = region[HEADER.size + type_len :]
    computed = frame_crc(seq, type_bytes, payload)
    if stored_seq != seq:  # the seq field is the damaged byte
        return [whole(type_len, length, crc)] if computed == crc and _one_byte(stored_seq ^ seq) else []
    syndrome = computed ^ crc
    if syndrome == 0:
        return [region]
    if _one_byte(syndrome):
        found.append(whole(type_len, length, computed))  # the stored checksum itself is the damaged byte
    data_len = type_len + length  # the seq bytes checked out: the damage is in the type or the payload
    for n, error in byte_errors(syndrome, data_len):
        index = total - 1 - n
        fixed = bytearray(region)
        fixed[index] ^= error
        fixed_type = bytes(fixed[HEADER.size : HEADER.size + type_len])
        if frame_crc(seq, fixed_type, bytes(fixed[HEADER.size + type_len :])) == crc:
            found.append(bytes(fixed))
    return found


def correct_frame(
    region: bytes, seq: int, accept: Callable[[Frame], bool] | None = None, type_names: Iterable[str] = (),
    max_bytes: int = MAX_CORRECTABLE_BYTES,
) -> bytes | None:
    """The one frame `seq` that `region` holds with one damaged byte, or None (no such frame, or more than one).

    The crc does not cover where the type ends and the payload begins, so a damaged length can fit two
    layouts: a candidate whose type is one of `type_names` wins over one whose type is not.
    """
    if len(region) > max_bytes + HEADER.size + 256:
        return None
    names = set(type_names)
    unique: dict[bytes, bool] = {}  # candidate -> its type is a known one
    regions = [region]
    if len(region) >= HEADER.size:  # a torn frame after it (never committed) is dropped: try the declared size too
        length, _, _, type_len = HEADER.unpack_from(region)
        declared = HEADER.size + type_len + length
        if HEADER.size < declared < len(region):
            regions.append(region[:declared])
    for candidate_region in regions:
        for candidate in _candidates(candidate_region, seq):
            length, _, _, type_len = HEADER.unpack_from(candidate)
            frame = Frame(seq, candidate[HEADER.size : HEADER.size + type_len].decode(errors="replace"),
                          candidate[HEADER.size + type_len :])
            if accept is None or accept(frame):
                unique[candidate] = frame.type in names
    if len(unique) > 1 and any(unique.values()):
        unique = {candidate: known for candidate, known in unique.items() if known}
    return next(iter(unique)) if len(unique) == 1 else None


# -- planning and writing a repair -------------------------------------------------------------
@dataclass
class SegmentRepair:
    """What repairing one segment does: its new bytes (holes as None until marked) and what changed."""

    path: Path
    first: int
    sealed: bool
    pieces: list[bytes | int] = field(default_factory=list)  # bytes to keep, or a missing seq
    corrected: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    dropped_bytes: int = 0
    spliced_cut: Path | None = None


@dataclass
class RepairPlan:
    """Every segment that needs repair, and the missing seqs that only `mark_lost` gets past."""

    segments: list[SegmentRepair]
    committed_seq: int

    @property
    def missing(self) -> list[int]:
        return [seq for segment in self.segments for seq in segment.missing]

    @property
    def corrected(self) -> list[int]:
        return [seq for segment in self.segments for seq in segment.corrected]


def _segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob("*.seg"):
        if path.stem.isdigit():
            found.append((int(path.stem), path))
    return sorted(found)


def _read_with_cut(path: Path) -> tuple[bytes, Path | None]:
    """A segment's bytes, followed by the bytes an older version cut from its end when they are still its tail."""
    data = path.read_bytes() if path.exists() else b""
    for cut in sorted(path.parent.glob(f"{path.name}.cut-*")):
        offset = cut.name.rsplit("-", 1)[-1]
        if offset.isdigit() and int(offset) == len(data):
            return data + cut.read_bytes(), cut
    return data, None


def _plan_segment(
    path: Path, first: int, next_first: int | None, committed_seq: int, names: set[str],
    accept: Callable[[Frame], bool] | None,
) -> SegmentRepair | None:
    data, cut = path.read_bytes() if path.exists() else b"", None
    smap = map_buffer(data, first, names)
    if next_first is None and smap.last_seq < committed_seq:  # committed frames are missing: were they cut earlier?
        spliced, cut = _read_with_cut(path)
        if cut is not None:
            data, smap = spliced, map_buffer(spliced, first, names)
    names |= smap.types_seen
    # where the segment must end: the next segment's first seq, or (newest) what the warehouse committed
    end_seq = next_first - 1 if next_first is not None else max(committed_seq, smap.last_seq)
    trailing_missing = smap.last_seq < end_seq and not (smap.damages and smap.damages[-1].resume_seq is None)
    if not smap.damages and not trailing_missing and cut is None:
        return None
    repair = SegmentRepair(path, first, sealed=next_first is not None, spliced_cut=cut)
    position = 0
    for damage in smap.damages:
        repair.pieces.append(data[position : damage.offset])
        _plan_damage(repair, data, damage, end_seq, accept, names)
        position = damage.end
    repair.pieces.append(data[position:])
    if trailing_missing:
        for seq in range(smap.last_seq + 1, end_seq + 1):
            repair.pieces.append(seq)
            repair.missing.append(seq)
    return repair


def _plan_damage(repair: SegmentRepair, data: bytes, damage: Damage, end_seq: int,
                 accept: Callable[[Frame], bool] | None, names: set[str]) -> None:
    region = data[damage.offset : damage.end]
    stop = damage.resume_seq if damage.resume_seq is not None else end_seq + 1
    lost = range(damage.last_good_seq + 1, max(stop, damage.last_good_seq + 1))
    fixed = correct_frame(region, lost.start, accept, names) if len(lost) == 1 and region else None
    if fixed is not None:
        repair.pieces.append(fixed)
        repair.corrected.append(lost.start)
        repair.dropped_bytes += len(region) - len(fixed)
        return
    repair.dropped_bytes += len(region)
    for seq in lost:
        repair.pieces.append(seq)
        repair.missing.append(seq)


def plan_repair(
    directory: Path, committed_seq: int, type_names: Iterable[str] = (), accept: Callable[[Frame], bool] | None = None,
) -> RepairPlan:
    """Work out how to repair every segment (reading only): corrections, resyncs and missing seqs."""
    segments = _segments(directory)
    if not segments and committed_seq > 0:
        segments = [(1, directory / f"{1:020d}.seg")]
    names = set(type_names)
    plans = []
    for index, (first, path) in enumerate(segments):
        next_first = segments[index + 1][0] if index + 1 < len(segments) else None
        plan = _plan_segment(path, first, next_first, committed_seq, names, accept)
        if plan is not None:
            plans.append(plan)
    return RepairPlan(plans, committed_seq)


def hole_payload(seq: int, known: dict[str, object] | None, reason: str) -> bytes:
    """The JSON a lost-seq frame holds: what the warehouse recorded of the event, and why it is lost."""
    return json.dumps({"lost_seq": seq, "event": known, "reason": reason}, default=str, sort_keys=True).encode()


def apply_repair(
    plan: RepairPlan, describe_lost: Callable[[int], dict[str, object] | None] | None = None,
    reason: str = "frame destroyed; marked lost by `oh journal repair --mark-lost`", durable: bool = True,
) -> list[Path]:
    """Write every planned segment (missing seqs become lost-seq frames); return where the originals were kept."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    kept = []
    for repair in plan.segments:
        content = bytearray()
        for piece in repair.pieces:
            if isinstance(piece, int):
                known = describe_lost(piece) if describe_lost else None
                content += encode_frame(piece, HOLE_TYPE, hole_payload(piece, known, reason))
            else:
                content += piece
        kept += _replace_segment(repair, bytes(content), stamp, durable)
    return kept


def _replace_segment(repair: SegmentRepair, content: bytes, stamp: str, durable: bool) -> list[Path]:
    path = repair.path
    kept = []
    if path.exists():
        backup = path.with_name(f"{path.name}.damaged-{stamp}")
        os.link(path, backup)
        kept.append(backup)
    tmp = path.with_name(f"{path.name}.repair-tmp")
    with tmp.open("wb") as fh:
        fh.write(content)
        fh.flush()
        if durable:
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if repair.sealed:
        last_seq = map_buffer(content, repair.first).last_seq
        write_seal(path, Seal(repair.first, last_seq, len(content), zlib.crc32(content)), durable)
    else:
        seal_path(path).unlink(missing_ok=True)
    if repair.spliced_cut is not None:
        restored = repair.spliced_cut.with_name(repair.spliced_cut.name.replace(".cut-", ".restored-cut-"))
        os.replace(repair.spliced_cut, restored)
        kept.append(restored)
    if durable:
        sync_directory(path.parent)
    log.info("journal repair: rewrote %s (%d bytes; original kept)", path.name, len(content))
    return kept
