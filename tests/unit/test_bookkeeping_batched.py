"""The ledger's bookkeeping written once per group commit gives the tables of one event at a time.

`services.ledger.bookkeeping.deferred` collects the asset rows, watermarks and check results of every batch
of a transaction and writes them with one statement per table at its end. These tests replay one journal
both ways (one event per commit, everything in one commit, and random groupings in between) and compare
every projected table, and check that a wide commit costs one statement per `meta.*` table, not one per
batch, symbol or event.
"""

from __future__ import annotations

import random
import re
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import AssetChecked, AssetFailed, CheckRecord, Message
from services.ledger import bookkeeping
from services.ledger.warehouse import Warehouse
from tests.unit.factories import (
    MiniLedger,
    asset_failed,
    at,
    briefing,
    candles,
    chain,
    derived_event,
    flow,
    option_bars,
    run_finished,
    run_started,
    snapshot,
    table_rows,
)

D1, D2, D3 = date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5)


def _checked(run_id: str, asset_key: str, partition: str, t: float, status: str = "pass") -> AssetChecked:
    return AssetChecked(run_id=run_id, asset_key=asset_key, partition_key=partition, checked_at=at(t), ts=at(t),
                        results=[CheckRecord("rows_present", "error", status, f"{status} at {t}"),
                                 CheckRecord("no_nulls", "warn", "pass", "ok", '{"rows": 1}')])


def _failed(run_id: str, asset_key: str, partition: str, t: float, error: str) -> AssetFailed:
    return AssetFailed(run_id=run_id, asset_key=asset_key, partition_key=partition, error_type=error,
                       error_message=f"{error} at {t}", started_at=at(t), ended_at=at(t + 0.1), ts=at(t + 0.1))


def _journal() -> list[Message]:
    """A day of a small market, with every case the folding must get right: one partition failed twice, then
    delivered; chunks of one candles partition in one run; a chain and bars re-delivered in the same run (rows
    updated); a check result replaced by a later one of the same run; an older backfill after a newer day
    (the watermark must not move back); interleaved runs and types; a redone run."""
    return [
        run_started("r1", 0), run_started("r2", 0.05),
        _failed("r1", "options_snapshot_file", f"SPY|{D2}", 0.1, "Timeout"),
        _failed("r1", "options_snapshot_file", f"SPY|{D2}", 0.2, "RateLimited"),  # failed twice: rows 0, not NULL
        chain("AAPL", D2, "r1", t=0.3), option_bars("AAPL", D2, "r2", t=0.35), chain("SPY", D2, "r1", t=0.4),
        candles("AAPL", date(2025, 1, 1), date(2025, 1, 31), "r2", t=0.45),
        candles("AAPL", date(2025, 2, 1), date(2025, 3, 4), "r2", t=0.5),  # a second chunk of the same partition
        _checked("r1", "options_snapshot_file", f"AAPL|{D2}", 0.55, "fail"),
        option_bars("AAPL", D2, "r2", t=0.6),  # re-delivered: counted as updated
        chain("AAPL", D2, "r1", t=0.65),  # re-snapshotted in the same run
        _checked("r1", "options_snapshot_file", f"AAPL|{D2}", 0.7, "pass"),  # the later result wins
        asset_failed("r2", "ZZFAKE", t=0.72), asset_failed("r2", "ZZFAKE", t=0.74),
        chain("AAPL", D1, "r1", t=0.8),  # an older day after a newer one: the watermark stays at D2
        flow("AAPL", D1, D2, "r1", t=0.85), derived_event("AAPL", D2, "r1", t=0.9), derived_event("AAPL", D1, "r1", t=0.92),
        briefing(D2, "r1", t=0.95), briefing(D2, "r1", t=0.97, text="# Revised"),
        run_finished("r2", 1), run_finished("r1", 1.1, status="failed", error_type="PartialFailure"),
        run_started("r3", 2),  # the day redone: new run, same rows
        chain("SPY", D2, "r3", t=2.1), _checked("r3", "options_snapshot_file", f"SPY|{D2}", 2.2),
        option_bars("SPY", D3, "r3", t=2.3), chain("AAPL", D3, "r3", t=2.4), run_finished("r3", 3),
    ]


def _replayed(root: Path, events: list[Message], groups: list[int]) -> dict[str, Any]:
    """Every projected table after committing `events` in groups of the given sizes (the rest in one)."""
    ledger = MiniLedger(root)
    try:
        ledger.submit_in_groups(events, groups)
        return snapshot(ledger.warehouse.con)
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def one_by_one() -> dict[str, Any]:
    """The tables when every event is its own commit: the meaning the batched path must keep."""
    events = _journal()
    with tempfile.TemporaryDirectory() as tmp:
        return _replayed(Path(tmp), events, [1] * len(events))


def test_one_commit_gives_the_tables_of_one_event_at_a_time(tmp_path: Path, one_by_one: dict[str, Any]) -> None:
    """The whole journal as ONE group commit (folded asset rows, watermarks and check results, one statement per
    table) writes exactly the rows that committing each event alone writes. Fails on the per-batch SQL fold it
    replaces: a partition failed twice in one batch got NULL row counts there, 0 one event at a time."""
    assert _replayed(tmp_path, _journal(), []) == one_by_one


def test_a_rebuild_from_the_journal_gives_the_live_tables(tmp_path: Path, one_by_one: dict[str, Any]) -> None:
    """The same journal applied by `Warehouse.rebuild` (replay chunks of up to 2,000 events) gives the tables
    the live ledger committed one event at a time."""
    events = _journal()
    ledger = MiniLedger(tmp_path)
    try:
        for event in events:
            ledger.submit([event])
        assert ledger.warehouse.rebuild(ledger.journal) == len(events)
        assert snapshot(ledger.warehouse.con) == one_by_one
    finally:
        ledger.close()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 8), max_size=12), seed=st.integers(0, 2**16))
def test_any_grouping_gives_the_tables_of_one_event_at_a_time(cuts: list[int], seed: int, one_by_one: dict[str, Any]) -> None:
    """Whatever events a group commit happens to hold, the tables equal those of one event at a time."""
    random.Random(seed).shuffle(cuts)
    with tempfile.TemporaryDirectory() as tmp:
        assert _replayed(Path(tmp), _journal(), cuts) == one_by_one


class _Counting:
    """A DuckDB connection that counts the statements run through it, by the table they write."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.writes: list[str] = []

    def execute(self, sql: str, *args: Any) -> Any:
        found = re.search(r"INSERT (?:OR REPLACE )?INTO ([\w.]+)", sql)
        if found:
            self.writes.append(found.group(1))
        return self.con.execute(sql, *args)

    def from_arrow(self, table: Any) -> Any:
        """A relation whose `insert_into` (a plain insert without SQL text) counts as a write of its table."""
        relation, writes = self.con.from_arrow(table), self.writes

        class _Relation:
            def insert_into(self, name: str) -> None:
                writes.append(name)
                relation.insert_into(name)

        return _Relation()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def test_a_wide_commit_writes_each_meta_table_once(tmp_path: Path) -> None:
    """Chains, bars, checks and failures for many symbols in one group commit (interleaved, so several batches
    per type) cost one statement for meta.ingestion_run_assets, one for meta.asset_watermarks and one for
    meta.asset_checks: the bookkeeping does not grow with the symbols or batches of a commit. Fails on the
    per-batch bookkeeping (one statement per batch)."""
    symbols = ["AAPL", "SPY", "QQQ", "MSFT"]
    events: list[Message] = [run_started("r1", 0)]
    for i, symbol in enumerate(symbols):
        events += [chain(symbol, D2, "r1", t=1 + i), option_bars(symbol, D2, "r1", t=1.1 + i),
                   _checked("r1", "options_snapshot_file", f"{symbol}|{D2}", 1.2 + i),
                   _failed("r1", "options_snapshot_file", f"{symbol}|{D1}", 1.3 + i, "Timeout")]
    warehouse = Warehouse(tmp_path / "oh.duckdb")
    counting = _Counting(warehouse.con)
    warehouse.con = counting  # type: ignore[assignment]
    warehouse.commit(list(enumerate(events, start=1)), [1] * len(events))
    writes = counting.writes
    assert (writes.count("meta.ingestion_run_assets"), writes.count("meta.asset_watermarks"),
            writes.count("meta.asset_checks")) == (1, 1, 1)
    assert len(table_rows(counting.con, "meta.ingestion_run_assets")) == 3 * len(symbols)
    assert len(table_rows(counting.con, "meta.asset_checks")) == 2 * len(symbols)


def test_outside_a_transaction_fold_each_call_writes_at_once(tmp_path: Path) -> None:
    """Called outside `deferred` (a tool applying one batch), upsert_assets writes at once and folds into the
    stored row as the SQL upsert does: counts add up, the later status and extra_json win, times widen."""
    warehouse = Warehouse(tmp_path / "oh.duckdb")
    con = warehouse.con
    con.execute("BEGIN")
    base = {"run_id": "r", "asset_key": "a", "asset_kind": "table", "partition_key": "p", "min_event_ts": None,
            "max_event_ts": None}
    bookkeeping.upsert_assets(con, [{**base, "status": "failed", "rows_inserted": None, "rows_updated": None,
                                     "bytes_written": None, "extra_json": '{"e": 1}', "started_at": at(1).replace(tzinfo=None),
                                     "ended_at": at(2).replace(tzinfo=None)}])
    bookkeeping.upsert_assets(con, [{**base, "status": "success", "rows_inserted": 5, "rows_updated": 1,
                                     "bytes_written": 10, "extra_json": None, "started_at": at(0).replace(tzinfo=None),
                                     "ended_at": at(3).replace(tzinfo=None)}])
    con.execute("COMMIT")
    [row] = table_rows(con, "meta.ingestion_run_assets")
    assert (row["status"], row["rows_inserted"], row["rows_updated"], row["bytes_written"], row["extra_json"],
            row["duration_ms"]) == ("success", 5, 1, 10, '{"e": 1}', 3000)


# -- DuckDB's memory cap -------------------------------------------------------------------------
def test_the_warehouse_memory_limit_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OH_DUCKDB_MEMORY_LIMIT caps DuckDB's buffer pool of every opening (default 1GB); a value DuckDB refuses is
    a one-line error naming the variable, not a traceback."""
    from services.ledger.warehouse import connect

    monkeypatch.setenv("OH_DUCKDB_MEMORY_LIMIT", "300MB")
    con = connect(tmp_path / "a.duckdb")
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "286.1 MiB"
    con.close()
    monkeypatch.delenv("OH_DUCKDB_MEMORY_LIMIT")
    con = connect(tmp_path / "b.duckdb")
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "953.6 MiB"
    con.close()
    monkeypatch.setenv("OH_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(SystemExit, match="OH_DUCKDB_MEMORY_LIMIT='lots' is not a memory size"):
        connect(tmp_path / "c.duckdb")


@pytest.mark.parametrize("error", [duckdb.OutOfMemoryException, duckdb.FatalException])
def test_running_out_of_memory_is_not_blamed_on_the_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[duckdb.Error]
) -> None:
    """A batch that fails because DuckDB is out of memory (or hit a FATAL error, which invalidates the database
    until it is reopened) is raised as it is (the ledger stalls and retries): nothing goes to ledger.rejected,
    neither rows nor offset are committed, and the batch applies once memory allows (catch-up from the journal)."""
    from bus.codec import encode
    from services.ledger import projections

    ledger = MiniLedger(tmp_path)
    ledger.submit([run_started("r1", 0)])
    events = [chain("AAPL", D2, "r1", t=1), _checked("r1", "options_snapshot_file", f"AAPL|{D2}", 2)]

    def starved(con: duckdb.DuckDBPyConnection, batch: object, new_ids: bool = False) -> None:
        raise error("Out of Memory Error: could not allocate block of size 256.0 KiB")

    payloads = [encode(ev) for ev in events]
    seqs = ledger.journal.append((type(ev).__name__, p) for ev, p in zip(events, payloads, strict=True))
    monkeypatch.setattr(projections, "apply_events", starved)
    with pytest.raises(error):
        ledger.warehouse.commit(list(zip(seqs, events, strict=True)), [len(p) for p in payloads], ledger.journal.sync)
    with pytest.raises(error):
        ledger.warehouse.commit(list(zip(seqs, events, strict=True)), [len(p) for p in payloads])
    monkeypatch.undo()
    con = ledger.warehouse.con
    assert table_rows(con, "ledger.rejected") == [] and ledger.warehouse.applied_seq == 1
    assert ledger.warehouse.catch_up(ledger.journal) == 2  # after a FATAL one, on a reopened connection
    assert len(table_rows(ledger.warehouse.con, "meta.asset_checks")) == 2
    ledger.close()


def test_the_warehouse_threads_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's warehouse runs DuckDB on LEDGER_THREADS threads (half the cores, at least one: one on a 2-core
    box), other openings on DuckDB's default; OH_DUCKDB_THREADS overrides both; anything but a positive integer is
    a one-line error naming the variable."""
    from services.ledger.warehouse import LEDGER_THREADS, connect, ledger_threads

    assert [ledger_threads(n) for n in (None, 1, 2, 3, 8)] == [1, 1, 1, 1, 4]

    def threads(con: duckdb.DuckDBPyConnection) -> int:
        [(value,)] = con.execute("SELECT current_setting('threads')").fetchall()
        return int(value)

    monkeypatch.delenv("OH_DUCKDB_THREADS", raising=False)
    default = threads(duckdb.connect())
    ledger = Warehouse(tmp_path / "oh.duckdb")
    assert threads(ledger.con) == LEDGER_THREADS
    ledger.close()
    con = connect(tmp_path / "tool.duckdb")
    assert threads(con) == default
    con.close()
    monkeypatch.setenv("OH_DUCKDB_THREADS", "2")
    ledger = Warehouse(tmp_path / "oh2.duckdb")
    assert threads(ledger.con) == 2
    ledger.close()
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("OH_DUCKDB_THREADS", bad)
        with pytest.raises(SystemExit, match=f"^OH_DUCKDB_THREADS must be a whole number of at least 1 \\(got '{bad}'\\)$"):
            connect(tmp_path / "c.duckdb")
