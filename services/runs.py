"""A job's run, independent of how it reaches the ledger: the handler contract and the run lifecycle.

A job is a handler `handler(command, run)`: it reads through `run.query`, emits its rows with
`run.emit`, records partitions that failed or had nothing to do, and calls `run.check_stop()`
between partitions. It never sees a socket. What a run reaches outside itself is a `Bus`:

- the worker runtime (services/runtime.py) gives it the ZeroMQ one: a producer that keeps every
  message until the ledger acknowledges it, and the ledger's query endpoint;
- the in-process stack (services/stack.py) gives it the ledger's projections in this process, so a
  handler is tested without starting anything; one scenario suite runs on both
  (tests/scenarios), so the fake cannot drift from the real thing.

`execute` is the lifecycle every run follows on either: claim (a run that already finished is not
run again, a command past its time to live is dropped), RunStarted, flush, the handler, flush,
RunFinished with the outcome. Every event of the run is durable before RunFinished says it is done.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from bus.home import Home
from bus.producer import EventRejected
from contracts import AssetFailed, Command, Message, RunFinished, RunStarted, run_id_for, utc_now
from contracts.catalog import job_of
from oh import __version__
from oh.adapters.base import ProviderError
from oh.domain.errors import one_line, stack_hash

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


def command_ttl_seconds() -> float:
    """OH_COMMAND_TTL (3600): how old a command that never started may be and still run. Read when used, never at import."""
    return float(os.environ.get("OH_COMMAND_TTL", "3600"))


class Bus(Protocol):
    """What a run, or a reaction to a committed event, reaches outside itself."""

    home: Home
    rejected: list[tuple[str, str]]  # (id, reason) of every message the ledger refused so far

    def send(self, messages: Sequence[Message]) -> None:
        """Send messages to the ledger, in order; each is kept until journaled."""

    def flush(self) -> None:
        """Return once everything sent so far is journaled."""

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Read the warehouse (read-only SQL)."""

    def stopping(self) -> bool:
        """True once the process was asked to stop."""


class Shutdown(Exception):
    """Raised inside a job when the worker was asked to stop; the run is resumed after restart."""


class RunFailed(Exception):
    """A job finished but some of its partitions failed; `cause` is the first underlying error."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause


def raise_if_partitions_failed(failures: list[tuple[str, BaseException]], total: int, noun: str) -> None:
    """End a run `failed` when some partitions failed, naming the first five; the first error is the cause."""
    if not failures:
        return
    names = ", ".join(f"{p} ({type(e).__name__}: {e})" for p, e in failures[:5])
    more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
    raise RunFailed(f"{len(failures)} of {total} {noun} failed: {names}{more}", failures[0][1])


class RunContext:
    """What a job sees of its run: its id, its reads, its emits, and partition bookkeeping."""

    def __init__(self, bus: Bus, run_id: str, job_name: str) -> None:
        self.bus = bus
        self.run_id = run_id
        self.job_name = job_name

    @property
    def home(self) -> Home:
        """The installation the run works in (config files, briefings)."""
        return self.bus.home

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Read the warehouse through the ledger."""
        return self.bus.query(sql, params)

    def emit(self, event: Message) -> None:
        """Send an event belonging to this run (kept until the ledger acknowledges it)."""
        self.bus.send([event])

    def emit_many(self, events: Sequence[Message]) -> None:
        """Send events belonging to this run at once: one frame, which the ledger journals and commits together
        (a job with many small partitions sends each batch of them so, not one round of bookkeeping per event)."""
        if events:
            self.bus.send(events)

    def send_commands(self, commands: Sequence[Command]) -> None:
        """Send commands other workers run (a job that starts jobs), and wait until they are journaled."""
        self.bus.send(commands)
        self.bus.flush()

    def asset_skipped(self, asset_key: str, partition_key: str, reason: str, started_at: datetime) -> None:
        """Record that one partition had nothing to do (it does not fail the run)."""
        log.info("%s %s %s skipped: %s", self.job_name, asset_key, partition_key, reason)
        self.emit(
            AssetFailed(
                run_id=self.run_id, asset_key=asset_key, partition_key=partition_key, status="skipped",
                error_type="Skipped", error_message=reason, started_at=started_at, ended_at=utc_now(),
            )
        )

    def asset_failed(self, asset_key: str, partition_key: str, exc: BaseException, started_at: datetime) -> None:
        """Record that one partition failed; the job goes on with the others."""
        log.warning("%s %s %s failed: %s", self.job_name, asset_key, partition_key, one_line(exc))
        self.emit(
            AssetFailed(
                run_id=self.run_id, asset_key=asset_key, partition_key=partition_key,
                error_type=type(exc).__name__, error_message=one_line(exc),
                started_at=started_at, ended_at=utc_now(),
            )
        )

    def check_stop(self) -> None:
        """Raise Shutdown if the process has been asked to stop (call between partitions)."""
        if self.bus.stopping():
            raise Shutdown()


Handler = Callable[[Any, RunContext], None]
Reaction = Callable[[Any, Bus], None]


def each_symbol_session(
    run: RunContext,
    symbols: list[str],
    days: list[Any],
    asset_key: str,
    fetch: Callable[[str, Any], Any],
    event: Callable[[str, Any, Any, datetime], Message],
    noun: str,
) -> None:
    """The loop of a job partitioned by `SYMBOL|DATE`: fetch each partition and emit its event; a partition
    that fails is recorded as a failed asset and the others go on; the run fails at the end, naming them."""
    failures: list[tuple[str, BaseException]] = []
    for symbol in symbols:
        for day in days:
            run.check_stop()
            started = utc_now()
            partition = f"{symbol}|{day}"
            try:
                table = fetch(symbol, day)
            except Exception as exc:  # one partition's failure never stops the others
                run.asset_failed(asset_key, partition, exc, started)
                failures.append((partition, exc))
                continue
            run.emit(event(symbol, day, table, started))
    raise_if_partitions_failed(failures, len(symbols) * len(days), noun)


def finished_status(bus: Bus, run_id: str) -> str | None:
    """The status the run ledger holds for `run_id` (None: never started)."""
    table = bus.query("SELECT status FROM meta.ingestion_runs WHERE run_id = ?", [run_id])
    return table.column(0)[0].as_py() if table.num_rows else None


def execute(bus: Bus, command: Command, handler: Handler, service: str) -> str | None:
    """Claim and run `command` as a recorded run; its final status, or None when it was not run.

    Not run: a run that already finished (a redelivered command), or a command older than
    `command_ttl_seconds()` that never started. A run left `started` by a crash is run again: every
    job is idempotent. Shutdown propagates (the run resumes after restart); any other error ends
    the run `failed` with the error, and the process lives on.
    """
    job_name = job_of(command).name
    run_id = run_id_for(command.id, job_name)
    status = finished_status(bus, run_id)
    if status in ("success", "failed"):
        log.info("skip %s: run %s already %s", job_name, run_id, status)
        return None
    age = (utc_now() - command.ts).total_seconds()
    ttl = command_ttl_seconds()
    if status is None and age > ttl:
        log.warning("skip %s command %s: %.0fs old, past the %.0fs TTL", job_name, command.id, age, ttl)
        return None
    args = msgspec.to_builtins(command)
    for key in ("id", "ts", "v", "type", "triggered_by", "parent_run_id"):
        args.pop(key, None)
    clock = time.perf_counter()
    bus.send([
        RunStarted(
            run_id=run_id, job_name=job_name, service=service, command_id=command.id,
            parent_run_id=getattr(command, "parent_run_id", None),
            triggered_by=command.triggered_by, provider=args.get("provider"),
            args_json=json.dumps(args, sort_keys=True, default=str), app_version=__version__,
            git_sha=os.environ.get("OH_GIT_SHA"), started_at=utc_now(),
        )
    ])
    bus.flush()  # the run exists before any of its asset events, even across a ledger crash
    rejected_before = len(bus.rejected)
    error: BaseException | None = None
    try:
        handler(command, RunContext(bus, run_id, job_name))
    except Shutdown:
        raise
    except ProviderError as exc:  # a trader's words already (credentials, entitlement): no traceback
        error = exc
        log.error("%s run %s failed: %s", job_name, run_id, one_line(exc))
    except Exception as exc:  # the run records it; the process lives on
        error = exc
        log.exception("%s run %s failed", job_name, run_id)
    bus.flush()  # every asset event is durable before the run says it is done
    if error is None and len(bus.rejected) > rejected_before:
        reason = bus.rejected[rejected_before][1]
        error = RunFailed(f"the ledger rejected {len(bus.rejected) - rejected_before} events: {reason}",
                          EventRejected(reason))
    cause = error.cause if isinstance(error, RunFailed) else error
    status = "failed" if error else "success"
    bus.send([
        RunFinished(
            run_id=run_id, job_name=job_name, status=status, ended_at=utc_now(),
            duration_ms=int((time.perf_counter() - clock) * 1000),
            error_type=type(cause).__name__ if cause else None,
            error_message=one_line(error) if error else None,
            error_stack_hash=stack_hash(cause) if cause else None,
        )
    ])
    bus.flush()
    log.info("%s run %s %s", job_name, run_id, "failed" if error else "succeeded")
    return status
