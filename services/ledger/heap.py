"""Give the ledger's freed heap back to the OS after big drains (`OH_LEDGER_TRIM_MB`, default 16; 0: never).

A drain holds up to MAX_DRAIN_BYTES of payloads at once (the frames, their decoded events, the journal's
joined write), then frees them. glibc keeps what a process frees in its arenas for reuse and only returns
the top of the main heap; with long-lived small objects among the freed big buffers it returns little.
Measured (`OH_LEDGER_MEMLOG`, services/ledger/memlog.py) on a 1,000-symbol day: ~300 MB free inside glibc's
arenas at the end, more than DuckDB's whole buffer pool, and it grew with the width of the day. So once
the drains since the last trim reach `OH_LEDGER_TRIM_MB` of payloads, the ledger calls glibc's
`malloc_trim(0)`, which returns every free page of every arena (`madvise`), a few milliseconds; and once more
when the ingress goes quiet after at least a sixteenth of that (1 MB) (a burst's backlog, freed as it is applied: ~1 GB at the end of a
5,000-symbol day's flow, otherwise kept until the next 16 MB arrived). Off where
the C library has no `malloc_trim` (not glibc).

Why not `MALLOC_MMAP_THRESHOLD_` (big buffers in their own mappings): it must be set before the process
starts (supervisord, the tests' Service, the bench), and it costs a mapping and page faults for every
buffer, where one trim per 16 MB costs less.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from services.settings import env_float

log = logging.getLogger(__name__)

ENV = "OH_LEDGER_TRIM_MB"
DEFAULT_MB = 16.0
IDLE_FRACTION = 16  # a quiet ingress trims once this fraction of `every` was drained since the last trim


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


@dataclass
class HeapTrim:
    """Counts drained bytes; trims the heap each time they pass `every` bytes (never when `every` is 0)."""

    every: int
    pending: int = 0
    trims: int = 0
    trim: Callable[[int], int] | None = field(default_factory=_malloc_trim)

    @classmethod
    def from_env(cls) -> HeapTrim:
        return cls(every=int(env_float(ENV, DEFAULT_MB, "MB; 0: never trim") * 1024 * 1024))

    def after(self, drained: int) -> bool:
        """Note a drain of `drained` bytes (its buffers already dropped); trim if due. Return whether it trimmed."""
        if self.every <= 0 or self.trim is None:
            return False
        self.pending += drained
        if self.pending < self.every:
            return False
        return self._trim()

    def idle(self) -> bool:
        """The ingress is empty: trim now if a sixteenth of `every` or more was drained since the last trim (a
        burst's buffers, freed as its backlog was applied, go back at once, not after the next 16 MB). Return
        whether it trimmed."""
        if self.every <= 0 or self.trim is None or self.pending < self.every // IDLE_FRACTION:
            return False  # heartbeats and lone commands: not worth a trim every time the ingress idles
        return self._trim()

    def _trim(self) -> bool:
        assert self.trim is not None
        self.pending = 0
        self.trims += 1
        self.trim(0)
        return True
