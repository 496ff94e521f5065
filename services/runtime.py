"""The one worker runtime: receive commands and committed events over ZeroMQ, run them, heartbeat.

A worker is a set of handlers (command type -> job handler, services/runs.py) and reactions
(committed event type -> function). This module gives them the ZeroMQ bus (`SocketBus`: the
producer and the ledger's query endpoint) and runs each command through `runs.execute`.

A worker keeps its place in the command stream in `OH_HOME/state/<name>.offset`: the seq of the
last message it handled and the id of the journal that seq counts in ("<seq> <journal id>"; a file
from before journal ids holds the seq alone). On start it catches up from there through the ledger's
journal (from seq 1 of a different journal: `bus/subscriber.py`), so a command sent while the worker was down
or restarting is still run. A command whose run already finished is skipped (the claim check),
so a redelivered command never runs twice; a run left `started` by a crash is run again, which
is safe because every job is idempotent.

What a worker's socket receives: its commands and the events it reacts to. A worker whose reactions are to
`RunFinished` only (one per run) or none subscribes to those topics and the head tick alone (`only_types`,
bus/subscriber.py): while a long job runs its loop reads nothing, and subscribed to everything its socket held
every payload published meanwhile (ingest 1.3 GB, flow 0.8 GB, the scheduler 1.1 GB at 5,000 symbols). A worker
that reacts to a stream of events (checks, notify) keeps the whole stream: narrowed, each of its messages would
follow a gap and cost a catch-up round trip.

What reactions send is held while the worker goes through one batch of committed events and goes to the ledger
as one frame (at most HELD_MAX messages) when the batch ends, before a command runs and before the offset is
recorded: so the offset never says handled for an event whose reaction's messages were not yet handed to the
producer (the same guarantee as sending each at once), and a wide day's ~25,000 check results cost the checks
worker and the ledger a few hundred frames, not 25,000.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from bus.codec import encode
from bus.control_client import ControlClient, LedgerUnavailable
from bus.errors import HomeError
from bus.home import Home
from bus.producer import Producer
from bus.subscriber import Subscriber
from contracts import Command, Event, Heartbeat, Message, RunFinished, run_id_for
from contracts.catalog import job_of
from services import logs
from services.runs import Handler, Reaction, Shutdown, execute

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)
# A reaction's offset is written at most this often while committed events keep coming, and at the first poll
# that brings none, not after each event or each batch (a worker keeping up gets batches of one): a restart
# handles again what came after it, which reactions and commands allow (the module docstring). Writing it per
# event cost the checks worker ~12% of its CPU on a wide day.
OFFSET_SECONDS = 1.0

HELD_MAX = 256  # reactions' messages held for one frame (see the module docstring)

HEARTBEAT_SECONDS = 2.0
RETRY_FIRST_SECONDS = 0.02  # a beat refused before the connection is up goes again this soon (doubling)


class Heartbeater(threading.Thread):
    """Sends this process's heartbeat every HEARTBEAT_SECONDS from its own socket; the first as soon as
    the connection to the ledger is up (a beat sent before that is refused, and goes again within
    RETRY_FIRST_SECONDS, doubling), so a started worker shows as alive at once, not a beat later.

    A thread of its own, so a job blocked in a slow provider call still looks alive; a killed
    process stops beating, and the ledger marks its open run abandoned. Each beat names the run
    being executed (`run_id`), so the ledger also abandons a run this live worker no longer has.
    """

    def __init__(self, home: Home, service: str) -> None:
        super().__init__(name=f"{service}-heartbeat", daemon=True)
        self.service = service
        self.home = home
        self.state = "idle"
        self.run_id: str | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, 1)
        self.home.connect(sock, "ingress")
        retry = RETRY_FIRST_SECONDS
        try:
            while not self.stopped.is_set():
                try:
                    beat = Heartbeat(service=self.service, pid=os.getpid(), state=self.state, run_id=self.run_id)
                    sock.send(encode(beat), zmq.NOBLOCK)
                    wait, retry = HEARTBEAT_SECONDS, RETRY_FIRST_SECONDS
                except zmq.Again:  # no ledger connection (yet): try again soon, backing off to the beat
                    wait, retry = retry, min(retry * 2, HEARTBEAT_SECONDS)
                self.stopped.wait(wait)
        finally:
            sock.close()


class SocketBus:
    """The ZeroMQ bus a worker's runs and reactions use: its producer and the ledger's query endpoint."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.producer = Producer(home)
        self.control = ControlClient(home)
        self.stop_requested = False
        self.held: list[Message] | None = None  # while holding (`hold`): what `send` was given, not yet sent

    @property
    def rejected(self) -> list[tuple[str, str]]:
        return self.producer.rejected

    def send(self, messages: Sequence[Message]) -> None:
        if self.held is None:
            self.producer.send_many(messages)
            return
        self.held.extend(messages)
        if len(self.held) >= HELD_MAX:
            self.producer.send_many(self.held)
            self.held = []

    def hold(self) -> None:
        """Hold what `send` is given from now until `release` (the runtime's batch of reactions)."""
        if self.held is None:
            self.held = []

    def release(self) -> None:
        """Send what was held, as one frame, and send at once again."""
        held, self.held = self.held, None
        if held:
            self.producer.send_many(held)

    def flush(self) -> None:
        self.producer.flush()

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Read through the ledger, waiting for it while it is down (raises Shutdown if asked to stop)."""
        while True:
            try:
                return self.control.query(sql, params)
            except LedgerUnavailable:
                if self.stop_requested:
                    raise Shutdown() from None
                log.warning("ledger not answering; retrying a query")
                time.sleep(0.5)

    def stopping(self) -> bool:
        return self.stop_requested

    def close(self, name: str) -> None:
        """Flush what is left (briefly) and close the sockets."""
        try:
            self.producer.flush(timeout=5)
        except TimeoutError:
            log.warning("%s exiting with unacknowledged events; they are resent when it restarts", name)
        self.control.close()
        self.producer.close()


def read_offset(path: Path, name: str) -> tuple[int, str | None]:
    """A worker's last handled seq and the id of its journal (None: not recorded) from `path`; (0, None) when
    there is no file (a first start reads the journal from seq 1)."""
    try:
        fields = path.read_text().split()
    except FileNotFoundError:
        return 0, None
    try:
        seq = int(fields[0]) if fields else 0
    except ValueError:
        raise HomeError(f"{path} does not hold a seq ({' '.join(fields)[:60]!r}): delete it to let {name} "
                        "catch up from the journal's start (finished runs are not run again)") from None
    return seq, (fields[1] if len(fields) > 1 else None)


def write_offset(path: Path, seq: int, journal_id: str | None) -> None:
    """Record "<seq> <journal id>" (the seq alone when the journal has no id) atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{seq} {journal_id}" if journal_id else str(seq))
    os.replace(tmp, path)


class Worker:
    """A long-lived process that runs the jobs for a set of command types and reacts to events.

    Command handlers run inside a recorded run. Reactions (for example checks reacting to
    committed candles) run outside any run and must be idempotent: give the events they emit ids
    derived from the event they react to, so a redelivery is dropped by the ledger.
    """

    def __init__(
        self,
        name: str,
        home: Home,
        handlers: dict[type[Command], Handler],
        reactions: dict[type[Event], Reaction] | None = None,
    ) -> None:
        self.name = name
        self.home = home.ensure()
        self.handlers = handlers
        self.reactions = reactions or {}
        self.bus = SocketBus(self.home)
        self.offset_path = home.state / f"{name}.offset"
        self.started_after = read_offset(self.offset_path, name)  # (the last seq handled, its journal's id)
        last, journal_id = self.started_after
        types = [cls.__name__ for cls in (*handlers, *self.reactions)]
        self.subscriber = Subscriber(home, types=types, from_seq=last + 1, journal_id=journal_id,
                                     only_types=set(self.reactions) <= {RunFinished})  # see the module docstring
        self.heartbeat = Heartbeater(home, name)
        self._offset_due = 0.0

    def _save_offset(self, seq: int) -> None:
        """Record `seq` as handled, once what the reactions sent until now is handed to the producer. Called after
        each command, at most every OFFSET_SECONDS while committed events keep coming, at the first poll that
        brings none, and on the way out (see `serve`)."""
        self.bus.release()
        write_offset(self.offset_path, seq, self.subscriber.journal_id)
        self._offset_due = time.monotonic() + OFFSET_SECONDS

    @property
    def stopping(self) -> bool:
        return self.bus.stop_requested

    def stop(self, *_: object) -> None:
        """Ask the worker to stop after the current partition."""
        self.bus.stop_requested = True

    def serve(self) -> None:
        """Run commands until stopped."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        handled = ", ".join(cls.__name__ for cls in (*self.handlers, *self.reactions))
        log.info("%s ready (handles %s)", self.name, handled)
        self.heartbeat.start()
        unsaved: int | None = None  # the last seq handled and not yet recorded
        try:
            while not self.stopping:
                self.bus.producer.pump()  # what a reaction sent and the ledger lost goes again, unflushed
                batch = self.subscriber.poll(200)
                for seq, message in batch:
                    if self.stopping:
                        break
                    if isinstance(message, Command):
                        self.bus.release()  # a run's messages follow what the reactions before it sent
                    else:
                        self.bus.hold()
                    try:
                        self.handle(message)
                    except Shutdown:
                        log.info("%s stopping mid-run; the run resumes on restart", self.name)
                        return
                    unsaved = seq
                    if isinstance(message, Command) or time.monotonic() >= self._offset_due:
                        self._save_offset(seq)
                        unsaved = None
                if unsaved is not None and (not batch or time.monotonic() >= self._offset_due):
                    self._save_offset(unsaved)  # at most every OFFSET_SECONDS while events keep coming, and
                    unsaved = None  # at the first poll that brings none (a worker keeping up gets batches of one)
                self.bus.release()
        finally:
            self.bus.release()
            if unsaved is not None:
                self._save_offset(unsaved)
            self.heartbeat.stopped.set()
            self.bus.close(self.name)
            self.subscriber.close()

    def handle(self, message: Message) -> None:
        """Run a reaction, or claim and run a command as a recorded run."""
        react = self.reactions.get(type(message))  # type: ignore[arg-type]
        if react is not None:
            try:
                react(message, self.bus)
            except Shutdown:
                raise
            except Exception:  # a reaction that fails is logged and skipped, never a crash loop
                log.exception("%s could not react to %s %s", self.name, type(message).__name__, message.id)
            return
        handler = self.handlers.get(type(message))  # type: ignore[arg-type]
        if handler is not None:
            self.state("running")
            self.heartbeat.run_id = run_id_for(message.id, job_of(message).name)  # type: ignore[arg-type]
            try:
                execute(self.bus, message, handler, self.name)  # type: ignore[arg-type]
            finally:
                self.state("idle")

    def state(self, state: str) -> None:
        """Say what this worker is doing in its heartbeats (idle or running); idle executes no run."""
        self.heartbeat.state = state
        if state == "idle":
            self.heartbeat.run_id = None


def main(
    name: str,
    handlers: dict[type[Command], Handler],
    reactions: dict[type[Event], Reaction] | None = None,
) -> None:
    """Entry point shared by every worker module.

    Once served, the objects left are frozen (`gc.freeze`): the process is exiting, so the interpreter skips a
    last garbage collection over its heap and the OS frees it; a worker then exits sooner after SIGTERM
    (`oh down`). Nothing is left to clean: the sockets are closed and the producer flushed by `serve`.
    """
    import gc

    home = Home.from_env().ensure()
    logs.configure(name, home)
    try:
        worker = Worker(name, home, handlers, reactions)
    except HomeError as exc:  # an unsafe socket dir, a bad OH_BUS, no CURVE key: one line, not a traceback
        log.error("%s cannot start: %s", name, exc)
        raise SystemExit(f"{name}: {exc}") from None
    worker.serve()
    gc.freeze()
