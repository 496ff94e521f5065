"""The pipeline: the chain of steps, sending the next step after an upstream run, and following a
chain of runs to its end. (Loading stored option chains is services/snapshots.py.)

snapshot_options -> compute_flow -> compute_derived -> build_briefing: each step is sent by the
worker of the next one when the upstream run finishes, as ONE command covering every session the
upstream run stored (a range stays a range down the chain), with a command id derived from the
upstream run. So the run id of every later step is known in advance, which is how `daily` and
`oh replay --wait` follow a chain without guessing.
A `daily` sends the chain's first step (snapshot_options) beside the candles and the option bars; a stage that
reads, for the same session, an asset another step of that daily writes (`Job.reads` in contracts/catalog.py:
derived reads the day's closes) is sent only once those runs have ended too: by the reaction to whichever ends
last, the stage's upstream run or one of them (`send_next_step`). The daily's command ids derive from its run id
(`daily_command_id`), so the runs a stage waits for are known without a query.
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
from contracts import Command, RunDaily, RunFinished, run_id_for
from contracts.base import ORCHESTRATORS
from contracts.catalog import JOB_BY_NAME, Job, job_of, stage_after
from contracts.events import RUN_ENDED
from services.runs import Bus

# The namespace of the command ids each stage derives from its upstream run (stable: ids in journals).
NAMESPACE_OF_STAGE = {
    "compute_flow": uuid.UUID("9d7c1a4e-2b6f-4c3d-8e5a-7f0b1c2d3e4f"),
    "compute_derived": uuid.UUID("5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"),
    "build_briefing": uuid.UUID("2f8e4d1c-6b3a-4e7d-9c0f-5a1b2c3d4e5f"),
}
# The namespace of the command ids a `daily` sends, and the key of each job's id in it (stable: ids in journals).
DAILY_NAMESPACE = uuid.UUID("0b7d6c1e-52a4-4f0b-9a57-3e2f1d8c4b6a")
DAILY_STEPS = {"ingest_candles": "candles", "ingest_options_bars": "bars", "snapshot_options": "snapshot"}
POLL_SECONDS = 0.05  # one ~1.5 ms status query per poll while a daily or replay waits, at first ...
POLL_MAX_SECONDS = 0.5  # ... then every elapsed/40 s up to this: a long step is polled ~1/s, not 20/s
TRANSIENT_QUERY_ERRORS = ("busy", "timeout", "interrupted")  # a poll that failed so is simply retried
Read = Callable[[str, list[Any]], pa.Table]
DAILY_JOB = job_of(RunDaily).name
# The nearest `daily` among a run's ancestors (parent_run_id up to 8 levels: a chain is 4 long).
DAILY_OF_SQL = """
WITH RECURSIVE up(run_id, parent_run_id, job_name, depth) AS (
  SELECT run_id, parent_run_id, job_name, 0 FROM meta.ingestion_runs WHERE run_id = ?
  UNION ALL
  SELECT r.run_id, r.parent_run_id, r.job_name, up.depth + 1 FROM meta.ingestion_runs r JOIN up ON r.run_id = up.parent_run_id
  WHERE up.depth < 8)
SELECT run_id FROM up WHERE job_name = ? ORDER BY depth LIMIT 1"""
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


def daily_command_id(daily_run_id: str, job_name: str) -> str:
    """The id of the command of `job_name` a `daily` run sends (one of DAILY_STEPS)."""
    return uuid.uuid5(DAILY_NAMESPACE, f"{daily_run_id}:{DAILY_STEPS[job_name]}").hex


def daily_step(daily_run_id: str, job_name: str) -> Step:
    """The run of `job_name` a `daily` run starts."""
    return Step(job_name, run_id_for(daily_command_id(daily_run_id, job_name), job_name))


def waits_for(stage: Job) -> tuple[str, ...]:
    """The jobs a daily sends whose runs must have ended before `stage` is sent in its chain: those writing an asset
    `stage` reads for the same session (`Job.reads`)."""
    return tuple(job for job in DAILY_STEPS if JOB_BY_NAME[job].asset_key in stage.reads)


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

    In a daily's chain, `stage` also waits for the daily's runs it reads from (`waits_for`: derived, the
    candles): the end of the upstream run sends it if they have ended, else the end of the last of them does
    (`upstream` is then one of them). Each reaction sees every run that ended before its own event, so the
    later of the two always sends it; when both do, it is the same command id, a duplicate the ledger drops.
    """
    assert stage.after is not None, f"{stage.name} is not a pipeline stage"
    gates = waits_for(stage)
    job = upstream.job_name if upstream.job_name is not None else _job_of_run(bus, upstream.run_id)
    if job == stage.after:
        daily = _daily_of(bus, upstream.run_id) if gates else None
        if daily is not None and not _ended(bus, [daily_step(daily, gate) for gate in gates]):
            return  # sent when the last of them ends
        upstream_run = upstream.run_id
    elif job in gates:
        waiting = _waiting_upstream(bus, upstream.run_id, job, stage, gates)
        if waiting is None:
            return
        upstream_run = waiting.run_id
    else:
        return
    asset_key = JOB_BY_NAME[stage.after].asset_key
    assert asset_key is not None, f"{stage.after} chains {stage.name} but writes no asset"
    by_day = chained_partitions(bus, upstream_run, stage.after, asset_key)
    if not by_day:
        return
    symbols = sorted({symbol for day_symbols in by_day.values() for symbol in day_symbols})
    bus.send([
        stage.command(  # type: ignore[call-arg]
            id=_next_command_id(stage.name, upstream_run), symbols=symbols, sessions=sorted(by_day),
            parent_run_id=upstream_run, triggered_by="pipeline",
        )
    ])
    bus.flush()


def _job_of_run(bus: Bus, run_id: str) -> str | None:
    table = bus.query("SELECT job_name FROM meta.ingestion_runs WHERE run_id = ?", [run_id])
    return table.column(0)[0].as_py() if table.num_rows else None


def _daily_of(bus: Bus, run_id: str) -> str | None:
    """The `daily` run whose chain `run_id` is in (its nearest ancestor of that job), if any."""
    table = bus.query(DAILY_OF_SQL, [run_id, DAILY_JOB])
    return table.column(0)[0].as_py() if table.num_rows else None


def _ended(bus: Bus, steps: list[Step]) -> bool:
    """Whether every run of `steps` has ended (whatever its status)."""
    table = bus.query(
        "SELECT count(*) FROM meta.ingestion_runs WHERE list_contains(?::VARCHAR[], run_id) "
        "AND list_contains(?::VARCHAR[], status)", [[step.run_id for step in steps], list(RUN_ENDED)])
    return table.column(0)[0].as_py() == len({step.run_id for step in steps})


def _waiting_upstream(bus: Bus, run_id: str, job: str, stage: Job, gates: tuple[str, ...]) -> Step | None:
    """After `run_id` (a run of `job`, one of `stage`'s gates) ended: the run `stage` follows in the chain of the
    same daily, if it and every gate have ended (`stage` is then due), else None (or if `run_id` is no daily's)."""
    daily = _daily_of(bus, run_id)
    if daily is None or daily_step(daily, job).run_id != run_id:
        return None
    upstream = _daily_chain_step(daily, stage.after)  # type: ignore[arg-type]
    if upstream is None or not _ended(bus, [upstream, *(daily_step(daily, gate) for gate in gates)]):
        return None
    return upstream


def _daily_chain_step(daily_run_id: str, job_name: str) -> Step | None:
    """The run of `job_name` in the chain a daily starts (each step's id follows from the one before)."""
    for first in DAILY_STEPS:
        step: Step | None = daily_step(daily_run_id, first)
        while step is not None and step.job != job_name:
            following = next_step(step)
            step = following[1] if following else None
        if step is not None:
            return step
    return None
