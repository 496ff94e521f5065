"""Reading the warehouse with no ledger running: the file opened read-only, every query sandboxed.

`oh query`, `oh db health` and the portfolio commands read through `open_sandboxed(path)` when no
ledger answers. The file is opened `read_only=True` by `warehouse.connect` (external access off,
configuration locked) and each query runs under the same contract as the ledger's endpoint
(sandbox.py): a fresh cursor in a READ ONLY transaction, the friendly check, a time budget enforced
by interrupting the query from a timer thread, and the row and byte caps. Opening fails with
duckdb.IOException when a ledger holds the file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from services.ledger.sandbox import Interrupter, QueryLimits, run_read_only
from services.ledger.warehouse import connect


class OfflineReader:
    """Sandboxed read-only queries on a warehouse file, one at a time."""

    def __init__(self, path: Path, limits: QueryLimits | None = None) -> None:
        self.limits = limits or QueryLimits.from_env()
        self._con = connect(path, read_only=True)
        self._interrupter = Interrupter()
        self._interrupter.start()

    def query(self, sql: str, params: list[Any] | None = None, budget: float | None = None) -> pa.Table:
        """Run one read statement; raise sandbox.QueryFailed (one line, with a kind) if it does not answer."""
        seconds = self.limits.budget if budget is None else min(budget, self.limits.budget)
        return run_read_only(
            self._con.cursor, sql, params, self.limits, time.monotonic() + seconds, self._interrupter, seconds
        )

    def close(self) -> None:
        """Stop the timer thread and close the file."""
        self._interrupter.stop()
        self._con.close()


def open_sandboxed(path: Path, limits: QueryLimits | None = None) -> OfflineReader:
    """Open the warehouse at `path` read-only for sandboxed queries (limits from OH_QUERY_* by default)."""
    return OfflineReader(path, limits)
