"""`oh export` through the real ledger: the files read back with DuckDB equal the tables, at one journal seq.

The warehouse is filled with events of every kind (tests/unit/factories.py) sent to a real ledger
process; `oh export` runs as a real command; its output is read back with a DuckDB of the test's own
(hive partitioning, as another engine would) and compared with the tables read through the ledger.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from bus.arrow_ipc import to_ipc
from bus.control_client import ControlClient, QueryError
from bus.home import Home
from bus.producer import Producer
from contracts import AssetChecked, CandlesIngested, CheckRecord, NotificationSent, SymbolsForgotten
from contracts.rows import CANDLES
from devtools.processes import REPO, Service, wait_applied, wait_for_ledger
from services.ledger.schema import PROJECTED_TABLES
from tests.integration.conftest import OH, run_oh, shared_home
from tests.unit import factories as f

pytestmark = pytest.mark.integration

DAYS = [date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4)]
PARTITION_BY = {"candles_daily": "date", "option_snapshots": "snapshot_date", "options_bars": "date",
                "options_flow": "to_date", "derived_daily": "session_date", "briefings": "as_of"}


def _every_kind_of_event() -> list[Any]:
    events: list[Any] = [f.run_started("r1"), f.candles("AAPL", date(2025, 5, 1), date(2025, 6, 30), "r1"),
                         f.candles("MSFT", date(2025, 5, 1), date(2025, 6, 30), "r1"), f.asset_failed("r1", "ZZBAD"),
                         f.run_finished("r1", 5.0, status="failed")]
    for day in DAYS:
        events += [f.chain("AAPL", day, "r2"), f.option_bars("AAPL", day, "r3")]
    for before, day in itertools.pairwise(DAYS):
        events += [f.flow("AAPL", before, day, "r4"), f.derived_event("AAPL", day, "r5"), f.briefing(day, "r6")]
    events += [f.trade("o1", 1.0), f.trade("o2", 86_400.0), f.trade("o3", 2 * 86_400.0, price=None)]
    events += [AssetChecked(run_id="r1", asset_key="candles_daily", partition_key="AAPL", checked_at=f.at(2),
                            results=[CheckRecord("no_gaps", "error", "pass", "no gaps")], ts=f.at(2)),
               SymbolsForgotten(symbols=["ZZBAD"], reason="test", ts=f.at(3)),
               NotificationSent(trigger="run_failed", trigger_key="r1", run_id="r1", subject="ingest_candles",
                                title="oh: ingest_candles run failed", message="1 of 3 symbols failed",
                                program="notify-send", status="sent", exit_code=0, started_at=f.at(4),
                                ended_at=f.at(4.5), ts=f.at(4.5))]
    return events


def _send(home: Home, events: list[Any]) -> int:
    producer = Producer(home)
    try:
        producer.send_many(events)
        producer.flush(60)
        wait_applied(home, producer.last_acked_seq)
        return producer.last_acked_seq
    finally:
        producer.close()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlClient]:
    """A ledger whose every projected table has rows: filled once for the module, whose tests using it only export
    (into their own directories) and read, never write to the warehouse."""
    with shared_home(tmp_path_factory.mktemp("filled")) as home:
        ledger = Service(home, "ledger").start()
        client = ControlClient(home, timeout=30)
        try:  # the ledger stops even when filling it fails
            wait_for_ledger(home)
            _send(home, _every_kind_of_event())
            for table in PROJECTED_TABLES:
                assert client.query(f"SELECT count(*) AS n FROM {table}").to_pylist()[0]["n"] > 0, table
            yield client
        finally:
            client.close()
            ledger.stop()


def read_back(root: Path, item: dict[str, Any]) -> pa.Table:
    """One exported table as another engine reads it: DuckDB, hive partitioning, the table's column order."""
    folder = root / item["path"]
    pattern = f"{folder}/**/*.parquet" if item["partition_by"] else f"{folder}/*.parquet"
    columns = ", ".join(f'"{c["name"]}"' for c in item["columns"])
    con = duckdb.connect()
    try:
        return con.sql(f"SELECT {columns} FROM read_parquet('{pattern}', hive_partitioning = true) ORDER BY ALL").to_arrow_table()
    finally:
        con.close()


def _types(table: pa.Table) -> list[tuple[str, str]]:
    return [(field.name, str(field.type)) for field in table.schema]


def test_export_read_back_with_duckdb_equals_the_tables(filled: ControlClient, tmp_path: Path) -> None:
    """Every table: same columns, same types, same rows; session tables in hive directories `column=date`, one
    file each; the manifest's seq is the ledger's applied seq and its counts are the rows."""
    target = tmp_path / "export"
    result = run_oh("export", "--to", str(target))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["seq"] == filled.status().applied_seq
    assert [item["name"] for item in manifest["tables"]] == list(PROJECTED_TABLES)
    for item in manifest["tables"]:
        name = item["name"]
        expected = filled.query(f"SELECT * FROM {name} ORDER BY ALL")
        exported = read_back(target, item)
        assert _types(exported) == _types(expected), name
        assert exported.to_pylist() == expected.to_pylist(), name
        assert item["rows"] == expected.num_rows
        assert item["partition_by"] == PARTITION_BY.get(name)
        if item["partition_by"]:
            days = filled.query(f"SELECT DISTINCT CAST({item['partition_by']} AS VARCHAR) AS d FROM {name}").column("d")
            assert sorted(item["partitions"]) == sorted(days.to_pylist())
            assert sorted(item["files"]) == sorted(f"{item['partition_by']}={d}/part-0.parquet" for d in item["partitions"])
    assert sorted(p.name for p in target.iterdir()) == sorted([*PROJECTED_TABLES, "manifest.json"])
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_export_of_a_range_takes_those_sessions(filled: ControlClient, tmp_path: Path) -> None:
    """--since/--until keep the sessions in range of each session table (trade_updates: the UTC day of `ts`);
    tables with no session column are whole, and the CLI says so."""
    target = tmp_path / "ranged"
    result = run_oh("export", "--tables", "candles_daily,options_flow,trade_updates,meta.ingestion_runs",
                    "--since", "2025-06-04", "--until", "2025-12-01", "--to", str(target))
    assert result.returncode == 0, result.stderr
    assert "exported whole: meta.ingestion_runs" in " ".join(result.stdout.split())
    manifest = json.loads((target / "manifest.json").read_text())
    between = "BETWEEN DATE '2025-06-04' AND DATE '2025-12-01'"
    where = {"candles_daily": f"date {between}", "options_flow": f"to_date {between}",
             "trade_updates": f"CAST(ts AS DATE) {between}", "meta.ingestion_runs": "true"}
    for item in manifest["tables"]:
        name = item["name"]
        expected = filled.query(f"SELECT * FROM {name} WHERE {where[name]} ORDER BY ALL")
        left_out = filled.query(f"SELECT count(*) AS n FROM {name} WHERE NOT ({where[name]})").to_pylist()[0]["n"]
        assert expected.num_rows > 0 and (left_out > 0 or name == "meta.ingestion_runs"), name  # the range cuts
        assert read_back(target, item).to_pylist() == expected.to_pylist(), name
        assert item["range_applied"] is (name != "meta.ingestion_runs")
    assert (manifest["since"], manifest["until"]) == ("2025-06-04", "2025-12-01")


def _one_candle(i: int) -> CandlesIngested:
    """Event i adds exactly one candle row (day i) and one run asset row (run r{i})."""
    day = date(2000, 1, 1) + timedelta(days=i)
    rows = pa.table({"symbol": ["AAPL"], "date": [day], "open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5],
                     "volume": [100]}, schema=CANDLES)
    return CandlesIngested(run_id=f"r{i}", symbol="AAPL", provider="sim", first_date=day, last_date=day, row_count=1,
                           rows=to_ipc(rows), started_at=f.at(i), ended_at=f.at(i), ts=f.at(i))


def test_an_export_while_events_commit_is_one_snapshot(home: Home, tmp_path: Path) -> None:
    """Events commit all through the export (each one adds a candle row and a run-asset row, one seq each), and
    the export is paged one batch at a time: both tables hold exactly the rows of seqs 1..S, S the manifest's seq.
    Reading each table (or page) in its own transaction would give counts from different moments."""
    ledger = Service(home, "ledger", env={"OH_EXPORT_PAGE_BYTES": "1"}).start()
    wait_for_ledger(home)
    stop = threading.Event()
    sent: list[int] = []

    def write() -> None:
        producer = Producer(home)
        i = 0
        while not stop.is_set():
            producer.send_many([_one_candle(i + k) for k in range(5)])
            producer.flush(60)
            i += 5
            sent.append(producer.last_acked_seq)
        producer.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_applied(home, 100)
        started_at = ControlClient(home).status().applied_seq
        target = tmp_path / "moving"
        result = run_oh("export", "--tables", "candles_daily,meta.ingestion_run_assets", "--to", str(target))
        ended_at = ControlClient(home).status().applied_seq
    finally:
        stop.set()
        writer.join(60)
        ledger.stop()
    assert result.returncode == 0, result.stderr
    assert ended_at > started_at  # the warehouse moved on while the export ran
    manifest = json.loads((target / "manifest.json").read_text())
    seq = manifest["seq"]
    assert started_at <= seq <= ended_at
    candles, assets = (read_back(target, item) for item in manifest["tables"])
    assert candles.num_rows == assets.num_rows == seq
    assert candles.column("date").to_pylist() == [date(2000, 1, 1) + timedelta(days=i) for i in range(seq)]
    assert sorted(assets.column("run_id").to_pylist()) == sorted(f"r{i}" for i in range(seq))


def test_a_rebuild_ends_an_open_export_and_an_idle_one_expires(home: Home) -> None:
    """An open export holds a read transaction: a rebuild closes it first (and succeeds), an export left alone
    is closed after OH_EXPORT_IDLE_SECONDS; a late fetch says why. At most 4 are open at once."""
    ledger = Service(home, "ledger", env={"OH_EXPORT_IDLE_SECONDS": "1"}).start()
    wait_for_ledger(home)
    _send(home, [f.candles("AAPL", date(2025, 5, 1), date(2025, 6, 30), "r1")])
    client = ControlClient(home, timeout=60)
    try:
        before = client.query("SELECT * FROM candles_daily ORDER BY ALL").to_pylist()
        opened = client.export_open(["candles_daily"])
        assert opened.tables[0].rows == len(before)
        assert client.rebuild().events == 1
        with pytest.raises(QueryError) as caught:
            client.export_fetch(opened.export_id)
        assert caught.value.kind == "interrupted" and "rebuilt" in str(caught.value)
        assert client.query("SELECT * FROM candles_daily ORDER BY ALL").to_pylist() == before

        idle = client.export_open(["candles_daily"])
        deadline = time.monotonic() + 30
        while client.status().counters["exports_open"] and time.monotonic() < deadline:
            time.sleep(0.2)
        with pytest.raises(QueryError, match="not fetched from for 1s"):
            client.export_fetch(idle.export_id)

        many = [client.export_open(["meta.ingestion_runs"]) for _ in range(4)]
        with pytest.raises(QueryError) as busy:
            client.export_open(["meta.ingestion_runs"])
        assert busy.value.kind == "busy"
        for item in many:
            client.export_close(item.export_id)
        assert client.status().counters["exports_open"] == 0
    finally:
        client.close()
        ledger.stop()


def test_the_ledger_stays_unable_to_write_files_after_exports(filled: ControlClient, tmp_path: Path) -> None:
    """The export needed no new rights: after one, a query still cannot COPY to a file or change a setting."""
    assert run_oh("export", "--tables", "candles_daily", "--to", str(tmp_path / "e")).returncode == 0
    stolen = tmp_path / "stolen.parquet"
    for sql in (f"COPY candles_daily TO '{stolen}' (FORMAT parquet)",
                f"COPY (SELECT * FROM candles_daily) TO '{stolen}'",
                "SET enable_external_access = true"):
        with pytest.raises(QueryError) as caught:
            filled.query(sql)
        assert caught.value.kind == "refused", sql
    assert filled.query("SELECT current_setting('enable_external_access') AS on").to_pylist() == [{"on": False}]
    assert not stolen.exists()


@pytest.mark.parametrize(("args", "says"), [
    (("--since", "2025-13-01"), "--since '2025-13-01' is not a date"),
    (("--since", "2025-06-04", "--until", "2025-06-03"), "--since 2025-06-04 is after --until 2025-06-03"),
    (("--tables", "candles_daily,,briefings"), "--tables"),
    (("--tables", "candles_daily,ledger.events"), "cannot export 'ledger.events'"),
    (("--tables", "candles_daily; DROP TABLE x"), "cannot export 'candles_daily; DROP TABLE x'"),
    (("--timeout", "0"), "--timeout must be a positive number"),
], ids=["bad-date", "reversed-range", "empty-name", "internal-table", "sql-in-name", "zero-timeout"])
def test_bad_export_arguments_are_one_line_exit_2_and_write_nothing(
        filled: ControlClient, tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    """Each refused before anything is written: the target is not created, and no staging directory is left."""
    parent = tmp_path / "exports"
    parent.mkdir()
    result = run_oh("export", *args, "--to", str(parent / "out"))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and says in lines[0], result.stderr
    assert list(parent.iterdir()) == []


def test_a_target_that_holds_anything_is_refused(home: Home, tmp_path: Path) -> None:
    """An export never overwrites or mixes into existing files: a non-empty directory or a file is refused."""
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    afile = tmp_path / "afile"
    afile.write_text("keep me too")
    for target, says in ((busy, "is not empty"), (afile, "is not a directory")):
        result = run_oh("export", "--to", str(target))
        assert result.returncode == 2 and says in result.stderr, result.stderr
    assert (busy / "mine.txt").read_text() == "keep me" and afile.read_text() == "keep me too"


def test_with_no_ledger_the_export_says_so_and_writes_nothing(home: Home, tmp_path: Path) -> None:
    """The export goes through the ledger (never the live file behind its back): no ledger, exit 1, no files."""
    parent = tmp_path / "exports"
    parent.mkdir()
    result = subprocess.run([OH, "export", "--to", str(parent / "out"), "--timeout", "2"], capture_output=True,
                            text=True, timeout=120, cwd=REPO, env=dict(os.environ))
    assert result.returncode == 1 and "the ledger is not answering" in result.stderr, result.stderr
    assert list(parent.iterdir()) == []
