"""An incremental candles fetch (pure): per symbol, which sessions to ask the provider for, and whether the
provider's overlap with what is stored says the whole window must be fetched again.

An incremental `ingest_candles` (what the `daily` job sends; services/ingest.py) asks, per symbol, only for
the sessions from the `overlap`-th newest stored session of the window [start, end] up to `end`: the
sessions it lacks, plus an overlap of sessions it already holds, which it compares with the stored rows.
It asks for the whole window instead (and says why) when:

- `new`: nothing of the symbol is stored in the window;
- `hole`: fewer sessions are stored in [start, newest stored] than the exchange held there (a gap in the
  history, or a window that now reaches further back than the stored history: a larger `candle_days`; a
  symbol listed after `start` is one too, so it is always fetched whole);
- `differs`: the provider's rows of the overlap are not the stored ones (`overlap_difference`).

What "differs" means, and why: a session of the overlap missing on either side; another provider serving
it (a fallback: the history would mix two sources); the volume not equal; or any of open, high, low and close
off by more than PRICE_TOLERANCE of the larger of the two. Prices travel as float64 and are stored as DOUBLE,
so an unchanged row compares exactly; the tolerance forgives only a provider's float noise in re-computed
(adjusted) prices, while a split (a factor of 1.5 and more) and a dividend adjustment (the dividend over the
price: about 1e-3 for a quarterly dividend of a 0.4% yield) are far above it. Either rescales every earlier
price, and a provider that revised its history may have revised sessions before the overlap too: neither can
be seen outside the overlap without fetching the whole window, so any difference fetches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from oh.domain import calendar
from oh.domain.checks import PRICE_COLUMNS

PRICE_TOLERANCE = 1e-6  # relative: see the module docstring
# The stored rows `stored_by_symbol` reads: the columns compared, oldest first per symbol.
STORED_COLUMNS = ("symbol", "date", *PRICE_COLUMNS, "volume", "provider")


@dataclass(frozen=True)
class Stored:
    """What is stored of one symbol in the window: how many sessions, and its newest rows (oldest first), as many
    as the overlap, as arrays: `days` (datetime64[D]), `prices` (one column per PRICE_COLUMNS), `volume`, and
    the providers that served them."""

    sessions: int
    days: np.ndarray
    prices: np.ndarray
    volume: np.ndarray
    providers: frozenset[str]

    @classmethod
    def of(cls, sessions: int, rows: pa.Table) -> Stored:
        """From the rows of one symbol (the columns of STORED_COLUMNS but the symbol may be missing)."""
        return cls(sessions, *_arrays(rows), frozenset(rows.column("provider").to_pylist()))


def _arrays(rows: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    days = rows.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    prices = np.column_stack([rows.column(c).to_numpy(zero_copy_only=False) for c in PRICE_COLUMNS])
    return days, prices, rows.column("volume").to_numpy(zero_copy_only=False)


def stored_by_symbol(table: pa.Table) -> dict[str, Stored]:
    """Group the bulk read (STORED_COLUMNS and `sessions`, sorted by symbol then date) by symbol: the columns are
    converted once, and each symbol's arrays are views of them."""
    if not table.num_rows:
        return {}
    symbols = table.column("symbol").to_numpy(zero_copy_only=False)
    cuts = np.flatnonzero(symbols[1:] != symbols[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(symbols)]))
    sessions = table.column("sessions").to_numpy(zero_copy_only=False)
    days, prices, volume = _arrays(table)
    providers = table.column("provider").to_numpy(zero_copy_only=False)
    return {
        str(symbols[a]): Stored(int(sessions[a]), days[a:b], prices[a:b], volume[a:b], frozenset(providers[a:b]))
        for a, b in zip(starts, ends, strict=True)
    }


def span_days(sessions: int) -> int:
    """The most calendar days from the first to the last of `sessions` consecutive exchange sessions: how far before
    its newest stored session a symbol's newest `sessions` rows can reach (48 for 30, over the calendar)."""
    days = calendar.all_sessions()
    if sessions <= 1 or days.size < sessions:
        return 0
    return int((days[sessions - 1 :] - days[: days.size - sessions + 1]).astype(np.int64).max())


def fetch_from(stored: Stored | None, start: date, end: date, overlap: int) -> tuple[date, str | None]:
    """The first day to ask the provider for, and why the whole window (None: only the tail and the overlap)."""
    if stored is None or stored.sessions == 0:
        return start, "new"
    last = stored.days[-1].astype(date)
    if stored.sessions < len(calendar.sessions(start, last)):
        return start, "hole"
    first = calendar.last_sessions(last, overlap)[0].astype(date)
    return min(max(first, start), end), None


def overlap_difference(fetched: pa.Table, provider: str, stored: Stored) -> str | None:
    """How the provider's rows of the stored overlap differ from the stored ones; None when they do not.

    `fetched` is the provider's answer from `fetch_from` on (schema contracts.rows.CANDLES), `provider` the name
    of the provider that served it; the overlap is the sessions of `stored`.
    """
    days, prices, volume = _arrays(fetched)
    within = (days >= stored.days[0]) & (days <= stored.days[-1])
    days = days[within]
    if len(days) != len(stored.days) or (days != stored.days).any():
        first = sorted(set(days.tolist()) ^ set(stored.days.tolist()))[0]
        return f"the overlap's sessions differ ({len(stored.days)} stored, {len(days)} now; first {first})"
    if stored.providers != {provider}:
        return f"served by {provider}, stored from {', '.join(sorted(stored.providers))}"
    volume = volume[within]
    if (volume != stored.volume).any():
        at = int(np.flatnonzero(volume != stored.volume)[0])
        return f"volume on {days[at]}: stored {stored.volume[at]}, now {volume[at]}"
    had, now = stored.prices, prices[within]
    off = ~(np.abs(had - now) <= PRICE_TOLERANCE * np.maximum(np.abs(had), np.abs(now)))  # NaN differs too
    if off.any():
        at, column = (int(i) for i in np.argwhere(off)[0])
        return f"{PRICE_COLUMNS[column]} on {days[at]}: stored {had[at, column]}, now {now[at, column]}"
    return None
