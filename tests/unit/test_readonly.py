"""The query endpoint's read-only guard: one reading statement passes, anything else is refused with a reason."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from services.ledger.readonly import QueryRefused, check_read_only


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory database with one small table, like the warehouse's candles."""
    connection = duckdb.connect()
    connection.execute("CREATE TABLE candles_daily (symbol VARCHAR, date DATE, close DOUBLE)")
    connection.execute("INSERT INTO candles_daily VALUES ('AAPL', DATE '2025-01-02', 100.0)")
    yield connection
    connection.close()


READS = [
    "SELECT * FROM candles_daily",
    "select symbol, count(*) from candles_daily group by all",
    "SELECT 1;",
    "  -- a comment first\n SELECT 1",
    "WITH last AS (SELECT max(date) AS d FROM candles_daily) SELECT * FROM last",
    "DESCRIBE candles_daily",
    "SHOW TABLES",
    "SHOW candles_daily",
    "SUMMARIZE candles_daily",
    "EXPLAIN SELECT * FROM candles_daily",
    "FROM candles_daily",
    "VALUES (1, 2)",
]


@pytest.mark.parametrize("sql", READS)
def test_reading_statements_pass_and_run(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """SELECT (with WITH, DESCRIBE, SHOW, SUMMARIZE, FROM-first, VALUES) and EXPLAIN are allowed, and are valid SQL."""
    check_read_only(con, sql)
    con.sql(sql).fetchall()


WRITES = [
    ("DROP TABLE candles_daily", "DROP"),
    ("DELETE FROM candles_daily", "DELETE"),
    ("INSERT INTO candles_daily VALUES ('X', DATE '2025-01-03', 1)", "INSERT"),
    ("UPDATE candles_daily SET close = 0", "UPDATE"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("CREATE OR REPLACE VIEW v AS SELECT 1", "CREATE"),
    ("COPY candles_daily TO '/tmp/oh-never-written.csv'", "COPY"),
    ("ATTACH ':memory:' AS other", "ATTACH"),
    ("DETACH other", "DETACH"),
    ("SET threads = 1", "SET"),
    ("RESET threads", "SET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("CHECKPOINT", "CALL"),
    ("CALL pragma_version()", "CALL"),
    ("ALTER TABLE candles_daily ADD COLUMN x INT", "ALTER"),
    ("INSTALL httpfs", "LOAD"),
    ("LOAD httpfs", "LOAD"),
    ("EXPORT DATABASE '/tmp/oh-never-exported'", "EXPORT"),
    ("VACUUM", "VACUUM"),
    ("BEGIN TRANSACTION", "TRANSACTION"),
]


@pytest.mark.parametrize(("sql", "kind"), WRITES, ids=[w[0].split()[0] + "-" + str(i) for i, w in enumerate(WRITES)])
def test_anything_else_is_refused_naming_the_statement_kind(
    con: duckdb.DuckDBPyConnection, sql: str, kind: str
) -> None:
    """Writes, settings, attachments and calls are refused before running, and the reason names what was sent."""
    with pytest.raises(QueryRefused, match=rf"read-only and this is a {kind} statement"):
        check_read_only(con, sql)
    assert con.execute("SELECT count(*) FROM candles_daily").fetchone() == (1,)


@pytest.mark.parametrize(
    ("sql", "count"),
    [("SELECT 1; SELECT 2", 2), ("SELECT 1; DROP TABLE candles_daily", 2), ("SELECT 1;;SELECT 2;SELECT 3", 3),
     ("", 0), ("-- only a comment", 0), (";", 0)],
)
def test_not_exactly_one_statement_is_refused(con: duckdb.DuckDBPyConnection, sql: str, count: int) -> None:
    """Zero or several statements are refused, saying how many were sent (a second one could be a write)."""
    with pytest.raises(QueryRefused, match=rf"exactly one statement .*got {count}"):
        check_read_only(con, sql)


@pytest.mark.parametrize("sql", ["SELEC 1", "SELECT * FROM", "DROP", "SELECT 'unterminated", "(((", "\x00"])
def test_unparsable_sql_is_refused_as_unparsable(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """SQL the parser cannot read is refused with a 'cannot parse' reason (not a DuckDB exception)."""
    with pytest.raises(QueryRefused, match="cannot parse"):
        check_read_only(con, sql)


def test_query_refused_is_a_value_error() -> None:
    """Callers that catch ValueError for bad input also catch a refusal."""
    assert issubclass(QueryRefused, ValueError)


@pytest.mark.parametrize(
    "sql",
    ["EXPLAIN ANALYZE DELETE FROM candles_daily", "explain analyze drop table candles_daily",
     "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1", "EXPLAIN ANALYZE UPDATE candles_daily SET close = 0"],
)
def test_explain_analyze_of_a_write_is_refused(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """EXPLAIN ANALYZE executes the statement it explains, so wrapping a write in it must not get past the guard
    (through the ledger, queries run on a cursor of the read-write connection)."""
    with pytest.raises(QueryRefused):
        check_read_only(con, sql)


def test_explain_analyze_really_executes_the_write(con: duckdb.DuckDBPyConnection) -> None:
    """Documents why the test above matters: DuckDB's EXPLAIN ANALYZE DELETE deletes the rows."""
    con.sql("EXPLAIN ANALYZE DELETE FROM candles_daily").fetchall()
    assert con.execute("SELECT count(*) FROM candles_daily").fetchone() == (0,)


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM checkpoint()", "select * from CHECKPOINT()", "FROM force_checkpoint()",
     'SELECT * FROM main."checkpoint"()', "SELECT count(*) FROM candles_daily, LATERAL (SELECT * FROM checkpoint()) c",
     "WITH c AS (SELECT * FROM checkpoint()) SELECT * FROM c", "SELECT (SELECT count(*) FROM force_checkpoint())",
     "SUMMARIZE (SELECT * FROM checkpoint())", "EXPLAIN ANALYZE SELECT * FROM checkpoint()",
     "SELECT * FROM query('SELECT * FROM checkpoint()')", "SELECT * FROM query('SELECT 1')"],
)
def test_side_effect_table_functions_are_refused_at_any_depth(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """checkpoint()/force_checkpoint() pass DuckDB's read-only transaction, and query() runs a string as SQL:
    the check finds them anywhere in a SELECT with DuckDB's parser and refuses them, naming the function."""
    with pytest.raises(QueryRefused, match=r"read-only; (checkpoint|force_checkpoint|query)\(\)"):
        check_read_only(con, sql)


def test_a_statement_the_python_enum_does_not_know_is_refused_not_crashed(con: duckdb.DuckDBPyConnection) -> None:
    """`UPDATE EXTENSIONS` parses to a statement type the Python enum lacks (a ValueError, not a duckdb.Error):
    refused with a reason instead of escaping as an unexpected exception."""
    for sql in ("UPDATE EXTENSIONS", "EXPLAIN ANALYZE UPDATE EXTENSIONS"):
        with pytest.raises(QueryRefused, match="cannot classify"):
            check_read_only(con, sql)


def test_table_functions_fall_back_to_the_tokenizer(con: duckdb.DuckDBPyConnection) -> None:
    """A SELECT the JSON serializer does not cover (PIVOT) is scanned with DuckDB's tokenizer instead:
    names followed by `(`, comments and strings ignored."""
    from services.ledger.readonly import table_functions

    sql = "PIVOT (SELECT * FROM main.\"CHECKPOINT\" ()) ON i -- query()\n /* force_checkpoint() */ 'query()'"
    assert {"checkpoint", "pivot"} <= table_functions(con, sql)
    assert "query" not in table_functions(con, sql) and "force_checkpoint" not in table_functions(con, sql)
    assert table_functions(con, "SELECT * FROM query_table('candles_daily'), range(3)") == {"query_table", "range"}


def test_the_parse_is_skipped_only_for_text_that_cannot_name_a_forbidden_function() -> None:
    """The shortcut before the parse (`may_name_forbidden`) skips it for a plain read, but never for a text
    holding a forbidden name in any letter case or quoting, nor for any non-ASCII text (DuckDB folds only
    ASCII letters, and Python's lower() folds more, so such text always takes the parse)."""
    from services.ledger.readonly import may_name_forbidden

    assert not may_name_forbidden("SELECT symbol, max(close) FROM candles_daily GROUP BY ALL")
    assert not may_name_forbidden("SELECT * FROM range(3), read_csv_auto('x')")
    for sql in ('SELECT * FROM main."CheckPoint"()', "from FORCE_CHECKPOINT()", "SELECT * FROM QuErY('SELECT 1')",
                "SELECT * FROM query_table('candles_daily')", "SELECT 'é' AS x", "SELECT * FROM checkpoİnt()"):
        assert may_name_forbidden(sql), sql
