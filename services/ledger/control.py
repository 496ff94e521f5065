"""The ledger's control endpoint: read-only SQL, catch-up from the journal, status, rebuild.

It runs in its own thread with its own DuckDB cursor, so queries never wait for ingest and
ingest never waits for queries. A rebuild is handed to the main thread, the only writer.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING

import duckdb
import zmq

from bus.arrow_ipc import to_ipc
from bus.codec import FrameError, decode_request, encode, pack_seq
from contracts.control import (
    CatchUpReply,
    CatchUpRequest,
    ErrorReply,
    QueryRequest,
    RebuildReply,
    RebuildRequest,
    StatusRequest,
)
from services.ledger.readonly import QueryRefused, check_read_only

if TYPE_CHECKING:
    from services.ledger.app import Ledger

log = logging.getLogger(__name__)

MAX_CATCHUP_FRAMES = 20000
MAX_CATCHUP_BYTES = 128 * 1024 * 1024


class ControlServer(threading.Thread):
    """Serves control requests on a ROUTER socket until the ledger stops."""

    def __init__(self, ledger: Ledger, endpoint: str) -> None:
        super().__init__(name="ledger-control", daemon=True)
        self.ledger = ledger
        self.endpoint = endpoint
        self.rebuilds: queue.Queue[tuple[threading.Event, list[object]]] = queue.Queue()
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._generation = -1
        self.ready = threading.Event()

    def run(self) -> None:
        sock = self.ledger.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self.ready.set()
        try:
            while not self.ledger.stopping.is_set():
                if not sock.poll(100):
                    continue
                identity, empty, request = sock.recv_multipart()[:3]
                reply = self._handle(request)
                sock.send_multipart([identity, empty, *reply], copy=False)
        finally:
            sock.close()

    def _reader(self) -> duckdb.DuckDBPyConnection:
        warehouse = self.ledger.warehouse
        if self._cursor is None or self._generation != warehouse.generation:
            self._cursor = warehouse.reader()
            self._generation = warehouse.generation
        return self._cursor

    def _handle(self, raw: bytes) -> list[bytes]:
        try:
            request = decode_request(raw)
        except FrameError as exc:
            self.ledger.count("control_rejected")
            return [encode(ErrorReply(f"malformed control request: {exc}", kind="malformed"))]
        try:
            if isinstance(request, QueryRequest):
                return self._query(request)
            if isinstance(request, CatchUpRequest):
                return self._catch_up(request)
            if isinstance(request, StatusRequest):
                return [encode(self.ledger.status())]
            if isinstance(request, RebuildRequest):
                return self._rebuild()
        except Exception as exc:  # a request must never take the ledger down
            log.exception("control request failed")
            return [encode(ErrorReply(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))]
        return [encode(ErrorReply("unknown request"))]

    def _query(self, request: QueryRequest) -> list[bytes]:
        cursor = self._reader()
        try:
            check_read_only(cursor, request.sql)
        except QueryRefused as exc:
            return [encode(ErrorReply(str(exc), kind="refused"))]
        try:
            table = cursor.sql(request.sql, params=request.params).to_arrow_table()
        except duckdb.Error as exc:
            return [encode(ErrorReply(str(exc).splitlines()[0], kind="query"))]
        self.ledger.count("queries")
        return [b"arrow", to_ipc(table)]

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
        header = CatchUpReply(count=len(frames) // 3, last_seq=last_seq, head_seq=committed)
        return [encode(header), *frames]

    def _rebuild(self) -> list[bytes]:
        done = threading.Event()
        result: list[object] = []
        self.rebuilds.put((done, result))
        done.wait()
        outcome = result[0]
        if isinstance(outcome, Exception):
            return [encode(ErrorReply(f"rebuild failed: {outcome}"))]
        assert isinstance(outcome, RebuildReply)
        return [encode(outcome)]
