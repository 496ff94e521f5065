"""Per-symbol windows of a path's columns around the sessions last asked for: a bounded cache per process (pure).

A full-market worker meets each of 5,000 symbols once a day: too many to keep whole paths (~93 KB a column), and
each fetch needs only a few weeks of them. A `Windows` keeps, per key (symbol, market seed), `width` sessions of
some columns around the last range asked for, extended half a window past it, so that the same symbol's fetch
of the next session (the next day's daily, in a long-lived worker) is served without computing the path again.
At most `held` keys are kept, the least recently used dropped first. What it hands out is a slice of what
`compute` gave, so the numbers are exactly the path's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

import numpy as np

Columns = tuple[np.ndarray, ...]


class Windows:
    """Windows of `width` sessions of per-key columns, for `held` keys at most (least recently used dropped)."""

    def __init__(self, width: int, held: int) -> None:
        self.width, self.held = width, held
        self._kept: dict[Hashable, tuple[int, int, Columns]] = {}  # key -> (first, end, columns): oldest first
        self._lock = threading.Lock()

    def between(self, key: Hashable, lo: int, hi: int, sessions: int, compute: Callable[[int, int], Columns]) -> Columns:
        """The columns of sessions [lo, hi) (0 <= lo <= hi <= `sessions`, the calendar's count): from the kept
        window when it holds them, else `compute(first, end)` for [lo, hi) and half a window past it, keeping its
        last `width` sessions."""
        with self._lock:
            kept = self._kept.pop(key, None)
            if kept is not None:
                self._kept[key] = kept  # the most recently used goes last
        if kept is not None and kept[0] <= lo and hi <= kept[1]:
            return tuple(column[lo - kept[0] : hi - kept[0]] for column in kept[2])
        end = min(hi + self.width // 2, sessions)
        first = max(min(lo, end - self.width), 0)
        columns = compute(first, end)
        start = max(end - self.width, first)
        window = tuple(np.array(column[start - first :]) for column in columns)  # its own memory, not the path's
        with self._lock:
            self._kept[key] = (start, end, window)
            while len(self._kept) > self.held:
                del self._kept[next(iter(self._kept))]
        return tuple(column[lo - first : hi - first] for column in columns)

    def clear(self) -> None:
        """Forget every window."""
        with self._lock:
            self._kept.clear()
