"""The one client for the ledger's control endpoint: queries (Arrow), catch-up, status, rebuild, exports.

A request that times out discards its socket (a REQ socket cannot be reused after a lost reply)
and raises LedgerUnavailable, so callers can tell "the ledger is down" from "the query failed".

A query asks the ledger for a time budget (the `timeout` given, else the client's), and the
ledger interrupts it past that budget and answers a QueryError of kind `timeout`. The client waits
QUERY_REPLY_GRACE seconds longer than the budget, so that answer (not a LedgerUnavailable) is what
a caller sees when a query runs too long.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from bus.codec import decode_control_reply, encode, unpack_seq
from bus.home import Home
from bus.journal_lock import live_holder
from contracts.control import (
    CatchUpReply,
    CatchUpRequest,
    ErrorReply,
    ExportClose,
    ExportClosed,
    ExportFetch,
    ExportOpened,
    ExportPage,
    ExportRequest,
    QueryRequest,
    RebuildReply,
    RebuildRequest,
    StatusReply,
    StatusRequest,
)

if TYPE_CHECKING:
    import pyarrow as pa


class LedgerUnavailable(RuntimeError):
    """The ledger did not answer in time (not running, or busy)."""


QUERY_REPLY_GRACE = 5.0  # seconds a query client waits beyond the budget it asked for


class QueryError(RuntimeError):
    """The ledger answered with an error; `kind` is refused, query, timeout, too_large, busy,
    interrupted, malformed or error (see contracts.control.ErrorReply)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class ControlClient:
    """Talks to the ledger's control endpoint (one request at a time)."""

    def __init__(self, home: Home, timeout: float = 10.0, ctx: zmq.Context | None = None) -> None:
        self.home = home
        self.endpoint = home.endpoint("control")
        self.timeout = timeout
        self.ctx = ctx or zmq.Context.instance()
        self._sock: zmq.Socket | None = None

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            sock = self.ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            try:
                self.home.connect(sock, "control")
            except BaseException:
                sock.close()  # no key to connect with (bus/curve.py): the error says which
                raise
            self._sock = sock
        return self._sock

    def _request(self, request: Any, timeout: float | None = None) -> list[bytes]:
        sock = self._socket()
        sock.send(encode(request))
        wait = self.timeout if timeout is None else timeout
        if not sock.poll(int(wait * 1000)):
            self.close()
            hint = (" (over tcp a ledger answers only clients whose key it authorized: `oh keys allow` on its host)"
                    if self.endpoint.startswith("tcp://") else "")
            raise LedgerUnavailable(f"the ledger did not answer within {wait:g}s at {self.endpoint}{hint}")
        return sock.recv_multipart()

    def answers(self, timeout: float = 1.0) -> bool:
        """True if a ledger answers a status request. False at once when its socket does not exist, and when
        nothing answers within `timeout`, unless the journal's writer lock names a live ledger on this host: that
        one is busy, not down (a loaded machine, a long commit), and is given the rest of the client's timeout
        before a caller is told the ledger is not running."""
        if self.endpoint.startswith("ipc://") and not Path(self.endpoint[len("ipc://"):]).exists():
            return False
        try:
            self.status(timeout=timeout)
            return True
        except LedgerUnavailable:
            if self.timeout <= timeout or live_holder(self.home.journal) != "ledger":
                return False
        try:
            self.status(timeout=self.timeout - timeout)
            return True
        except LedgerUnavailable:
            return False

    def close(self) -> None:
        """Drop the socket (a new one is made on the next request)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @staticmethod
    def _raise_if_error(header: Any) -> None:
        if isinstance(header, ErrorReply):
            raise QueryError(header.message, header.kind)

    def query(self, sql: str, params: list[Any] | None = None, timeout: float | None = None) -> pa.Table:
        """Run one read-only SQL statement on the ledger and return the result as an Arrow table.

        The query's budget is `timeout` (default: the client's timeout), capped by the ledger's own.
        """
        budget = self.timeout if timeout is None else timeout
        frames = self._request(QueryRequest(sql=sql, params=params, budget_s=budget), budget + QUERY_REPLY_GRACE)
        if frames[0] == b"arrow":
            from bus.arrow_ipc import from_ipc

            return from_ipc(frames[1])
        self._raise_if_error(decode_control_reply(frames[0]))
        raise QueryError("unexpected reply to a query", "error")

    def catch_up(
        self, from_seq: int, to_seq: int = 0, types: list[str] | None = None, max_frames: int = 5000
    ) -> tuple[CatchUpReply, list[tuple[int, str, bytes]]]:
        """Fetch committed journal frames from `from_seq` (one page); returns the header and (seq, type, payload)."""
        frames = self._request(CatchUpRequest(from_seq=from_seq, to_seq=to_seq, types=types, max_frames=max_frames))
        header = decode_control_reply(frames[0])
        self._raise_if_error(header)
        assert isinstance(header, CatchUpReply)
        body = frames[1:]
        return header, [
            (unpack_seq(body[i]), body[i + 1].decode(), body[i + 2]) for i in range(0, len(body), 3)
        ]

    def status(self, timeout: float | None = None) -> StatusReply:
        """The ledger's head, offset, counters and service heartbeats."""
        header = decode_control_reply(self._request(StatusRequest(), timeout)[0])
        self._raise_if_error(header)
        assert isinstance(header, StatusReply)
        return header

    def rebuild(self, timeout: float = 3600.0) -> RebuildReply:
        """Ask the running ledger to rebuild its warehouse from the journal."""
        header = decode_control_reply(self._request(RebuildRequest(), timeout)[0])
        self._raise_if_error(header)
        assert isinstance(header, RebuildReply)
        return header

    # -- exports (services/ledger/export.py) --------------------------------------------------------
    def export_open(self, tables: list[str] | None, since: date | None = None, until: date | None = None) -> ExportOpened:
        """Open a consistent export of `tables` (None: all); the answer names its seq and each table's counts."""
        header = decode_control_reply(
            self._request(ExportRequest(tables=tables, since=since, until=until), self.timeout + QUERY_REPLY_GRACE)[0]
        )
        self._raise_if_error(header)
        assert isinstance(header, ExportOpened)
        return header

    def export_fetch(self, export_id: str) -> tuple[ExportPage, pa.RecordBatchReader | None]:
        """The next page of an open export: its header and a reader of its batches (None when it has none)."""
        import pyarrow as pa

        frames = self._request(ExportFetch(export_id=export_id), self.timeout + QUERY_REPLY_GRACE)
        header = decode_control_reply(frames[0])
        self._raise_if_error(header)
        assert isinstance(header, ExportPage)
        return header, (pa.ipc.open_stream(pa.py_buffer(frames[1])) if len(frames) > 1 else None)

    def export_close(self, export_id: str) -> None:
        """End an open export early (its read transaction ends)."""
        header = decode_control_reply(self._request(ExportClose(export_id=export_id))[0])
        self._raise_if_error(header)
        assert isinstance(header, ExportClosed)
