"""The ledger's heap trim and memory sampler (services/ledger/heap.py, services/ledger/memlog.py).

The trim runs once the drains since the last one reach its size (never when 0, never without glibc's
malloc_trim); a bad setting is a one-line error. The sampler, when switched on, writes one line per sample
with the RSS, DuckDB's accounted memory and glibc's figures, and stops when asked.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from services.ledger import heap, memlog


def test_the_heap_is_trimmed_once_the_drains_reach_the_size() -> None:
    """16 MB in drains of 5 MB: a trim at the 4th drain (20 MB), then again at the 8th, nothing in between."""
    calls: list[int] = []
    trim = heap.HeapTrim(every=16 * 1024 * 1024, trim=lambda pad: calls.append(pad) or 1)
    done = [trim.after(5 * 1024 * 1024) for _ in range(8)]
    assert done == [False, False, False, True, False, False, False, True]
    assert calls == [0, 0] and trim.trims == 2


def test_a_quiet_ingress_trims_what_was_drained_since_the_last_trim_once() -> None:
    """Idle after 3 MB of drains: one trim; idle again with nothing drained, or after heartbeats only (under
    1 MB): none; 0 MB: never."""
    calls: list[int] = []
    trim = heap.HeapTrim(every=16 * 1024 * 1024, trim=lambda pad: calls.append(pad) or 1)
    assert not trim.idle()
    for _ in range(100):
        trim.after(300)
        assert not trim.idle()
    trim.after(3 * 1024 * 1024)
    assert trim.idle() and not trim.idle()
    assert calls == [0]
    off = heap.HeapTrim(every=0, trim=lambda pad: calls.append(pad) or 1)
    off.after(1 << 30)
    assert not off.idle() and calls == [0]


def test_zero_never_trims_and_neither_does_a_c_library_without_malloc_trim() -> None:
    calls: list[int] = []
    off = heap.HeapTrim(every=0, trim=lambda pad: calls.append(pad) or 1)
    assert not any(off.after(1 << 30) for _ in range(3))
    assert not heap.HeapTrim(every=1, trim=None).after(1 << 30)
    assert calls == []


@pytest.mark.parametrize(("raw", "every"), [("", 16 * 1024 * 1024), ("0", 0), ("1.5", 1536 * 1024), (" 64 ", 64 << 20)])
def test_the_size_comes_from_the_environment(raw: str, every: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(heap.ENV, raw)
    assert heap.HeapTrim.from_env().every == every


@pytest.mark.parametrize("raw", ["lots", "-1", "16MB"])
def test_a_bad_size_is_a_one_line_error(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(heap.ENV, raw)
    with pytest.raises(SystemExit, match=r"^OH_LEDGER_TRIM_MB="):
        heap.HeapTrim.from_env()


def test_the_real_trim_is_glibcs_and_runs() -> None:
    """On this (glibc) machine the trim is found and returns (1: memory released, 0: none)."""
    trim = heap.HeapTrim.from_env().trim
    assert trim is not None and trim(0) in (0, 1)


def test_the_sampler_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memlog.ENV, raising=False)
    assert memlog.start(duckdb.connect) is None


def test_the_sampler_writes_rss_duckdb_and_malloc_figures_until_stopped(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "mem.tsv"
    monkeypatch.setenv(memlog.ENV, str(log))
    monkeypatch.setenv(memlog.INTERVAL_ENV, "0.01")
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(100000)")
    sampler = memlog.start(lambda: con)
    assert sampler is not None
    deadline = time.monotonic() + 30
    while (not log.exists() or len(log.read_text().splitlines()) < 3) and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert not sampler.is_alive()
    lines = log.read_text().splitlines()
    assert lines[0] == memlog.HEADER.strip()
    fields = lines[1].split("\t")
    assert len(fields) == 8 and float(fields[1]) > 0  # RSS
    assert "BASE_TABLE" in lines[-1] or "IN_MEMORY_TABLE" in lines[-1]  # the table's blocks, by tag
    assert len(log.read_text().splitlines()) == len(lines)  # nothing written after stop
    con.close()
