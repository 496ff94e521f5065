"""The NYSE trading calendar (exchange-calendars' XNYS): which days are sessions.

Pure: dates in, dates out. Loaded once per process (about half a second) and cached.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
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


@lru_cache(maxsize=1)
def _closes_utc() -> np.ndarray:
    closes = _calendar().closes
    if closes.dt.tz is not None:
        closes = closes.dt.tz_convert(None)
    return closes.to_numpy().astype("datetime64[s]")


def last_closed_session(now: datetime) -> date:
    """The newest session whose close is at or before `now` (aware or naive UTC): data for it should exist.

    On a Monday morning this is the Friday before (or the Thursday, if Friday was a holiday).
    """
    instant = np.datetime64(now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now, "s")
    index = int(np.searchsorted(_closes_utc(), instant, side="right")) - 1
    return all_sessions()[index].astype(date)


def sessions_after(watermark: date, until: date) -> int:
    """How many sessions lie in (watermark, until]: a dataset's staleness in trading sessions."""
    days = all_sessions()
    lo = np.searchsorted(days, np.datetime64(watermark, "D"), side="right")
    hi = np.searchsorted(days, np.datetime64(until, "D"), side="right")
    return max(int(hi - lo), 0)


def last_sessions(until: date, count: int) -> np.ndarray:
    """The `count` sessions ending at `until` (inclusive), oldest first."""
    days = all_sessions()
    hi = int(np.searchsorted(days, np.datetime64(until, "D"), side="right"))
    return days[max(hi - count, 0) : hi]
