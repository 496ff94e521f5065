"""What Dagster starts by itself: the daily schedule, the briefing after it, and the symbol partitions.

- `daily` (a schedule, off until turned on in the UI): the scheduler service's schedule
  (`$OH_HOME/config/scheduler.toml`, default weekdays 17:30 New York; oh/adapters/schedule.py).
  At each tick on an NYSE session it requests one run per symbol of the last closed session: the
  per-symbol assets of that symbol and session. The symbols are what `daily` would cover: the
  file's `symbols` and `watchlist` plus the portfolio's underlyings. Turn the scheduler service's
  own timer off (`enabled = false`) when Dagster schedules, or the day runs twice.
- `briefing_after_daily` (an automation condition on the session-only assets, evaluated by the
  `oh_automation` sensor): once the schedule has ticked, at least one upstream partition of the
  latest session was updated since, and none is still in progress, the briefing is requested once.
  A failed symbol does not hold it back (the chain builds the briefing of the symbols that worked).
- `watchlist_symbols` (a sensor, on by default): keeps the `symbols` partitions equal to every
  watchlist's symbols, the schedule's symbols and the portfolio's underlyings, adding and removing
  as the files change (materializations of a removed symbol stay in the event log).
"""

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from bus.home import Home
from oh.adapters.schedule import DEFAULT_CRON, DEFAULT_TIMEZONE, DailySchedule, ScheduleError, load_schedule
from oh.adapters.watchlists import WatchlistError, load_watchlist
from oh.domain import calendar
from oh_dagster.partitions import SYMBOLS, portfolio_underlyings, session_symbol_key, tracked_symbols
from oh_dagster.resources import RESOURCE_KEY, OhResource

log = logging.getLogger(__name__)


def schedule_config(home: Home) -> DailySchedule:
    """scheduler.toml as the code location loads; the default schedule when it is malformed or has a seconds field."""
    try:
        config = load_schedule(home.config / "scheduler.toml")
    except ScheduleError as exc:
        log.warning("%s; Dagster's daily schedule uses the defaults", exc)
        return DailySchedule()
    if len(config.cron.split()) != 5:  # Dagster's cron has no seconds field
        log.warning("scheduler.toml cron %r has a seconds field; Dagster's daily schedule uses %s", config.cron, DEFAULT_CRON)
        return DailySchedule(cron=DEFAULT_CRON, timezone=DEFAULT_TIMEZONE, watchlist=config.watchlist,
                             symbols=config.symbols, provider=config.provider, fallback=config.fallback)
    return config


def scheduled_symbols(home: Home, config: DailySchedule) -> list[str]:
    """The symbols `daily` covers on this schedule: its symbols, its watchlist, the portfolio's underlyings."""
    listed = load_watchlist(home, config.watchlist) if config.watchlist else []
    return sorted({*config.symbols, *listed, *portfolio_underlyings(home)})


def daily_schedule(job: Any, config: DailySchedule) -> dg.ScheduleDefinition:
    """One run per symbol of the last closed session, at the scheduler service's time (`job`: the per-symbol asset job)."""

    @dg.schedule(name="daily", cron_schedule=config.cron, execution_timezone=config.timezone, job=job,
                 default_status=dg.DefaultScheduleStatus.STOPPED,
                 description=f"`daily` for the last closed session at {config.cron} ({config.timezone}), "
                             "one run per symbol, as the scheduler service would.")
    def daily(context: dg.ScheduleEvaluationContext, oh: OhResource) -> list[dg.RunRequest] | dg.SkipReason:
        now = context.scheduled_execution_time or datetime.now(UTC)
        today = now.astimezone(ZoneInfo(config.timezone)).date()
        if not calendar.is_session(today):
            return dg.SkipReason(f"{today} is not an NYSE session")
        day = calendar.last_closed_session(now)
        home = oh.oh_home()
        try:
            at_tick = load_schedule(home.config / "scheduler.toml")
            symbols = scheduled_symbols(home, at_tick)
        except (ScheduleError, WatchlistError) as exc:
            return dg.SkipReason(str(exc))
        if not symbols:
            return dg.SkipReason("no symbols: set `symbols` or `watchlist` in scheduler.toml, or add positions")
        known = set(context.instance.get_dynamic_partitions(SYMBOLS.name))
        missing = [s for s in symbols if s not in known]
        if missing:
            context.instance.add_dynamic_partitions(SYMBOLS.name, missing)
        provider = {"provider": at_tick.provider, "fallback": at_tick.fallback}
        return [
            dg.RunRequest(run_key=f"{day}|{symbol}", partition_key=session_symbol_key(day, symbol),
                          run_config={"resources": {RESOURCE_KEY: {"config": provider}}})
            for symbol in symbols
        ]

    return daily


def briefing_after_daily(config: DailySchedule) -> dg.AutomationCondition:
    """Once after each tick: some upstream partition of the latest session updated since, none in progress."""
    tick = dg.AutomationCondition.cron_tick_passed(config.cron, config.timezone)
    return (
        dg.AutomationCondition.in_latest_time_window()
        & tick.since_last_handled()
        & dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated().since(tick))
        & ~dg.AutomationCondition.any_deps_in_progress()
    ).with_label("after the daily schedule's runs")


@dg.sensor(name="watchlist_symbols", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Keeps the `symbols` partitions equal to the watchlists, the schedule's symbols and the "
                       "portfolio's underlyings.")
def watchlist_symbols(context: dg.SensorEvaluationContext, oh: OhResource) -> dg.SensorResult | dg.SkipReason:
    """Add the symbols the files list and the partitions lack; remove those no file lists any more."""
    home = oh.oh_home()
    wanted = set(tracked_symbols(home))
    try:
        wanted.update(scheduled_symbols(home, load_schedule(home.config / "scheduler.toml")))
    except (ScheduleError, WatchlistError) as exc:
        context.log.warning(f"scheduler.toml not used for symbols: {exc}")
    current = context.instance.get_dynamic_partitions(SYMBOLS.name)
    added = sorted(wanted - set(current))
    removed = sorted(set(current) - wanted)
    if not added and not removed:
        return dg.SkipReason(f"the {len(current)} symbol partitions match the watchlists")
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if added:
        requests.append(SYMBOLS.build_add_request(added))
    if removed:
        requests.append(SYMBOLS.build_delete_request(removed))
    context.log.info(f"symbol partitions: +{added} -{removed}")
    return dg.SensorResult(dynamic_partitions_requests=requests)
