"""The partitions: NYSE sessions (from exchange-calendars) and the trader's symbols (from the watchlists).

- `SESSIONS`: one partition per NYSE session from `FIRST_SESSION` (env `OH_DAGSTER_FIRST_SESSION`,
  default 2020-01-02), keyed `YYYY-MM-DD`. A weekday cron in New York time, minus every weekday the
  exchange is closed: the exclusions come from `oh.domain.calendar` (exchange-calendars' XNYS), so
  there is no weekend or holiday partition. `end_offset=1`: today's session is a partition from
  midnight on, so the schedule can materialize it after the close.
- `SYMBOLS`: dynamic partitions named `symbols`, kept equal to every watchlist's symbols plus the
  portfolio's underlyings by the `watchlist_symbols` sensor (oh_dagster/automation.py).
- `SESSION_SYMBOL`: both, for the assets with one partition per symbol and session.

Dagster writes a two-dimension key `SESSION|SYMBOL` (dimensions sorted by name); the run ledger's
partition keys are `SYMBOL|SESSION` (or `SYMBOL` for candles, `SESSION` for the briefing):
`ledger_keys` gives the ledger's spellings of one Dagster partition.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from datetime import date, datetime

import dagster as dg
import numpy as np

from bus.home import Home
from oh.domain import calendar

log = logging.getLogger(__name__)

FIRST_SESSION = date.fromisoformat(os.environ.get("OH_DAGSTER_FIRST_SESSION", "2020-01-02"))
SESSION_CRON = "0 0 * * 1-5"  # weekdays; the holidays are excluded below
TIMEZONE = "America/New_York"
SESSION, SYMBOL = "session", "symbol"  # the dimension names (Dagster sorts keys by them: SESSION|SYMBOL)


def closed_weekdays(first: date, last: date = calendar.LAST) -> list[date]:
    """Weekdays in [first, last] that are not NYSE sessions (holidays): the session partitions' exclusions."""
    days = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    weekdays = days[np.is_busday(days)]
    return [d.astype(date) for d in np.setdiff1d(weekdays, calendar.sessions(first, last))]


def session_partitions(first: date = FIRST_SESSION) -> dg.TimeWindowPartitionsDefinition:
    """One partition per NYSE session from `first` on (keys YYYY-MM-DD)."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=SESSION_CRON, start=datetime(first.year, first.month, first.day), fmt="%Y-%m-%d",
        timezone=TIMEZONE, end_offset=1,
        exclusions=[datetime(d.year, d.month, d.day) for d in closed_weekdays(first)],
    )


SESSIONS = session_partitions()
SYMBOLS = dg.DynamicPartitionsDefinition(name="symbols")
SESSION_SYMBOL = dg.MultiPartitionsDefinition({SESSION: SESSIONS, SYMBOL: SYMBOLS})


def session_symbol_key(day: date, symbol: str) -> dg.MultiPartitionKey:
    """The Dagster key of one symbol on one session."""
    return dg.MultiPartitionKey({SESSION: day.isoformat(), SYMBOL: symbol})


def split_keys(keys: Iterable[str], per_symbol: bool) -> dict[date, list[str]]:
    """Dagster partition keys as {session: symbols} (symbols empty for session-only keys), sessions ascending."""
    by_day: dict[date, list[str]] = {}
    for key in keys:
        if per_symbol:
            day, symbol = key.split("|")
            by_day.setdefault(date.fromisoformat(day), []).append(symbol)
        else:
            by_day.setdefault(date.fromisoformat(key), [])
    return {day: sorted(set(by_day[day])) for day in sorted(by_day)}


def ledger_keys(key: str, per_symbol: bool) -> tuple[str, ...]:
    """The run ledger's partition keys one Dagster key may be written under, most specific first."""
    if not per_symbol:
        return (key,)
    day, symbol = key.split("|")
    return (f"{symbol}|{day}", symbol)


def tracked_symbols(home: Home) -> list[str]:
    """Every watchlist's symbols and the portfolio's underlyings: the symbol partitions.

    A malformed watchlist or portfolio file adds nothing (logged), so one bad file never empties the set.
    """
    from oh.adapters.watchlists import WatchlistError, load_watchlists

    symbols: set[str] = set()
    try:
        for listed in load_watchlists(home).values():
            symbols.update(listed)
    except WatchlistError as exc:
        log.warning("watchlists not read: %s", exc)
    symbols.update(portfolio_underlyings(home))
    return sorted(symbols)


def portfolio_underlyings(home: Home) -> list[str]:
    """The default portfolio's underlyings (every leg of every structure); none if it is missing or malformed."""
    from oh.adapters.portfolio_file import load
    from oh.domain.portfolio import PortfolioError, underlyings

    path = home.config / "portfolio.json"
    if not path.exists():
        return []
    try:
        return underlyings(load(path))
    except PortfolioError as exc:
        log.warning("portfolio %s not used: %s", path, exc)
        return []


def contiguous_runs(days: Sequence[date]) -> list[list[date]]:
    """Sessions (ascending) cut where a session is missing between two: each run is one range command."""
    runs: list[list[date]] = []
    previous = -2
    for day in days:
        index = calendar.session_index(day)
        if index != previous + 1:
            runs.append([])
        runs[-1].append(day)
        previous = index
    return runs
