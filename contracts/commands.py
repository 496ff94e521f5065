"""Commands: imperative, journaled, each handled by exactly one worker."""

from __future__ import annotations

import uuid
from datetime import date

from contracts.base import Command

RUN_NAMESPACE = uuid.UUID("6f1c3f0e-8d2a-4f4e-9a59-0b3f2a7c9e11")

def run_id_for(command_id: str, job_name: str) -> str:
    """The run id a command gets: derived from the command, so a redelivered command maps to the same run."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{command_id}:{job_name}"))


class IngestCandles(Command, kw_only=True):
    """Fetch daily candles for `symbols` over [start, end] from `provider` (job `ingest_candles`)."""

    symbols: list[str]
    start: date
    end: date
    provider: str = "sim"
    fallback: str | None = None
    parent_run_id: str | None = None


class IngestOptionsBars(Command, kw_only=True):
    """Fetch the daily bars of each symbol's listed option contracts that expire within `max_dte`
    calendar days, for every session in [start, end] (job `ingest_options_bars`, asset `options_bars`,
    partition `SYMBOL|DATE`)."""

    symbols: list[str]
    start: date
    end: date
    provider: str = "sim"
    fallback: str | None = None
    max_dte: int = 45
    parent_run_id: str | None = None


class RunChecks(Command, kw_only=True):
    """Re-run the data-quality checks on stored data (job `run_checks`); all assets when `asset` is None."""

    asset: str | None = None
    symbols: list[str] | None = None


class SnapshotOptions(Command, kw_only=True):
    """Snapshot the full option chain of each symbol on each session in [start, end] (job `snapshot_options`)."""

    symbols: list[str]
    start: date
    end: date
    provider: str = "sim"
    fallback: str | None = None
    parent_run_id: str | None = None


class ComputeFlow(Command, kw_only=True):
    """Compute open-interest/volume flow for each symbol over the `window` sessions ending at `as_of`
    (job `compute_flow`), every grouping at once. Sent by the flow worker after a snapshot run, or by
    `oh emit compute-flow`; `parent_run_id` links it to the run whose data it used."""

    symbols: list[str]
    as_of: date
    window: int = 1
    parent_run_id: str | None = None


class ComputeDerived(Command, kw_only=True):
    """Compute the derived-metrics row of each symbol for session `as_of` (job `compute_derived`), from
    that session's chain, the closes up to it and earlier rows only. Sent after each flow run."""

    symbols: list[str]
    as_of: date
    parent_run_id: str | None = None


class BuildBriefing(Command, kw_only=True):
    """Write the day's Markdown briefing for the portfolio and `symbols` (job `build_briefing`, asset
    `briefing_markdown`): `$OH_HOME/briefings/YYYY-MM-DD.md`, and the same text in DuckDB. Sent after
    each derived run, or by `oh emit briefing`; `portfolio` None means the default portfolio file."""

    symbols: list[str]
    as_of: date
    portfolio: str | None = None
    parent_run_id: str | None = None


class RunDaily(Command, kw_only=True):
    """The whole daily chain for session `as_of` (None: the last closed session) as job `daily`:
    candles and option bars, then snapshots; flow, derived and the briefing follow on their own.
    The `daily` run finishes when every run it started (and what those chained) has finished."""

    symbols: list[str]
    watchlist: str | None = None  # resolved by the job, so a scheduled run sees the list as it is then
    as_of: date | None = None
    provider: str = "sim"
    fallback: str | None = None
    candle_days: int = 400
    with_portfolio: bool = True  # add the portfolio's underlyings (every leg of every structure)


class StartLive(Command, kw_only=True):
    """Start (or restart with new settings) the live streams of the `live_stream` worker for a portfolio.

    Not a job run: streaming lasts until StopLive. `keep_running` makes a restarted worker resume
    with these settings; otherwise a restart stays idle until the next StartLive.
    """

    portfolio: str | None = None  # None: $OH_HOME/config/portfolio.json
    provider: str = "sim"
    stocks: bool = True
    options: bool = True
    fills: bool = True
    max_option_contracts: int = 250
    stock_feed: str = "iex"  # iex | sip
    options_feed: str = "indicative"  # indicative | opra
    keep_running: bool = False
    sim_quotes_per_second: float = 200.0


class StopLive(Command, kw_only=True):
    """Stop every live stream; the worker stays idle until the next StartLive."""
