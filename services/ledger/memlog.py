"""A debug sampler of the ledger's memory, to tell apart who holds it (`OH_LEDGER_MEMLOG=PATH`).

Off unless `OH_LEDGER_MEMLOG` names a file. Then a daemon thread appends one tab-separated line every
`OH_LEDGER_MEMLOG_SECONDS` (0.25) to it:

    seconds  rss_mb  duckdb_mb  duckdb_by_tag  arrow_mb  malloc_used_mb  malloc_free_mb  malloc_mmap_mb

- `rss_mb`: the process's VmRSS (/proc/self/status);
- `duckdb_mb`: what DuckDB's buffer manager accounts for (`duckdb_memory()`, summed; by tag beside it): its pool,
  capped by `memory_limit`. DuckDB's allocations outside the pool are not in it;
- `arrow_mb`: bytes held in Arrow buffers by this process (`pyarrow.total_allocated_bytes()`: the decoded
  events' rows and what is concatenated from them; Arrow's pool is mimalloc, outside glibc's heap);
- `malloc_*`: glibc's `mallinfo2()`: bytes in use and free in its arenas, and in mmapped chunks. DuckDB's
  own allocations and CPython's large objects come from here; free arena bytes are fragmentation kept.

What RSS holds beyond the sum of the accounted parts is allocators' retained pages (mimalloc's, glibc's free
lists) or untracked allocations. The sampler reads DuckDB through a cursor of the ledger's current connection,
opened and closed for each sample (a cursor kept open would keep a closed connection's database alive across
the ledger's reopen or rebuild); it never writes. A debug switch: a sample may fail during a rebuild (its DuckDB
figures are then empty).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

ENV = "OH_LEDGER_MEMLOG"
INTERVAL_ENV = "OH_LEDGER_MEMLOG_SECONDS"
HEADER = "seconds\trss_mb\tduckdb_mb\tduckdb_by_tag\tarrow_mb\tmalloc_used_mb\tmalloc_free_mb\tmalloc_mmap_mb\n"


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo2() -> tuple[float, float, float]:
    """(used, free, mmapped) MB of glibc's heap; zeros where glibc has no mallinfo2."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return 0.0, 0.0, 0.0
    return info.uordblks / 1e6, info.fordblks / 1e6, info.hblkhd / 1e6


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """The sampling thread; `stop` ends it (the ledger stops it before closing the warehouse it reads)."""

    def __init__(self, path: Path, connection: Callable[[], duckdb.DuckDBPyConnection], interval: float) -> None:
        super().__init__(name="memlog", daemon=True)
        self.path, self.connection, self.interval = path, connection, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        _sample(self.path, self.connection, self.interval, self.stopped)

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)


def start(connection: Callable[[], duckdb.DuckDBPyConnection]) -> Sampler | None:
    """Start the sampler if `OH_LEDGER_MEMLOG` is set (`connection()`: the ledger's current connection); None when off."""
    path = os.environ.get(ENV, "").strip()
    if not path:
        return None
    sampler = Sampler(Path(path), connection, float(os.environ.get(INTERVAL_ENV, "0.25") or 0.25))
    sampler.start()
    return sampler


def _duckdb_tags(connection: Callable[[], duckdb.DuckDBPyConnection]) -> list[tuple[str, int]]:
    try:
        cursor = connection().cursor()
    except duckdb.Error:
        return []
    try:
        return cursor.execute(
            "SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0").fetchall()
    except duckdb.Error:
        return []
    finally:
        cursor.close()


def _sample(path: Path, connection: Callable[[], duckdb.DuckDBPyConnection], interval: float,
            stopped: threading.Event) -> None:
    started = time.monotonic()
    with path.open("a") as out:
        out.write(HEADER)
        while not stopped.is_set():
            tags = _duckdb_tags(connection)
            used, free, mapped = _mallinfo2()
            by_tag = ",".join(f"{tag}={size / 1e6:.0f}" for tag, size in tags)
            out.write(f"{time.monotonic() - started:.2f}\t{_rss_mb():.0f}\t{sum(s for _, s in tags) / 1e6:.0f}\t"
                      f"{by_tag}\t{pa.total_allocated_bytes() / 1e6:.0f}\t{used:.0f}\t{free:.0f}\t{mapped:.0f}\n")
            out.flush()
            stopped.wait(interval)
