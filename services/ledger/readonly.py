"""The read-only guard of the query endpoint: one SELECT or EXPLAIN statement, nothing else."""

from __future__ import annotations

import re

import duckdb

_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?", re.IGNORECASE)
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
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE executes its statement: what it explains must itself be a read.
        inner = _EXPLAIN.sub("", statements[0].query, count=1)
        try:
            explained = con.extract_statements(inner)
        except duckdb.Error as exc:
            raise QueryRefused(f"cannot parse the explained query: {str(exc).splitlines()[0]}") from None
        if len(explained) != 1 or explained[0].type != duckdb.StatementType.SELECT:
            name = explained[0].type.name if explained else "empty"
            raise QueryRefused(f"refused: the query endpoint is read-only and EXPLAIN may only wrap a SELECT (got {name})")
        return
    if kind not in ALLOWED:
        raise QueryRefused(
            f"refused: the query endpoint is read-only and this is a {kind.name} statement; "
            "only SELECT (including WITH, DESCRIBE, SHOW, SUMMARIZE) and EXPLAIN are allowed"
        )
