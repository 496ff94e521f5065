"""The ledger's control endpoint: read-only SQL, catch-up from the journal, status, rebuild, exports.

The control thread owns the ROUTER socket and never runs a user query itself: queries go to the
query pool (queries.py), whose threads run them sandboxed (sandbox.py) on fresh cursors within a
time budget and hand the replies back over inproc, so status, catch-up and rebuild requests are
answered while queries run. A full query queue is answered `busy` at once.

A rebuild is handed to the main thread, the only writer, once the pool has paused (its running
queries interrupted): the rebuild closes and reopens the connection the cursors come from. The
control thread keeps serving meanwhile and answers the rebuild when the main thread is done.
On shutdown the pool's queries are interrupted and answered before the ledger closes the file.

Exports (export.py) run on the pool too: opening one and each page are pool jobs; the control thread
closes the exports nobody fetches from, and every open export before a rebuild and on shutdown.

The ROUTER socket is made and bound when the server is made (in the ledger's main thread, so a tcp
port that is taken stops the ledger at start with one line), then used only by the control thread.
It listens on ipc and, when bus.toml asks, on tcp with CURVE (tcp.py).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from typing import TYPE_CHECKING, Protocol

import zmq

from bus.codec import FrameError, decode_request, encode, pack_seq
from bus.query_limits import QueryLimits
from contracts.control import (
    CatchUpReply,
    CatchUpRequest,
    ErrorReply,
    ExportClose,
    ExportFetch,
    ExportRequest,
    QueryRequest,
    RebuildReply,
    RebuildRequest,
    StatusRequest,
)
from services.ledger.export import Exports
from services.ledger.queries import CallJob, QueryJob, QueryPool

if TYPE_CHECKING:
    from bus.journal import Journal
    from contracts.control import StatusReply
    from services.ledger.tcp import TcpListener
    from services.ledger.warehouse import Warehouse

log = logging.getLogger(__name__)

MAX_CATCHUP_FRAMES = 20000
MAX_CATCHUP_BYTES = 128 * 1024 * 1024
POLL_MS = 50
POOL_STOP_SECONDS = 15.0  # on shutdown, how long the pool's interrupted queries may take to answer (of the ledger's 30 s)
MAX_REQUESTS_PER_TURN = 100

Pending = tuple[threading.Event, list[object], list[list[bytes]]]  # a rebuild: done, result, who asked


class LedgerView(Protocol):
    """What the control endpoint needs of the ledger (services.ledger.app.Ledger)."""

    ctx: zmq.Context  # type: ignore[type-arg]
    stopping: threading.Event
    warehouse: Warehouse
    journal: Journal

    def count(self, name: str, by: int = 1) -> None: ...

    def status(self) -> StatusReply: ...


class ControlServer(threading.Thread):
    """Serves control requests on a ROUTER socket until the ledger stops."""

    def __init__(self, ledger: LedgerView, endpoint: str, limits: QueryLimits | None = None,
                 tcp: TcpListener | None = None) -> None:
        super().__init__(name="ledger-control", daemon=True)
        self.ledger = ledger
        self.endpoint = endpoint
        try:
            self.limits = limits or QueryLimits.from_env()
        except ValueError as exc:
            raise SystemExit(f"ledger: {exc}") from None
        self.rebuilds: queue.Queue[tuple[threading.Event, list[object]]] = queue.Queue()
        self._replies_endpoint = f"inproc://ledger-query-replies-{id(self):x}"
        self.pool = QueryPool(
            lambda: ledger.warehouse.reader(), self.limits, ledger.ctx, self._replies_endpoint, ledger.count
        )
        self.exports = Exports(self.pool.cursor, self.pool.interrupter, ledger.count)
        self._rebuild_waiting: list[list[bytes]] = []
        self._rebuild_running: Pending | None = None
        self.ready = threading.Event()
        self.sock = ledger.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        if tcp is not None:
            tcp.bind(self.sock, "control")

    def run(self) -> None:
        sock = self.sock
        replies = self.ledger.ctx.socket(zmq.PULL)
        replies.setsockopt(zmq.LINGER, 0)
        replies.bind(self._replies_endpoint)
        self.pool.start()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(replies, zmq.POLLIN)
        self.ready.set()
        try:
            while not self.ledger.stopping.is_set():
                ready = dict(poller.poll(POLL_MS))
                if replies in ready:
                    forward(replies, sock)
                if sock in ready:
                    self._serve(sock)
                self._advance_rebuild(sock)
                self.exports.expire()
        finally:
            self.pool.stop()
            answer_until_stopped(self.pool, replies, sock, time.monotonic() + POOL_STOP_SECONDS)
            self.exports.close_all("the ledger shut down")
            forward(replies, sock)
            self._answer_rebuilds(sock, ErrorReply("the ledger is shutting down", kind="interrupted"))
            replies.close()
            sock.setsockopt(zmq.LINGER, 1000)  # let the last answers (interrupted queries) reach their clients
            sock.close()

    # -- the socket ----------------------------------------------------------------------------
    def _serve(self, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        for _ in range(MAX_REQUESTS_PER_TURN):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            envelope, request = frames[:-1], frames[-1]  # REQ clients: [identity, b"", request]
            reply = self._handle(envelope, request)
            if reply is not None:
                sock.send_multipart([*envelope, *reply], copy=False)

    def _handle(self, envelope: list[bytes], raw: bytes) -> list[bytes] | None:
        """The reply now, or None when it comes later (a query in the pool, a rebuild)."""
        try:
            request = decode_request(raw)
        except FrameError as exc:
            self.ledger.count("control_rejected")
            return [encode(ErrorReply(f"malformed control request: {exc}", kind="malformed"))]
        try:
            if isinstance(request, QueryRequest):
                return self._query(envelope, request)
            if isinstance(request, CatchUpRequest):
                return self._catch_up(request)
            if isinstance(request, StatusRequest):
                status = self.ledger.status()
                status.counters.update(self.pool.gauges())
                status.counters["exports_open"] = self.exports.open_count()
                return [encode(status)]
            if isinstance(request, ExportRequest | ExportFetch | ExportClose):
                return self._export(envelope, request)
            if isinstance(request, RebuildRequest):
                self._rebuild_waiting.append(envelope)
                self.pool.pause()
                return None
        except Exception as exc:  # a request must never take the ledger down
            log.exception("control request failed")
            return [encode(ErrorReply(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))]
        return [encode(ErrorReply("unknown request"))]

    # -- requests ----------------------------------------------------------------------------
    def _query(self, envelope: list[bytes], request: QueryRequest) -> list[bytes] | None:
        budget = self.limits.budget
        if request.budget_s is not None:
            if not (math.isfinite(request.budget_s) and request.budget_s > 0):
                return [encode(ErrorReply("budget_s must be a positive number of seconds", kind="malformed"))]
            budget = min(request.budget_s, self.limits.budget)
        job = QueryJob(envelope, request.sql, request.params, budget, time.monotonic() + budget)
        if self.pool.submit(job):
            return None
        self.ledger.count("queries_busy")
        gauges = self.pool.gauges()
        return [encode(ErrorReply(
            f"the ledger is busy: {gauges['queries_running']} queries running and {gauges['queries_waiting']} "
            "waiting (OH_QUERY_THREADS, OH_QUERY_QUEUE); try again shortly",
            kind="busy",
        ))]

    def _export(self, envelope: list[bytes], request: ExportRequest | ExportFetch | ExportClose) -> list[bytes] | None:
        """Hand an export step to the query pool (it reads the warehouse); `busy` when the pool's queue is full."""
        budget = self.limits.budget
        deadline = time.monotonic() + budget
        if isinstance(request, ExportRequest):
            run = lambda: self.exports.open(request, deadline, budget)  # noqa: E731
        elif isinstance(request, ExportFetch):
            run = lambda: self.exports.fetch(request.export_id, deadline, budget)  # noqa: E731
        else:
            run = lambda: self.exports.close(request.export_id)  # noqa: E731
        if self.pool.submit(CallJob(envelope, run)):
            return None
        self.ledger.count("queries_busy")
        return [encode(ErrorReply("the ledger is busy (its query queue is full); try again shortly", kind="busy"))]

    def _catch_up(self, request: CatchUpRequest) -> list[bytes]:
        committed = self.ledger.warehouse.applied_seq
        last = committed if request.to_seq <= 0 else min(request.to_seq, committed)
        limit = min(max(request.max_frames, 1), MAX_CATCHUP_FRAMES)
        types = frozenset(request.types) if request.types else None
        frames: list[bytes] = []
        size = 0
        last_seq = request.from_seq - 1
        for frame in self.ledger.journal.read(request.from_seq, last, types):
            frames += [pack_seq(frame.seq), frame.type.encode(), frame.payload]
            size += len(frame.payload)
            last_seq = frame.seq
            if len(frames) // 3 >= limit or size >= MAX_CATCHUP_BYTES:
                break
        else:
            last_seq = max(last_seq, last)
        self.ledger.count("catch_ups")
        header = CatchUpReply(count=len(frames) // 3, last_seq=last_seq, head_seq=committed,
                              journal_id=self.ledger.journal.identity)
        return [encode(header), *frames]

    # -- rebuilds ----------------------------------------------------------------------------
    def _advance_rebuild(self, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        """Hand a requested rebuild to the main thread once no query runs; answer it when done."""
        if self._rebuild_running is not None:
            done, result, envelopes = self._rebuild_running
            if not done.is_set():
                return
            outcome = result[0]
            if isinstance(outcome, RebuildReply):
                reply = encode(outcome)
            else:
                reply = encode(ErrorReply(f"rebuild failed: {outcome}"))
            for envelope in envelopes:
                sock.send_multipart([*envelope, reply])
            self._rebuild_running = None
            if not self._rebuild_waiting:
                self.pool.resume()
        if self._rebuild_waiting and self.pool.idle():
            self.exports.close_all("the warehouse was rebuilt")  # their cursors must not outlive the connection
            done, result = threading.Event(), []
            self.rebuilds.put((done, result))
            self._rebuild_running = (done, result, self._rebuild_waiting)
            self._rebuild_waiting = []

    def _answer_rebuilds(self, sock: zmq.Socket, error: ErrorReply) -> None:  # type: ignore[type-arg]
        envelopes = list(self._rebuild_waiting)
        if self._rebuild_running is not None:
            envelopes += self._rebuild_running[2]
        for envelope in envelopes:
            try:
                sock.send_multipart([*envelope, encode(error)], flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass


def forward(replies: zmq.Socket, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
    """Send the query pool's finished replies (waiting on `replies`) to their clients on `sock`."""
    while True:
        try:
            frames = replies.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return
        try:
            sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:
            pass  # the client is gone


def answer_until_stopped(pool: QueryPool, replies: zmq.Socket, sock: zmq.Socket, deadline: float) -> None:  # type: ignore[type-arg]
    """After `pool.stop()`: forward each answer as its thread sends it until every pool thread has ended (or
    `deadline`, monotonic), then stop the pool's interrupter. Forwarding only once the threads had been joined for
    at most 5 s lost the answers of queries whose interruption took longer (a loaded box): their clients waited
    out their own timeouts for a ledger that had gone."""
    while pool.running() and time.monotonic() < deadline:
        if replies.poll(20):
            forward(replies, sock)
    pool.close()
    forward(replies, sock)
