"""The NYSE trading calendar (exchange-calendars' XNYS): which days are sessions.

Pure: dates in, dates out. Loaded once per process (about half a second) and cached.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np

FIRST = date(1990, 1, 2)
LAST = date(2035, 12, 31)


@lru_cache(maxsize=1)
def _calendar() -> Any:
    import exchange_calendars as xc

    return xc.get_calendar("XNYS", start=FIRST.isoformat(), end=LAST.isoformat())


@lru_cache(maxsize=1)
def all_sessions() -> np.ndarray:
    """Every NYSE session the calendar knows, as numpy datetime64[D], ascending."""
    index = _calendar().sessions
    if index.tz is not None:
        index = index.tz_convert(None)
    return index.to_numpy().astype("datetime64[D]")


def sessions(start: date, end: date) -> np.ndarray:
    """NYSE sessions in [start, end] as datetime64[D]; empty when the range holds none."""
    if start < FIRST or end > LAST:
        raise ValueError(f"dates must lie between {FIRST} and {LAST} (the calendar's range)")
    days = all_sessions()
    lo = np.searchsorted(days, np.datetime64(start, "D"), side="left")
    hi = np.searchsorted(days, np.datetime64(end, "D"), side="right")
    return days[lo:hi]


def session_index(day: date) -> int:
    """How many sessions lie strictly before `day` since the calendar's first session."""
    return int(np.searchsorted(all_sessions(), np.datetime64(day, "D"), side="left"))
