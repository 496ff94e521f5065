"""The commands one Dagster step sends for its partitions: what `oh emit` would send for the same work.

A step covers one partition (a scheduled run) or many (a single-run backfill). Its partitions arrive
as {session: symbols}; the commands are built from the command type's own fields, so the code goes
through the catalog, not through each command:

- a command with `start`/`end` (candles, option bars, chains) gets one command per run of
  consecutive sessions with the same symbols; candles start `candle_days` before the first session,
  as `daily` does (derived metrics need 60 sessions of closes);
- a command over `sessions` (flow, derived, briefing) gets one command per set of symbols, with
  every session of that set: its handler computes them oldest first, so a session's derived
  metrics see the session before.

Every command is `triggered_by = dagster` with the Dagster run id in `orchestrator_run_id` (so the
run ledger records both, and the workers do not chain the next stage: Dagster runs it as a step of
its own). The command id derives from the Dagster run, the job and the work, so a step retried
within the same Dagster run sends the same commands again, which the ledger and the run claim drop:
no work is done twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import msgspec

from contracts import Command, IngestCandles, RunDaily
from contracts.base import ORCHESTRATORS
from contracts.catalog import Job
from oh_dagster.partitions import contiguous_runs

TRIGGERED_BY = "dagster"
assert TRIGGERED_BY in ORCHESTRATORS, "the workers would chain after Dagster's runs"
_ID_NAMESPACE = uuid.UUID("8f3c2b1a-6d4e-4f5a-9b7c-0e1d2c3b4a59")


def default_of(command: type[Command], field: str) -> Any:
    """A command field's default (one place for it: the command type)."""
    return next(f.default for f in msgspec.structs.fields(command) if f.name == field)


@dataclass(frozen=True)
class Settings:
    """What a step adds to its partitions: the provider, and the candle look-back `daily` uses."""

    provider: str = "sim"
    fallback: str | None = None
    candle_days: int = default_of(RunDaily, "candle_days")


def _command(job: Job, dagster_run_id: str, settings: Settings, **work: Any) -> Command:
    fields = {f.name for f in msgspec.structs.fields(job.command)}
    extra = {name: getattr(settings, name) for name in ("provider", "fallback") if name in fields}
    key = ":".join(f"{name}={value}" for name, value in sorted(work.items()))
    command_id = uuid.uuid5(_ID_NAMESPACE, f"{dagster_run_id}:{job.name}:{key}").hex
    return job.command(  # type: ignore[call-arg]
        id=command_id, triggered_by=TRIGGERED_BY, orchestrator_run_id=dagster_run_id, **work, **extra,
    )


def commands_for(job: Job, partitions: dict[date, list[str]], dagster_run_id: str, settings: Settings) -> list[Command]:
    """The commands that materialize `partitions` ({session: symbols}) of the job's asset, in the order to run them."""
    fields = {f.name for f in msgspec.structs.fields(job.command)}
    days = sorted(partitions)
    if {"start", "end"} <= fields:
        by_symbols: dict[tuple[str, ...], list[date]] = {}
        for day in days:
            by_symbols.setdefault(tuple(partitions[day]), []).append(day)
        commands = []
        for symbols, group in by_symbols.items():
            for run in contiguous_runs(group):
                start = run[0] - timedelta(days=settings.candle_days) if job.command is IngestCandles else run[0]
                commands.append(_command(job, dagster_run_id, settings, symbols=list(symbols), start=start, end=run[-1]))
        return commands
    if "sessions" in fields:
        grouped: dict[tuple[str, ...], list[date]] = {}
        for day in days:
            grouped.setdefault(tuple(partitions[day]), []).append(day)
        return [_command(job, dagster_run_id, settings, symbols=list(symbols), sessions=group)
                for symbols, group in grouped.items()]
    raise ValueError(f"{job.command.__name__} has neither start/end nor sessions: no way to give it sessions")
