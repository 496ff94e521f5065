"""The ledger's query pool: user queries run on a few threads, off the control loop.

- `submit(job)` never blocks: a full queue returns False and the control thread answers `busy` at
  once. At most `limits.threads` queries run; at most `limits.queue` wait. A job's budget starts
  when the control thread received it, so time spent waiting counts.
- Each query runs under sandbox.run_read_only on a fresh cursor of the ledger's connection. Other
  work that must stay off the control thread (an export's pages, export.py) comes as a CallJob: the
  pool runs it and sends the frames it returns, under the same queue bound, pause and shutdown.
- Replies go back to the control thread, the only user of the ROUTER socket (ZeroMQ sockets are not
  thread-safe), over an inproc PUSH socket per pool thread to the PULL socket the control thread
  binds at `replies_endpoint` and polls beside the ROUTER. Inproc passes the Arrow bytes without a
  copy and wakes the control thread's poll at once; a ROUTER per pool with a proxy would move the
  same frames through one more socket and one more thread, for nothing.
- `pause()` (a rebuild is coming) interrupts the running queries and holds the waiting ones;
  `idle()` says when none runs; `resume()` lets them go. `stop()` interrupts everything and the threads
  answer the waiting queries `interrupted`; the control thread forwards those answers until `running()` is
  False (services/ledger/control.py, `ControlServer.run`), so no cursor outlives the ledger's close.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import zmq

from bus.arrow_ipc import to_ipc
from bus.codec import encode
from bus.query_limits import QueryLimits
from contracts.control import ErrorReply
from services.ledger.sandbox import Interrupter, QueryFailed, run_read_only

log = logging.getLogger(__name__)

COUNTER_OF_KIND = {"query": "queries_failed"}


@dataclass
class QueryJob:
    """One query request waiting for a thread: where to reply, what to run, until when."""

    envelope: list[bytes]  # the ROUTER routing frames the reply goes back with
    sql: str
    params: list[Any] | None
    budget: float
    deadline: float  # monotonic


@dataclass
class CallJob:
    """Work other than a user query (an export page): `run()` returns the reply frames; it must not raise."""

    envelope: list[bytes]
    run: Callable[[], list[bytes]]


class QueryPool:
    """A bounded queue and `limits.threads` threads that run sandboxed queries and push their replies."""

    def __init__(
        self,
        open_cursor: Callable[[], duckdb.DuckDBPyConnection],
        limits: QueryLimits,
        ctx: zmq.Context,  # type: ignore[type-arg]
        replies_endpoint: str,
        count: Callable[[str], None],
    ) -> None:
        self.limits = limits
        self._open_cursor = open_cursor
        self._cursor_lock = threading.Lock()
        self._ctx = ctx
        self._endpoint = replies_endpoint
        self._count = count
        self._jobs: queue.Queue[QueryJob | CallJob] = queue.Queue(maxsize=limits.queue)
        self._gate = threading.Condition()
        self._active = 0
        self._paused = False
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"ledger-query-{i}", daemon=True) for i in range(limits.threads)
        ]
        self.interrupter = Interrupter()

    def start(self) -> None:
        """Start the threads (the control thread has bound `replies_endpoint` or will shortly)."""
        self.interrupter.start()
        for thread in self._threads:
            thread.start()

    # -- the control thread's side -----------------------------------------------------------
    def submit(self, job: QueryJob | CallJob) -> bool:
        """Queue a query; False when the queue is full (answer `busy`) or the pool is stopping."""
        if self._stopping:
            return False
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    def gauges(self) -> dict[str, int]:
        """Queries running and waiting now (shown by `oh status` beside the counters)."""
        with self._gate:
            return {"queries_running": self._active, "queries_waiting": self._jobs.qsize()}

    def pause(self) -> None:
        """Interrupt the running queries and hold the waiting ones (a rebuild replaces the connection)."""
        with self._gate:
            self._paused = True
        self.interrupter.interrupt_all("rebuild")

    def idle(self) -> bool:
        """True when no query runs (after `pause`, the connection may be replaced)."""
        with self._gate:
            return self._active == 0

    def resume(self) -> None:
        """Let the held queries run."""
        self.interrupter.clear()
        with self._gate:
            self._paused = False
            self._gate.notify_all()

    def stop(self) -> None:
        """Interrupt every query and take no more; the threads answer the waiting ones `interrupted`, then end."""
        with self._gate:
            self._stopping = True
            self._gate.notify_all()
        self.interrupter.interrupt_all("shutdown")

    def running(self) -> bool:
        """Whether a pool thread is still alive (after `stop`: still answering)."""
        return any(thread.is_alive() for thread in self._threads)

    def close(self) -> None:
        """After `stop` and the threads' end (or the caller's patience): stop the interrupter's timer thread."""
        self.interrupter.stop()

    # -- the query threads -------------------------------------------------------------------
    def _serve(self) -> None:
        replies = self._ctx.socket(zmq.PUSH)
        replies.setsockopt(zmq.LINGER, 1000)
        replies.connect(self._endpoint)
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=0.1)
                except queue.Empty:
                    if self._stopping:
                        return
                    continue
                with self._gate:
                    while self._paused and not self._stopping:
                        self._gate.wait()
                    stopping = self._stopping
                    if not stopping:
                        self._active += 1
                if stopping:
                    frames = self._failed(QueryFailed("the ledger is shutting down", "interrupted"))
                else:
                    try:
                        frames = self._call(job) if isinstance(job, CallJob) else self._run(job)
                    finally:
                        with self._gate:
                            self._active -= 1
                            self._gate.notify_all()
                replies.send_multipart([*job.envelope, *frames], copy=False)
        finally:
            replies.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor of the ledger's connection (serialized: the connection makes them one at a time)."""
        with self._cursor_lock:
            return self._open_cursor()

    def _call(self, job: CallJob) -> list[bytes]:
        try:
            return job.run()
        except Exception as exc:  # a job must never take a query thread down
            log.exception("pool job failed unexpectedly")
            return self._failed(QueryFailed(f"{type(exc).__name__}: {exc}", "error"))

    def _run(self, job: QueryJob) -> list[bytes]:
        try:
            table = run_read_only(
                self.cursor, job.sql, job.params, self.limits, job.deadline, self.interrupter, job.budget
            )
        except QueryFailed as exc:
            return self._failed(exc)
        except Exception as exc:  # a query must never take a query thread down
            log.exception("query failed unexpectedly")
            return self._failed(QueryFailed(f"{type(exc).__name__}: {exc}", "error"))
        self._count("queries")
        return [b"arrow", to_ipc(table)]

    def _failed(self, exc: QueryFailed) -> list[bytes]:
        self._count(COUNTER_OF_KIND.get(exc.kind, f"queries_{exc.kind}"))
        return [encode(ErrorReply(str(exc), kind=exc.kind))]
