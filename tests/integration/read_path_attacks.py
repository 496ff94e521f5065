"""The attacker's catalogue for the read path: statements that try to change, read, attach, load or reconfigure.

Each `Attack` is one base statement; `spellings()` turns it into the same attack written several ways
(case, comments, whitespace, CTE and subquery wrapping, EXPLAIN ANALYZE). Placeholders in braces are
filled per test run by `Targets.fill`: files that exist and hold a canary, an output directory that
must stay empty, a local HTTP server that must receive nothing, the warehouse and journal paths.

Every attack must fail with a one-line message of the expected kind and change nothing; `kind` is
what the plain spelling must answer (`refused`: the read path refuses it; `query`: the SQL itself is
invalid in the sandbox, e.g. `getenv` does not exist there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TABLES = ("candles_daily", "ledger.offsets", "ledger.events", "meta.ingestion_runs")
EVENTS_ROW = "(999999, 'evil', 'RunStarted', TIMESTAMP '2025-01-01', 1)"
RUN_ROW = "('evil', NULL, 'ingest_candles', 'cli', 'success', TIMESTAMP '2025-01-01')"
RUN_COLUMNS = "(run_id, parent_run_id, job_name, triggered_by, status, started_at)"


@dataclass(frozen=True)
class Attack:
    """One base attack: its category, a short name for the test id, its SQL and the kind it must get."""

    category: str
    name: str
    sql: str
    kind: str = "refused"
    select_shaped: bool = False  # a SELECT that can be wrapped in a CTE or a subquery


@dataclass(frozen=True)
class Targets:
    """What an attack's placeholders point at in one test run."""

    canary_file: Path  # a CSV/text file holding the canary
    canary_dir: Path  # its directory
    out: Path  # an empty directory nothing may write into
    http: str  # base URL of a local server that counts requests
    warehouse: Path
    journal_file: Path

    def fill(self, sql: str) -> str:
        """The SQL with its placeholders replaced."""
        return sql.format(
            canary_file=self.canary_file, canary_dir=self.canary_dir, out=self.out, http=self.http,
            warehouse=self.warehouse, journal_file=self.journal_file,
        )


def _writes() -> list[Attack]:
    attacks: list[Attack] = []
    for table in TABLES:
        short = table.replace(".", "_")
        attacks += [
            Attack("write", f"delete-{short}", f"DELETE FROM {table}"),
            Attack("write", f"truncate-{short}", f"TRUNCATE {table}"),
            Attack("write", f"drop-{short}", f"DROP TABLE {table}"),
            Attack("write", f"cte-delete-{short}", f"WITH d AS (DELETE FROM {table} RETURNING *) SELECT count(*) FROM d"),
            Attack("write", f"explain-analyze-delete-{short}", f"EXPLAIN ANALYZE DELETE FROM {table}"),
        ]
    attacks += [
        Attack("write", "update-offsets", "UPDATE ledger.offsets SET seq = 0"),
        Attack("write", "update-candles", "UPDATE candles_daily SET close = 0 WHERE symbol = 'AAPL'"),
        Attack("write", "update-runs", "UPDATE meta.ingestion_runs SET status = 'failed'"),
        Attack("write", "update-events", "UPDATE ledger.events SET type = 'evil'"),
        Attack("write", "insert-events", f"INSERT INTO ledger.events VALUES {EVENTS_ROW}"),
        Attack("write", "insert-runs", f"INSERT INTO meta.ingestion_runs {RUN_COLUMNS} VALUES {RUN_ROW}"),
        Attack("write", "insert-select-candles",
               "INSERT INTO candles_daily SELECT 'EVIL', date, open, high, low, close, volume, provider FROM candles_daily"),
        Attack("write", "insert-or-replace-candles",
               "INSERT OR REPLACE INTO candles_daily SELECT * REPLACE (0.0 AS close) FROM candles_daily"),
        Attack("write", "upsert-offsets",
               "INSERT INTO ledger.offsets VALUES ('warehouse', 0, 1) ON CONFLICT (projection) DO UPDATE SET seq = 0"),
        Attack("write", "merge-candles",
               "MERGE INTO candles_daily t USING (SELECT 'AAPL' AS symbol) s ON t.symbol = s.symbol WHEN MATCHED THEN DELETE"),
        Attack("write", "merge-offsets",
               "MERGE INTO ledger.offsets o USING (SELECT 'warehouse' AS p) s ON o.projection = s.p "
               "WHEN MATCHED THEN UPDATE SET seq = 0"),
        Attack("write", "cte-update-offsets-returning",
               "WITH u AS (UPDATE ledger.offsets SET seq = 0 RETURNING seq) SELECT * FROM u"),
        Attack("write", "cte-insert-events-returning",
               f"WITH i AS (INSERT INTO ledger.events VALUES {EVENTS_ROW} RETURNING *) SELECT * FROM i"),
        Attack("write", "cte-update-runs",
               "WITH u AS (UPDATE meta.ingestion_runs SET status = 'failed' RETURNING run_id) SELECT count(*) FROM u"),
        Attack("write", "cte-nested",
               "WITH a AS (WITH d AS (DELETE FROM candles_daily RETURNING *) SELECT * FROM d) SELECT count(*) FROM a",
               kind="query"),  # DuckDB refuses a data-modifying CTE below the top level at bind time
        Attack("write", "cte-in-subquery",
               "SELECT * FROM (WITH d AS (DELETE FROM ledger.events RETURNING *) SELECT count(*) FROM d)", kind="query"),
        Attack("write", "cte-two-writes",
               "WITH a AS (DELETE FROM candles_daily RETURNING 1), b AS (UPDATE ledger.offsets SET seq = 0 RETURNING 1) "
               "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)"),
        Attack("write", "cte-merge",
               "WITH m AS (MERGE INTO candles_daily t USING (SELECT 'AAPL' AS symbol) s ON t.symbol = s.symbol "
               "WHEN MATCHED THEN DELETE RETURNING *) SELECT count(*) FROM m"),
        Attack("write", "explain-analyze-cte-delete",
               "EXPLAIN ANALYZE WITH d AS (DELETE FROM candles_daily RETURNING *) SELECT count(*) FROM d"),
        Attack("write", "explain-analyze-update", "EXPLAIN ANALYZE UPDATE ledger.offsets SET seq = 0"),
        Attack("write", "create-table", "CREATE TABLE evil AS SELECT 1 AS x"),
        Attack("write", "create-or-replace-candles", "CREATE OR REPLACE TABLE candles_daily AS SELECT 1 AS x"),
        Attack("write", "create-view", "CREATE VIEW meta.evil AS SELECT 1 AS x"),
        Attack("write", "create-macro", "CREATE MACRO evil() AS 1"),
        Attack("write", "create-sequence", "CREATE SEQUENCE evil"),
        Attack("write", "create-schema", "CREATE SCHEMA evil"),
        Attack("write", "create-index", "CREATE INDEX evil ON candles_daily (close)"),
        Attack("write", "create-temp-table", "CREATE TEMP TABLE evil AS SELECT * FROM candles_daily"),
        Attack("write", "drop-schema-cascade", "DROP SCHEMA meta CASCADE"),
        Attack("write", "alter-rename-offsets", "ALTER TABLE ledger.offsets RENAME TO offsets_old"),
        Attack("write", "alter-drop-column", "ALTER TABLE candles_daily DROP COLUMN close"),
        Attack("write", "comment-on", "COMMENT ON TABLE candles_daily IS 'evil'"),
        Attack("write", "prepare-delete", "PREPARE evil AS DELETE FROM candles_daily"),
        Attack("write", "execute", "EXECUTE evil"),
        Attack("write", "begin-delete-commit", "BEGIN; DELETE FROM candles_daily; COMMIT"),
        Attack("write", "commit-then-delete", "COMMIT; DELETE FROM candles_daily"),
        Attack("write", "rollback-then-update", "ROLLBACK; UPDATE ledger.offsets SET seq = 0"),
        Attack("write", "abort-then-drop", "ABORT; DROP TABLE ledger.events"),
        Attack("write", "commit-then-cte", "COMMIT; WITH d AS (DELETE FROM meta.ingestion_runs RETURNING *) SELECT count(*) FROM d"),
        Attack("write", "commit", "COMMIT"),
        Attack("write", "abort", "ABORT"),
        Attack("write", "begin-read-write", "BEGIN TRANSACTION READ WRITE"),
    ]
    return attacks


def _files() -> list[Attack]:
    reads = [
        ("read-text", "SELECT * FROM read_text('{canary_file}')"),
        ("read-csv", "SELECT * FROM read_csv('{canary_file}')"),
        ("read-csv-auto", "SELECT * FROM read_csv_auto('{canary_file}', header = false)"),
        ("read-blob", "SELECT content FROM read_blob('{canary_file}')"),
        ("read-parquet", "SELECT * FROM read_parquet('{canary_dir}/*.parquet')"),
        ("read-json", "SELECT * FROM read_json('{canary_dir}/canary.json')"),
        ("read-json-objects", "SELECT * FROM read_json_objects('{canary_dir}/canary.json')"),
        ("glob", "SELECT * FROM glob('{canary_dir}/*')"),
        ("sniff-csv", "SELECT * FROM sniff_csv('{canary_file}')"),
        ("from-path", "FROM '{canary_file}'"),
        ("select-from-path", "SELECT * FROM '{canary_file}'"),
        ("parquet-metadata", "SELECT * FROM parquet_metadata('{canary_dir}/canary.parquet')"),
        ("read-list", "SELECT * FROM read_text(['{canary_file}', '/etc/hostname'])"),
        ("proc-environ", "SELECT content FROM read_text('/proc/self/environ')"),
        ("proc-cmdline", "SELECT content FROM read_blob('/proc/self/cmdline')"),
        ("read-warehouse-dir", "SELECT * FROM glob('{warehouse}/../*')"),
        ("read-beside-warehouse", "SELECT * FROM read_text('{warehouse}.tmp/../../journal/*')"),
        ("read-journal", "SELECT content FROM read_blob('{journal_file}')"),
        ("http-parquet", "SELECT * FROM read_parquet('{http}/x.parquet')"),
        ("http-csv", "SELECT * FROM read_csv('{http}/x.csv')"),
        ("http-text", "SELECT * FROM read_text('{http}/x.txt')"),
        ("http-from", "FROM '{http}/x.csv'"),
        ("https", "SELECT * FROM read_text('https://127.0.0.1:9/x.txt')"),
        ("s3", "SELECT * FROM read_parquet('s3://bucket/x.parquet')"),
    ]
    attacks = [Attack("file", name, sql, select_shaped=True) for name, sql in reads]
    attacks += [
        Attack("file", "copy-to", "COPY candles_daily TO '{out}/candles.csv'"),
        Attack("file", "copy-query-to-parquet", "COPY (SELECT * FROM ledger.events) TO '{out}/events.parquet' (FORMAT parquet)"),
        Attack("file", "copy-from", "COPY candles_daily FROM '{canary_file}'"),
        Attack("file", "export-database", "EXPORT DATABASE '{out}/export'"),
        Attack("file", "import-database", "IMPORT DATABASE '{canary_dir}'"),
    ]
    return attacks


def _attach_load_env_settings() -> list[Attack]:
    return [
        Attack("attach", "attach-file", "ATTACH '{out}/evil.duckdb' AS evil"),
        Attack("attach", "attach-memory", "ATTACH ':memory:' AS evil"),
        Attack("attach", "attach-warehouse-again", "ATTACH '{warehouse}' AS again (READ_ONLY)"),
        Attack("attach", "attach-if-not-exists", "ATTACH IF NOT EXISTS ':memory:' AS evil"),
        Attack("attach", "detach-warehouse", "DETACH oh"),
        Attack("attach", "detach-if-exists", "DETACH DATABASE IF EXISTS evil"),
        Attack("attach", "use-temp", "USE temp"),
        Attack("attach", "use-system", "USE system.main"),
        Attack("attach", "copy-from-database", "COPY FROM DATABASE oh TO evil"),
        Attack("extension", "install-httpfs", "INSTALL httpfs"),
        Attack("extension", "force-install", "FORCE INSTALL httpfs"),
        Attack("extension", "install-file", "INSTALL '{out}/evil.duckdb_extension'"),
        Attack("extension", "load-httpfs", "LOAD httpfs"),
        Attack("extension", "load-file", "LOAD '{out}/evil.duckdb_extension'"),
        Attack("extension", "update-extensions", "UPDATE EXTENSIONS"),
        Attack("extension", "secrets", "SELECT * FROM duckdb_secrets()", select_shaped=True),
        Attack("extension", "create-secret", "CREATE SECRET evil (TYPE s3, KEY_ID 'k', SECRET 's')"),
        Attack("env", "getenv", "SELECT getenv('OH_ATTACK_CANARY')", kind="query", select_shaped=True),
        Attack("env", "getenv-home", "SELECT getenv('HOME') AS home", kind="query", select_shaped=True),
        Attack("setting", "set-threads", "SET threads = 1"),
        Attack("setting", "set-global", "SET GLOBAL threads = 1"),
        Attack("setting", "set-session-timezone", "SET SESSION TimeZone = 'America/New_York'"),
        Attack("setting", "enable-external-access", "SET enable_external_access = true"),
        Attack("setting", "unlock", "SET lock_configuration = false"),
        Attack("setting", "allowed-directories", "SET allowed_directories = ['/']"),
        Attack("setting", "memory-limit", "SET memory_limit = '1MB'"),
        Attack("setting", "reset", "RESET enable_external_access"),
        Attack("setting", "pragma-threads", "PRAGMA threads = 1"),
        Attack("setting", "pragma-profiling", "PRAGMA enable_profiling"),
        Attack("setting", "pragma-profile-output", "PRAGMA profile_output = '{out}/profile.json'"),
        Attack("setting", "set-variable", "SET VARIABLE evil = 1"),
        Attack("setting", "enable-logging", "CALL enable_logging()"),
        Attack("call", "call-checkpoint", "CALL checkpoint()"),
        Attack("call", "call-force-checkpoint", "CALL force_checkpoint()"),
        Attack("call", "call-database-size", "CALL pragma_database_size()"),
        Attack("call", "call-dbgen", "CALL dbgen(sf = 0.01)"),
        Attack("checkpoint", "checkpoint", "CHECKPOINT"),
        Attack("checkpoint", "force-checkpoint", "FORCE CHECKPOINT"),
        Attack("checkpoint", "checkpoint-catalog", "CHECKPOINT oh"),
        Attack("checkpoint", "checkpoint-function", "SELECT * FROM checkpoint()", select_shaped=True),
        Attack("checkpoint", "force-checkpoint-function", "SELECT * FROM force_checkpoint()", select_shaped=True),
        Attack("checkpoint", "from-checkpoint", "FROM checkpoint()"),
        Attack("checkpoint", "qualified-checkpoint", "SELECT * FROM main.\"CHECKPOINT\"()", select_shaped=True),
        Attack("checkpoint", "checkpoint-in-join",
               "SELECT count(*) FROM candles_daily, LATERAL (SELECT * FROM checkpoint()) c", select_shaped=True),
        Attack("checkpoint", "checkpoint-scalar-subquery", "SELECT (SELECT count(*) FROM checkpoint()) AS n",
               select_shaped=True),
        Attack("checkpoint", "query-function", "SELECT * FROM query('SELECT * FROM checkpoint()')", select_shaped=True),
        Attack("checkpoint", "summarize-checkpoint", "SUMMARIZE (SELECT * FROM checkpoint())"),
        Attack("checkpoint", "vacuum", "VACUUM"),
        Attack("checkpoint", "vacuum-analyze", "VACUUM ANALYZE candles_daily"),
        Attack("checkpoint", "analyze", "ANALYZE"),
        Attack("checkpoint", "analyze-table", "ANALYZE ledger.events"),
        Attack("multi", "select-then-delete", "SELECT 1; DELETE FROM candles_daily"),
        Attack("multi", "delete-then-select", "DELETE FROM ledger.events; SELECT 1"),
        Attack("multi", "two-selects", "SELECT 1; SELECT 2"),
        Attack("multi", "empty-statements", "SELECT 1;;DROP TABLE ledger.offsets"),
        Attack("multi", "set-then-read", "SET enable_external_access = true; SELECT * FROM read_text('{canary_file}')"),
    ]


ATTACKS: list[Attack] = [*_writes(), *_files(), *_attach_load_env_settings()]


def _first_word(sql: str) -> tuple[str, str]:
    head, _, rest = sql.partition(" ")
    return head, rest


def spellings(attack: Attack) -> list[tuple[str, str]]:
    """(spelling name, SQL) for the same attack written several ways."""
    sql = attack.sql
    head, rest = _first_word(sql)
    out = [
        ("plain", sql),
        ("lower", sql.lower()),
        ("upper", sql.upper() if "{" not in sql else sql.replace(head, head.upper(), 1)),
        ("comments", f"-- only a read, honest\n{head} /* nothing to see */ {rest} -- trailing"),
        ("whitespace", "\n\t  " + re.sub(r" +", " \n\t ", sql) + "  ;\n"),
    ]
    if ";" not in sql and not sql.upper().startswith("EXPLAIN"):
        out.append(("explain-analyze", f"EXPLAIN ANALYZE {sql}"))
    if attack.select_shaped:
        out += [
            ("cte", f"WITH x AS ({sql}) SELECT * FROM x"),
            ("subquery", f"SELECT * FROM ({sql}) AS s"),
        ]
    return out


def cases() -> list[tuple[str, Attack, str, str]]:
    """(test id, attack, spelling, SQL template) for every attack in every spelling."""
    return [
        (f"{a.category}-{a.name}-{spelling}", a, spelling, sql)
        for a in ATTACKS for spelling, sql in spellings(a)
    ]
