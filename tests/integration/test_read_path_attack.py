"""The attacker's suite for the read path: nothing a query sends may change a row, touch a file or leak a secret.

The same catalogue (tests/integration/read_path_attacks.py: writes to data, meta and ledger tables,
data-modifying CTEs, file and network reads, COPY/EXPORT, ATTACH/DETACH/USE, INSTALL/LOAD, the
environment, settings, CALL, CHECKPOINT/checkpoint()/VACUUM/ANALYZE, several statements; each in
several spellings) runs four ways:

- ledger up, through `ControlClient` (what workers and the dashboard's Data explorer use): every case;
- ledger down, through `services.ledger.offline.open_sandboxed` in-process (what `oh query` calls):
  every case;
- ledger up and ledger down, through the real `oh query` CLI: one or two attacks of each category
  (the CLI adds only its exit codes and one-line messages to the two paths above, and each case
  costs a process start).

After every attack: the warehouse file and its WAL are untouched (size and mtime: DuckDB commits
any write, catalog changes included, to one of them), the settings and attached databases are
unchanged, as are the journal's files and head, the output directory (empty), the local HTTP server
(no request), and neither the canary file's content nor the canary environment variable appears in
any answer. With the ledger down the warehouse file keeps its inode, size, mtime and ctime (the kernel
moves ctime on any write) after every case, and stays byte for byte the same after every plain spelling
and every `oh query` case; the offline reader's settings and catalog are read from its own database on a
fresh cursor, beside the sandbox rather than through it (its statement checks are what is attacked, and
on the fingerprint's long UNION they cost more than the case). After each
attack's plain spelling, also every table's row count and content hash and the whole catalog (tables,
views, macros, sequences, indexes, schemas) as the query path reads them: that full fingerprint
costs ~40 ms a case, so the other spellings of the same attack rely on the files, which no committed
change escapes (each query runs in its own read-only transaction on a fresh cursor, so nothing
uncommitted outlives it). After the suite the ledger's counters show no rejected projection and the
ledger is still running.

The homes are module-scoped (one seeded warehouse, each in its own temp OH_HOME, never ./data):
seeding through the real ingest worker once keeps ~1,000 cases affordable. Under `make test` the module
is one work unit (tests/conftest.py), started first, so it seeds its homes once and `test_zz_...` checks
the ledger every case ran against.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bus.control_client import ControlClient, QueryError
from bus.home import Home
from devtools import forkserver
from devtools.processes import REPO, Service, wait_for_heartbeat, wait_for_ledger
from tests.integration.conftest import OH
from tests.integration.read_path_attacks import Attack, Targets, cases

pytestmark = pytest.mark.integration

CANARY = "canary-7f3c1e-do-not-leak"
CASES = cases()
CLI_CASES = [c for c in CASES if c[2] == "plain"]
# With the ledger up, `oh query` adds only its exit codes and messages to the server path that
# ControlClient covers case by case: one or two attacks of each category are enough there.
CLI_UP_NAMES = {
    "cte-delete-candles_daily", "cte-update-offsets-returning", "cte-nested", "explain-analyze-delete-ledger_events",
    "merge-offsets", "delete-ledger_offsets", "read-text", "proc-environ", "http-parquet", "copy-to", "export-database",
    "attach-file", "detach-warehouse", "install-httpfs", "load-httpfs", "update-extensions", "getenv", "set-threads",
    "enable-external-access", "pragma-threads", "call-checkpoint", "checkpoint", "checkpoint-function",
    "query-function", "vacuum", "analyze", "select-then-delete", "set-then-read",
}
CLI_UP_CASES = [c for c in CLI_CASES if c[1].name in CLI_UP_NAMES]
CLI_DOWN_CASES = CLI_UP_CASES  # the offline reader, in-process, takes every case (see the module docstring)
FINGERPRINT_TABLES = """
SELECT database_name || '.' || schema_name || '.' || table_name AS name
FROM duckdb_tables() WHERE NOT temporary ORDER BY 1
"""
CATALOG = [
    "SELECT database_name, schema_name, table_name, sql FROM duckdb_tables() ORDER BY ALL",
    "SELECT database_name, schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL",
    "SELECT database_name, schema_name, function_name FROM duckdb_functions() WHERE NOT internal ORDER BY ALL",
    "SELECT database_name, schema_name, sequence_name FROM duckdb_sequences() ORDER BY ALL",
    "SELECT database_name, schema_name, index_name, sql FROM duckdb_indexes() ORDER BY ALL",
    "SELECT database_name, path FROM duckdb_databases() WHERE NOT internal ORDER BY ALL",
    "SELECT schema_name, comment FROM duckdb_schemas() ORDER BY ALL",
]


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Arena:
    """The two homes (ledger up, ledger down) seeded with the same data, and what the attacks aim at."""

    up: Home
    down: Home
    ledger: Service
    client: ControlClient
    targets_up: Targets
    targets_down: Targets
    http_requests: list[str]
    before_up: dict[str, Any]
    before_down: dict[str, Any]
    fingerprint_sql: str
    quick_down: dict[str, str]  # QUICK_SQL through the offline reader before any attack


def _journal_files(home: Home) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(home.journal.iterdir()) if p.is_file()}


def fingerprint_sql(read: Callable[[str], pa.Table]) -> str:
    """One query answering, per item, the row count and content hash of every table there is now, and a
    digest of each catalog listing (one round trip per check keeps ~1,000 cases cheap). The settings are not in
    it: QUICK_SQL, read beside it after every case, has each of them whole."""
    parts = []
    for name in read(FINGERPRINT_TABLES).column("name").to_pylist():
        _, schema, table = name.split(".")
        parts.append(f"SELECT '{name}' AS item, count(*)::VARCHAR || ' rows, hash ' || "
                     f"coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR AS value FROM {schema}.{table} t")
    parts.extend(_listing_digest(i, sql) for i, sql in enumerate(CATALOG))
    return " UNION ALL ".join(parts) + " ORDER BY item"


def _listing_digest(i: int, sql: str) -> str:
    return (f"SELECT 'listing {i}' AS item, count(*)::VARCHAR || ' entries, md5 ' || "
            f"coalesce(md5(string_agg(x::VARCHAR, '|' ORDER BY x::VARCHAR)), '') AS value FROM ({sql}) x")


# The settings and attached databases: what a query could change outside the files. Read after every case, as
# rows (item: a setting's name, or `database <name>`; value: its value, or the database's path) compared whole, not
# as an ordered md5 digest of them: duckdb_settings() is ~3.5 ms of a read either way, the digest's sort and
# string_agg another ~3 ms, on ~1,900 reads (the ledger's and this process's).
QUICK_SQL = ("SELECT name AS item, value FROM duckdb_settings() UNION ALL "
             "SELECT 'database ' || database_name, path FROM duckdb_databases() WHERE NOT internal")


def fingerprint(read: Callable[[str], pa.Table], sql: str) -> dict[str, str]:
    """Item -> value of `fingerprint_sql` (or QUICK_SQL), read through `read`; each item once."""
    table = read(sql)
    items = table.column("item").to_pylist()
    assert len(set(items)) == len(items), f"an item twice in the fingerprint: {sorted(items)}"
    return dict(zip(items, table.column("value").to_pylist(), strict=True))


def _warehouse_files(home: Home) -> dict[str, tuple[int, int]]:
    """Size and mtime of the warehouse file and its WAL (when there is one): any committed write moves one."""
    paths = (home.warehouse, home.warehouse.with_name(home.warehouse.name + ".wal"))
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in paths if p.exists()}


def _file_state(home: Home, content: bool = True) -> dict[str, Any]:
    """The home's file list, its journal's sizes and the warehouse file's inode, size, mtime and ctime (the
    kernel moves ctime on every write to the file, and no call can set it back); with `content`, also the
    warehouse's SHA-256."""
    files = sorted(str(p.relative_to(home.root)) for p in home.root.rglob("*") if p.is_file() and "logs" not in p.parts)
    stat = home.warehouse.stat()
    state = {"files": files, "journal": _journal_files(home),
             "warehouse_stat": (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)}
    if content:
        state["warehouse_sha256"] = hashlib.sha256(home.warehouse.read_bytes()).hexdigest()
    return state


def _home_env(home: Home, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "OH_HOME": str(home.root), "OH_UI_PORT": "0", "OH_ATTACK_CANARY": CANARY, **(extra or {})}
    env.pop("OH_SOCKET_DIR", None)
    env.pop("OH_FSYNC", None)
    return env


def _emit(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    return forkserver.run([OH, "emit", "ingest-candles", *args, "--wait"], timeout=300, cwd=REPO, env=_home_env(home))


def _targets(home: Home, base: Path, http: str) -> Targets:
    canary_dir = base / "canary"
    out = base / "out"
    canary_dir.mkdir(parents=True)
    out.mkdir()
    canary_file = canary_dir / "canary.csv"
    canary_file.write_text(f"secret\n{CANARY}\n")
    (canary_dir / "canary.json").write_text(f'{{"secret": "{CANARY}"}}\n')
    pq.write_table(pa.table({"secret": [CANARY]}), canary_dir / "canary.parquet")
    journal_file = next(p for p in sorted(home.journal.iterdir()) if p.is_file())
    return Targets(canary_file, canary_dir, out, http, home.warehouse, journal_file)


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    """Seed one warehouse through the real ledger and ingest worker, copy it for the ledger-down path,
    then keep a ledger running on the first home for the whole module."""
    root = tmp_path_factory.mktemp("readpath")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    http_base = f"http://127.0.0.1:{server.server_address[1]}"
    started: list[Service] = []

    def start(home: Home, name: str) -> Service:
        service = Service(home, name, env={"OH_ATTACK_CANARY": CANARY}).start()
        started.append(service)
        return service

    with pytest.MonkeyPatch.context() as patch:
        try:
            patch.setenv("OH_ATTACK_CANARY", CANARY)
            patch.setenv("OH_UI_PORT", "0")
            patch.delenv("OH_SOCKET_DIR", raising=False)
            patch.delenv("OH_FSYNC", raising=False)
            patch.setenv("OH_HOME", str(root / "up"))
            up = Home.from_env().ensure()
            ledger = start(up, "ledger")
            wait_for_ledger(up)
            ingest = start(up, "ingest")
            wait_for_heartbeat(up, "ingest")
            ok = _emit(up, "--symbols", "AAPL,MSFT", "--start", "2025-01-01", "--end", "2025-03-31")
            assert ok.returncode == 0, ok.stderr
            failed = _emit(up, "--symbols", "SPY,ZZBAD", "--start", "2025-02-01", "--end", "2025-02-28")
            assert failed.returncode == 1, failed.stderr  # a failed run too: meta rows of both kinds
            ingest.stop()
            assert ledger.stop() == 0
            shutil.copytree(root / "up", root / "down", ignore=shutil.ignore_patterns("logs", "*.sock", "run"))
            down = Home(root / "down").ensure()
            ledger = start(up, "ledger")
            wait_for_ledger(up)
            client = ControlClient(up, timeout=30)
            sql = fingerprint_sql(client.query)
            arena = Arena(
                up=up, down=down, ledger=ledger, client=client,
                targets_up=_targets(up, root / "targets-up", http_base),
                targets_down=_targets(down, root / "targets-down", http_base),
                http_requests=_CountingHandler.requests,
                before_up={"tables": fingerprint(client.query, sql), "journal": _journal_files(up),
                           "head": client.status().head_seq, "files": _warehouse_files(up),
                           "quick": fingerprint(client.query, QUICK_SQL)},
                before_down=_file_state(down),
                fingerprint_sql=sql,
                quick_down={},
            )
            assert int(arena.before_up["tables"]["oh.main.candles_daily"].split()[0]) > 100
            yield arena
            client.close()
        finally:
            for service in started:  # also when the set-up itself failed: no process outlives the module
                if service.proc is not None and service.proc.poll() is None:
                    try:
                        service.stop()
                    except subprocess.TimeoutExpired:
                        service.kill()
            server.shutdown()


def _assert_no_side_effects(arena: Arena, targets: Targets, answer: str) -> None:
    assert CANARY not in answer, "the canary leaked into the answer"
    assert list(targets.out.iterdir()) == [], "something was written into the output directory"
    assert arena.http_requests == [], f"the query endpoint made HTTP requests: {arena.http_requests}"


def _assert_up_unchanged(arena: Arena, full: bool = True) -> None:
    """The files, journal, settings and attachments as seeded; with `full`, every table and the catalog too."""
    assert arena.ledger.proc is not None and arena.ledger.proc.poll() is None, "the ledger died"
    now = {"journal": _journal_files(arena.up), "head": arena.client.status().head_seq,
           "files": _warehouse_files(arena.up), "quick": fingerprint(arena.client.query, QUICK_SQL)}
    if full:
        now["tables"] = fingerprint(arena.client.query, arena.fingerprint_sql)
    assert now == {key: arena.before_up[key] for key in now}


def _expected_kinds(attack: Attack, spelling: str) -> set[str]:
    # the plain spelling must get exactly its kind; a rewrapped one may instead be invalid SQL
    return {attack.kind} if spelling == "plain" else {attack.kind, "refused", "query"}


@pytest.mark.parametrize(("attack", "spelling", "template"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_attack_through_control_client_changes_nothing(arena: Arena, attack: Attack, spelling: str, template: str) -> None:
    """With the ledger up, every attack through the control client fails with one line and changes nothing."""
    sql = arena.targets_up.fill(template)
    with pytest.raises(QueryError) as refused:
        arena.client.query(sql)
    message = str(refused.value)
    assert refused.value.kind in _expected_kinds(attack, spelling), message
    assert message and "\n" not in message
    _assert_no_side_effects(arena, arena.targets_up, message)
    _assert_up_unchanged(arena, full=spelling == "plain")


def _oh_query(arena: Arena, home: Home, sql: str) -> subprocess.CompletedProcess[str]:
    return forkserver.run([OH, "query", sql, "--format", "csv"], timeout=120, cwd=REPO, env=_home_env(home))


def _assert_cli_refusal(result: subprocess.CompletedProcess[str], attack: Attack) -> None:
    assert result.returncode == (2 if attack.kind == "refused" else 1), (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.mark.parametrize(("attack", "spelling", "template"), [c[1:] for c in CLI_UP_CASES], ids=[c[0] for c in CLI_UP_CASES])
def test_attack_through_oh_query_with_ledger_up(arena: Arena, attack: Attack, spelling: str, template: str) -> None:
    """With the ledger up, `oh query` exits 2 (refused) or 1 (invalid in the sandbox) with one line; nothing changes."""
    result = _oh_query(arena, arena.up, arena.targets_up.fill(template))
    _assert_cli_refusal(result, attack)
    _assert_no_side_effects(arena, arena.targets_up, result.stdout + result.stderr)
    _assert_up_unchanged(arena)


@pytest.mark.parametrize(("attack", "spelling", "template"), [c[1:] for c in CLI_DOWN_CASES], ids=[c[0] for c in CLI_DOWN_CASES])
def test_attack_through_oh_query_with_ledger_down(arena: Arena, attack: Attack, spelling: str, template: str) -> None:
    """With no ledger, `oh query` opens the file read-only in the sandbox: same refusals, the file byte-identical."""
    result = _oh_query(arena, arena.down, arena.targets_down.fill(template))
    _assert_cli_refusal(result, attack)
    _assert_no_side_effects(arena, arena.targets_down, result.stdout + result.stderr)
    assert _file_state(arena.down) == arena.before_down


def _observer(offline: Any) -> Callable[[str], pa.Table]:
    """Reads the offline reader's own database (the instance every attack ran in) on a fresh cursor of its
    connection, as each sandboxed query does, but without the sandbox's statement checks: those are what the
    attacks test, and on the fingerprint's long UNION they cost more than the rest of a case."""

    def read(sql: str) -> pa.Table:
        cursor = offline._con.cursor()
        try:
            return cursor.sql(sql).to_arrow_table()
        finally:
            cursor.close()

    return read


@pytest.fixture(scope="module")
def offline(arena: Arena) -> Iterator[Any]:
    """The offline reader `oh query` uses, opened once on the ledger-down home."""
    from services.ledger.offline import open_sandboxed

    reader = open_sandboxed(arena.down.warehouse)
    arena.quick_down.update(fingerprint(_observer(reader), QUICK_SQL))
    try:
        yield reader
    finally:
        reader.close()


@pytest.mark.parametrize(("attack", "spelling", "template"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_attack_through_offline_reader_changes_nothing(
    arena: Arena, offline: Any, attack: Attack, spelling: str, template: str
) -> None:
    """With no ledger, every attack through the sandboxed offline reader fails with one line and changes nothing."""
    from services.ledger.sandbox import QueryFailed

    with pytest.raises(QueryFailed) as refused:
        offline.query(arena.targets_down.fill(template))
    message = str(refused.value)
    assert refused.value.kind in _expected_kinds(attack, spelling), message
    assert message and "\n" not in message
    _assert_no_side_effects(arena, arena.targets_down, message)
    now = _file_state(arena.down, content=spelling == "plain")
    assert now == {key: arena.before_down[key] for key in now}
    assert fingerprint(_observer(offline), QUICK_SQL) == arena.quick_down
    if spelling == "plain":
        tables = {k: v for k, v in fingerprint(_observer(offline), arena.fingerprint_sql).items() if k.startswith("oh.")}
        assert tables == {k: v for k, v in arena.before_up["tables"].items() if k.startswith("oh.")}


def test_reads_still_work_everywhere(arena: Arena, offline: Any) -> None:
    """The sandbox refuses attacks, not reads: SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN (ANALYZE) and
    parameters answer the same rows through the ledger, the CLI and the offline reader."""
    reads = [
        ("SELECT symbol, count(*) AS n FROM candles_daily GROUP BY ALL ORDER BY 1", None),
        ("WITH r AS (SELECT status FROM meta.ingestion_runs) SELECT status, count(*) AS n FROM r GROUP BY 1 ORDER BY 1", None),
        ("SELECT count(*) AS n FROM ledger.events WHERE seq > ?", [0]),
        ("DESCRIBE candles_daily", None),
        ("SHOW TABLES", None),
        ("SUMMARIZE SELECT close FROM candles_daily", None),
        ("SELECT * FROM query_table('candles_daily') ORDER BY ALL LIMIT 3", None),
        ("SELECT library_version FROM pragma_version()", None),
    ]
    for sql, params in reads:
        through_ledger = arena.client.query(sql, params)
        assert through_ledger.num_rows > 0, sql
        assert offline.query(sql, params).to_pylist() == through_ledger.to_pylist(), sql
    for sql in ("EXPLAIN SELECT * FROM candles_daily", "EXPLAIN ANALYZE SELECT count(*) FROM candles_daily"):
        assert arena.client.query(sql).num_rows > 0
        assert offline.query(sql).num_rows > 0
    result = _oh_query(arena, arena.down, "SELECT count(*) AS n FROM candles_daily WHERE symbol = 'AAPL'")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == str(arena.client.query(
        "SELECT count(*) FROM candles_daily WHERE symbol = 'AAPL'").column(0)[0].as_py())


def test_a_query_reads_the_warehouse_file_itself_and_nothing_beside_it(arena: Arena, offline: Any) -> None:
    """A known limit, kept honest: DuckDB always lets a database read its own file and WAL (the same data a
    SELECT reads, as raw bytes), even with external access off; nothing else in or beside its directory."""
    for read, home in ((arena.client.query, arena.up), (offline.query, arena.down)):
        own = read(f"SELECT size FROM read_blob('{home.warehouse}')")
        assert own.column(0)[0].as_py() == home.warehouse.stat().st_size or home is arena.up
        for path in (home.warehouse.parent / "other.duckdb", home.journal / "*", home.root / "config" / "*"):
            with pytest.raises(Exception, match="refused: queries cannot reach files") as refused:
                read(f"SELECT * FROM read_blob('{path}')")
            assert getattr(refused.value, "kind", None) == "refused"


def test_zz_after_the_whole_suite_the_ledger_is_intact(arena: Arena) -> None:
    """Runs last: the ledger is alive, nothing it projected was rejected, its tables and journal are as seeded,
    and it still commits new events (a fresh ingest lands) after every attack."""
    _assert_up_unchanged(arena)
    status = arena.client.status()
    assert status.counters.get("projection_rejected", 0) == 0
    assert arena.client.query("SELECT count(*) FROM ledger.rejected").column(0)[0].as_py() == 0
    assert "projection rejected" not in (arena.up.logs / "ledger.log").read_text()
    ingest = Service(arena.up, "ingest").start()
    try:
        wait_for_heartbeat(arena.up, "ingest")
        more = _emit(arena.up, "--symbols", "QQQ", "--start", "2025-03-03", "--end", "2025-03-07")
        assert more.returncode == 0, more.stderr
    finally:
        ingest.stop()
    assert arena.client.query("SELECT count(*) FROM candles_daily WHERE symbol = 'QQQ'").column(0)[0].as_py() == 5
