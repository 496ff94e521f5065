"""The two ways a Dagster step runs its commands; either way the ledger stays the only writer.

- `bus` (default): the step sends each command through the ledger, as `oh emit ... --wait` does,
  and waits for its run: the supervisord workers do the work. A step only waits, so it is cheap.
- `inline`: the step runs the job's handler in its own process, through the same run lifecycle as
  a worker (`services.runs.execute` over the ZeroMQ `SocketBus`: claim, RunStarted, handler,
  RunFinished), and the events go to the ledger. So Dagster's executor decides where the work runs:
  its multiprocess executor locally, its docker/k8s/celery executors on a cluster, without code
  changes. The step heartbeats as service `dagster` while it runs, so the ledger's watchdog does not
  take its runs for abandoned.

Commands run one after another, each once its run has ended and is visible in the warehouse, so a
session's derived metrics read the session before. Every run is recorded like a CLI run, with
`triggered_by = dagster` and the Dagster run id in `args_json`. A run that fails does not stop the
commands after it (as a worker goes on with the other partitions); the step reports it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bus.home import Home
from contracts import Command
from contracts.catalog import job_of
from services.pipeline import Step, step_of, wait_for_run
from services.runs import Handler, execute
from services.runtime import Heartbeater, SocketBus
from services.stack import WORKERS

if TYPE_CHECKING:
    import pyarrow as pa

MODES = ("bus", "inline")
SERVICE = "dagster"  # RunStarted.service and the heartbeat name of inline runs


class StepFailed(Exception):
    """A step could not run its commands (no ledger, no worker, a refused command); the message is one line."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait: for the ledger to answer, for a worker to start a run, for a run to end."""

    ledger: float = 10.0
    start: float = 600.0
    run: float = 7200.0


class LedgerSession:
    """One step's connection to the ledger: `query` reads the warehouse, `run` runs commands (`bus` or `inline`).

    Use it as a context manager: entering checks that the ledger answers (and, inline, starts the
    heartbeat); leaving stops the heartbeat and closes the sockets.
    """

    def __init__(self, home: Home, mode: str, timeouts: Timeouts,
                 log: logging.Logger | logging.LoggerAdapter | None = None) -> None:  # type: ignore[type-arg]
        if mode not in MODES:
            raise StepFailed(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.home, self.mode, self.timeouts = home, mode, timeouts
        self.log = log or logging.getLogger(__name__)
        self.bus: SocketBus | None = None
        self.heartbeat: Heartbeater | None = None

    def __enter__(self) -> LedgerSession:
        self.bus = SocketBus(self.home)
        try:
            if not self.bus.control.answers(timeout=self.timeouts.ledger):
                where = self.home.endpoint("control")
                if where.startswith("tcp://"):  # OH_BUS: a step host reaching the ledger over the CURVE bus
                    raise StepFailed(f"the ledger at {where} does not answer: is it up, listening on tcp, and is "
                                     "this host's client key authorized there (`oh keys allow`)?")
                raise StepFailed(f"the ledger of {self.home.root} does not answer: start the stack first (`oh up`)")
            if self.mode == "inline":
                self.heartbeat = _heartbeat(self.home, self.bus, self.timeouts.ledger)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stopped.set()
            self.heartbeat = None
        if self.bus is not None:
            self.bus.close(SERVICE)
            self.bus = None

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Read the warehouse through the ledger."""
        assert self.bus is not None, "use LedgerSession as a context manager"
        return self.bus.query(sql, params)

    def run(self, commands: Sequence[Command]) -> list[Step]:
        """Run `commands` in order, each to its end (its outcome committed); the runs they became."""
        assert self.bus is not None, "use LedgerSession as a context manager"
        steps = []
        for command in commands:
            step = step_of(command)
            started = time.monotonic()
            if self.mode == "bus":
                _send(self.bus, command, self.timeouts.ledger)
            else:
                execute(self.bus, command, _handler(command), SERVICE)
            try:
                status = wait_for_run(self.bus.query, step, self.timeouts.start, self.timeouts.run)
            except TimeoutError as exc:
                raise StepFailed(str(exc)) from None
            self.log.info(f"{step.job} {_work(command)}: run {step.run_id} {status} after "
                          f"{time.monotonic() - started:.1f}s ({self.mode})")
            steps.append(step)
        return steps


def _send(bus: SocketBus, command: Command, timeout: float) -> None:
    """Send one command through the ledger and wait until it is journaled (as `oh emit` does)."""
    rejected = len(bus.rejected)
    bus.send([command])
    try:
        bus.producer.flush(timeout=timeout)
    except TimeoutError:
        raise StepFailed(f"the ledger did not acknowledge {type(command).__name__} within {timeout:g}s") from None
    if len(bus.rejected) > rejected:
        raise StepFailed(f"the ledger rejected {type(command).__name__}: {bus.rejected[rejected][1]}")


def _handler(command: Command) -> Handler:
    """The job's handler, as its worker serves it."""
    return WORKERS[job_of(command).worker][0][type(command)]


def _work(command: Command) -> str:
    """What a command covers, for the step's log: its sessions and symbols."""
    if hasattr(command, "start"):
        days = f"{command.start}..{command.end}"  # type: ignore[attr-defined]
    else:
        sessions = command.days() if hasattr(command, "days") else []  # type: ignore[attr-defined]
        days = f"{sessions[0]}..{sessions[-1]}" if len(sessions) > 1 else "".join(map(str, sessions))
    return f"{days} {','.join(getattr(command, 'symbols', None) or [])}".strip()


def _heartbeat(home: Home, bus: SocketBus, timeout: float) -> Heartbeater:
    """Start beating as SERVICE and wait until the ledger has heard this process (before its first RunStarted)."""
    heartbeat = Heartbeater(home, SERVICE)
    heartbeat.state = "running"
    heartbeat.start()
    deadline = time.monotonic() + timeout
    while bus.control.status(timeout=timeout).heartbeats.get(SERVICE, {}).get("pid") != os.getpid():
        if time.monotonic() > deadline:
            heartbeat.stopped.set()
            raise StepFailed(f"the ledger did not hear this step's heartbeat within {timeout:g}s")
        time.sleep(0.05)
    return heartbeat
