"""Two ways to run a job: in-process (services/stack.py) and on the real bus (a ledger and every worker as
processes on real sockets). The scenario suite runs each scenario on both, so the in-process fake
cannot drift from the real thing.

Both are driven the same way: `run(command)` sends one command and waits until its run, and every
run it chains (flow after a snapshot, ...), have finished; `outcome(command)` says how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from bus.control_client import ControlClient
from bus.home import Home
from bus.producer import Producer
from contracts import Command, run_id_for
from contracts.base import ORCHESTRATORS
from contracts.catalog import job_of
from devtools.processes import Service, wait_for_heartbeat, wait_for_ledger
from services.pipeline import follow_chain, step_of, wait_for_run
from services.stack import WORKERS, InProcessStack


@dataclass(frozen=True)
class Outcome:
    """How one command's run ended, with its partitions (asset key, partition, status), sorted."""

    status: str | None
    error_message: str | None
    assets: tuple[tuple[str, str, str], ...]


class Harness(Protocol):
    name: str
    home: Home

    def run(self, command: Command) -> Outcome: ...

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table: ...


def outcome_of(harness: Harness, command: Command) -> Outcome:
    """The run ledger's record of the run `command` became."""
    run_id = run_id_for(command.id, job_of(command).name)
    runs = harness.query("SELECT status, error_message FROM meta.ingestion_runs WHERE run_id = ?", [run_id]).to_pylist()
    assets = harness.query(
        "SELECT asset_key, partition_key, status FROM meta.ingestion_run_assets WHERE run_id = ? ORDER BY ALL", [run_id]
    ).to_pylist()
    return Outcome(
        runs[0]["status"] if runs else None, runs[0]["error_message"] if runs else None,
        tuple((a["asset_key"], a["partition_key"], a["status"]) for a in assets),
    )


class InProcessHarness:
    """Every worker's handlers on the in-process ledger."""

    name = "inprocess"

    def __init__(self, home: Home) -> None:
        self.home = home
        self.stack = InProcessStack(home)

    def run(self, command: Command) -> Outcome:
        self.stack.run(command)
        return outcome_of(self, command)

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        return self.stack.query(sql, params)

    def close(self) -> None:
        self.stack.close()


class BusHarness:
    """The ledger and every worker of the in-process stack, as real processes on real sockets."""

    name = "bus"

    def __init__(self, home: Home) -> None:
        self.home = home
        self.ledger = Service(home, "ledger").start()
        wait_for_ledger(home)
        self.workers = [Service(home, name).start() for name in WORKERS]
        for name in WORKERS:
            wait_for_heartbeat(home, name)
        self.client = ControlClient(home, timeout=30)
        self.producer = Producer(home)

    def run(self, command: Command, timeout: float = 180.0) -> Outcome:
        self.producer.send(command)
        self.producer.flush(timeout=30)
        step = step_of(command)
        if command.triggered_by in ORCHESTRATORS:  # its orchestrator runs each stage itself: nothing chains
            wait_for_run(self.query, step, timeout, timeout)
        else:
            follow_chain(self.query, step, timeout, timeout)  # the run and every run chained after it
        return outcome_of(self, command)

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        return self.client.query(sql, params)

    def close(self) -> None:
        self.producer.close()
        self.client.close()
        for service in (*self.workers, self.ledger):
            service.stop()
