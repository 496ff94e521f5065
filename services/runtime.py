"""The one worker runtime: receive commands, claim them, run them as recorded runs, heartbeat.

A worker keeps its place in the command stream in `OH_HOME/state/<name>.offset`. On start it
catches up from there through the ledger's journal, so a command sent while the worker was down
or restarting is still run. A command whose run already finished is skipped (the claim check),
so a redelivered command never runs twice; a run left `started` by a crash is run again, which
is safe because every job is idempotent.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
import zmq

from bus.codec import encode
from bus.control_client import ControlClient, LedgerUnavailable
from bus.producer import EventRejected, Producer
from bus.subscriber import Subscriber
from contracts import AssetFailed, Command, Event, Heartbeat, Message, RunFinished, RunStarted, run_id_for, utc_now
from oh import __version__
from oh.errors import one_line, stack_hash
from oh.home import Home
from oh.providers import ProviderError
from services import logs

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
COMMAND_TTL_SECONDS = float(os.environ.get("OH_COMMAND_TTL", "3600"))


class Heartbeater(threading.Thread):
    """Sends this process's heartbeat every HEARTBEAT_SECONDS from its own socket.

    A thread of its own, so a job blocked in a slow provider call still looks alive; a killed
    process stops beating, and the ledger marks its open run abandoned. Each beat names the run
    being executed (`run_id`), so the ledger also abandons a run this live worker no longer has.
    """

    def __init__(self, home: Home, service: str) -> None:
        super().__init__(name=f"{service}-heartbeat", daemon=True)
        self.service = service
        self.endpoint = home.endpoint("ingress")
        self.state = "idle"
        self.run_id: str | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, 1)
        sock.connect(self.endpoint)
        try:
            while not self.stopped.is_set():
                try:
                    beat = Heartbeat(service=self.service, pid=os.getpid(), state=self.state, run_id=self.run_id)
                    sock.send(encode(beat), zmq.NOBLOCK)
                except zmq.Again:
                    pass  # no ledger right now
                self.stopped.wait(HEARTBEAT_SECONDS)
        finally:
            sock.close()


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


class RunContext:
    """What a job sees of its run: its id, a way to emit events, and partition failure reporting."""

    def __init__(self, worker: Worker, run_id: str, job_name: str) -> None:
        self.worker = worker
        self.run_id = run_id
        self.job_name = job_name

    def emit(self, event: Message) -> None:
        """Send an event belonging to this run (kept until the ledger acknowledges it)."""
        self.worker.producer.send(event)

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
        """Raise Shutdown if the worker has been asked to stop (call between partitions)."""
        if self.worker.stopping:
            raise Shutdown()


Handler = Callable[[Any, RunContext], None]
EventHandler = Callable[[Any, "Worker"], None]


class Worker:
    """A long-lived process that runs the jobs for a set of command types and reacts to events.

    Command handlers run inside a recorded run. Event handlers (for example checks reacting to
    committed candles) run outside any run and must be idempotent: give the events they emit ids
    derived from the event they react to, so a redelivery is dropped by the ledger.
    """

    def __init__(
        self,
        name: str,
        home: Home,
        handlers: dict[type[Command], tuple[str, Handler]],
        event_handlers: dict[type[Event], EventHandler] | None = None,
    ) -> None:
        self.name = name
        self.home = home.ensure()
        self.handlers = handlers
        self.event_handlers = event_handlers or {}
        self.stopping = False
        self.producer = Producer(home)
        self.control = ControlClient(home)
        self.offset_path = home.state / f"{name}.offset"
        start = self._load_offset() + 1
        types = [cls.__name__ for cls in (*handlers, *self.event_handlers)]
        self.subscriber = Subscriber(home, types=types, from_seq=start)
        self.heartbeat = Heartbeater(home, name)

    def _load_offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def _save_offset(self, seq: int) -> None:
        tmp = self.offset_path.with_suffix(".tmp")
        tmp.write_text(str(seq))
        os.replace(tmp, self.offset_path)

    def stop(self, *_: object) -> None:
        """Ask the worker to stop after the current partition."""
        self.stopping = True

    def serve(self) -> None:
        """Run commands until stopped."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        handled = ", ".join(cls.__name__ for cls in (*self.handlers, *self.event_handlers))
        log.info("%s ready (handles %s)", self.name, handled)
        self.heartbeat.start()
        try:
            while not self.stopping:
                for seq, message in self.subscriber.poll(200):
                    if self.stopping:
                        break
                    try:
                        self.handle(message)
                    except Shutdown:
                        log.info("%s stopping mid-run; the run resumes on restart", self.name)
                        return
                    self._save_offset(seq)
        finally:
            self.heartbeat.stopped.set()
            try:
                self.producer.flush(timeout=5)
            except TimeoutError:
                log.warning("%s exiting with unacknowledged events; they are resent when it restarts", self.name)
            self.subscriber.close()
            self.control.close()
            self.producer.close()

    def query(self, sql: str, params: list[Any] | None = None) -> Any:
        """Read through the ledger, waiting for it while it is down (raises Shutdown if asked to stop)."""
        while True:
            try:
                return self.control.query(sql, params)
            except LedgerUnavailable:
                if self.stopping:
                    raise Shutdown() from None
                log.warning("ledger not answering; retrying a query")
                time.sleep(0.5)

    def _finished_status(self, run_id: str) -> str | None:
        table = self.query("SELECT status FROM meta.ingestion_runs WHERE run_id = ?", [run_id])
        return table.column(0)[0].as_py() if table.num_rows else None

    def handle(self, message: Message) -> None:
        """Run an event handler, or claim and run a command as a recorded run."""
        react = self.event_handlers.get(type(message))  # type: ignore[arg-type]
        if react is not None:
            try:
                react(message, self)
            except Shutdown:
                raise
            except Exception:  # a reaction that fails is logged and skipped, never a crash loop
                log.exception("%s could not react to %s %s", self.name, type(message).__name__, message.id)
            return
        entry = self.handlers.get(type(message))  # type: ignore[arg-type]
        if entry is not None:
            self.state("running")
            try:
                self._run(message, *entry)
            finally:
                self.state("idle")

    def state(self, state: str) -> None:
        """Say what this worker is doing in its heartbeats (idle or running); idle executes no run."""
        self.heartbeat.state = state
        if state == "idle":
            self.heartbeat.run_id = None

    def _run(self, command: Message, job_name: str, handler: Handler) -> None:
        run_id = run_id_for(command.id, job_name)
        age = (utc_now() - command.ts).total_seconds()
        status = self._finished_status(run_id)
        if status in ("success", "failed"):
            log.info("skip %s: run %s already %s", job_name, run_id, status)
            return
        if status is None and age > COMMAND_TTL_SECONDS:
            log.warning("skip %s command %s: %.0fs old, past the %.0fs TTL", job_name, command.id, age, COMMAND_TTL_SECONDS)
            return
        args = msgspec.to_builtins(command)
        for key in ("id", "ts", "v", "type", "triggered_by", "parent_run_id"):
            args.pop(key, None)
        started = utc_now()
        clock = time.perf_counter()
        self.heartbeat.run_id = run_id  # cleared with the state when `handle` returns
        self.producer.send(
            RunStarted(
                run_id=run_id, job_name=job_name, service=self.name, command_id=command.id,
                parent_run_id=getattr(command, "parent_run_id", None),
                triggered_by=getattr(command, "triggered_by", "cli"), provider=args.get("provider"),
                args_json=json.dumps(args, sort_keys=True, default=str), app_version=__version__,
                git_sha=os.environ.get("OH_GIT_SHA"), started_at=started,
            )
        )
        self.producer.flush()  # the run exists before any of its asset events, even across a ledger crash
        rejected_before = len(self.producer.rejected)
        context = RunContext(self, run_id, job_name)
        error: BaseException | None = None
        try:
            handler(command, context)
        except Shutdown:
            raise
        except ProviderError as exc:  # a trader's words already (credentials, entitlement): no traceback
            error = exc
            log.error("%s run %s failed: %s", job_name, run_id, one_line(exc))
        except Exception as exc:  # the run records it; the worker lives on
            error = exc
            log.exception("%s run %s failed", job_name, run_id)
        self.producer.flush()  # every asset event is durable before the run says it is done
        if error is None and len(self.producer.rejected) > rejected_before:
            reason = self.producer.rejected[rejected_before][1]
            error = RunFailed(f"the ledger rejected {len(self.producer.rejected) - rejected_before} events: {reason}",
                              EventRejected(reason))
        cause = error.cause if isinstance(error, RunFailed) else error
        self.producer.send(
            RunFinished(
                run_id=run_id, status="failed" if error else "success", ended_at=utc_now(),
                duration_ms=int((time.perf_counter() - clock) * 1000),
                error_type=type(cause).__name__ if cause else None,
                error_message=one_line(error) if error else None,
                error_stack_hash=stack_hash(cause) if cause else None,
            )
        )
        self.producer.flush()
        log.info("%s run %s %s", job_name, run_id, "failed" if error else "succeeded")


def main(
    name: str,
    handlers: dict[type[Command], tuple[str, Handler]],
    event_handlers: dict[type[Event], EventHandler] | None = None,
) -> None:
    """Entry point shared by every worker module."""
    home = Home.from_env().ensure()
    logs.configure(name, home)
    Worker(name, home, handlers, event_handlers).serve()
