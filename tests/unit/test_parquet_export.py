"""Writing an export (oh/adapters/parquet_export.py): all or nothing, checked against the ledger's counts.

The pages are what the ledger sends (ExportPage + Arrow IPC), fed from a list, with a fault injected at
each step: the target exists only when every table was written and checked and the manifest is in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from bus.control_client import LedgerUnavailable
from contracts.control import ExportOpened, ExportPage, ExportTable
from oh.adapters.parquet_export import ExportWriteError, TargetError, check_target, write_export

CANDLES = pa.schema([("symbol", pa.string()), ("date", pa.date32()), ("close", pa.float64())])
RUNS = pa.schema([("run_id", pa.string()), ("status", pa.string())])
DAYS = [date(2025, 6, 2) + timedelta(days=i) for i in range(3)]


def _candles(day: date, n: int) -> pa.RecordBatch:
    return pa.record_batch([[f"S{i}" for i in range(n)], [day] * n, [float(i) for i in range(n)]], schema=CANDLES)


def _runs() -> pa.RecordBatch:
    return pa.record_batch([["r1", "r2"], ["success", "failed"]], schema=RUNS)


def _opened(candle_rows: dict[str, int] | None = None) -> ExportOpened:
    partitions = candle_rows or {str(d): 2 for d in DAYS}
    return ExportOpened(export_id="x", seq=42, tables=[
        ExportTable(name="candles_daily", partition_by="date", ranged=False, rows=sum(partitions.values()),
                    partitions=partitions, schema=CANDLES.serialize().to_pybytes()),
        ExportTable(name="meta.ingestion_runs", partition_by=None, ranged=False, rows=2, partitions={},
                    schema=RUNS.serialize().to_pybytes()),
        ExportTable(name="trade_updates", partition_by=None, ranged=False, rows=0, partitions={},
                    schema=RUNS.serialize().to_pybytes()),
    ])


def _pages() -> list[tuple[str, list[pa.RecordBatch], bool]]:
    """Candles one day per page, then the runs; the last page is empty and `done` (as the ledger sends)."""
    return [*[("candles_daily", [_candles(d, 2)], False) for d in DAYS], ("meta.ingestion_runs", [_runs()], False),
            ("", [], True)]


def _feed(pages: list[tuple[str, list[pa.RecordBatch], bool]], fail_at: int | None = None,
          error: BaseException | None = None) -> Callable[[], tuple[ExportPage, pa.RecordBatchReader | None]]:
    served = iter(range(len(pages) + 1))

    def fetch() -> tuple[ExportPage, pa.RecordBatchReader | None]:
        index = next(served)
        if index == fail_at:
            raise error or LedgerUnavailable("the ledger did not answer")
        table, batches, done = pages[index]
        if not batches:
            return ExportPage(table=table, rows=0, done=done), None
        return (ExportPage(table=table, rows=sum(b.num_rows for b in batches), done=done),
                pa.RecordBatchReader.from_batches(batches[0].schema, batches))
    return fetch


def test_a_whole_export_is_readable_hive_parquet_with_its_manifest(tmp_path: Path) -> None:
    """One file per date partition, one file per other table (an empty one too), and the manifest last."""
    target = tmp_path / "out"
    manifest = write_export(_opened(), _feed(_pages()), target, since=None, until=None)
    assert json.loads((target / "manifest.json").read_text()) == manifest
    assert manifest["seq"] == 42
    candles = manifest["tables"][0]
    assert candles["files"] == [f"date={d}/part-0.parquet" for d in DAYS]
    assert candles["partitions"] == {str(d): 2 for d in DAYS} and candles["rows"] == 6
    con = duckdb.connect()
    rows = con.sql(f"SELECT date, count(*) FROM read_parquet('{target}/candles_daily/**/*.parquet', "
                   "hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [(d, 2) for d in DAYS]
    assert con.sql(f"SELECT count(*) FROM '{target}/trade_updates/part-0.parquet'").fetchall() == [(0,)]
    assert [f["name"] for f in manifest["tables"][2]["columns"]] == ["run_id", "status"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("fail_at", range(5))
def test_a_fault_at_any_page_leaves_nothing(tmp_path: Path, fail_at: int) -> None:
    """The ledger stops answering at page N: no target, no staging directory."""
    with pytest.raises(LedgerUnavailable):
        write_export(_opened(), _feed(_pages(), fail_at), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_leaves_nothing(tmp_path: Path) -> None:
    """Ctrl-C in the middle (KeyboardInterrupt, a BaseException) cleans up too."""
    with pytest.raises(KeyboardInterrupt):
        write_export(_opened(), _feed(_pages(), 2, KeyboardInterrupt()), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("counts", [
    {str(DAYS[0]): 2, str(DAYS[1]): 2, str(DAYS[2]): 3},  # one row short
    {str(DAYS[0]): 3, str(DAYS[1]): 1, str(DAYS[2]): 2},  # the same total, split differently
], ids=["fewer-rows", "other-partitions"])
def test_rows_that_differ_from_the_ledgers_counts_fail_the_export(tmp_path: Path, counts: dict[str, int]) -> None:
    """What was written is counted from the files and must equal what the ledger's snapshot held."""
    with pytest.raises(ExportWriteError):
        write_export(_opened(counts), _feed(_pages()), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_rows_of_a_table_not_asked_for_fail_the_export(tmp_path: Path) -> None:
    """A stream that goes on after the tables asked for is not silently dropped."""
    pages = [*_pages()[:-1], ("options_flow", [_runs()], True)]
    with pytest.raises(ExportWriteError, match="options_flow"):
        write_export(_opened(), _feed(pages), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_directory_is_a_target_and_anything_else_is_not(tmp_path: Path) -> None:
    """Never overwrite: a file, a non-empty directory or a link are refused; an empty directory is used."""
    empty = tmp_path / "empty"
    empty.mkdir()
    write_export(_opened(), _feed(_pages()), empty)
    assert (empty / "manifest.json").exists()
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for name in ("file", "full", "link", "empty"):
        with pytest.raises(TargetError):
            check_target(tmp_path / name)


@pytest.mark.parametrize("name", ["../escape", "/abs", "candles_daily/../../x", "", "a.b.c"])
def test_a_table_name_that_is_not_a_plain_name_is_never_a_path(tmp_path: Path, name: str) -> None:
    """Directory names come from the ledger's answer: one that is not a plain table name is refused, not followed."""
    opened = _opened()
    opened.tables[1].name = name
    with pytest.raises(ExportWriteError, match="not a plain table name"):
        write_export(opened, _feed(_pages()), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
