"""The journal's read marks: a read begins at the last remembered frame start at or before its first seq.

Protects two things: reads give exactly what a walk from each segment's first byte gives (any start,
any type filter, interleaved with appends, across segment rotation and a rolled-back append), and a
read that follows another (the ledger's catch-up of a narrowed subscriber, every head tick) does not
walk the segment from its first byte again.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import bus.journal
from bus.journal import Journal, _ReadMarks


def _walked(directory: Path, from_seq: int, to_seq: int | None, types: frozenset[str] | None) -> list[tuple[int, str, bytes]]:
    """The same read by a fresh read-only journal (no marks: every segment walked from its first byte)."""
    fresh = Journal(directory, read_only=True)
    try:
        return [(f.seq, f.type, f.payload) for f in fresh.read(from_seq, to_seq, types)]
    finally:
        fresh.close()


def _appended(journal: Journal, rng: random.Random, n: int) -> None:
    batch = []
    for _ in range(n):
        kind = rng.choice(["Small", "Small", "Small", "Bulk"])
        size = rng.randrange(1, 40) if kind == "Small" else rng.randrange(2_000, 30_000)
        batch.append((kind, rng.randbytes(size)))
    journal.append(batch)


@pytest.mark.parametrize("segment_bytes", [1 << 30, 200_000])
def test_reads_from_marks_equal_reads_from_the_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           segment_bytes: int) -> None:
    """Random reads (start, end, filter) interleaved with appends give what a fresh journal's walk gives."""
    monkeypatch.setenv("OH_SEGMENT_BYTES", str(segment_bytes))
    rng = random.Random(7)
    journal = Journal(tmp_path)
    for _ in range(40):
        _appended(journal, rng, rng.randrange(1, 60))
        for _ in range(5):
            from_seq = rng.randrange(1, journal.head_seq + 1)
            to_seq = rng.choice([None, rng.randrange(from_seq, journal.head_seq + 1)])
            types = rng.choice([None, frozenset({"Small"}), frozenset({"Bulk"}), frozenset({"Nothing"})])
            read = [(f.seq, f.type, f.payload) for f in journal.read(from_seq, to_seq, types)]
            assert read == _walked(tmp_path, from_seq, to_seq, types), (from_seq, to_seq, types)
    if segment_bytes < 1 << 30:
        assert len(journal.segments()) > 3  # the reads crossed segments
    journal.close()


def test_a_read_that_stops_early_still_leaves_correct_marks(tmp_path: Path) -> None:
    """A consumer that stops mid-read (as a catch-up does at its size bound) leaves marks later reads can use."""
    rng = random.Random(3)
    journal = Journal(tmp_path)
    _appended(journal, rng, 1_000)
    for frame in journal.read(1):
        if frame.seq == 700:
            break
    for from_seq in (1, 63, 64, 65, 500, 699, 700, 701, 1_000):
        assert [(f.seq, f.payload) for f in journal.read(from_seq)] == \
            [(s, p) for s, _, p in _walked(tmp_path, from_seq, None, None)]
    journal.close()


def test_a_catch_up_after_a_catch_up_starts_near_where_it_stopped(tmp_path: Path) -> None:
    """The second read of a tail begins within MARK_FRAMES frames of its first seq, not at the segment's start."""
    rng = random.Random(5)
    journal = Journal(tmp_path)
    _appended(journal, rng, 2_000)
    assert [f.seq for f in journal.read(1, types=frozenset({"Nothing"}))] == []
    _appended(journal, rng, 10)
    [(first, path)] = journal.segments()
    seq, offset = journal._read_marks.start(path, first, 2_001)
    assert 2_001 - _ReadMarks.MARK_FRAMES < seq <= 2_001 and offset > 0
    assert [f.seq for f in journal.read(2_001)] == list(range(2_001, 2_011))
    journal.close()


def test_a_rolled_back_append_forgets_the_marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failed append is rolled back (the segment truncated), reads still give what is stored."""
    rng = random.Random(11)
    journal = Journal(tmp_path)
    _appended(journal, rng, 300)
    assert len(list(journal.read(1))) == 300
    real_write = bus.journal.os.write
    calls = {"n": 0}

    def failing_write(fd: int, data: object) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            real_write(fd, bytes(memoryview(data)[:10]))  # type: ignore[arg-type]
            raise OSError(28, "No space left on device")
        return real_write(fd, data)  # type: ignore[arg-type]

    monkeypatch.setattr(bus.journal.os, "write", failing_write)
    with pytest.raises(OSError):
        journal.append([("Small", b"lost")])
    monkeypatch.setattr(bus.journal.os, "write", real_write)
    _appended(journal, rng, 100)
    for from_seq in (1, 250, 299, 300, 301, 400):
        assert [(f.seq, f.payload) for f in journal.read(from_seq)] == \
            [(s, p) for s, _, p in _walked(tmp_path, from_seq, None, None)]
    journal.close()
