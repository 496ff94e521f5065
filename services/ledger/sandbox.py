"""One user query, run where it cannot change anything, within a time budget and a row cap.

The contract, the same for the ledger's query endpoint and for `oh query` with no ledger running:

- The connection was opened by `warehouse.connect`: external access (files, network, extensions,
  the environment) is off and the configuration is locked, by DuckDB itself.
- Every query gets a FRESH cursor and runs inside `BEGIN TRANSACTION READ ONLY`: DuckDB refuses any
  write ("transaction is launched in read-only mode"), data-modifying CTEs and EXPLAIN ANALYZE of a
  write included, before it touches a row. It is rolled back and the cursor closed afterwards, so
  temp tables, macros, variables and attachments die with it.
- DuckDB's parser splits the text; exactly one statement, not a transaction statement, is allowed,
  and that parsed statement (not the text again) is what runs: a `COMMIT; DELETE ...` can never end
  the read-only transaction and write after it. The friendly check of readonly.py runs too, for a
  clear message and for the few statements the sandbox lets through (CHECKPOINT, VACUUM...).
- Past its deadline the query is interrupted (`cursor.interrupt()`, repeated until it stops: an
  interrupt that lands before DuckDB starts executing would otherwise be lost), never abandoned.
- The result is fetched in record batches and the fetch stops as soon as it passes `max_rows` rows
  or `max_bytes` bytes: a cap, not a truncation; the query fails and says to narrow it.
- Every failure is a QueryFailed with a one-line message and a kind: `refused` (the read path
  refuses it), `query` (invalid SQL, a missing table, ...), `timeout`, `too_large`, `interrupted`
  (shutdown or rebuild) or `busy` (the query pool's queue is full; see queries.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from bus.query_limits import QueryLimits
from services.ledger.readonly import QueryRefused, check_read_only

log = logging.getLogger(__name__)

BATCH_ROWS = 65_536
REINTERRUPT_SECONDS = 0.25  # an expired query is interrupted again this often until it stops
MESSAGE_CHARS = 500


class QueryFailed(Exception):
    """A user query did not answer; `str()` is one line a person can act on, `kind` says why."""

    def __init__(self, message: str, kind: str) -> None:
        line = message.splitlines()[0] if message else kind
        super().__init__(line[:MESSAGE_CHARS])
        self.kind = kind


# -- interrupting ------------------------------------------------------------------------------
class Ticket:
    """One running query: its cursor, its deadline and, once interrupted, why."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, deadline: float, budget: float) -> None:
        self.cursor = cursor
        self.deadline = deadline
        self.budget = budget
        self.reason: str | None = None

    def interrupt(self, reason: str) -> None:
        """Interrupt the query; the first reason given is the one reported."""
        if self.reason is None:
            self.reason = reason
        self.cursor.interrupt()


class Interrupter(threading.Thread):
    """Interrupts every registered query past its deadline, again every REINTERRUPT_SECONDS until released.

    `interrupt_all(reason)` interrupts every running query now and, until `clear()`, every query
    registered after it (a query that slipped in just as a rebuild or shutdown began).
    """

    def __init__(self) -> None:
        super().__init__(name="query-interrupter", daemon=True)
        self._cond = threading.Condition()
        self._tickets: set[Ticket] = set()
        self._blanket: str | None = None
        self._stopped = False

    def register(self, cursor: duckdb.DuckDBPyConnection, deadline: float, budget: float) -> Ticket:
        """Watch `cursor` until `release`; interrupt it at `deadline` (monotonic seconds)."""
        ticket = Ticket(cursor, deadline, budget)
        with self._cond:
            if self._blanket is not None:
                ticket.reason = self._blanket
                ticket.deadline = time.monotonic()
            self._tickets.add(ticket)
            self._cond.notify()
        return ticket

    def release(self, ticket: Ticket) -> None:
        """Stop watching (idempotent): no interrupt reaches the cursor after this returns."""
        with self._cond:
            self._tickets.discard(ticket)

    def interrupt_all(self, reason: str) -> None:
        """Interrupt every running query now, and every one registered until `clear()`."""
        with self._cond:
            self._blanket = reason
            now = time.monotonic()
            for ticket in self._tickets:
                if ticket.reason is None:
                    ticket.reason = reason
                ticket.deadline = now
            self._cond.notify()

    def clear(self) -> None:
        """New queries run normally again."""
        with self._cond:
            self._blanket = None

    def stop(self) -> None:
        """End the thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def run(self) -> None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                for ticket in self._tickets:
                    if ticket.deadline <= now:
                        try:
                            ticket.interrupt("budget")
                        except duckdb.Error:  # the cursor closed meanwhile
                            pass
                        ticket.deadline = now + REINTERRUPT_SECONDS
                wake = min((t.deadline for t in self._tickets), default=now + 3600)
                self._cond.wait(max(wake - time.monotonic(), 0.001))


# -- running ---------------------------------------------------------------------------------
def run_read_only(
    open_cursor: Callable[[], duckdb.DuckDBPyConnection],
    sql: str,
    params: list[Any] | None,
    limits: QueryLimits,
    deadline: float,
    interrupter: Interrupter,
    budget: float | None = None,
) -> pa.Table:
    """Run one user query under the contract above; return its rows or raise QueryFailed.

    `deadline` is monotonic seconds; `budget` is the time the caller granted (for the message; by
    default what is left until the deadline).
    """
    left = deadline - time.monotonic()
    budget = left if budget is None else budget
    if left <= 0:
        raise QueryFailed(
            "the query waited for a free query thread past its time budget; try again, or ask for a longer budget",
            "timeout",
        )
    cursor = open_cursor()
    ticket = interrupter.register(cursor, deadline, budget)
    try:
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        try:
            statement = _one_statement(cursor, sql)
            check_read_only(cursor, sql)
            return _fetch(cursor, statement, params, limits)
        finally:
            interrupter.release(ticket)  # no interrupt may land on the rollback
            _rollback(cursor)
    except QueryRefused as exc:
        raise QueryFailed(str(exc), "refused") from None
    except QueryFailed:
        raise
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        raise classify(exc, ticket) from None
    finally:
        interrupter.release(ticket)
        cursor.close()


def _one_statement(cursor: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The one statement DuckDB's parser finds in `sql`; QueryRefused for none, several, or a transaction."""
    try:
        statements = cursor.extract_statements(sql)
        kinds = [statement.type for statement in statements]
    except duckdb.InterruptException:
        raise
    except (duckdb.Error, ValueError) as exc:
        raise QueryRefused(f"cannot parse the query: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    if len(statements) != 1:
        raise QueryRefused(f"send exactly one statement per query (got {len(statements)})")
    if kinds[0] == duckdb.StatementType.TRANSACTION:
        raise QueryRefused("refused: a query runs in its own read-only transaction and cannot begin or end one")
    return statements[0]


def _fetch(cursor: duckdb.DuckDBPyConnection, statement: Any, params: list[Any] | None, limits: QueryLimits) -> pa.Table:
    relation = cursor.sql(statement, params=params)
    if relation is None:  # a statement without a result; the check lets none through, but be exact
        return pa.table({})
    reader = relation.to_arrow_reader(BATCH_ROWS)
    batches: list[pa.RecordBatch] = []
    rows = size = 0
    try:
        for batch in reader:
            rows += batch.num_rows
            size += batch.nbytes
            if rows > limits.max_rows:
                raise QueryFailed(
                    f"the result has more than {limits.max_rows:,} rows, the query endpoint's cap "
                    "(OH_QUERY_MAX_ROWS): add a LIMIT, a narrower WHERE or an aggregate",
                    "too_large",
                )
            if size > limits.max_bytes:
                raise QueryFailed(
                    f"the result is larger than {limits.max_bytes / 2**20:,.0f} MiB, the query endpoint's cap "
                    "(OH_QUERY_MAX_BYTES): select fewer columns or rows, or add a LIMIT",
                    "too_large",
                )
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=reader.schema)
    finally:
        reader.close()


def _rollback(cursor: duckdb.DuckDBPyConnection) -> None:
    try:
        cursor.execute("ROLLBACK")
    except duckdb.Error:
        pass  # closing the cursor rolls back whatever is left


def classify(exc: BaseException, ticket: Ticket) -> QueryFailed:
    """The QueryFailed a DuckDB (or Arrow stream) error stands for, one line."""
    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # An interrupt fails whatever step it lands in, and later steps fail on the aborted transaction:
    # once the ticket was interrupted, its reason is the answer.
    if ticket.reason is not None or isinstance(exc, duckdb.InterruptException) or line.startswith("INTERRUPT Error"):
        if ticket.reason == "budget":
            return QueryFailed(
                f"the query ran past its time budget of {ticket.budget:g}s and was stopped: add a LIMIT or a "
                "narrower WHERE (OH_QUERY_BUDGET_SECONDS sets the budget)",
                "timeout",
            )
        if ticket.reason == "rebuild":
            return QueryFailed("the query was stopped because the warehouse is being rebuilt; run it again", "interrupted")
        if ticket.reason == "shutdown":
            return QueryFailed("the query was stopped because the ledger is shutting down", "interrupted")
        return QueryFailed("the query was interrupted", "interrupted")
    if isinstance(exc, duckdb.PermissionException) or line.startswith("Permission Error"):
        return QueryFailed(f"refused: queries cannot reach files, the network or extensions ({line})", "refused")
    if "read-only mode" in line or "read-only transaction" in line:
        return QueryFailed(f"refused: the query endpoint is read-only ({line})", "refused")
    if "configuration has been locked" in line:
        return QueryFailed(f"refused: queries cannot change settings ({line})", "refused")
    return QueryFailed(line, "query")
