"""The ledger's projections in this process: sequence, de-duplicate, validate and apply, with no journal
file and no sockets, for running job handlers in-process (services/stack.py).

Each appended batch is applied through the same code as the real ledger (`Warehouse.commit`, the
same projections, the same `validate`), so the tables a handler produces here are the tables it
produces on the bus; queries run under the same sandbox as the ledger's query endpoint
(sandbox.run_read_only: read-only transaction, time budget, row cap). The warehouse is in memory
unless a path is given.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from bus.codec import FrameError, encode
from bus.query_limits import QueryLimits
from contracts import EPHEMERAL_TYPES, Message
from services.ledger.projections import validate
from services.ledger.sandbox import Interrupter, run_read_only
from services.ledger.warehouse import Warehouse


class InProcessLedger:
    """Applies messages at once, in the order given, and answers read-only SQL."""

    def __init__(self, path: Path | None = None) -> None:
        self.warehouse = Warehouse(path or Path(":memory:"))
        self.head_seq = self.warehouse.applied_seq
        self.seen: set[str] = set()
        self.rejected: list[tuple[str, str]] = []
        self.limits = QueryLimits.from_env()
        self.interrupter = Interrupter()
        self.interrupter.start()

    def append(self, messages: Sequence[Message]) -> list[Message]:
        """Journal and apply `messages`; return those that were new (duplicates and rejects are dropped)."""
        fresh: list[tuple[int, Message]] = []
        sizes: list[int] = []
        for message in messages:
            if type(message).__name__ in EPHEMERAL_TYPES or message.id in self.seen:
                continue
            try:
                validate(message)
            except FrameError as exc:
                self.rejected.append((message.id, str(exc)))
                continue
            self.seen.add(message.id)
            self.head_seq += 1
            fresh.append((self.head_seq, message))
            sizes.append(len(encode(message)))
        self.warehouse.commit(fresh, sizes)
        return [message for _, message in fresh]

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Read-only SQL, run and refused the way the ledger's query endpoint runs it (sandbox.QueryFailed)."""
        budget = self.limits.budget
        return run_read_only(self.warehouse.reader, sql, params, self.limits, time.monotonic() + budget,
                             self.interrupter, budget)

    def close(self) -> None:
        self.interrupter.stop()
        self.warehouse.close()
