"""The warehouse's schema version is checked on every open: older is rebuilt from the journal, newer refused.

An older warehouse is made from a real one (filled once per module through the real ledger and ingest worker; each
test edits its own byte-for-byte copy of that home's journal and warehouse: its version number lowered; also its layout changed the
way an older release would have had it: a column and a table missing, or no version column at all).
The ledger rebuilds it once, with the same tables as before, and says so once in its log. A warehouse
from a newer `oh` is refused, untouched, by the ledger and by the offline tools (`oh query`,
`oh replay --rebuild`, `oh db init`), with both versions and the fix in one line.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from bus.control_client import ControlClient
from bus.home import Home
from bus.producer import Producer
from contracts import TradeUpdated
from devtools.processes import REPO, Service, wait_applied, wait_for_ledger
from services.ledger.schema import PROJECTED_TABLES, SCHEMA_VERSION
from services.ledger.warehouse import connect
from tests.integration.conftest import Stack, copy_home, run_oh, shared_home

pytestmark = pytest.mark.integration

MIGRATION_LINE = f"is older than this oh's {SCHEMA_VERSION}: moved it to"
Tables = dict[str, list[dict[str, Any]]]


def _snapshot(read: Any) -> dict[str, list[dict[str, Any]]]:
    return {table: read(f"SELECT * FROM {table} ORDER BY ALL").to_pylist() for table in PROJECTED_TABLES}


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Home, Tables]]:
    """Candles (one run failing a symbol) and fills through the real ledger, then the stack stopped: once for the
    module (each test changes its own copy); yields the home and every projected table."""
    with shared_home(tmp_path_factory.mktemp("filled")) as home:
        stack = Stack(home)
        try:
            stack.start_ledger()
            stack.start_ingest()
            for args in (("--symbols", "AAPL,MSFT", "--start", "2025-01-01", "--end", "2025-03-31"),
                         ("--symbols", "AAPL,ZZBAD", "--start", "2025-03-01", "--end", "2025-04-30")):
                run_oh("emit", "ingest-candles", *args, "--wait")
            producer = Producer(home)
            producer.send_many([TradeUpdated(order_id=f"o{i}", symbol="AAPL", event="fill", side="buy", qty=1.0 + i,
                                             price=190.0) for i in range(20)])
            producer.flush(30)
            producer.close()
            wait_applied(home, producer.last_acked_seq)
            before = _snapshot(stack.client.query)
            assert before["candles_daily"] and len(before["trade_updates"]) == 20
        finally:
            stack.stop()
        yield home, before


def _fill_warehouse(filled: tuple[Home, Tables], home: Home) -> Tables:
    """This test's home gets a copy of the filled journal and warehouse (the ledger stopped); returns every
    projected table as the ledger served them."""
    source, before = filled
    copy_home(source, home)
    return before


def _edit(home: Home, *statements: str) -> None:
    con = connect(home.warehouse)
    try:
        for statement in statements:
            con.execute(statement)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _version(home: Home) -> int:
    con = connect(home.warehouse, read_only=True)
    try:
        return int(con.execute("SELECT schema_version FROM ledger.offsets").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


OLDER = {
    "number": ("UPDATE ledger.offsets SET schema_version = 0",),
    "layout": ("UPDATE ledger.offsets SET schema_version = 0", "ALTER TABLE trade_updates DROP COLUMN filled_at",
               "DROP TABLE options_flow", "DELETE FROM candles_daily WHERE symbol = 'MSFT'"),
    "unversioned": ("ALTER TABLE ledger.offsets DROP COLUMN schema_version", "DROP TABLE meta.asset_checks"),
}


@pytest.mark.parametrize("older", sorted(OLDER))
def test_an_older_warehouse_is_rebuilt_from_the_journal_once(filled: tuple[Home, Tables], home: Home, older: str) -> None:
    """The ledger finds an older schema, sets the file aside, rebuilds the same tables from the journal, logs
    it once, and opens the rebuilt file at the current version from then on."""
    before = _fill_warehouse(filled, home)
    _edit(home, *OLDER[older])
    for _ in range(2):  # the second start finds the current version: no second rebuild
        ledger = Service(home, "ledger").start()
        try:
            wait_for_ledger(home)
            client = ControlClient(home)
            try:
                head = client.status().head_seq
                wait_applied(home, head)
                assert _snapshot(client.query) == before
            finally:
                client.close()
        finally:
            assert ledger.stop() == 0
    assert ledger.log_text().count(MIGRATION_LINE) == 1
    assert _version(home) == SCHEMA_VERSION
    assert home.warehouse.with_name("oh.duckdb.schema-v0").exists()


def test_offline_tools_refuse_an_older_warehouse_until_it_is_rebuilt(filled: tuple[Home, Tables], home: Home) -> None:
    """With no ledger, `oh query` does not read an older layout as if it were current: it says how to rebuild,
    and after the offline `oh replay --rebuild` it reads the same tables as before."""
    before = _fill_warehouse(filled, home)
    _edit(home, *OLDER["layout"])
    refused = run_oh("query", "SELECT count(*) FROM candles_daily")
    assert refused.returncode == 1
    line = refused.stderr.strip()
    assert "\n" not in line and "schema version 0" in line and "oh replay --rebuild" in line, refused.stderr
    rebuilt = run_oh("replay", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    con = connect(home.warehouse, read_only=True)
    try:
        assert _snapshot(lambda sql: con.sql(sql).to_arrow_table()) == before
    finally:
        con.close()
    assert run_oh("query", "SELECT count(*) FROM candles_daily").returncode == 0


def test_a_newer_warehouse_is_refused_and_left_alone(home: Home) -> None:
    """A file written by a newer oh: the ledger exits naming both versions and the fix; `oh query`, `oh replay
    --rebuild` and `oh db init` refuse it the same way; the file keeps its version and nothing is set aside."""
    assert run_oh("db", "init").returncode == 0
    newer = SCHEMA_VERSION + 1
    _edit(home, f"UPDATE ledger.offsets SET schema_version = {newer}")
    ledger = subprocess.run([sys.executable, "-m", "services.ledger"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert ledger.returncode != 0
    for words in (f"schema version {newer}", f"newer than this oh's {SCHEMA_VERSION}", "upgrade oh"):
        assert words in ledger.stderr, ledger.stderr
    for args in (("query", "SELECT 1"), ("replay", "--rebuild"), ("db", "init")):
        result = run_oh(*args)
        assert result.returncode != 0, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"schema version {newer}" in lines[0] and "upgrade oh" in lines[0], (args, result.stderr)
    assert _version(home) == newer
    assert sorted(p.name for p in home.warehouse.parent.iterdir() if "schema-v" in p.name) == []
