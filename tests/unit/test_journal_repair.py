"""Journal repair: exact correction of a damaged byte, resync past what cannot be corrected, lost-seq marks."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus.journal import HEADER, HOLE_TYPE, Journal, _scan, encode_frame
from bus.journal_check import map_buffer
from bus.journal_repair import apply_repair, byte_errors, correct_frame, plan_repair

PAYLOADS = [f"payload-{i}".encode() * 20 for i in range(1, 6)]


def _journal(directory: Path) -> tuple[Path, bytes, list[int]]:
    """Five frames in one segment; returns it, its bytes and where each frame starts."""
    journal = Journal(directory)
    journal.append([("Ev", p) for p in PAYLOADS])
    journal.close()
    (segment,) = sorted(directory.glob("*.seg"))
    starts, position = [], 0
    for seq, payload in enumerate(PAYLOADS, 1):
        starts.append(position)
        position += len(encode_frame(seq, "Ev", payload))
    return segment, segment.read_bytes(), starts


def _flip(path: Path, position: int, mask: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= mask
    path.write_bytes(bytes(data))


def _clean(directory: Path) -> None:
    for leftover in directory.glob("*.damaged-*"):
        leftover.unlink()


@given(message=st.binary(min_size=1, max_size=3000), data=st.data())
@settings(max_examples=200, deadline=None)
def test_byte_errors_finds_the_position_and_value_of_any_one_damaged_byte(message: bytes, data: st.DataObject) -> None:
    """XOR any byte of any message with any value: the crc32 syndrome names that (position, value) among its candidates."""
    position = data.draw(st.integers(0, len(message) - 1))
    value = data.draw(st.integers(1, 255))
    damaged = bytearray(message)
    damaged[position] ^= value
    syndrome = zlib.crc32(bytes(damaged)) ^ zlib.crc32(message)
    assert (len(message) - 1 - position, value) in byte_errors(syndrome, len(message))


@pytest.mark.parametrize("frame", [1, 4], ids=["middle-frame", "last-frame"])
def test_every_single_damaged_byte_is_corrected_exactly(tmp_path: Path, frame: int) -> None:
    """A byte XOR-ed with 0x01, 0x5A or 0xFF anywhere in a committed frame (length, checksum, seq, type length, type or
    payload), in the middle of the segment or at its end, is found on open and repaired to the exact original bytes."""
    segment, original, starts = _journal(tmp_path)
    end = starts[frame + 1] if frame + 1 < len(starts) else len(original)
    failures = []
    for position in range(starts[frame], end):
        for mask in (0x01, 0x5A, 0xFF):
            segment.write_bytes(original)
            _flip(segment, position, mask)
            opened = Journal(tmp_path, committed_seq=5)
            faults = list(opened.faults)
            opened.close()
            plan = plan_repair(tmp_path, committed_seq=5)
            if not faults or plan.missing or plan.corrected != [frame + 1]:
                failures.append((position, mask, bool(faults), plan.missing, plan.corrected))
                continue
            apply_repair(plan)
            if segment.read_bytes() != original:
                failures.append((position, mask, "bytes differ"))
            _clean(tmp_path)
    assert failures == []


def test_a_repaired_sealed_segment_is_resealed_and_its_original_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flip in an older segment is corrected in place; the segment gets a fresh seal, the damaged bytes are kept as
    `<segment>.damaged-<stamp>`, and the journal opens clean with every frame readable."""
    monkeypatch.setenv("OH_SEGMENT_BYTES", "100")
    journal = Journal(tmp_path)
    for i in range(1, 13):
        journal.append([("Ev", f"payload {i:02d} ".encode() * 2)])
    journal.close()
    first = journal.segments()[0][1]
    original = first.read_bytes()
    _flip(first, len(original) // 2, 0x5A)
    damaged = first.read_bytes()
    plan = plan_repair(tmp_path, committed_seq=12)
    assert plan.missing == [] and len(plan.corrected) == 1
    (kept,) = apply_repair(plan)
    assert first.read_bytes() == original and kept.read_bytes() == damaged
    assert json.loads((tmp_path / f"{first.name}.sum").read_text())["crc32"] == zlib.crc32(original)
    reopened = Journal(tmp_path)
    assert reopened.faults == []
    assert [f.seq for f in reopened.read()] == list(range(1, 13))


def test_what_cannot_be_corrected_is_missing_until_marked_lost(tmp_path: Path) -> None:
    """Two damaged bytes in one frame: no single-byte correction explains them, so the plan names the seq as missing
    and writes nothing; marked lost, the seq becomes a lost-seq frame recording what the caller knew of the event,
    the frames after it are kept (resync), the journal opens clean and reads every other frame."""
    segment, _, starts = _journal(tmp_path)
    _flip(segment, starts[1] + HEADER.size + 10, 0x01)
    _flip(segment, starts[1] + HEADER.size + 60, 0x01)
    damaged = segment.read_bytes()
    plan = plan_repair(tmp_path, committed_seq=5)
    assert plan.missing == [2] and plan.corrected == []
    assert segment.read_bytes() == damaged
    apply_repair(plan, describe_lost=lambda seq: {"id": f"event-{seq}", "type": "Ev"})
    reopened = Journal(tmp_path)
    assert reopened.faults == [] and reopened.head_seq == 5
    assert [f.payload for f in reopened.read()] == [PAYLOADS[0], *PAYLOADS[2:]]
    hole = next(frame for _, frame in _scan(segment) if frame.seq == 2)
    assert hole.type == HOLE_TYPE
    assert json.loads(hole.payload)["event"] == {"id": "event-2", "type": "Ev"}
    assert reopened.append([("Ev", b"next")]) == [6]


def test_several_destroyed_frames_resync_at_the_next_valid_one(tmp_path: Path) -> None:
    """A zeroed block across frames 2 and 3: the frames after it are found again (resync), 2 and 3 are missing."""
    segment, original, starts = _journal(tmp_path)
    assert len(original) > starts[3]
    data = bytearray(original)
    data[starts[1] + 5 : starts[3] - 5] = bytes(starts[3] - 5 - starts[1] - 5)
    segment.write_bytes(bytes(data))
    smap = map_buffer(bytes(data), 1, {"Ev"})
    (damage,) = smap.damages
    assert (damage.offset, damage.end, damage.last_good_seq, damage.resume_seq) == (starts[1], starts[3], 1, 4)
    assert plan_repair(tmp_path, committed_seq=5).missing == [2, 3]


def test_a_tail_an_older_version_cut_is_put_back(tmp_path: Path) -> None:
    """An older ledger cut a flipped frame and everything after it into `<segment>.cut-<offset>`: when the warehouse
    committed those seqs, the repair splices the cut bytes back, corrects the flip and restores the journal exactly."""
    segment, original, starts = _journal(tmp_path)
    cut = bytearray(original[starts[1] :])
    cut[HEADER.size + 7] ^= 0x5A
    (tmp_path / f"{segment.name}.cut-{starts[1]}").write_bytes(bytes(cut))
    segment.write_bytes(original[: starts[1]])
    plan = plan_repair(tmp_path, committed_seq=5)
    assert plan.corrected == [2] and plan.missing == []
    kept = apply_repair(plan)
    assert segment.read_bytes() == original
    assert any(".restored-cut-" in path.name for path in kept)
    assert not list(tmp_path.glob("*.seg.cut-*"))


def test_a_committed_tail_with_no_bytes_left_can_only_be_marked_lost(tmp_path: Path) -> None:
    """The warehouse committed seqs the journal no longer has at all: they are missing; marked lost, the journal
    reaches the warehouse's offset again and appends go on after it."""
    segment, original, starts = _journal(tmp_path)
    segment.write_bytes(original[: starts[3]])
    plan = plan_repair(tmp_path, committed_seq=5)
    assert plan.missing == [4, 5]
    apply_repair(plan)
    reopened = Journal(tmp_path)
    assert reopened.head_seq == 5 and [f.seq for f in reopened.read()] == [1, 2, 3]


def test_a_correction_the_caller_contradicts_is_not_taken(tmp_path: Path) -> None:
    """The caller's check (the warehouse's record of the seq) has the last word: a candidate it rejects is not written."""
    segment, _, starts = _journal(tmp_path)
    _flip(segment, starts[1] + HEADER.size + 30, 0x01)
    plan = plan_repair(tmp_path, committed_seq=5, accept=lambda frame: False)
    assert plan.corrected == [] and plan.missing == [2]


def test_correct_frame_refuses_a_region_that_is_no_single_damaged_frame() -> None:
    """Random bytes, a torn half frame and a frame with two flips are not 'corrected' into something."""
    frame = encode_frame(7, "Ev", os.urandom(300))
    two = bytearray(frame)
    two[30] ^= 1
    two[200] ^= 1
    assert correct_frame(os.urandom(317), 7) is None
    assert correct_frame(frame[:150], 7) is None
    assert correct_frame(bytes(two), 7) is None
    assert correct_frame(frame, 7) == frame
