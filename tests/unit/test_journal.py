"""The journal: round trips, seq numbering, torn-tail recovery, segment rotation, fsync policies."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bus.journal
from bus.journal import (
    FSYNC_POLICIES,
    HEADER,
    Frame,
    Journal,
    JournalCorrupt,
    encode_frame,
)


def _frames(journal: Journal, **kwargs) -> list[tuple[int, str, bytes]]:
    return [(f.seq, f.type, f.payload) for f in journal.read(**kwargs)]


def _only_segment(directory: Path) -> Path:
    segments = sorted(directory.glob("*.seg"))
    assert len(segments) == 1, segments
    return segments[0]


# -- basics --------------------------------------------------------------------------------
def test_append_then_read_round_trips_types_payloads_and_seqs(tmp_path: Path) -> None:
    """What is appended is read back byte for byte, with seqs 1..n in order."""
    journal = Journal(tmp_path)
    written = [("RunStarted", b"a"), ("CandlesIngested", b"\x00" * 1000), ("RunFinished", b""), ("X", b"\xff\xfe")]
    assert journal.append(written) == [1, 2, 3, 4]
    assert journal.head_seq == 4
    assert _frames(journal) == [(i + 1, t, p) for i, (t, p) in enumerate(written)]
    assert all(isinstance(f, Frame) for f in journal.read())


def test_append_of_nothing_gives_no_seqs_and_leaves_head(tmp_path: Path) -> None:
    """An empty batch journals nothing and does not move the head."""
    journal = Journal(tmp_path)
    journal.append([("A", b"1")])
    assert journal.append([]) == []
    assert journal.head_seq == 1
    assert _frames(journal) == [(1, "A", b"1")]


def test_seq_numbering_continues_after_reopen(tmp_path: Path) -> None:
    """A reopened journal knows its head and gives the next append the next seq (no reuse, no gap)."""
    journal = Journal(tmp_path)
    journal.append([("A", b"1"), ("B", b"2")])
    journal.close()
    reopened = Journal(tmp_path)
    assert reopened.head_seq == 2
    assert reopened.truncated_bytes == 0
    assert reopened.append([("C", b"3")]) == [3]
    reopened.close()
    again = Journal(tmp_path)
    assert _frames(again) == [(1, "A", b"1"), (2, "B", b"2"), (3, "C", b"3")]


def test_empty_journal_reads_nothing_and_starts_at_one(tmp_path: Path) -> None:
    """A new journal has head 0, reads nothing, and its first frame is seq 1."""
    journal = Journal(tmp_path / "fresh")
    assert journal.head_seq == 0
    assert list(journal.read()) == []
    assert journal.append([("A", b"")]) == [1]


def test_read_filters_by_seq_range_and_type(tmp_path: Path) -> None:
    """from_seq/to_seq are inclusive, to_seq beyond the head is clipped, types filters by type name."""
    journal = Journal(tmp_path)
    journal.append([("A" if i % 3 else "B", str(i).encode()) for i in range(1, 11)])
    assert [s for s, _, _ in _frames(journal, from_seq=4, to_seq=7)] == [4, 5, 6, 7]
    assert [s for s, _, _ in _frames(journal, from_seq=9, to_seq=100)] == [9, 10]
    assert _frames(journal, from_seq=8, to_seq=7) == []
    assert _frames(journal, types=frozenset({"B"})) == [(3, "B", b"3"), (6, "B", b"6"), (9, "B", b"9")]
    assert _frames(journal, from_seq=4, to_seq=8, types=frozenset({"B"})) == [(6, "B", b"6")]


def test_read_never_goes_past_the_head_seen_at_the_call(tmp_path: Path) -> None:
    """A reader started before an append does not see frames appended after it started."""
    journal = Journal(tmp_path)
    journal.append([("A", b"1"), ("A", b"2")])
    reader = journal.read()
    assert next(reader).seq == 1
    journal.append([("A", b"3")])
    assert [f.seq for f in reader] == [2]


# -- torn tails ----------------------------------------------------------------------------
def _five_frames(directory: Path) -> tuple[bytes, int]:
    """Write frames 1..5 into one segment; return the file content and where frame 5 starts."""
    journal = Journal(directory)
    journal.append([("Ev", f"payload-{i}".encode() * (i + 1)) for i in range(1, 5)])
    journal.append([("Last", b"the last frame's payload")])
    journal.close()
    data = _only_segment(directory).read_bytes()
    last_start = len(data) - len(encode_frame(5, "Last", b"the last frame's payload"))
    return data, last_start


def _assert_recovered_to_four(directory: Path, cut: int) -> None:
    journal = Journal(directory)
    assert journal.head_seq == 4
    assert journal.truncated_bytes == cut
    assert [f.seq for f in journal.read()] == [1, 2, 3, 4]
    assert journal.append([("New", b"after recovery")]) == [5]
    journal.close()
    reopened = Journal(directory)
    assert reopened.truncated_bytes == 0
    assert _frames(reopened)[-1] == (5, "New", b"after recovery")
    reopened.close()


def test_last_frame_torn_at_every_byte_is_cut_on_reopen(tmp_path: Path) -> None:
    """Whatever prefix of the last frame reached the disk, reopening cuts it, keeps 1..4, and appends seq 5."""
    data, last_start = _five_frames(tmp_path)
    segment = _only_segment(tmp_path)
    for kept in range(len(data) - last_start):
        segment.write_bytes(data[: last_start + kept])
        _assert_recovered_to_four(tmp_path, kept)
        segment = _only_segment(tmp_path)


def test_flipped_byte_in_last_frame_is_cut_on_reopen(tmp_path: Path) -> None:
    """A corrupt byte anywhere in the last frame (header, type or payload) fails its check and is cut."""
    data, last_start = _five_frames(tmp_path)
    segment = _only_segment(tmp_path)
    for position in range(last_start, len(data)):
        corrupt = bytearray(data)
        corrupt[position] ^= 0x5A
        segment.write_bytes(bytes(corrupt))
        _assert_recovered_to_four(tmp_path, len(data) - last_start)
        segment = _only_segment(tmp_path)


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"\x00" * 7, b"\xff" * (HEADER.size + 3), random.Random(7).randbytes(500),
     encode_frame(9, "Ev", b"x")[:-1] + b"y", encode_frame(3, "Ev", b"old seq")],
    ids=["one-zero", "zeros", "ff-header", "random", "bad-crc", "seq-going-back"],
)
def test_garbage_after_the_last_frame_is_cut_on_reopen(tmp_path: Path, garbage: bytes) -> None:
    """Bytes after the last whole frame that are not a valid next frame are cut; the journal goes on at seq 6."""
    journal = Journal(tmp_path)
    journal.append([("Ev", str(i).encode()) for i in range(1, 6)])
    journal.close()
    segment = _only_segment(tmp_path)
    with segment.open("ab") as fh:
        fh.write(garbage)
    reopened = Journal(tmp_path)
    assert reopened.truncated_bytes == len(garbage)
    assert reopened.head_seq == 5
    assert [f.payload for f in reopened.read()] == [b"1", b"2", b"3", b"4", b"5"]
    assert reopened.append([("Ev", b"6")]) == [6]
    assert _frames(reopened, from_seq=6) == [(6, "Ev", b"6")]


def test_corrupt_frame_inside_a_sealed_segment_is_reported_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad checksum in an older segment raises JournalCorrupt on read instead of silently losing frames."""
    monkeypatch.setenv("OH_SEGMENT_BYTES", "100")
    journal = Journal(tmp_path)
    for i in range(1, 13):
        journal.append([("Ev", f"payload {i:02d} ".encode() * 2)])
    journal.close()
    segments = sorted(tmp_path.glob("*.seg"))
    assert len(segments) >= 3
    first = segments[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF  # the payload of the first segment's last frame
    first.write_bytes(bytes(data))
    reopened = Journal(tmp_path)  # recovery only looks at the open (last) segment
    with pytest.raises(JournalCorrupt):
        list(reopened.read())


# -- segments ------------------------------------------------------------------------------
def test_segments_rotate_and_read_spans_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With small segments the journal rotates; each segment is named by its first seq and every
    from_seq/to_seq/types query across segments returns exactly the matching frames, also after reopen."""
    monkeypatch.setenv("OH_SEGMENT_BYTES", "250")
    journal = Journal(tmp_path)
    written: list[tuple[int, str, bytes]] = []
    for batch in range(12):
        frames = [("A" if (batch + i) % 2 else "B", f"{batch}-{i}".encode() * 5) for i in range(batch % 4 + 1)]
        seqs = journal.append(frames)
        written += [(s, t, p) for s, (t, p) in zip(seqs, frames, strict=True)]
    segments = journal.segments()
    assert len(segments) >= 4
    for first, path in segments:
        assert path.name == f"{first:020d}.seg"
        frames_in = [f.seq for _, f in bus.journal._scan(path)]
        assert frames_in[0] == first
        assert frames_in == list(range(first, first + len(frames_in)))
    n = len(written)
    for reader in (journal, Journal(tmp_path, read_only=True)):
        assert _frames(reader) == written
        for from_seq in range(1, n + 2, 3):
            for to_seq in range(from_seq - 1, n + 3, 4):
                for types in (None, frozenset({"A"}), frozenset({"B"}), frozenset({"C"})):
                    expected = [w for w in written if from_seq <= w[0] <= to_seq and (types is None or w[1] in types)]
                    assert _frames(reader, from_seq=from_seq, to_seq=to_seq, types=types) == expected


def test_torn_first_frame_of_a_new_segment_resumes_in_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the only frame of the newest segment is torn, that segment is dropped and seqs continue from the one before."""
    monkeypatch.setenv("OH_SEGMENT_BYTES", "60")
    journal = Journal(tmp_path)
    for i in range(1, 5):
        journal.append([("Ev", f"frame number {i} ".encode() * 6)])
    journal.close()
    segments = journal.segments()
    assert len(segments) == 4  # every frame is bigger than a segment: one frame per segment
    last = segments[-1][1]
    last.write_bytes(last.read_bytes()[:10])
    reopened = Journal(tmp_path)
    assert reopened.head_seq == 3
    assert not last.exists()
    assert [f.seq for f in reopened.read()] == [1, 2, 3]
    assert reopened.append([("Ev", b"again")]) == [4]
    assert _frames(reopened, from_seq=4) == [(4, "Ev", b"again")]
    reopened.close()
    assert [f.seq for f in Journal(tmp_path).read()] == [1, 2, 3, 4]


def test_empty_newest_segment_is_dropped_on_reopen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash right after creating a segment file leaves it empty; reopening resumes in the previous segment."""
    monkeypatch.setenv("OH_SEGMENT_BYTES", "60")
    journal = Journal(tmp_path)
    journal.append([("Ev", b"x" * 80)])
    journal.append([("Ev", b"y" * 80)])
    journal.close()
    (tmp_path / f"{3:020d}.seg").write_bytes(b"")
    reopened = Journal(tmp_path)
    assert reopened.head_seq == 2
    assert reopened.append([("Ev", b"z")]) == [3]
    assert [f.payload for f in reopened.read()] == [b"x" * 80, b"y" * 80, b"z"]


def test_stray_files_in_the_journal_directory_are_ignored(tmp_path: Path) -> None:
    """A file that is not `<seq>.seg` does not break opening or reading."""
    journal = Journal(tmp_path)
    journal.append([("A", b"1")])
    journal.close()
    (tmp_path / "notes.seg").write_bytes(b"hello")
    (tmp_path / "README").write_text("x")
    reopened = Journal(tmp_path)
    assert reopened.head_seq == 1
    assert _frames(reopened) == [(1, "A", b"1")]


# -- fsync policies ------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["sometimes", "", "ALWAYS", "none"])
def test_unknown_fsync_policy_is_refused(tmp_path: Path, policy: str) -> None:
    """A misspelt policy raises ValueError naming the allowed ones instead of silently picking one."""
    with pytest.raises(ValueError, match="always, batch, off"):
        Journal(tmp_path, fsync=policy)


@pytest.mark.parametrize("policy", FSYNC_POLICIES)
def test_every_fsync_policy_appends_and_reads(tmp_path: Path, policy: str) -> None:
    """Each policy journals, reads back and survives reopen the same way."""
    journal = Journal(tmp_path, fsync=policy)
    assert journal.fsync == policy
    journal.append([("A", b"1"), ("B", b"2")])
    journal.sync()
    journal.append([("C", b"3")])
    assert _frames(journal) == [(1, "A", b"1"), (2, "B", b"2"), (3, "C", b"3")]
    journal.close()
    assert _frames(Journal(tmp_path, fsync=policy)) == [(1, "A", b"1"), (2, "B", b"2"), (3, "C", b"3")]


@pytest.mark.parametrize(
    ("policy", "syncs_after_appends", "syncs_after_sync"),
    [("always", 2, 2), ("batch", 0, 1), ("off", 0, 0)],
)
def test_fsync_policy_decides_when_the_disk_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, syncs_after_appends: int, syncs_after_sync: int
) -> None:
    """`always` syncs once per appended batch (group commit), `batch` only on sync(), `off` never."""
    journal = Journal(tmp_path, fsync=policy)
    journal.append([("A", b"0")])  # opens the first segment before counting
    journal.sync()
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])
    journal.append([("A", b"1"), ("A", b"2"), ("A", b"3")])
    journal.append([("A", b"4")])
    assert len(calls) == syncs_after_appends
    journal.sync()
    assert len(calls) == syncs_after_sync


# -- property: a crash anywhere leaves a prefix --------------------------------------------
_batches = st.lists(
    st.lists(st.tuples(st.sampled_from(["RunStarted", "CandlesIngested", "X"]), st.binary(max_size=64)),
             min_size=1, max_size=5),
    min_size=1, max_size=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=_batches, cut_fraction=st.floats(min_value=0.0, max_value=1.0))
def test_truncating_the_file_anywhere_leaves_exactly_a_prefix(
    batches: list[list[tuple[str, bytes]]], cut_fraction: float
) -> None:
    """Cut the journal file at any byte: reopening yields exactly the frames wholly before the cut, in order,
    and the next append continues right after them."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        journal = Journal(directory, fsync="off")
        written: list[tuple[int, str, bytes]] = []
        ends: list[int] = []
        position = 0
        for batch in batches:
            seqs = journal.append(batch)
            for seq, (type_name, payload) in zip(seqs, batch, strict=True):
                written.append((seq, type_name, payload))
                position += len(encode_frame(seq, type_name, payload))
                ends.append(position)
        journal.close()
        segment = _only_segment(directory)
        data = segment.read_bytes()
        assert len(data) == position
        cut = round(cut_fraction * len(data))
        segment.write_bytes(data[:cut])
        kept = sum(1 for end in ends if end <= cut)
        reopened = Journal(directory, fsync="off")
        assert _frames(reopened) == written[:kept]
        assert reopened.head_seq == kept
        assert reopened.append([("After", b"!")]) == [kept + 1]
        reopened.close()


# -- faults: found on open, named, and nothing changed -------------------------------------
def _flip(path: Path, position: int, mask: int = 0xFF) -> bytes:
    data = bytearray(path.read_bytes())
    data[position] ^= mask
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_bit_flip_mid_segment_is_a_fault_and_nothing_is_cut(tmp_path: Path) -> None:
    """A frame that fails its checksum with valid frames after it is a bit flip, not a torn write: reopening cuts
    nothing (no byte of the file changes, no `.cut` file), names the segment, the byte offsets and the seqs, refuses to
    append, and a read that reaches the damage raises instead of silently stopping."""
    journal = Journal(tmp_path)
    journal.append([("Ev", f"payload-{i}".encode() * 20) for i in range(1, 6)])
    journal.close()
    segment = _only_segment(tmp_path)
    second = len(encode_frame(1, "Ev", b"payload-1" * 20))
    third = second + len(encode_frame(2, "Ev", b"payload-2" * 20))
    damaged = _flip(segment, second + HEADER.size + 5, 0x01)  # one bit inside frame 2's payload
    reopened = Journal(tmp_path)
    assert segment.read_bytes() == damaged
    assert not list(tmp_path.glob("*.cut-*"))
    assert reopened.truncated_bytes == 0
    (fault,) = reopened.faults
    text = fault.describe()
    assert segment.name in text and f"byte {second}" in text and f"byte {third} with seq 3" in text
    assert "after seq 1" in text
    with pytest.raises(JournalCorrupt, match="damaged"):
        reopened.append([("Ev", b"never written")])
    assert segment.read_bytes() == damaged
    assert [f.seq for f in reopened.read(to_seq=1)] == [1]
    with pytest.raises(JournalCorrupt):
        list(reopened.read())


@pytest.mark.parametrize(("committed", "cut"), [(5, False), (4, True)])
def test_a_damaged_tail_is_cut_only_when_the_warehouse_never_committed_it(
    tmp_path: Path, committed: int, cut: bool
) -> None:
    """A last frame that fails its checksum is cut (kept in `.cut-<offset>`) only if the warehouse has not committed it
    (a torn write the ledger never acknowledged as applied); if it has, it is a fault and the journal is left alone."""
    data, last_start = _five_frames(tmp_path)
    segment = _only_segment(tmp_path)
    damaged = _flip(segment, len(data) - 3)
    reopened = Journal(tmp_path, committed_seq=committed)
    if cut:
        assert reopened.faults == [] and reopened.head_seq == 4
        assert segment.read_bytes() == data[:last_start]
        assert (tmp_path / f"{segment.name}.cut-{last_start}").read_bytes() == damaged[last_start:]
    else:
        (fault,) = reopened.faults
        assert f"byte {last_start}" in fault.describe() and "after seq 4" in fault.describe()
        assert segment.read_bytes() == damaged


def _rotated(directory: Path, monkeypatch: pytest.MonkeyPatch, count: int = 12) -> list[tuple[int, Path]]:
    monkeypatch.setenv("OH_SEGMENT_BYTES", "100")
    journal = Journal(directory)
    for i in range(1, count + 1):
        journal.append([("Ev", f"payload {i:02d} ".encode() * 2)])
    journal.close()
    return journal.segments()


def test_a_sealed_segment_gets_a_seal_naming_its_size_seqs_and_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the journal moves on to a new segment, the old one is sealed: `<segment>.sum` holds its first and last seq,
    its size and the crc32 of the whole file. The segment being written has no seal."""
    import itertools
    import json
    import zlib

    segments = _rotated(tmp_path, monkeypatch)
    assert len(segments) >= 3
    for (first, path), (next_first, _) in itertools.pairwise(segments):
        seal = json.loads((tmp_path / f"{path.name}.sum").read_text())
        assert seal == {"first_seq": first, "last_seq": next_first - 1, "size": path.stat().st_size,
                        "crc32": zlib.crc32(path.read_bytes())}
    assert not (tmp_path / f"{segments[-1][1].name}.sum").exists()


@pytest.mark.parametrize("where", ["first-byte", "middle", "last-byte"])
def test_a_flip_in_a_sealed_segment_is_found_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """A byte flipped anywhere in an older segment fails its seal on open (no read needed to find it): the fault names
    the sealed segment, appending is refused, and the journal's bytes are untouched."""
    segments = _rotated(tmp_path, monkeypatch)
    first = segments[0][1]
    size = first.stat().st_size
    position = {"first-byte": 0, "middle": size // 2, "last-byte": size - 1}[where]
    damaged = _flip(first, position)
    reopened = Journal(tmp_path)
    (fault,) = reopened.faults
    assert fault.sealed and fault.segment == first
    assert f"sealed segment {first.name}" in fault.describe()
    with pytest.raises(JournalCorrupt):
        reopened.append([("Ev", b"x")])
    assert first.read_bytes() == damaged


def test_a_missing_or_damaged_seal_is_rewritten_when_every_frame_checks_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment sealed before seals existed (no `.sum`), or whose seal itself was damaged, is walked frame by frame;
    when every frame checks out, it is (re)sealed and nothing is reported."""
    segments = _rotated(tmp_path, monkeypatch)
    first, second = segments[0][1], segments[1][1]
    seal_of_first = (tmp_path / f"{first.name}.sum").read_text()
    (tmp_path / f"{first.name}.sum").unlink()
    (tmp_path / f"{second.name}.sum").write_text('{"first_seq": 9, "last_seq": 1, "size": 3, "crc32": 0}\n')
    reopened = Journal(tmp_path)
    assert reopened.faults == []
    assert (tmp_path / f"{first.name}.sum").read_text() == seal_of_first
    assert '"first_seq": 9' not in (tmp_path / f"{second.name}.sum").read_text()
    assert [f.seq for f in reopened.read()] == list(range(1, 13))


def test_a_missing_segment_is_a_gap_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A segment file that disappeared leaves a gap between the seqs of its neighbours: reported, not papered over."""
    segments = _rotated(tmp_path, monkeypatch)
    segments[1][1].unlink()
    reopened = Journal(tmp_path)
    (fault,) = reopened.faults
    assert f"next segment starts at seq {segments[2][0]}" in fault.describe()
    with pytest.raises(JournalCorrupt):
        list(reopened.read())


def test_frames_marked_lost_are_never_read(tmp_path: Path) -> None:
    """A seq a repair marked lost keeps the seqs contiguous but is skipped by every read, filtered or not."""
    from bus.journal import HOLE_TYPE

    segment = tmp_path / f"{1:020d}.seg"
    segment.write_bytes(encode_frame(1, "A", b"1") + encode_frame(2, HOLE_TYPE, b"{}") + encode_frame(3, "A", b"3"))
    journal = Journal(tmp_path)
    assert journal.faults == [] and journal.head_seq == 3
    assert _frames(journal) == [(1, "A", b"1"), (3, "A", b"3")]
    assert _frames(journal, types=frozenset({"A"})) == [(1, "A", b"1"), (3, "A", b"3")]
    assert journal.append([("A", b"4")]) == [4]


# -- one writer at a time ------------------------------------------------------------------
def test_only_one_process_writes_a_journal(tmp_path: Path) -> None:
    """A second writer (in this process or another) is refused with a message naming the holder; a read-only reader
    is not; the lock goes with its holder, even one killed with SIGKILL."""
    import signal
    import subprocess
    import sys
    import time

    from bus.journal import JournalLocked

    journal = Journal(tmp_path)
    journal.append([("A", b"1")])
    with pytest.raises(JournalLocked, match=f"in use by pid {os.getpid()}"):
        Journal(tmp_path)
    assert _frames(Journal(tmp_path, read_only=True)) == [(1, "A", b"1")]
    child = [sys.executable, "-c", f"from pathlib import Path; from bus.journal import Journal; Journal(Path({str(tmp_path)!r}))"]
    refused = subprocess.run(child, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], check=False)
    assert refused.returncode != 0 and "JournalLocked" in refused.stderr
    journal.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", (f"import time; from pathlib import Path; from bus.journal import Journal; "
                                f"j = Journal(Path({str(tmp_path)!r})); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(JournalLocked, match=f"pid {holder.pid}"):
        Journal(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    deadline = time.monotonic() + 10
    while True:
        try:
            Journal(tmp_path).close()
            break
        except JournalLocked:
            assert time.monotonic() < deadline, "the lock outlived its killed holder"
            time.sleep(0.05)


# -- a write that fails (disk full) leaves nothing behind ------------------------------------
@pytest.mark.parametrize("written_before_failing", [0, 1, 25, 10_000])
def test_a_failed_write_is_rolled_back_to_the_last_whole_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written_before_failing: int
) -> None:
    """A write that fails after any number of bytes (ENOSPC mid-frame) is truncated away: the head does not move, the
    file ends on a whole frame, reopening cuts nothing, and the same batch appends later with the same seqs."""
    import errno

    journal = Journal(tmp_path)
    journal.append([("A", b"1"), ("A", b"2")])
    segment = _only_segment(tmp_path)
    size = segment.stat().st_size
    real_write = os.write
    budget = [written_before_failing]

    def full_disk(fd: int, data: bytes) -> int:
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        chunk = bytes(data)[: budget[0]]
        budget[0] -= len(chunk)
        return real_write(fd, chunk)

    monkeypatch.setattr(bus.journal.os, "write", full_disk)
    batch = [("B", b"x" * 5000), ("B", b"y" * 5000)]
    with pytest.raises(OSError, match="No space left"):
        journal.append(batch)
    monkeypatch.undo()
    assert journal.head_seq == 2
    assert segment.stat().st_size == size
    assert journal.append(batch) == [3, 4]
    journal.close()
    reopened = Journal(tmp_path)
    assert reopened.truncated_bytes == 0 and reopened.faults == []
    assert [f.seq for f in reopened.read()] == [1, 2, 3, 4]


def test_a_failed_write_into_a_new_segment_removes_it_and_unseals_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that moves on to a new segment and then fails: the new segment is deleted, the old one is unsealed and
    back to its size, and the journal goes on in it as if the batch never happened."""
    import errno

    monkeypatch.setenv("OH_SEGMENT_BYTES", "150")
    journal = Journal(tmp_path)
    journal.append([("A", b"a" * 100)])
    (first, segment), = journal.segments()
    size = segment.stat().st_size
    real_write = os.write
    calls = [0]

    def second_write_fails(fd: int, data: bytes) -> int:
        calls[0] += 1
        if calls[0] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(bus.journal.os, "write", second_write_fails)
    with pytest.raises(OSError):
        journal.append([("A", b"b" * 30), ("A", b"c" * 100)])  # b fits the first segment, c opens the next
    monkeypatch.setattr(bus.journal.os, "write", real_write)
    assert journal.segments() == [(first, segment)]
    assert segment.stat().st_size == size
    assert not list(tmp_path.glob("*.sum"))
    assert journal.append([("A", b"d")]) == [2]
    journal.close()
    assert [f.payload for f in Journal(tmp_path).read()] == [b"a" * 100, b"d"]
