"""The read-only guard of the query endpoint: one SELECT or EXPLAIN statement, nothing else."""

from __future__ import annotations

import duckdb

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class QueryRefused(ValueError):
    """The statement would change something, or is not one readable statement."""


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise QueryRefused with a one-line reason unless `sql` is exactly one read statement."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"cannot parse the query: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryRefused(f"send exactly one statement per query (got {len(statements)})")
    kind = statements[0].type
    if kind not in ALLOWED:
        raise QueryRefused(
            f"refused: the query endpoint is read-only and this is a {kind.name} statement; "
            "only SELECT (including WITH, DESCRIBE, SHOW, SUMMARIZE) and EXPLAIN are allowed"
        )
