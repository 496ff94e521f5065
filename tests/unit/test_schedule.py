"""The scheduler's config: defaults, fire times in the exchange's time zone, and errors naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from oh.adapters.schedule import (
    DailySchedule,
    ScheduleError,
    load_schedule,
    parse_schedule,
)
from services.scheduler import daily_command


def test_no_file_means_weekdays_after_the_new_york_close(tmp_path: Path) -> None:
    """Without a config the daily chain fires at 17:30 New York time on weekdays, for the default watchlist."""
    schedule = load_schedule(tmp_path / "scheduler.toml")
    assert schedule == DailySchedule()
    friday_night = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)  # 18:00 in New York: after Friday's fire time
    fire = schedule.next_fire(friday_night)
    assert (fire.weekday(), fire.hour, fire.minute) == (0, 17, 30)  # Monday
    assert fire.astimezone(UTC).hour == 22  # EST in November: UTC-5


def test_fire_time_follows_daylight_saving() -> None:
    """17:30 in New York is 21:30 UTC in July (EDT) and 22:30 UTC in December (EST)."""
    schedule = DailySchedule()
    assert schedule.next_fire(datetime(2026, 7, 1, 12, tzinfo=UTC)).astimezone(UTC).hour == 21
    assert schedule.next_fire(datetime(2026, 12, 1, 12, tzinfo=UTC)).astimezone(UTC).hour == 22


def test_symbols_replace_the_default_watchlist() -> None:
    """A config with symbols and no watchlist runs exactly those symbols."""
    schedule = parse_schedule('[daily]\nsymbols = ["spy", "AAPL"]\nprovider = "yahoo"\n')
    assert (schedule.symbols, schedule.watchlist, schedule.provider) == (("SPY", "AAPL"), None, "yahoo")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[daily]\ncron = "every day"\n', "[daily].cron"),
        ('[daily]\ntimezone = "Mars/Olympus"\n', "[daily].timezone"),
        ('[daily]\nprovider = "bloomberg"\n', "[daily].provider"),
        ('[daily]\nsymbols = ["AAPL", "BAD SYMBOL"]\n', "[daily].symbols"),
        ('[daily]\nenabled = "yes"\n', "[daily].enabled"),
        ('[daily]\ncorn = "* * * * *"\n', "[daily].corn"),
        ("[daily\n", "not valid TOML"),
    ],
)
def test_a_bad_config_names_the_field(text: str, names: str) -> None:
    """Each malformed field is an error that names it (never a silent default)."""
    with pytest.raises(ScheduleError, match=names.replace("[", r"\[").replace("]", r"\]")):
        parse_schedule(text)


def test_one_fire_time_gives_one_command_id() -> None:
    """The command for a fire time has an id derived from it, so a restarted scheduler's resend is a duplicate."""
    schedule = DailySchedule()
    fire = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
    first, again = daily_command(schedule, fire), daily_command(schedule, fire)
    assert first.id == again.id and first.triggered_by == "scheduler"
    assert daily_command(schedule, fire.replace(minute=31)).id != first.id
