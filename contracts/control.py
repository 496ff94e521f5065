"""Control-plane messages between clients and the ledger: acks, queries, catch-up, status, exports.

None of these is journaled. Heartbeats ride the ingress socket but are kept only in memory.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec

from contracts.base import Message


class Heartbeat(Message, kw_only=True):
    """A process says it is alive; the ledger keeps the latest per service for `oh status`."""

    service: str
    pid: int
    state: str = "running"
    run_id: str | None = None  # the run the service is executing now (None: idle, or a sender from before run ids)


class Ack(msgspec.Struct, tag=True, tag_field="type"):
    """The ledger journaled these ids (duplicates are acked with the seq they first got)."""

    ids: list[str]
    seqs: list[int]


class Nack(msgspec.Struct, tag=True, tag_field="type"):
    """The ledger did not store a frame. `retry=False`: it is invalid, never resend it. `retry=True`: the
    ledger cannot store anything right now (disk full, journal damaged; `reason` says which): keep it and resend."""

    id: str | None
    reason: str
    retry: bool = False


class QueryRequest(msgspec.Struct, tag=True, tag_field="type"):
    """Run one read-only SQL statement; the answer is Arrow IPC bytes.

    `budget_s` asks for at most that many seconds (the ledger's own budget, OH_QUERY_BUDGET_SECONDS,
    caps it; None means that budget); past it the query is interrupted and the answer is an
    ErrorReply of kind `timeout`.
    """

    sql: str
    params: list[Any] | None = None
    budget_s: float | None = None


class CatchUpRequest(msgspec.Struct, tag=True, tag_field="type"):
    """Ask for journaled frames with seq in [from_seq, to_seq] (to_seq 0 = head), optionally of some types."""

    from_seq: int
    to_seq: int = 0
    types: list[str] | None = None
    max_frames: int = 5000


class StatusRequest(msgspec.Struct, tag=True, tag_field="type"):
    """Ask the ledger for its head, counters and the services' last heartbeats."""


class RebuildRequest(msgspec.Struct, tag=True, tag_field="type"):
    """Drop the DuckDB projections and re-apply the whole journal."""


class ExportRequest(msgspec.Struct, tag=True, tag_field="type"):
    """Open a consistent read of tables for `oh export` (services/ledger/export.py): every table (None) or
    those named, all of them or the sessions `since`..`until` (inclusive) of the tables with a session."""

    tables: list[str] | None = None
    since: date | None = None
    until: date | None = None


class ExportFetch(msgspec.Struct, tag=True, tag_field="type"):
    """Ask for the next page of an open export."""

    export_id: str


class ExportClose(msgspec.Struct, tag=True, tag_field="type"):
    """End an open export before its last page (its read transaction ends)."""

    export_id: str


ControlRequest = QueryRequest | CatchUpRequest | StatusRequest | RebuildRequest | ExportRequest | ExportFetch | ExportClose


class ErrorReply(msgspec.Struct, tag=True, tag_field="type"):
    """A request failed; `message` is one line a person can act on.

    `kind`: refused (the read path refuses the statement), query (invalid SQL), timeout (past its
    budget), too_large (past the row or byte cap), busy (the query queue is full), interrupted
    (shutdown or rebuild), malformed (a bad request) or error.
    """

    message: str
    kind: str = "error"


class StatusReply(msgspec.Struct, tag=True, tag_field="type"):
    """The ledger's state: journal head, applied offset, counters, heartbeats by service."""

    head_seq: int
    applied_seq: int
    started_at: float
    counters: dict[str, int]
    heartbeats: dict[str, dict[str, Any]]
    fsync: str
    fault: str | None = None  # halted: the journal is damaged (or shorter than the warehouse) until repaired
    stalled: str | None = None  # not accepting events for now (disk full); ends by itself when space returns
    tcp: str | None = None  # the bus also listens here (CURVE; bus.toml), None: ipc only
    journal_id: str = ""  # which journal head_seq counts in (bus/journal_identity.py); "": a ledger before ids


class CatchUpReply(msgspec.Struct, tag=True, tag_field="type"):
    """Header of a catch-up answer; the frames follow as (seq, payload) multipart pairs."""

    count: int
    last_seq: int
    head_seq: int
    journal_id: str = ""  # which journal these seqs belong to; "": a ledger before ids


class ExportTable(msgspec.Struct):
    """One table of an export, as of the export's snapshot: its Arrow schema (IPC-serialized), its partition
    column (a DATE; None: not partitioned), whether the date range applied, rows in all and per partition
    (the partition's ISO date -> rows)."""

    name: str
    partition_by: str | None
    ranged: bool
    rows: int
    partitions: dict[str, int]
    schema: bytes


class ExportOpened(msgspec.Struct, tag=True, tag_field="type"):
    """An export is open: every page comes from one snapshot, the warehouse as of journal seq `seq`."""

    export_id: str
    seq: int
    tables: list[ExportTable]


class ExportPage(msgspec.Struct, tag=True, tag_field="type"):
    """Header of one page of an export: `rows` rows of `table` follow as one Arrow IPC stream frame (none when
    `rows` is 0); `done`: this was the last page (the export is closed)."""

    table: str
    rows: int
    done: bool


class ExportClosed(msgspec.Struct, tag=True, tag_field="type"):
    """The export is closed."""

    export_id: str


class RebuildReply(msgspec.Struct, tag=True, tag_field="type"):
    """A rebuild finished: how many events were re-applied and how long it took."""

    events: int
    seconds: float
