"""Commands: imperative, journaled, each handled by exactly one worker."""

from __future__ import annotations

import uuid
from datetime import date

import msgspec

from contracts.base import Command

RUN_NAMESPACE = uuid.UUID("6f1c3f0e-8d2a-4f4e-9a59-0b3f2a7c9e11")

def run_id_for(command_id: str, job_name: str) -> str:
    """The run id a command gets: derived from the command, so a redelivered command maps to the same run."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{command_id}:{job_name}"))


class IngestCandles(Command, kw_only=True):
    """Fetch daily candles for `symbols` over [start, end] from `provider` (job `ingest_candles`).

    `incremental` (version 2; the `daily` job sets it): per symbol, fetch only from a few sessions before the
    last stored one, unless the stored window needs the whole of it (services/ingest.py says when). Version 1
    commands (older journals) decode with it False: a full fetch of [start, end], as they ran.
    """

    v: int = 2
    symbols: list[str]
    start: date
    end: date
    provider: str = "sim"
    fallback: str | None = None
    parent_run_id: str | None = None
    incremental: bool = False


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


class SessionsCommand(Command, kw_only=True):
    """A command over one or more sessions of stored data (the pipeline's compute steps).

    Version 2 names every session in `sessions` (oldest first), so a range or a replay is one command
    whose run records one partition per symbol and session; version 1 (older journals) named one
    session in `as_of`. `days()` reads either.
    """

    v: int = 2
    symbols: list[str]
    sessions: list[date] = msgspec.field(default_factory=list)
    as_of: date | None = None  # version 1 only
    parent_run_id: str | None = None

    def days(self) -> list[date]:
        """The sessions to compute, oldest first."""
        if self.sessions:
            return sorted(set(self.sessions))
        return [self.as_of] if self.as_of is not None else []


class ComputeFlow(SessionsCommand, kw_only=True):
    """Compute open-interest/volume flow for each symbol over the `window` sessions ending at each session
    (job `compute_flow`), every grouping at once. Sent by the flow worker after a snapshot run (one command
    for every session the run stored), or by `oh emit compute-flow`; `parent_run_id` links it to the run
    whose data it used."""

    window: int = 1


class ComputeDerived(SessionsCommand, kw_only=True):
    """Compute the derived-metrics row of each symbol for each session (job `compute_derived`), oldest first,
    from that session's chain, the closes up to it and earlier rows only (a session's IV rank sees the rows
    this run computed for the sessions before it). Sent after each flow run."""


class BuildBriefing(SessionsCommand, kw_only=True):
    """Write each session's Markdown briefing for the portfolio and `symbols` (job `build_briefing`, asset
    `briefing_markdown`): `$OH_HOME/briefings/YYYY-MM-DD.md`, and the same text in DuckDB. Sent after each
    derived run, or by `oh emit briefing`; `portfolio` None means the default portfolio file."""

    portfolio: str | None = None


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
