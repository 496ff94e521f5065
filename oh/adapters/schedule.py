"""The scheduler's configuration (`$OH_HOME/config/scheduler.toml`) and its cron arithmetic.

```toml
[daily]
enabled = true
cron = "30 17 * * 1-5"          # minute hour day month weekday, in `timezone`
timezone = "America/New_York"
watchlist = "default"           # or: symbols = ["SPY", "AAPL"]
provider = "sim"                # sim | alpaca | yahoo
# fallback = "yahoo"
```

With no file, the daily chain runs at 17:30 New York time on weekdays (after the close, when
the day's data exists) for the default watchlist on `sim`. A bad file is an error naming the
field, never a silent default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from oh.adapters.registry import PROVIDERS
from oh.domain.symbols import BadSymbol, parse_symbols

DEFAULT_CRON = "30 17 * * 1-5"
DEFAULT_TIMEZONE = "America/New_York"
_FIELDS = {"enabled", "cron", "timezone", "watchlist", "symbols", "provider", "fallback"}


class ScheduleError(ValueError):
    """The scheduler config is malformed; the message names the field."""


@dataclass(frozen=True)
class DailySchedule:
    """When and how the scheduler emits `daily`."""

    enabled: bool = True
    cron: str = DEFAULT_CRON
    timezone: str = DEFAULT_TIMEZONE
    watchlist: str | None = "default"
    symbols: tuple[str, ...] = ()
    provider: str = "sim"
    fallback: str | None = None

    def next_fire(self, after: datetime) -> datetime:
        """The first fire time strictly after `after` (aware), as an aware datetime in the schedule's zone."""
        zone = ZoneInfo(self.timezone)
        return croniter(self.cron, after.astimezone(zone)).get_next(datetime)


def _field(table: dict[str, object], name: str, kind: type, default: object) -> object:
    value = table.get(name, default)
    if value is not None and not isinstance(value, kind):
        raise ScheduleError(f"scheduler config: [daily].{name} must be a {kind.__name__}, got {value!r}")
    return value


def parse_schedule(text: str) -> DailySchedule:
    """Parse scheduler.toml text, or raise ScheduleError naming the bad field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"scheduler config is not valid TOML: {exc}") from None
    table = data.get("daily", {})
    if not isinstance(table, dict):
        raise ScheduleError("scheduler config: [daily] must be a table")
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise ScheduleError(f"scheduler config: unknown field [daily].{unknown[0]} (known: {', '.join(sorted(_FIELDS))})")
    cron = str(_field(table, "cron", str, DEFAULT_CRON))
    if not croniter.is_valid(cron):
        raise ScheduleError(f"scheduler config: [daily].cron {cron!r} is not a cron expression (e.g. '30 17 * * 1-5')")
    timezone = str(_field(table, "timezone", str, DEFAULT_TIMEZONE))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"scheduler config: [daily].timezone {timezone!r} is not a known time zone") from None
    symbols_value = _field(table, "symbols", list, [])
    try:
        symbols = tuple(parse_symbols(",".join(map(str, symbols_value)))) if symbols_value else ()
    except BadSymbol as exc:
        raise ScheduleError(f"scheduler config: [daily].symbols: {exc}") from None
    provider = str(_field(table, "provider", str, "sim"))
    fallback = _field(table, "fallback", str, None)
    for name, value in (("provider", provider), ("fallback", fallback)):
        if value is not None and value not in PROVIDERS:
            raise ScheduleError(f"scheduler config: [daily].{name} {value!r} is not one of {', '.join(PROVIDERS)}")
    watchlist = _field(table, "watchlist", str, None if symbols else "default")
    return DailySchedule(
        enabled=bool(_field(table, "enabled", bool, True)), cron=cron, timezone=timezone,
        watchlist=watchlist if isinstance(watchlist, str) else None, symbols=symbols, provider=provider,
        fallback=fallback if isinstance(fallback, str) else None,
    )


def load_schedule(path: Path) -> DailySchedule:
    """The schedule in `path`, or the default one when the file does not exist."""
    if not path.exists():
        return DailySchedule()
    return parse_schedule(path.read_text())
