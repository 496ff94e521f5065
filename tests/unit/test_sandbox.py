"""The sandbox of one user query (services/ledger/sandbox.py) on a real warehouse file, in-process.

These tests switch the friendly statement check off to show that DuckDB itself (the settings of
warehouse.connect plus the READ ONLY transaction on a fresh cursor) stops every write, file, network,
extension, environment and settings attack; which few statements DuckDB still lets through (and the
friendly check must refuse); that the ledger's group commits never fail while readers checkpoint,
vacuum and analyze; and the budget, the row and byte caps and the interrupter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bus.query_limits import QueryLimits
from services.ledger import sandbox
from services.ledger.sandbox import Interrupter, QueryFailed, run_read_only
from services.ledger.warehouse import SANDBOX_SETTINGS, Warehouse, connect
from tests.integration.read_path_attacks import ATTACKS, Targets
from tests.unit.factories import MiniLedger, candles, run_finished, run_started, trade

CANARY = "canary-unit-4b1d"
RUNAWAY = "SELECT count(*) FROM range(1000000000000) a, range(100000) b WHERE a.range + b.range = 3"
# What DuckDB alone lets a READ ONLY transaction on a locked-down connection run: harmless with a
# fresh cursor rolled back after each query, but no business of a reader: the friendly check refuses them.
ENGINE_ALLOWS = {
    "attach-memory", "attach-if-not-exists", "detach-if-exists", "create-temp-table", "prepare-delete", "set-variable", "call-checkpoint", "call-database-size", "checkpoint", "force-checkpoint",
    "checkpoint-catalog", "checkpoint-function", "from-checkpoint", "qualified-checkpoint", "checkpoint-in-join",
    "checkpoint-scalar-subquery", "query-function", "summarize-checkpoint", "vacuum", "vacuum-analyze", "analyze",
    "analyze-table",
}


def _fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    tables = [r[0] for r in con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1").fetchall()]
    return {
        "rows": {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables},
        "catalog": con.execute(
            "SELECT database_name, schema_name, table_name, sql FROM duckdb_tables() ORDER BY ALL").fetchall(),
        "views": con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall(),
        "functions": con.execute("SELECT function_name FROM duckdb_functions() WHERE NOT internal ORDER BY 1").fetchall(),
        "databases": con.execute("SELECT database_name FROM duckdb_databases() ORDER BY 1").fetchall(),
        "settings": con.execute("SELECT name, value FROM duckdb_settings() ORDER BY 1").fetchall(),
    }


def _seeded(root: Path) -> MiniLedger:
    """A warehouse with runs, candles and trades, written through the ledger's own write path."""
    mini = MiniLedger(root)
    mini.submit([run_started("r1"), candles("AAPL", date(2025, 3, 3), date(2025, 3, 28), "r1"),
                 run_finished("r1", 2.0), *[trade(f"o{i}", 3.0 + i) for i in range(5)]])
    return mini


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[MiniLedger]:
    """A seeded warehouse of this test's own."""
    mini = _seeded(tmp_path / "home")
    yield mini
    mini.close()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MiniLedger, Targets, dict[str, Any]]]:
    """One seeded warehouse and its targets for every attack: each attack compares the warehouse with itself
    just before, so one that got through fails its own test. The third item holds the fingerprint taken
    right after the last attack: the next one's "before" (nothing else touches this warehouse), so each
    attack costs one fingerprint, not two."""
    root = tmp_path_factory.mktemp("attacked")
    mini = _seeded(root / "home")
    yield mini, _targets(root, mini), {}
    mini.close()


def _targets(tmp_path: Path, ledger: MiniLedger) -> Targets:
    """Files holding the canary, an empty output directory, the warehouse and a journal segment."""
    canary_dir = tmp_path / "canary"
    canary_dir.mkdir()
    (canary_dir / "canary.csv").write_text(f"secret\n{CANARY}\n")
    (canary_dir / "canary.json").write_text(f'{{"secret": "{CANARY}"}}\n')
    out = tmp_path / "out"
    out.mkdir()
    journal_file = next(p for p in sorted((tmp_path / "home" / "journal").iterdir()) if p.is_file())
    return Targets(canary_dir / "canary.csv", canary_dir, out, "http://127.0.0.1:9", ledger.warehouse.path, journal_file)


def _run(warehouse: Warehouse, sql: str, limits: QueryLimits | None = None, budget: float = 30.0) -> Any:
    interrupter = Interrupter()
    interrupter.start()
    try:
        return run_read_only(warehouse.reader, sql, None, limits or QueryLimits(), time.monotonic() + budget,
                             interrupter, budget)
    finally:
        interrupter.stop()


@pytest.mark.parametrize("attack", ATTACKS, ids=[f"{a.category}-{a.name}" for a in ATTACKS])
def test_duckdb_alone_stops_every_attack(
    attacked: tuple[MiniLedger, Targets, dict[str, Any]], attack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the friendly check switched off, each attack fails inside DuckDB or (the ENGINE_ALLOWS few) runs
    harmlessly: no row, table, setting or attached database changes, no file is written, no canary leaks."""
    ledger, targets, last = attacked
    monkeypatch.setattr(sandbox, "check_read_only", lambda con, sql: None)
    con = ledger.warehouse.con
    before = last["fingerprint"] if "fingerprint" in last else _fingerprint(con)
    try:
        answer = str(_run(ledger.warehouse, targets.fill(attack.sql)).to_pylist())
        ran = True
    except QueryFailed as exc:
        answer = str(exc)
        ran = False
    after = last["fingerprint"] = _fingerprint(con)
    assert ran == (attack.name in ENGINE_ALLOWS), answer
    assert CANARY not in answer
    assert list(targets.out.iterdir()) == []
    assert after == before


def test_a_fresh_cursor_per_query_forgets_temp_objects_and_variables(
    ledger: MiniLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the sandbox lets a query create (temp table, variable, attachment) is gone for the next query."""
    monkeypatch.setattr(sandbox, "check_read_only", lambda con, sql: None)
    _run(ledger.warehouse, "CREATE TEMP TABLE evil AS SELECT 1 AS x")
    _run(ledger.warehouse, "SET VARIABLE evil = 42")
    _run(ledger.warehouse, "ATTACH ':memory:' AS evil")
    with pytest.raises(QueryFailed, match="evil"):
        _run(ledger.warehouse, "SELECT * FROM evil")
    assert _run(ledger.warehouse, "SELECT getvariable('evil') AS v").to_pylist() == [{"v": None}]
    assert "evil" not in str(_run(ledger.warehouse, "SELECT database_name FROM duckdb_databases()").to_pylist())


def test_the_ledger_still_writes_after_lock_down(ledger: MiniLedger) -> None:
    """The lock-down does not get in the ledger's way: its projections (Arrow `register`) still commit."""
    con = ledger.warehouse.con
    assert con.execute("SELECT current_setting('lock_configuration'), current_setting('enable_external_access')"
                       ).fetchall() == [(True, False)]
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("SET enable_external_access = true")
    ledger.submit([run_started("r2", 10.0), candles("MSFT", date(2025, 3, 3), date(2025, 3, 7), "r2", t=11.0)])
    assert con.execute("SELECT count(*) FROM candles_daily WHERE symbol = 'MSFT'").fetchall() == [(5,)]


def test_connect_applies_the_sandbox_again_after_a_rebuild(ledger: MiniLedger) -> None:
    """A rebuild reopens the file: the settings are applied again, on the new connection."""
    ledger.warehouse.rebuild(ledger.journal)
    con = ledger.warehouse.con
    assert con.execute("SELECT current_setting('lock_configuration'), current_setting('enable_external_access'), "
                       "current_setting('autoload_known_extensions')").fetchall() == [(True, False, False)]
    assert len(SANDBOX_SETTINGS) == 4


def test_offline_connection_is_locked_down_too(ledger: MiniLedger, tmp_path: Path) -> None:
    """`connect(read_only=True)` (the offline path) gets the same settings."""
    path = tmp_path / "copy.duckdb"
    ledger.warehouse.con.execute("CHECKPOINT")
    path.write_bytes(ledger.warehouse.path.read_bytes())
    con = connect(path, read_only=True)
    try:
        assert con.execute("SELECT current_setting('lock_configuration'), current_setting('enable_external_access')"
                           ).fetchall() == [(True, False)]
    finally:
        con.close()


def _started(turn: threading.Condition, state: dict[str, int]) -> bool:
    """A reader tells the ledger it has begun this commit's statement."""
    with turn:
        state["started"] += 1
        turn.notify_all()
    return True


READER_STATEMENTS = ["CHECKPOINT", "FORCE CHECKPOINT", "SELECT * FROM checkpoint()", "SELECT * FROM force_checkpoint()",
                     "VACUUM", "ANALYZE", "VACUUM ANALYZE candles_daily", "PRAGMA database_size",
                     "SELECT count(*) FROM candles_daily"]


def test_group_commits_never_fail_while_readers_checkpoint_vacuum_and_analyze(ledger: MiniLedger) -> None:
    """Readers with the friendly check bypassed run CHECKPOINT, FORCE CHECKPOINT, checkpoint(), VACUUM and
    ANALYZE on fresh cursors in READ ONLY transactions against each of 120 group commits: not one of the
    ledger's transactions fails (each is run directly, so a failure would raise, not be retried).

    Each commit is attacked where it is weakest: with its rows written and its transaction still open, the
    ledger lets every reader start one statement and waits until each has begun it (its READ ONLY
    transaction open, the statement sent next), then commits while they run. So all nine statements race
    every one of the 120 COMMITs, which readers spinning freely only did by chance (and at ~25 CPU-s of
    spinning a run)."""
    warehouse = ledger.warehouse
    stop = threading.Event()
    attempts: dict[str, int] = {}
    turn = threading.Condition()
    state = {"commit": 0, "started": 0}

    def reader(sql: str) -> None:
        done = 0
        while True:
            with turn:
                turn.wait_for(lambda done=done: stop.is_set() or state["commit"] > done)
                if state["commit"] == done:
                    return
                done = state["commit"]
            cursor = warehouse.reader()
            began = False
            try:
                cursor.execute("BEGIN TRANSACTION READ ONLY")
                began = _started(turn, state)
                cursor.execute(sql).fetchall()
            except duckdb.Error:
                if not began:
                    _started(turn, state)  # BEGIN itself refused: still this commit's attempt
            finally:
                try:
                    cursor.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                cursor.close()
            attempts[sql] = attempts.get(sql, 0) + 1

    def let_readers_in(commit: int) -> None:
        """Inside the ledger's open transaction: every reader begins one statement before the COMMIT."""
        with turn:
            state["commit"], state["started"] = commit, 0
            turn.notify_all()
            assert turn.wait_for(lambda: state["started"] >= len(READER_STATEMENTS), timeout=120), state

    threads = [threading.Thread(target=reader, args=(sql,)) for sql in READER_STATEMENTS]
    for thread in threads:
        thread.start()
    try:
        seq = warehouse.applied_seq
        for i in range(120):
            events = [trade(f"g{i}-{j}", 100.0 + i) for j in range(20)]
            batch = [(seq + k + 1, ev) for k, ev in enumerate(events)]
            # raises on any failure; commit() would retry
            warehouse._transaction(batch, [100] * len(batch), before_commit=lambda i=i: let_readers_in(i + 1))
            seq += len(batch)
    finally:
        stop.set()
        with turn:
            turn.notify_all()
        for thread in threads:
            thread.join()
    assert attempts == dict.fromkeys(READER_STATEMENTS, 120), attempts
    assert warehouse.con.execute("SELECT count(*) FROM trade_updates").fetchall() == [(5 + 120 * 20,)]
    assert warehouse.con.execute("SELECT seq FROM ledger.offsets").fetchall() == [(seq,)]


def test_a_query_past_its_budget_is_interrupted_not_abandoned(ledger: MiniLedger) -> None:
    """A runaway query is stopped by interrupting its cursor: it fails with the budget in one line, and the
    connection answers the next query at once."""
    with pytest.raises(QueryFailed, match=r"time budget of 0\.5s") as failed:
        _run(ledger.warehouse, RUNAWAY, budget=0.5)
    assert failed.value.kind == "timeout"
    assert _run(ledger.warehouse, "SELECT 42 AS x").to_pylist() == [{"x": 42}]


def test_an_interrupt_that_lands_before_the_query_starts_is_repeated(ledger: MiniLedger) -> None:
    """A deadline that passes before DuckDB starts executing is not lost: the interrupter repeats it."""
    for _ in range(5):
        with pytest.raises(QueryFailed) as failed:
            _run(ledger.warehouse, RUNAWAY, budget=0.001)
        assert failed.value.kind == "timeout"


def test_a_deadline_already_past_fails_without_running(ledger: MiniLedger) -> None:
    """A job that waited in the queue past its budget is answered `timeout` without opening a cursor."""
    interrupter = Interrupter()
    with pytest.raises(QueryFailed, match="waited") as failed:
        run_read_only(lambda: pytest.fail("opened a cursor"), "SELECT 1", None, QueryLimits(), time.monotonic() - 1,
                      interrupter)
    assert failed.value.kind == "timeout"


@pytest.mark.parametrize(("rows", "fits"), [(999, True), (1000, True), (1001, False), (200_000, False)])
def test_row_cap(ledger: MiniLedger, rows: int, fits: bool) -> None:
    """Up to max_rows rows answer; one more fails `too_large`, saying to add a LIMIT."""
    limits = QueryLimits(max_rows=1000)
    sql = f"SELECT range AS i FROM range({rows})"
    if fits:
        assert _run(ledger.warehouse, sql, limits).num_rows == rows
    else:
        with pytest.raises(QueryFailed, match=r"more than 1,000 rows.*LIMIT") as failed:
            _run(ledger.warehouse, sql, limits)
        assert failed.value.kind == "too_large"


def test_byte_cap(ledger: MiniLedger) -> None:
    """An answer of a few wide rows past max_bytes fails `too_large` too."""
    with pytest.raises(QueryFailed, match="larger than") as failed:
        _run(ledger.warehouse, "SELECT repeat('x', 1000000) AS wide FROM range(10)", QueryLimits(max_bytes=2**20))
    assert failed.value.kind == "too_large"


def test_interrupt_all_stops_running_and_later_queries_until_cleared(ledger: MiniLedger) -> None:
    """`interrupt_all` (shutdown, rebuild) interrupts the running query with its reason, and every query
    registered before `clear()`."""
    interrupter = Interrupter()
    interrupter.start()
    errors: list[QueryFailed] = []

    def runaway() -> None:
        try:
            run_read_only(ledger.warehouse.reader, RUNAWAY, None, QueryLimits(), time.monotonic() + 600,
                          interrupter, 600)
        except QueryFailed as exc:
            errors.append(exc)

    thread = threading.Thread(target=runaway)
    thread.start()
    while not interrupter._tickets:  # registered: it runs
        time.sleep(0.01)
    interrupter.interrupt_all("rebuild")
    thread.join()
    runaway()
    interrupter.clear()
    assert run_read_only(ledger.warehouse.reader, "SELECT 1 AS x", None, QueryLimits(), time.monotonic() + 5,
                         interrupter).to_pylist() == [{"x": 1}]
    interrupter.stop()
    assert [(e.kind, "rebuilt" in str(e)) for e in errors] == [("interrupted", True)] * 2


@pytest.mark.parametrize(
    ("env", "message"),
    [({"OH_QUERY_BUDGET_SECONDS": "soon"}, "OH_QUERY_BUDGET_SECONDS='soon' is not a number"),
     ({"OH_QUERY_BUDGET_SECONDS": "0"}, "must be a positive"),
     ({"OH_QUERY_MAX_ROWS": "-5"}, "OH_QUERY_MAX_ROWS='-5' must be a positive"),
     ({"OH_QUERY_THREADS": "1.5"}, "OH_QUERY_THREADS='1.5' is not a number"),
     ({"OH_QUERY_QUEUE": "nan"}, "OH_QUERY_QUEUE='nan' is not a number"),
     ({"OH_QUERY_BUDGET_SECONDS": "inf"}, "must be a positive")],
)
def test_limits_from_env_refuse_bad_values_naming_the_variable(env: dict[str, str], message: str) -> None:
    """A bad OH_QUERY_* value is a ValueError that names the variable and the value."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        QueryLimits.from_env(env)


def test_limits_from_env_defaults_and_values() -> None:
    """Unset means the documented defaults (30 s, 1,000,000 rows, 512 MiB, 2 threads, 32 waiting)."""
    assert QueryLimits.from_env({}) == QueryLimits(30.0, 1_000_000, 512 * 2**20, 2, 32)
    assert QueryLimits.from_env({"OH_QUERY_BUDGET_SECONDS": "2.5", "OH_QUERY_MAX_ROWS": "10"}).budget == 2.5
