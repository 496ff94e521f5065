"""The query endpoint's friendly first check: one SELECT or EXPLAIN statement, nothing else.

This is NOT what keeps the warehouse safe: DuckDB does that (services/ledger/sandbox.py runs every
query in a READ ONLY transaction on a connection whose external access and configuration are
locked, see warehouse.SANDBOX_SETTINGS). This check only answers early and clearly, and refuses
the few statements the sandbox still lets through although a reader has no business running them:
CHECKPOINT/VACUUM/ANALYZE (statement types) and, inside a SELECT, the table functions
`checkpoint()`/`force_checkpoint()` and `query()` (which runs a string as SQL), found with DuckDB's
own parser (`json_serialize_sql`), or its tokenizer for a SELECT the serializer does not cover. That parse
costs as much as running a short query, so it runs only when the text could name one of those functions
(`may_name_forbidden`: one of the names in any letter case, or any non-ASCII character).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import duckdb

_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?", re.IGNORECASE)
ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
ALLOWED_KINDS = "only SELECT (including WITH, DESCRIBE, SHOW, SUMMARIZE) and EXPLAIN are allowed"
FORBIDDEN_TABLE_FUNCTIONS = {
    "checkpoint": "checkpoint() writes the warehouse's checkpoint; only the ledger does that",
    "force_checkpoint": "force_checkpoint() writes the warehouse's checkpoint; only the ledger does that",
    "query": "query() runs a string as SQL; send that statement itself",
}


class QueryRefused(ValueError):
    """The statement would change something, or is not one readable statement."""


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _statements(con: duckdb.DuckDBPyConnection, sql: str, what: str = "query") -> list[tuple[Any, str]]:
    """(type, text) of each statement in `sql`."""
    try:
        return [(statement.type, statement.query) for statement in con.extract_statements(sql)]
    except duckdb.Error as exc:
        raise QueryRefused(f"cannot parse the {what}: {_first_line(exc)}") from None
    except ValueError as exc:  # a statement type the Python enum does not know (e.g. UPDATE EXTENSIONS)
        raise QueryRefused(f"refused: cannot classify the {what} ({_first_line(exc)}); {ALLOWED_KINDS}") from None


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise QueryRefused with a one-line reason unless `sql` is exactly one read statement."""
    statements = _statements(con, sql)
    if len(statements) != 1:
        raise QueryRefused(f"send exactly one statement per query (got {len(statements)})")
    kind, text = statements[0]
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE executes its statement: what it explains must itself be a read.
        explained = _statements(con, _EXPLAIN.sub("", text, count=1), "explained query")
        if len(explained) != 1 or explained[0][0] != duckdb.StatementType.SELECT:
            name = explained[0][0].name if explained else "empty"
            raise QueryRefused(f"refused: the query endpoint is read-only and EXPLAIN may only wrap a SELECT (got {name})")
        _check_table_functions(con, explained[0][1])
        return
    if kind not in ALLOWED:
        raise QueryRefused(f"refused: the query endpoint is read-only and this is a {kind.name} statement; {ALLOWED_KINDS}")
    _check_table_functions(con, text)


def _check_table_functions(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    if not may_name_forbidden(sql):
        return
    for name in sorted(table_functions(con, sql)):
        if name in FORBIDDEN_TABLE_FUNCTIONS:
            raise QueryRefused(f"refused: the query endpoint is read-only; {FORBIDDEN_TABLE_FUNCTIONS[name]}")


def may_name_forbidden(sql: str) -> bool:
    """False only when `sql` cannot call a forbidden table function: it is all ASCII and no forbidden name
    appears in it in any letter case. A call names its function in the text (bare, quoted or schema-qualified;
    DuckDB folds only ASCII letters), so the parse below, which costs a statement's execution (~0.5 ms, most
    of a short query's check), runs only for text that contains one of the names (or any non-ASCII letter)."""
    if not sql.isascii():
        return True
    text = sql.lower()
    return any(name in text for name in FORBIDDEN_TABLE_FUNCTIONS)


def table_functions(con: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    """The lower-case names of the table functions one SELECT statement calls, at any depth."""
    try:
        rows = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()
        tree = json.loads(rows[0][0]) if rows else {"error": True}
    except (duckdb.Error, ValueError):
        tree = {"error": True}
    if tree.get("error"):
        return _called_names(sql)
    return {name.lower() for name in _walk_table_functions(tree)}


def _walk_table_functions(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") == "TABLE_FUNCTION" and isinstance(node.get("function"), dict):
            name = node["function"].get("function_name")
            if isinstance(name, str):
                yield name
        for value in node.values():
            yield from _walk_table_functions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_table_functions(value)


def _called_names(sql: str) -> set[str]:
    """Names followed by `(` per DuckDB's tokenizer: the fallback when a SELECT cannot be serialized."""
    tokens = duckdb.tokenize(sql)
    texts = [sql[start:end].strip() for (start, _), (end, _) in zip(tokens, [*tokens[1:], (len(sql), None)], strict=True)]
    names = set()
    for (_, kind), text, following in zip(tokens, texts, [*texts[1:], ""], strict=True):
        if kind in (duckdb.token_type.identifier, duckdb.token_type.keyword) and following.startswith("("):
            names.add(text.strip('"').lower())
    return names
