"""The pipeline: the chain of steps, sending the next step after an upstream run, and following a
chain of runs to its end. (Loading stored option chains is services/snapshots.py.)

snapshot_options -> compute_flow -> compute_derived -> build_briefing: each step is sent by the
worker of the next one when the upstream run finishes, as ONE command covering every session the
upstream run stored (a range stays a range down the chain), with a command id derived from the
upstream run. So the run id of every later step is known in advance, which is how `daily` and
`oh replay --wait` follow a chain without guessing.
A run an orchestrator triggered (`triggered_by` in contracts.base.ORCHESTRATORS: Dagster) is not
chained: the orchestrator sends each stage itself, as a step of its own. Nor is a flow run over a
window of more than one session: no later stage reads those rows (derived metrics read the chains, the
briefing one-session flow), so its successors would only recompute the rows they already hold.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa

from bus.control_client import QueryError
from contracts import Command, RunFinished, run_id_for
from contracts.base import ORCHESTRATORS
from contracts.catalog import JOB_BY_NAME, Job, job_of, stage_after
from services.runs import Bus

# The namespace of the command ids each stage derives from its upstream run (stable: ids in journals).
NAMESPACE_OF_STAGE = {
    "compute_flow": uuid.UUID("9d7c1a4e-2b6f-4c3d-8e5a-7f0b1c2d3e4f"),
    "compute_derived": uuid.UUID("5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"),
    "build_briefing": uuid.UUID("2f8e4d1c-6b3a-4e7d-9c0f-5a1b2c3d4e5f"),
}
POLL_SECONDS = 0.05  # one ~1.5 ms status query per poll while a daily or replay waits, at first ...
POLL_MAX_SECONDS = 0.5  # ... then every elapsed/40 s up to this: a long step is polled ~1/s, not 20/s
TRANSIENT_QUERY_ERRORS = ("busy", "timeout", "interrupted")  # a poll that failed so is simply retried
Read = Callable[[str, list[Any]], pa.Table]
# The runs (`r`, a row of meta.ingestion_runs) whose outputs a later stage reads: every one but a flow over more than
# one session per window (its args_json holds the command's `window`).
CHAINS_ON = ("NOT (r.job_name = 'compute_flow' "
             "AND coalesce(TRY_CAST(json_extract_string(r.args_json, '$.window') AS INTEGER), 1) > 1)")


@dataclass(frozen=True)
class Step:
    """One run of a chain: its job and its run id (known before the run exists)."""

    job: str
    run_id: str


def step_of(command: Command) -> Step:
    """The run a command becomes."""
    job = job_of(command).name
    return Step(job, run_id_for(command.id, job))


def _next_command_id(stage: str, upstream_run_id: str) -> str:
    return uuid.uuid5(NAMESPACE_OF_STAGE[stage], f"{upstream_run_id}:sessions").hex


def next_step(upstream: Step) -> tuple[str, Step] | None:
    """The asset whose stored partitions make the chain go on after `upstream`, and the step it sends."""
    stage = stage_after(upstream.job)
    if stage is None:
        return None
    asset_key = JOB_BY_NAME[upstream.job].asset_key
    assert asset_key is not None, f"{upstream.job} chains {stage.name} but writes no asset"
    return asset_key, Step(stage.name, run_id_for(_next_command_id(stage.name, upstream.run_id), stage.name))


def wait_for_run(read: Read, step: Step, start_timeout: float, run_timeout: float,
                 check: Callable[[], None] = lambda: None) -> str:
    """Wait for `step` to end and return its status (success, failed or abandoned).

    Raises TimeoutError when no worker starts it within `start_timeout` seconds (its worker is
    probably down) or it runs longer than `run_timeout`; `check` is called between polls. The polls
    thin out as the wait grows (POLL_SECONDS to POLL_MAX_SECONDS), so a long chain of a wide daily
    does not keep the ledger's query threads busy; a poll the ledger could not answer in time (busy,
    past its budget) is retried, never taken for the step's outcome.
    """
    sent = time.monotonic()
    started: float | None = None
    status: object = None
    while True:
        check()
        try:
            table = read("SELECT status FROM meta.ingestion_runs WHERE run_id = ?", [step.run_id])
            status = table.column(0)[0].as_py() if table.num_rows else None
        except QueryError as exc:
            if exc.kind not in TRANSIENT_QUERY_ERRORS:
                raise
        if status not in (None, "started"):
            return str(status)
        now = time.monotonic()
        if status == "started" and started is None:
            started = now
        if started is None and now - sent > start_timeout:
            raise TimeoutError(f"{step.job} did not start within {start_timeout:g}s: is its worker running? (`oh status`)")
        if started is not None and now - started > run_timeout:
            raise TimeoutError(f"{step.job} run {step.run_id} still running after {run_timeout:g}s")
        time.sleep(min(max(POLL_SECONDS, (now - sent) / 40), POLL_MAX_SECONDS))


def follow_chain(read: Read, first: Step, start_timeout: float, run_timeout: float,
                 check: Callable[[], None] = lambda: None) -> dict[Step, str]:
    """Wait for `first` and every step chained after it; the final status of each.

    The chain ends where a run stored (or skipped) nothing, or wrote what no later stage reads (CHAINS_ON),
    since its successor is then never sent.
    """
    outcomes: dict[Step, str] = {}
    step: Step | None = first
    while step is not None:
        outcomes[step] = wait_for_run(read, step, start_timeout, run_timeout, check)
        following = next_step(step)
        if following is None:
            break
        asset_key, successor = following
        stored = read(
            "SELECT count(*) FROM meta.ingestion_run_assets a JOIN meta.ingestion_runs r USING (run_id) "
            f"WHERE a.run_id = ? AND a.asset_key = ? AND a.status IN ('success', 'skipped') AND {CHAINS_ON}",
            [step.run_id, asset_key],
        )
        step = successor if stored.column(0)[0].as_py() else None
    return outcomes

def chained_partitions(bus: Bus, run_id: str, job_name: str, asset_key: str) -> dict[date, list[str]]:
    """Symbols by session that an upstream run stored (or skipped), to chain the next step on.

    None for a run an orchestrator triggered (contracts.base.ORCHESTRATORS): it runs each stage as a
    step of its own, so chaining here too would run every later stage twice. None, too, for a run whose
    rows no later stage reads (CHAINS_ON: a multi-session flow window).
    """
    stored = bus.query(
        "SELECT a.partition_key FROM meta.ingestion_run_assets a JOIN meta.ingestion_runs r USING (run_id) "
        "WHERE a.run_id = ? AND r.job_name = ? AND a.asset_key = ? AND a.status IN ('success', 'skipped') "
        f"AND NOT list_contains(?::VARCHAR[], r.triggered_by) AND {CHAINS_ON} ORDER BY 1",
        [run_id, job_name, asset_key, list(ORCHESTRATORS)],
    )
    by_day: dict[date, list[str]] = {}
    for key in stored.column(0).to_pylist():
        symbol, day = key.split("|")
        by_day.setdefault(date.fromisoformat(day), []).append(symbol)
    return by_day


def send_next_step(bus: Bus, upstream: RunFinished, stage: Job) -> None:
    """Send `stage` after a finished run of the job it follows: one command for every session the run covered.

    A run of another job is ignored without a query (RunFinished carries its job name; one journaled
    before it did is looked up). The command covers the symbols the run stored (or skipped) on any of
    its sessions, for each of those sessions (a symbol missing on one of them is skipped there). Its
    id derives from the upstream run, so a redelivered RunFinished sends a duplicate the ledger drops;
    it carries `parent_run_id` and `triggered_by = pipeline`.
    """
    assert stage.after is not None, f"{stage.name} is not a pipeline stage"
    if upstream.job_name is not None and upstream.job_name != stage.after:
        return
    asset_key = JOB_BY_NAME[stage.after].asset_key
    assert asset_key is not None, f"{stage.after} chains {stage.name} but writes no asset"
    by_day = chained_partitions(bus, upstream.run_id, stage.after, asset_key)
    if not by_day:
        return
    symbols = sorted({symbol for day_symbols in by_day.values() for symbol in day_symbols})
    bus.send([
        stage.command(  # type: ignore[call-arg]
            id=_next_command_id(stage.name, upstream.run_id), symbols=symbols, sessions=sorted(by_day),
            parent_run_id=upstream.run_id, triggered_by="pipeline",
        )
    ])
    bus.flush()
