"""Marks a run `abandoned` when the worker that runs it stops sending heartbeats.

Without this, a run whose worker was killed would stay `started` forever. The ledger knows every
open run (from the committed RunStarted/RunFinished events) and every service's last heartbeat;
a run whose service has been silent for `timeout` seconds gets a RunFinished(status=abandoned)
journaled by the ledger itself. If the worker comes back, it runs the command again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts import Message, RunFinished, RunStarted, utc_now
from contracts.catalog import SERVICE_OF_JOB


class RunWatchdog:
    """Open runs by id, and the rule that abandons them."""

    def __init__(self, ledger_started_at: float, timeout: float) -> None:
        self.ledger_started_at = ledger_started_at
        self.timeout = timeout
        self.open: dict[str, tuple[str, str, datetime]] = {}  # run_id -> (job, service, started_at aware UTC)

    def load(self, runs: list[tuple[str, str, datetime]]) -> None:
        """Seed from the warehouse on start: (run_id, job_name, naive UTC started_at)."""
        for run_id, job_name, started_at in runs:
            self.open[run_id] = (job_name, SERVICE_OF_JOB.get(job_name, job_name), started_at.replace(tzinfo=UTC))

    def observe(self, message: Message) -> None:
        """Track a committed event: RunStarted opens a run, RunFinished closes it."""
        if isinstance(message, RunStarted):
            service = message.service or SERVICE_OF_JOB.get(message.job_name, message.job_name)
            self.open[message.run_id] = (message.job_name, service, message.started_at)
        elif isinstance(message, RunFinished):
            self.open.pop(message.run_id, None)

    def abandoned(self, heartbeats: dict[str, dict[str, Any]], now: float) -> list[RunFinished]:
        """RunFinished(abandoned) for each open run whose service has been silent past the timeout."""
        finished = []
        for run_id, (job_name, service, started_at) in list(self.open.items()):
            beat = heartbeats.get(service)
            last_seen = beat["last_seen"] if beat else self.ledger_started_at
            silent = now - last_seen
            if silent < self.timeout:
                continue
            ended = utc_now()
            finished.append(
                RunFinished(
                    run_id=run_id, job_name=job_name, status="abandoned", ended_at=ended,
                    duration_ms=max(int((ended - started_at).total_seconds() * 1000), 0),
                    error_type="WorkerLost",
                    error_message=f"no heartbeat from {service} for {silent:.0f}s: the worker died mid-run",
                    error_stack_hash=None,
                )
            )
            del self.open[run_id]
        return finished
