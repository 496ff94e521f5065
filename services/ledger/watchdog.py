"""Closes every run whose RunFinished can no longer come, as `abandoned` with the reason.

The ledger knows every open run (from the committed RunStarted/RunFinished events, and from the
warehouse on start) and every service's latest heartbeat, which says which run the service is
executing (`Heartbeat.run_id`). A run is abandoned, by a RunFinished(status=abandoned) the ledger
journals itself, when for `timeout` seconds either

- its service sent no heartbeat (`WorkerLost`: the worker died or is not running), or
- its service is alive but is not executing it (`RunLost`): the worker restarted and its command
  was lost, or the journal lost the tail that held the command or the RunFinished.

`now` is when the ledger last read its ingress to the end (`Ledger._caught_up_at`): beats sent after
that may be waiting unread behind a long commit, so they cannot count as silence.

A heartbeat without a run id (a worker from before run ids) in state `running` counts as executing
the run, so an old worker is never wrongly abandoned; it is judged by the first rule only. If the
worker comes back with the command, it runs it again (the run is started anew).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts import Message, RunFinished, RunStarted, utc_now
from contracts.catalog import SERVICE_OF_JOB


@dataclass
class OpenRun:
    """A run still `started`: its job, who runs it, since when, and when its service was last seen running it."""

    job_name: str
    service: str
    started_at: datetime
    seen_running: float


def _executing(beat: dict[str, Any], run_id: str) -> bool:
    """Does this heartbeat say its service is executing `run_id`?"""
    reported = beat.get("run_id")
    if reported is None:
        return beat.get("state") == "running"
    return reported == run_id


class RunWatchdog:
    """Open runs by id, and the rules that abandon them."""

    def __init__(self, ledger_started_at: float, timeout: float) -> None:
        self.ledger_started_at = ledger_started_at
        self.timeout = timeout
        self.open: dict[str, OpenRun] = {}

    def load(self, runs: list[tuple[str, str, datetime]], now: float | None = None) -> None:
        """Seed from the warehouse on start: (run_id, job_name, naive UTC started_at)."""
        seen = self.ledger_started_at if now is None else now
        for run_id, job_name, started_at in runs:
            self.open[run_id] = OpenRun(job_name, SERVICE_OF_JOB.get(job_name, job_name), started_at.replace(tzinfo=UTC), seen)

    def observe(self, message: Message, now: float | None = None) -> None:
        """Track a committed event: RunStarted opens a run, RunFinished closes it."""
        if isinstance(message, RunStarted):
            service = message.service or SERVICE_OF_JOB.get(message.job_name, message.job_name)
            seen = self.ledger_started_at if now is None else now
            self.open[message.run_id] = OpenRun(message.job_name, service, message.started_at, max(seen, self.ledger_started_at))
        elif isinstance(message, RunFinished):
            self.open.pop(message.run_id, None)

    def abandoned(self, heartbeats: dict[str, dict[str, Any]], now: float) -> list[RunFinished]:
        """RunFinished(abandoned) for each open run past the timeout under either rule."""
        finished = []
        for run_id, run in list(self.open.items()):
            beat = heartbeats.get(run.service)
            last_seen = beat["last_seen"] if beat else self.ledger_started_at
            silent = now - last_seen
            if silent >= self.timeout:
                error_type = "WorkerLost"
                message = f"no heartbeat from {run.service} for {silent:.0f}s: the worker died mid-run"
            else:
                if beat is None:  # not heard from yet since the ledger started: give it the timeout
                    continue
                if _executing(beat, run_id):
                    run.seen_running = max(run.seen_running, last_seen)
                    continue
                idle = now - run.seen_running
                if idle < self.timeout:
                    continue
                doing = f"run {beat['run_id']}" if beat.get("run_id") else str(beat.get("state", "idle"))
                error_type = "RunLost"
                message = (f"{run.service} is alive (pid {beat.get('pid')}, {doing}) but has not been running this run "
                           f"for {idle:.0f}s: its command or its RunFinished was lost (a worker restart, or a lost "
                           "journal tail)")
            ended = utc_now()
            finished.append(
                RunFinished(
                    run_id=run_id, job_name=run.job_name, status="abandoned", ended_at=ended,
                    duration_ms=max(int((ended - run.started_at).total_seconds() * 1000), 0),
                    error_type=error_type, error_message=message, error_stack_hash=None,
                )
            )
            del self.open[run_id]
        return finished
