"""The ledger process: sequence, journal, acknowledge, project, publish.

One loop iteration is one group commit:

1. drain every frame waiting on the ingress socket (up to a bound), waiting a little for more while the group is
   small (`services/ledger/group_commit.py`), and sort what came (`services/ledger/intake.py`);
2. reject what is malformed, unknown or oversized (counted, logged, answered with a Nack);
3. acknowledge duplicates of events already journaled without journaling them again;
4. append the new events to the journal in one write and acknowledge their producers;
5. make the journal durable (an fsync in a helper thread, overlapping the projection work) and
   apply the events to DuckDB together with the new offset in one transaction, committed only
   once that fsync is done;
6. publish them, so a subscriber that queries on receipt sees the rows.

The ledger never exits for a fault it cannot fix by restarting (supervisord would restart-loop it):

- *halted* (`services/ledger/stall.py`): the journal is damaged, or holds less than the warehouse has
  committed. The warehouse is kept exactly as it is (never rebuilt from a shorter journal); status
  and read-only queries are served; every event gets a `Nack(retry=True)` naming the fault and
  nothing is journaled until a person runs `oh journal repair` and restarts the ledger.
- *stalled*: the disk is full (or DuckDB is out of memory: `OH_DUCKDB_MEMORY_LIMIT`, or hit a FATAL error,
  which invalidates the database until it is reopened: the retry reopens it first). Nothing unstored
  is acknowledged; events get a `Nack(retry=True)` saying so; the ledger retries by itself and resumes
  when space returns.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import zmq

from bus.codec import (
    BULK_FRAME_BYTES,
    HEAD_TOPIC,
    decode_message,
    encode,
    frames_for,
    pack_seq,
    pack_seqs,
    topic_of,
)
from bus.home import Home
from bus.journal import Journal, JournalCorrupt
from bus.journal_lock import JournalLock
from contracts import MESSAGE_TYPES, Message, RunFinished, RunStarted
from contracts.control import Ack, Nack, RebuildReply, StatusReply
from services.ledger import heap, memlog
from services.ledger.control import ControlServer
from services.ledger.dedup import RecentIds
from services.ledger.group_commit import GroupCommit
from services.ledger.intake import Intake
from services.ledger.projections import decoded_rows
from services.ledger.stall import Stall, is_disk_full
from services.ledger.tcp import open_listener
from services.ledger.warehouse import Warehouse, WarehouseAhead, is_storage_failure, warm_up
from services.ledger.watchdog import RunWatchdog

log = logging.getLogger("ledger")

MAX_DRAIN_MESSAGES = 20_000
# A drain's bytes bound the memory it holds (payloads, decoded events, the concatenated Arrow rows, DuckDB's
# uncommitted rows: several times them), and behind a backlog every drain reaches it: a 500-symbol journal
# replayed in 128 MB drains peaked at 615 MB RSS, in 32 MB drains at 418 MB, same CPU (bench/README.md).
MAX_DRAIN_BYTES = 32 * 1024 * 1024
HEAD_TICK_SECONDS = 1.0
PUBLISH_RUN = 1000  # events of one type published as one message, at most
_RUN_TYPES = (RunStarted, RunFinished)  # what the run watchdog follows


class Ledger:
    """The sequencer and the single owner of the DuckDB file."""

    def __init__(self, home: Home, fsync: str = "batch", dedup_window: int = 500_000) -> None:
        self.home = home.ensure()
        self.stopping = threading.Event()
        self.started_at = time.time()
        self.counters: dict[str, int] = defaultdict(int)
        self._counter_lock = threading.Lock()
        self.heartbeats: dict[str, dict[str, Any]] = {}
        self.fault: str | None = None
        self.stall: Stall | None = None
        self.ctx = zmq.Context.instance()
        self.tcp = open_listener(home, self.ctx, self.count)  # None unless bus.toml asks for tcp (CURVE)
        lock = JournalLock(home.journal, "ledger").acquire(wait=True)  # before the warehouse: a repair may hold both
        self.warehouse = self._open_warehouse(home)
        self.journal = Journal(home.journal, fsync=fsync, committed_seq=self.warehouse.applied_seq, lock=lock,
                               type_names=MESSAGE_TYPES)
        self._recover()
        self.seen = RecentIds(dedup_window)
        for event_id, seq in reversed(self.warehouse.recent_ids(dedup_window)):
            self.seen.add(event_id, seq)
        self.ingress = self.ctx.socket(zmq.ROUTER)
        self.ingress.setsockopt(zmq.LINGER, 0)
        self.ingress.setsockopt(zmq.RCVHWM, 0)
        self.ingress.bind(home.ipc_endpoint("ingress"))
        self.publisher = self.ctx.socket(zmq.PUB)
        self.publisher.setsockopt(zmq.LINGER, 0)
        self.publisher.setsockopt(zmq.SNDHWM, int(os.environ.get("OH_PUB_HWM", "200000")))  # past it a slow subscriber drops and catches up
        self.publisher.bind(home.ipc_endpoint("events"))
        if self.tcp is not None:  # the same sockets listen on tcp too, CURVE only (services/ledger/tcp.py)
            self.tcp.bind(self.ingress, "ingress")
            self.tcp.bind(self.publisher, "events")
        self.control = ControlServer(self, home.ipc_endpoint("control"), tcp=self.tcp)
        self.watchdog = RunWatchdog(self.started_at, float(os.environ.get("OH_ABANDON_SECONDS", "30")))
        self.watchdog.load(self.warehouse.open_runs(), time.time())
        # When the ledger last found its ingress empty: every heartbeat sent before then has been read. The
        # watchdog judges silence as of then, not as of now: a drain that took longer than the timeout (a wide
        # day's commit on a loaded box) left the beats sent meanwhile unread, and they were taken for silence.
        self._caught_up_at = time.time()
        self._last_tick = 0.0
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-fsync")
        self._reject_logs = 0
        self.group_commit = GroupCommit.from_env()
        self._memlog: memlog.Sampler | None = None
        self._heap = heap.HeapTrim.from_env()

    # -- opening ---------------------------------------------------------------------------
    def _open_warehouse(self, home: Home) -> Warehouse:
        """Open the DuckDB file; on a full disk, wait for space (logged once) instead of exiting into a restart loop."""
        announced = False
        while True:
            try:
                return Warehouse(home.warehouse)
            except Exception as exc:
                if not is_disk_full(exc):
                    raise
                if not announced:
                    log.error("%s", Stall.from_error(exc, home.warehouse, 0).describe())
                    announced = True
                time.sleep(1.0)

    def _recover(self) -> None:
        """Apply what the journal holds beyond the warehouse; halt (never rebuild) if the journal is damaged or short."""
        if self.journal.faults:
            self._halt("; ".join(f.describe() for f in self.journal.faults))
            return
        try:
            recovered = self.warehouse.catch_up(self.journal)
        except (WarehouseAhead, JournalCorrupt) as exc:
            self._halt(str(exc))
            return
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            self._stall_on(exc, self.home.warehouse, 0)
            return
        if recovered:
            log.info("recovered %d journaled events into the warehouse", recovered)

    def _halt(self, reason: str) -> None:
        cuts = ", ".join(p.name for p in self.journal.cut_files())
        self.fault = (
            f"HALTED: {reason}. Nothing was cut or rebuilt, and nothing is journaled until the journal is repaired: "
            "stop oh (`oh down`), look with `oh journal check`, run `oh journal repair`, then `oh up`"
            + (f" (earlier cut bytes: {cuts})" if cuts else "")
        )
        log.error("%s", self.fault)

    def _stall_on(self, exc: BaseException, path: Path, needed: int) -> None:
        """Stop accepting events because storing failed (a full disk); say so once."""
        if self.stall is None:
            self.stall = Stall.from_error(exc, path, needed)
            self.count("stalls")
            log.error("%s", self.stall.describe())
        else:
            self.stall.needed = max(self.stall.needed, needed)
            self.stall.postpone()

    def _retry_stall(self) -> None:
        """Every `retry_seconds()` while stalled: fsync the journal, apply what it holds beyond the warehouse, check for room."""
        stall = self.stall
        if stall is None or not stall.due():
            return
        before = self.warehouse.applied_seq
        try:
            self.journal.sync()
            applied = self.warehouse.catch_up(self.journal)  # reopens a warehouse a FATAL error invalidated
        except Exception as exc:
            if not (isinstance(exc, OSError) or is_storage_failure(exc)):
                raise
            stall.postpone()
            return
        if applied:
            runs = frozenset({RunStarted.__name__, RunFinished.__name__})
            for frame in self.journal.read(before + 1, self.warehouse.applied_seq, runs):
                self.watchdog.observe(decode_message(frame.payload), time.time())
        if not stall.room():
            stall.postpone()
            return
        log.info("storage works again after %.0fs (%d journaled events applied): accepting events",
                 time.time() - stall.since, applied)
        self.stall = None

    # -- bookkeeping -----------------------------------------------------------------------
    def count(self, name: str, by: int = 1) -> None:
        """Increment a counter shown by `oh status` (thread-safe)."""
        with self._counter_lock:
            self.counters[name] += by

    def status(self) -> StatusReply:
        """A snapshot of the ledger's state for `oh status`."""
        with self._counter_lock:
            counters = dict(self.counters)
        return StatusReply(
            head_seq=self.journal.head_seq,
            applied_seq=self.warehouse.applied_seq,
            started_at=self.started_at,
            counters=counters,
            heartbeats=dict(self.heartbeats),
            fsync=self.journal.fsync,
            fault=self.fault,
            stalled=self.stall.describe() if self.stall else None,
            tcp=self.tcp.describe() if self.tcp else None,
            journal_id=self.journal.identity,
        )

    def _refusal(self) -> str | None:
        """Why events cannot be stored right now (halted or stalled), or None."""
        return self.fault or (self.stall.describe() if self.stall else None)

    def _refuse(self, identity: bytes, event_id: str | None, reason: str) -> None:
        """Tell a producer its event was not stored and must be resent later."""
        self.count("frames_refused")
        try:
            self.ingress.send_multipart([identity, encode(Nack(id=event_id, reason=reason, retry=True))], flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    def _reject(self, identity: bytes, reason: str, kind: str, event_id: str | None = None) -> None:
        self.count("frames_rejected")
        self.count(f"rejected_{kind}")
        self._reject_logs += 1
        if self._reject_logs <= 20 or self._reject_logs % 1000 == 0:
            log.warning("rejected frame (%s, %d so far): %s", kind, self.counters["frames_rejected"], reason)
        try:
            self.ingress.send_multipart([identity, encode(Nack(id=event_id, reason=reason))], flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until SIGTERM/SIGINT (see `stop`), then close everything cleanly."""
        self.control.start()
        self.control.ready.wait(5)
        log.info(
            "ledger ready: head seq %d, fsync %s, home %s%s", self.journal.head_seq, self.journal.fsync, self.home.root,
            f", bus also on {self.tcp.describe()} (CURVE)" if self.tcp else "",
        )
        threading.Thread(target=warm_up, name="duckdb-warm-up", daemon=True).start()  # while no event waits
        self._memlog = memlog.start(lambda: self.warehouse.con)  # OH_LEDGER_MEMLOG: a debug sampler of who holds the memory
        poller = zmq.Poller()
        poller.register(self.ingress, zmq.POLLIN)
        try:
            while not self.stopping.is_set():
                if poller.poll(100):
                    # once its events are dropped, what a drain freed goes back to the OS (services/ledger/heap.py)
                    self._heap.after(self._drain())
                else:
                    self._caught_up_at = time.time()
                    self._heap.idle()  # quiet: what the last drains freed goes back to the OS
                self._serve_rebuilds()
                self._retry_stall()
                now = time.monotonic()
                if now - self._last_tick >= HEAD_TICK_SECONDS:
                    self._last_tick = now
                    self.publisher.send_multipart([HEAD_TOPIC, pack_seq(self.warehouse.applied_seq),
                                                  self.journal.identity.encode("ascii")])
                    if self._refusal() is None:
                        abandoned = self.watchdog.abandoned(self.heartbeats, self._caught_up_at)
                        if abandoned:
                            self._journal_own(abandoned)
        finally:
            self.close()

    def stop(self, *_: object) -> None:
        """Ask the loop to finish its current batch and exit."""
        self.stopping.set()

    def close(self) -> None:
        """Stop serving, make the journal durable and checkpoint the warehouse."""
        self.stopping.set()
        if self.control.is_alive():
            self.control.join(5)
        self._syncer.shutdown(wait=True)
        if self._memlog is not None:
            self._memlog.stop()
        self.journal.close()
        try:
            self.warehouse.close()
        except Exception as exc:  # a full disk can fail the checkpoint: the WAL still holds every commit
            if not is_disk_full(exc):
                raise
            log.warning("could not checkpoint the warehouse on the way out (%s); its WAL is replayed on start", exc)
        self.ingress.close()
        self.publisher.close()
        if self.tcp is not None:
            self.tcp.close()
        log.info("ledger stopped at seq %d", self.journal.head_seq)

    def _drain(self) -> int:
        """Gather one group commit from the ingress, journal, acknowledge, project and publish it; return its bytes."""
        intake = Intake(self.seen, self.heartbeats, self._refusal(), self._reject, self._refuse, self.count)
        group = self.group_commit
        linger_until = group.deadline(time.monotonic())
        for _ in range(MAX_DRAIN_MESSAGES):
            try:
                parts = self.ingress.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                self._caught_up_at = time.time()  # read to the end: the beats sent until now are admitted
                # group commit sized by time and bytes: a small group waits briefly for more to arrive
                left = linger_until - time.monotonic()
                if not intake.messages or group.full(len(intake.messages), intake.size) or left <= 0:
                    break
                if not self.ingress.poll(left * 1000):
                    break
                continue
            identity = parts[0]
            for frame in parts[1:]:
                intake.admit_frame(identity, frame)
            if intake.size >= MAX_DRAIN_BYTES:
                break
        group.committed(len(intake.messages), intake.size)
        seqs: list[int] = []
        if intake.messages:
            try:
                seqs = self.journal.append(zip(intake.types, intake.payloads, strict=True))
            except OSError as exc:  # rolled back by the journal: nothing of the batch is stored, nothing is acked
                self._stall_on(exc, self.journal.writing, sum(map(len, intake.payloads)))
                reason = self._refusal() or str(exc)
                for message, identity in zip(intake.messages, intake.identities, strict=True):
                    self._refuse(identity, message.id, reason)
                for identity, event_id, _ in intake.late_duplicates:
                    self._refuse(identity, event_id, reason)
                intake.drop_fresh()
            else:
                self.seen.add_many([m.id for m in intake.messages], seqs)  # before the acks: a resend is a duplicate
        self._acknowledge(intake, seqs)
        if intake.messages:
            with decoded_rows(intake.decoded):  # the rows validated at the door are not decoded again
                self._commit(intake.types, intake.payloads, intake.messages, seqs)
        return intake.size

    def _acknowledge(self, intake: Intake, seqs: list[int]) -> None:
        """Answer every producer once for this drain: one Ack with the ids and seqs of all it sent."""
        acks: dict[bytes, tuple[list[str], list[int]]] = {}
        for identity, event_id, seq in intake.duplicates:
            ids, ack_seqs = acks.setdefault(identity, ([], []))
            ids.append(event_id)
            ack_seqs.append(seq)
        identities = intake.identities
        if identities and identities.count(identities[0]) == len(identities):  # the usual case: one producer
            ids, ack_seqs = acks.setdefault(identities[0], ([], []))
            ids += [m.id for m in intake.messages]
            ack_seqs += seqs
        else:
            for identity, message, seq in zip(identities, intake.messages, seqs, strict=True):
                ids, ack_seqs = acks.setdefault(identity, ([], []))
                ids.append(message.id)
                ack_seqs.append(seq)
        for identity, event_id, index in intake.late_duplicates:
            ids, ack_seqs = acks.setdefault(identity, ([], []))
            ids.append(event_id)
            ack_seqs.append(seqs[index])
        for identity, (ids, ack_seqs) in acks.items():
            try:
                self.ingress.send_multipart([identity, encode(Ack(ids=ids, seqs=ack_seqs))], flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # the producer is gone; it resends when it comes back

    def _commit(self, types: list[str], payloads: list[bytes], messages: list[Message], seqs: list[int]) -> None:
        """`_project`, stalling (never crashing) when the disk is full: the batch stays in the journal for the retry."""
        try:
            self._project(types, payloads, messages, seqs)
        except Exception as exc:
            if not is_storage_failure(exc):
                raise
            self._stall_on(exc, self.home.warehouse, sum(map(len, payloads)))

    def _project(self, types: list[str], payloads: list[bytes], messages: list[Message], seqs: list[int]) -> None:
        """Make journaled events durable, project them in one transaction, then publish them."""
        self.count("events_journaled", len(messages))
        self.count("group_commits")
        durable = self._syncer.submit(self.journal.sync)  # fsync overlaps the projection work ...
        rejected = self.warehouse.commit(
            list(zip(seqs, messages, strict=True)), list(map(len, payloads)),
            before_commit=durable.result,  # ... and the warehouse never commits ahead of the journal
        )
        if rejected:
            self.count("projection_rejected", len(rejected))
        now = time.time()
        for message in messages:
            if isinstance(message, _RUN_TYPES):
                self.watchdog.observe(message, now)
        self._publish(types, payloads, seqs)

    def _publish(self, types: list[str], payloads: list[bytes], seqs: list[int]) -> None:
        """Publish committed events: each run of consecutive events of one type as ONE message (at most
        PUBLISH_RUN events): [topic, seqs, packed payloads] when they are small, [topic, seqs, payload, ...]
        when bulk, so a burst of small events costs a few sends, not three per event (bus/subscriber.py)."""
        start, n = 0, len(types)
        while start < n:
            type_name = types[start]
            end, limit = start + 1, min(n, start + PUBLISH_RUN)
            while end < limit and types[end] == type_name:
                end += 1
            frames = frames_for(payloads[start:end])  # small ones packed in one frame
            # zero-copy only pays for large frames; for small ones it is slower than a copy
            self.publisher.send_multipart([topic_of(type_name), pack_seqs(seqs[start:end]), *frames],
                                          copy=len(frames) > 1 or len(frames[0]) < BULK_FRAME_BYTES)
            start = end

    def _journal_own(self, messages: list[Message]) -> None:
        """Journal events the ledger itself decides (an abandoned run), through the same path."""
        types, payloads = [type(m).__name__ for m in messages], [encode(m) for m in messages]
        try:
            seqs = self.journal.append(zip(types, payloads, strict=True))
        except OSError as exc:
            self.watchdog.load(self.warehouse.open_runs(), time.time())  # decided again once storing works
            self._stall_on(exc, self.journal.writing, sum(map(len, payloads)))
            return
        self.seen.add_many([m.id for m in messages], seqs)
        self._commit(types, payloads, messages, seqs)

    def _serve_rebuilds(self) -> None:
        while not self.control.rebuilds.empty():
            done, result = self.control.rebuilds.get_nowait()
            started = time.perf_counter()
            refusal = self._refusal()
            if refusal is not None:
                result.append(RuntimeError(f"refused: {refusal}"))
                done.set()
                continue
            try:
                events = self.warehouse.rebuild(self.journal)
                result.append(RebuildReply(events=events, seconds=time.perf_counter() - started))
            except Exception as exc:
                result.append(exc)
            done.set()


