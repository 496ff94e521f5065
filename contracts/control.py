"""Control-plane messages between clients and the ledger: acks, queries, catch-up, status.

None of these is journaled. Heartbeats ride the ingress socket but are kept only in memory.
"""

from __future__ import annotations

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


ControlRequest = QueryRequest | CatchUpRequest | StatusRequest | RebuildRequest


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


class CatchUpReply(msgspec.Struct, tag=True, tag_field="type"):
    """Header of a catch-up answer; the frames follow as (seq, payload) multipart pairs."""

    count: int
    last_seq: int
    head_seq: int


class RebuildReply(msgspec.Struct, tag=True, tag_field="type"):
    """A rebuild finished: how many events were re-applied and how long it took."""

    events: int
    seconds: float
