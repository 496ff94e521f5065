"""The NYSE trading calendar (exchange-calendars' XNYS): which days are sessions, and their closes.

Dates in, dates out. The session table is built once from exchange-calendars and cached on disk
(`~/.cache/oh`, or `OH_CALENDAR_CACHE`), so a CLI command does not pay for importing pandas.

"Now" is always an argument: a component that needs the time holds a `Clock` (default `wall_clock`),
so a test hands it another clock instead of patching datetime. A session has data only once its
close has passed: `last_closed_session(now)` and `unclosed_sessions(start, end, now)` say which.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

FIRST = date(1990, 1, 2)
LAST = date(2035, 12, 31)

Clock = Callable[[], datetime]  # returns an aware UTC datetime


def wall_clock() -> datetime:
    """The real time, aware UTC: every component's clock unless a test hands it another one."""
    return datetime.now(UTC)


def _cache_path() -> Path:
    """Where the computed sessions are kept, keyed by the exchange-calendars version (its holidays)."""
    version = metadata.version("exchange-calendars")
    root = Path(os.environ.get("OH_CALENDAR_CACHE") or Path.home() / ".cache" / "oh")
    return root / f"xnys-{FIRST}-{LAST}-ec{version}.npz"


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """(sessions as datetime64[D], closes as UTC datetime64[s]): computed once, then read from a cache.

    Building the calendar imports pandas and exchange-calendars (0.5-1 s); the cache file is a few
    hundred KB and loads in about a millisecond, which keeps CLI commands fast. A new
    exchange-calendars release (new holidays) gets a new cache file.
    """
    path = _cache_path()
    try:
        with np.load(path) as cached:
            return cached["sessions"], cached["closes"]
    except (OSError, KeyError, ValueError):
        pass
    import exchange_calendars as xc

    calendar = xc.get_calendar("XNYS", start=FIRST.isoformat(), end=LAST.isoformat())
    index, closes = calendar.sessions, calendar.closes
    if index.tz is not None:
        index = index.tz_convert(None)
    if closes.dt.tz is not None:
        closes = closes.dt.tz_convert(None)
    sessions = index.to_numpy().astype("datetime64[D]")
    close_times = closes.to_numpy().astype("datetime64[s]")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, sessions=sessions, closes=close_times)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the rebuild next time
    return sessions, close_times


def all_sessions() -> np.ndarray:
    """Every NYSE session the calendar knows, as numpy datetime64[D], ascending."""
    return _tables()[0]


def sessions(start: date, end: date) -> np.ndarray:
    """NYSE sessions in [start, end] as datetime64[D]; empty when the range holds none."""
    if start < FIRST or end > LAST:
        raise ValueError(f"dates must lie between {FIRST} and {LAST} (the calendar's range)")
    days = all_sessions()
    lo = np.searchsorted(days, np.datetime64(start, "D"), side="left")
    hi = np.searchsorted(days, np.datetime64(end, "D"), side="right")
    return days[lo:hi]


def is_session(day: date) -> bool:
    """Whether `day` is an NYSE trading session."""
    return FIRST <= day <= LAST and len(sessions(day, day)) == 1


def session_index(day: date) -> int:
    """How many sessions lie strictly before `day` since the calendar's first session."""
    return int(np.searchsorted(all_sessions(), np.datetime64(day, "D"), side="left"))


def _closes_utc() -> np.ndarray:
    return _tables()[1]


def last_closed_session(now: datetime) -> date:
    """The newest session whose close is at or before `now` (aware or naive UTC): data for it should exist.

    On a Monday morning this is the Friday before (or the Thursday, if Friday was a holiday).
    """
    instant = np.datetime64(now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now, "s")
    index = int(np.searchsorted(_closes_utc(), instant, side="right")) - 1
    return all_sessions()[index].astype(date)


def unclosed_sessions(start: date, end: date, now: datetime) -> np.ndarray:
    """Sessions in [start, end] whose close has not passed at `now` (datetime64[D]; empty when all have closed).

    No provider has data for them yet: a bar of a session still trading is a partial day, and one of a
    later session does not exist.
    """
    days = sessions(max(start, FIRST), min(end, LAST)) if start <= LAST and end >= FIRST else all_sessions()[:0]
    return days[days > np.datetime64(last_closed_session(now), "D")]


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
