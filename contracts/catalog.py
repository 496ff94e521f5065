"""The catalog: one row per job, and the one place each of these facts is written.

A job is started by one command (`oh emit <cli>`), runs on one worker, and records its data as one
event type, which the ledger projects into one table under one asset key (the seed's names: they
are a contract). A pipeline stage is a job that runs after another one finished (`after`); what
else it reads (`reads`: other assets of the same session, `reads_earlier`: earlier sessions)
completes the lineage an orchestrator shows (oh_dagster). Every other map in the code derives
from `JOBS`: the job of a command, the worker of a job, the tables an event writes (the ledger
batches by them, the dashboard invalidates its cache by them), the stages of the chain, the
datasets health tracks for gaps, the commands the planner suggests.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.base import Command, Event, Message
from contracts.commands import (
    BuildBriefing,
    ComputeDerived,
    ComputeFlow,
    IngestCandles,
    IngestOptionsBars,
    RunChecks,
    RunDaily,
    SnapshotOptions,
)
from contracts.events import (
    AssetChecked,
    BriefingBuilt,
    CandlesIngested,
    ChainSnapshotted,
    DerivedComputed,
    FlowComputed,
    NotificationSent,
    OptionBarsIngested,
    RunFinished,
    RunStarted,
    SymbolsForgotten,
    SymbolsRemembered,
    TradeUpdated,
)


@dataclass(frozen=True)
class Coverage:
    """Where a dataset's gaps are looked for: the table's symbol column and session column."""

    symbol_column: str
    session_column: str


@dataclass(frozen=True)
class Job:
    """One job: the command that starts it and everything it writes."""

    name: str  # `job_name` in meta.ingestion_runs
    command: type[Command]
    worker: str  # the service that runs it (`python -m services.<worker>`)
    cli: str  # `oh emit <cli>`
    event: type[Event] | None = None  # the event that carries its rows
    asset_key: str | None = None  # meta.ingestion_run_assets.asset_key of those rows
    table: str | None = None  # where the ledger projects them
    coverage: Coverage | None = None  # tracked for gaps by `oh db health`
    after: str | None = None  # a pipeline stage: sent when a run of this job finishes
    reads: tuple[str, ...] = ()  # other asset keys it reads for the same session (lineage, e.g. for Dagster; in a
    # daily's chain it also waits for the daily's runs writing them: services/pipeline.py, waits_for)
    reads_earlier: tuple[str, ...] = ()  # asset keys whose earlier sessions it reads (its own: a history)


JOBS: tuple[Job, ...] = (  # upstream first
    Job("ingest_candles", IngestCandles, "ingest", "ingest-candles", CandlesIngested, "candles_daily",
        "candles_daily", Coverage("symbol", "date")),
    Job("ingest_options_bars", IngestOptionsBars, "options_bars", "ingest-options-bars", OptionBarsIngested, "options_bars",
        "options_bars", Coverage("underlying", "date")),
    Job("snapshot_options", SnapshotOptions, "snapshot", "snapshot-options", ChainSnapshotted, "options_snapshot_file",
        "option_snapshots", Coverage("underlying", "snapshot_date")),
    Job("compute_flow", ComputeFlow, "flow", "compute-flow", FlowComputed, "options_flow",
        "options_flow", Coverage("symbol", "to_date"), after="snapshot_options",
        reads_earlier=("options_snapshot_file",)),
    Job("compute_derived", ComputeDerived, "derived", "compute-derived", DerivedComputed, "derived_metrics",
        "derived_daily", Coverage("symbol", "session_date"), after="compute_flow",
        reads=("candles_daily", "options_snapshot_file"), reads_earlier=("derived_metrics",)),
    Job("build_briefing", BuildBriefing, "briefing", "briefing", BriefingBuilt, "briefing_markdown",
        "briefings", after="compute_derived"),
    Job("run_checks", RunChecks, "checks", "checks", AssetChecked, table="meta.asset_checks"),
    Job("daily", RunDaily, "scheduler", "daily"),
)

# Events that are not a job's rows, and the tables they write.
OTHER_WRITES: dict[type[Message], tuple[str, ...]] = {
    RunStarted: ("meta.ingestion_runs",),
    RunFinished: ("meta.ingestion_runs",),
    TradeUpdated: ("trade_updates",),
    SymbolsForgotten: ("meta.forgotten_symbols",),
    SymbolsRemembered: ("meta.forgotten_symbols",),
    NotificationSent: ("meta.notifications",),
}

JOB_BY_NAME = {job.name: job for job in JOBS}
JOB_OF_COMMAND: dict[str, str] = {job.command.__name__: job.name for job in JOBS}
SERVICE_OF_JOB: dict[str, str] = {job.name: job.worker for job in JOBS}
ASSET_KEYS: tuple[str, ...] = tuple(job.asset_key for job in JOBS if job.asset_key)
TRACKED: dict[str, tuple[str, str, str]] = {  # asset key -> (table, symbol column, session column)
    job.asset_key: (job.table, job.coverage.symbol_column, job.coverage.session_column)
    for job in JOBS if job.asset_key and job.table and job.coverage
}


def job_of(command: type[Command] | Command) -> Job:
    """The job a command (or command type) starts."""
    name = command.__name__ if isinstance(command, type) else type(command).__name__
    return JOB_BY_NAME[JOB_OF_COMMAND[name]]


def asset_of(event_type: type[Message]) -> str | None:
    """The asset key whose partitions an event type's rows are (None for events that are not a job's rows)."""
    return next((job.asset_key for job in JOBS if job.event is event_type), None)


def stage_after(job_name: str) -> Job | None:
    """The pipeline stage sent when a run of `job_name` finishes (None at the end of the chain)."""
    return next((job for job in JOBS if job.after == job_name), None)


def writes_of(event_type: type[Message]) -> tuple[str, ...]:
    """What one event type writes: tables, and `asset:KEY` for its asset rows and watermarks."""
    for job in JOBS:
        if job.event is event_type and job.table:
            return (job.table, f"asset:{job.asset_key}") if job.asset_key else (job.table,)
    return OTHER_WRITES.get(event_type, ())
