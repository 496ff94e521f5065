"""Projections into a real DuckDB file (no ledger process): rows, upserts, watermarks, offsets, rebuild, catch-up."""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.arrow_ipc import to_ipc
from bus.codec import encode
from bus.journal import Journal, JournalCorrupt
from contracts import (
    AssetChecked,
    CandlesIngested,
    CheckRecord,
    Message,
    NotificationSent,
    SymbolsForgotten,
    SymbolsRemembered,
)
from oh.adapters.sim.provider import SimProvider
from services.ledger import projections, schema, warehouse
from services.ledger.warehouse import Warehouse, WarehouseAhead
from tests.unit.factories import (
    MiniLedger,
    asset_failed,
    at,
    briefing,
    candles,
    chain,
    columns,
    derived_event,
    flow,
    naive,
    option_bars,
    run_finished,
    run_started,
    snapshot,
    table_rows,
    trade,
)

SIM = SimProvider()
MIDNIGHT = datetime.min.time()


def _sim_rows(symbol: str, start: date, end: date, provider: str = "sim") -> list[dict]:
    return [{**row, "provider": provider} for row in SIM.daily_candles(symbol, start, end).to_pylist()]


def _day(d: date) -> datetime:
    return datetime.combine(d, MIDNIGHT)


def _scenario() -> list[Message]:
    """One failed-partition run (two AAPL chunks, MSFT, an unknown symbol), a trade, checks, a later run."""
    return [
        run_started("r1", 0),
        candles("AAPL", date(2025, 1, 1), date(2025, 1, 31), "r1", t=1),
        candles("AAPL", date(2025, 2, 1), date(2025, 2, 28), "r1", t=2),
        candles("MSFT", date(2025, 1, 1), date(2025, 2, 28), "r1", t=3),
        asset_failed("r1", "ZZFAKE", t=4),
        run_finished("r1", 5, status="failed", error_type="PartialFailure", error_message="1 of 3 symbols failed",
                     error_stack_hash="00112233aabbccdd"),
        trade("o-1", 6),
        trade("o-2", 6.5, price=None),
        AssetChecked(run_id="r1", asset_key="candles_daily", partition_key="AAPL", checked_at=at(7), ts=at(7),
                     results=[CheckRecord("no_gaps", "error", "pass", "ok"),
                              CheckRecord("positive_prices", "error", "pass", "ok", '{"rows": 39}')]),
        run_started("r2", 10),
        candles("AAPL", date(2025, 3, 1), date(2025, 3, 31), "r2", t=11),
        chain("AAPL", date(2025, 3, 3), "r2", t=11.2),
        chain("AAPL", date(2025, 3, 4), "r2", t=11.4),
        chain("AAPL", date(2025, 3, 3), "r2", t=11.6),  # a re-snapshot: rows updated, not duplicated
        flow("AAPL", date(2025, 3, 3), date(2025, 3, 4), "r2", t=11.8),
        derived_event("AAPL", date(2025, 3, 4), "r2", t=11.9),
        option_bars("AAPL", date(2025, 3, 3), "r2", t=11.92),
        option_bars("AAPL", date(2025, 3, 4), "r2", t=11.94),
        option_bars("AAPL", date(2025, 3, 3), "r2", t=11.95),  # a re-delivery: rows updated, not duplicated
        briefing(date(2025, 3, 3), "r2", t=11.96),
        briefing(date(2025, 3, 4), "r2", t=11.97),
        briefing(date(2025, 3, 3), "r2", t=11.98, text="# Revised"),  # the last delivery of a day wins
        run_finished("r2", 12),
        SymbolsForgotten(symbols=["ZZFAKE", "MSFT"], reason="typo and retired", ts=at(13)),
        SymbolsRemembered(symbols=["MSFT"], ts=at(14)),  # forgetting is undone in seq order
        NotificationSent(id="n1", trigger="run_failed", trigger_key="r1", run_id="r1", subject="ingest_candles",
                         title="oh: ingest_candles run failed", message="1 of 3 symbols failed", program="notify-send",
                         status="sent", exit_code=0, started_at=at(15), ended_at=at(15.5), ts=at(15.5)),
    ]


# -- exact rows ----------------------------------------------------------------------------
def test_tables_have_the_contracted_columns(tmp_path: Path) -> None:
    """The projected tables have exactly the columns (in order) the rows below are checked against."""
    wh = Warehouse(tmp_path / "oh.duckdb")
    assert columns(wh.con, "meta.ingestion_runs") == [
        "run_id", "parent_run_id", "job_name", "triggered_by", "status", "started_at", "ended_at", "duration_ms",
        "provider", "storage_backend", "args_json", "git_sha", "app_version", "error_type", "error_message",
        "error_stack_hash"]
    assert columns(wh.con, "meta.ingestion_run_assets") == [
        "run_id", "asset_key", "asset_kind", "partition_key", "status", "rows_inserted", "rows_updated",
        "rows_deleted", "bytes_written", "min_event_ts", "max_event_ts", "extra_json", "started_at", "ended_at",
        "duration_ms"]
    assert columns(wh.con, "meta.asset_watermarks") == [
        "asset_key", "scope_key", "watermark_ts", "updated_at", "last_run_id"]
    assert columns(wh.con, "candles_daily") == [
        "symbol", "date", "open", "high", "low", "close", "volume", "provider"]
    assert wh.applied_seq == 0


@pytest.mark.parametrize("batches", [[1] * 12, [12], [2, 3, 1, 4, 2]], ids=["one-by-one", "one-batch", "mixed"])
def test_a_run_projects_the_expected_rows(tmp_path: Path, batches: list[int]) -> None:
    """RunStarted, CandlesIngested (two chunks of AAPL, one of MSFT), AssetFailed and RunFinished give exactly
    these meta.* and candles rows, however the events were grouped into commits."""
    events = _scenario()[:6]
    ledger = MiniLedger(tmp_path)
    ledger.submit_in_groups(events, batches)
    con = ledger.warehouse.con
    jan, feb = events[1], events[2]
    msft = events[3]
    assert isinstance(jan, CandlesIngested) and isinstance(feb, CandlesIngested) and isinstance(msft, CandlesIngested)

    assert table_rows(con, "meta.ingestion_runs") == [{
        "run_id": "r1", "parent_run_id": None, "job_name": "ingest_candles", "triggered_by": "cli",
        "status": "failed", "started_at": naive(at(0)), "ended_at": naive(at(5)), "duration_ms": 5000,
        "provider": "sim", "storage_backend": "duckdb", "args_json": '{"symbols": ["AAPL"]}', "git_sha": "abc123",
        "app_version": "0.1.0", "error_type": "PartialFailure", "error_message": "1 of 3 symbols failed",
        "error_stack_hash": "00112233aabbccdd",
    }]
    assert table_rows(con, "meta.ingestion_run_assets") == [
        {"run_id": "r1", "asset_key": "candles_daily", "asset_kind": "table", "partition_key": "AAPL",
         "status": "success", "rows_inserted": jan.row_count + feb.row_count, "rows_updated": 0, "rows_deleted": None,
         "bytes_written": len(jan.rows) + len(feb.rows), "min_event_ts": _day(date(2025, 1, 2)),
         "max_event_ts": _day(date(2025, 2, 28)), "extra_json": json.dumps({"provider": "sim"}),
         "started_at": naive(at(1)), "ended_at": naive(at(2.5)), "duration_ms": 1500},
        {"run_id": "r1", "asset_key": "candles_daily", "asset_kind": "table", "partition_key": "MSFT",
         "status": "success", "rows_inserted": msft.row_count, "rows_updated": 0, "rows_deleted": None,
         "bytes_written": len(msft.rows), "min_event_ts": _day(date(2025, 1, 2)),
         "max_event_ts": _day(date(2025, 2, 28)), "extra_json": json.dumps({"provider": "sim"}),
         "started_at": naive(at(3)), "ended_at": naive(at(3.5)), "duration_ms": 500},
        {"run_id": "r1", "asset_key": "candles_daily", "asset_kind": "table", "partition_key": "ZZFAKE",
         "status": "failed", "rows_inserted": None, "rows_updated": None, "rows_deleted": None,
         "bytes_written": None, "min_event_ts": None, "max_event_ts": None,
         "extra_json": json.dumps({"error_type": "UnknownSymbol", "error_message": "the sim market has no symbol ZZFAKE"}),
         "started_at": naive(at(4)), "ended_at": naive(at(4.25)), "duration_ms": 250},
    ]
    assert table_rows(con, "meta.asset_watermarks") == [
        {"asset_key": "candles_daily", "scope_key": "AAPL", "watermark_ts": _day(date(2025, 2, 28)),
         "updated_at": naive(at(2.5)), "last_run_id": "r1"},
        {"asset_key": "candles_daily", "scope_key": "MSFT", "watermark_ts": _day(date(2025, 2, 28)),
         "updated_at": naive(at(3.5)), "last_run_id": "r1"},
    ]
    assert table_rows(con, "candles_daily") == sorted(
        _sim_rows("AAPL", date(2025, 1, 1), date(2025, 2, 28)) + _sim_rows("MSFT", date(2025, 1, 1), date(2025, 2, 28)),
        key=lambda r: (r["symbol"], r["date"]),
    )
    assert con.execute("SELECT seq FROM ledger.offsets WHERE projection = 'warehouse'").fetchone() == (6,)
    assert ledger.warehouse.applied_seq == 6
    assert con.execute("SELECT seq, type FROM ledger.events ORDER BY seq").fetchall() == [
        (i + 1, type(ev).__name__) for i, ev in enumerate(events)]


def test_a_run_in_progress_is_started_with_no_end(tmp_path: Path) -> None:
    """Before RunFinished the run row says `started` with no end, duration or error."""
    ledger = MiniLedger(tmp_path)
    ledger.submit([run_started("r1", 0)])
    [row] = table_rows(ledger.warehouse.con, "meta.ingestion_runs")
    assert row["status"] == "started"
    assert row["ended_at"] is None and row["duration_ms"] is None and row["error_type"] is None


def test_trades_and_checks_are_projected(tmp_path: Path) -> None:
    """TradeUpdated becomes a trade_updates row keyed by event id; AssetChecked one asset_checks row per result."""
    events = _scenario()[6:9]
    ledger = MiniLedger(tmp_path)
    ledger.submit(events)
    trades = table_rows(ledger.warehouse.con, "trade_updates")
    assert [(t["event_id"], t["order_id"], t["price"], t["filled_at"]) for t in trades] == sorted(
        [(events[0].id, "o-1", 101.5, naive(at(6))), (events[1].id, "o-2", None, naive(at(6.5)))])
    checks = table_rows(ledger.warehouse.con, "meta.asset_checks")
    assert sorted((c["check_name"], c["status"], c["run_id"], c["checked_at"]) for c in checks) == [
        ("no_gaps", "pass", "r1", naive(at(7))), ("positive_prices", "pass", "r1", naive(at(7)))]


# -- idempotence, accumulation, watermarks -----------------------------------------------------
def test_same_candles_again_leave_the_same_rows_and_count_as_updates(tmp_path: Path) -> None:
    """Re-ingesting candles already stored (new event ids, new run) changes no candle row and reports them
    as rows_updated, not inserted."""
    ledger = MiniLedger(tmp_path)
    first = candles("AAPL", date(2025, 1, 1), date(2025, 3, 31), "r1", t=1)
    ledger.submit([run_started("r1", 0), first, run_finished("r1", 2)])
    before = table_rows(ledger.warehouse.con, "candles_daily")
    again = candles("AAPL", date(2025, 1, 1), date(2025, 3, 31), "r2", t=5)
    assert again.id != first.id
    ledger.submit([run_started("r2", 4), again, run_finished("r2", 6)])
    assert table_rows(ledger.warehouse.con, "candles_daily") == before
    rows = {r["run_id"]: r for r in table_rows(ledger.warehouse.con, "meta.ingestion_run_assets")}
    assert (rows["r1"]["rows_inserted"], rows["r1"]["rows_updated"]) == (first.row_count, 0)
    assert (rows["r2"]["rows_inserted"], rows["r2"]["rows_updated"]) == (0, first.row_count)


def test_partly_overlapping_candles_split_into_inserted_and_updated(tmp_path: Path) -> None:
    """A range overlapping stored data counts the overlap as updated and the rest as inserted."""
    ledger = MiniLedger(tmp_path)
    ledger.submit([candles("AAPL", date(2025, 1, 1), date(2025, 1, 31), "r1")])
    later = candles("AAPL", date(2025, 1, 15), date(2025, 2, 28), "r2", t=3)
    ledger.submit([later])
    overlap = len(SIM.daily_candles("AAPL", date(2025, 1, 15), date(2025, 1, 31)))
    row = next(r for r in table_rows(ledger.warehouse.con, "meta.ingestion_run_assets") if r["run_id"] == "r2")
    assert (row["rows_inserted"], row["rows_updated"]) == (later.row_count - overlap, overlap)
    assert len(table_rows(ledger.warehouse.con, "candles_daily")) == len(
        SIM.daily_candles("AAPL", date(2025, 1, 1), date(2025, 2, 28)))


def test_changed_values_overwrite_on_the_natural_key(tmp_path: Path) -> None:
    """An upsert on (symbol, date) replaces the values and provider of an existing candle (no duplicate row)."""
    ledger = MiniLedger(tmp_path)
    ledger.submit([candles("AAPL", date(2025, 1, 2), date(2025, 1, 3), "r1")])
    table = SIM.daily_candles("AAPL", date(2025, 1, 2), date(2025, 1, 3))
    doubled = table.set_column(5, "close", pa.compute.multiply(table.column("close"), 2))
    event = CandlesIngested(run_id="r2", symbol="AAPL", provider="alpaca", first_date=date(2025, 1, 2),
                            last_date=date(2025, 1, 3), row_count=2, rows=to_ipc(doubled), started_at=at(1),
                            ended_at=at(2), ts=at(2))
    ledger.submit([event])
    rows = table_rows(ledger.warehouse.con, "candles_daily")
    assert [r["close"] for r in rows] == doubled.column("close").to_pylist()
    assert {r["provider"] for r in rows} == {"alpaca"}


@pytest.mark.parametrize("together", [False, True], ids=["separate-commits", "one-commit"])
def test_two_chunks_of_one_symbol_accumulate_in_one_asset_row(tmp_path: Path, together: bool) -> None:
    """Chunks of one symbol in one run add up (rows, bytes, time span) in a single asset row."""
    a = candles("NVDA", date(2025, 4, 1), date(2025, 4, 30), "r1", t=1)
    b = candles("NVDA", date(2025, 5, 1), date(2025, 5, 31), "r1", t=4)
    ledger = MiniLedger(tmp_path)
    if together:
        ledger.submit([a, b])
    else:
        ledger.submit([a])
        ledger.submit([b])
    [row] = table_rows(ledger.warehouse.con, "meta.ingestion_run_assets")
    assert row["rows_inserted"] == a.row_count + b.row_count
    assert row["rows_updated"] == 0
    assert row["bytes_written"] == len(a.rows) + len(b.rows)
    assert (row["min_event_ts"], row["max_event_ts"]) == (_day(date(2025, 4, 1)), _day(date(2025, 5, 30)))
    assert (row["started_at"], row["ended_at"], row["duration_ms"]) == (naive(at(1)), naive(at(4.5)), 3500)


@pytest.mark.parametrize("together", [False, True], ids=["separate-commits", "one-commit"])
def test_watermark_never_moves_backwards(tmp_path: Path, together: bool) -> None:
    """Backfilling older data after newer data keeps the newest date as the watermark; newer data moves it on."""
    newer = candles("AAPL", date(2025, 6, 1), date(2025, 6, 30), "r1", t=1)
    older = candles("AAPL", date(2025, 1, 1), date(2025, 1, 31), "r2", t=2)
    ledger = MiniLedger(tmp_path)
    if together:
        ledger.submit([newer, older])
    else:
        ledger.submit([newer])
        ledger.submit([older])
    [mark] = table_rows(ledger.warehouse.con, "meta.asset_watermarks")
    assert mark["watermark_ts"] == _day(date(2025, 6, 30))
    ledger.submit([candles("AAPL", date(2025, 7, 1), date(2025, 7, 31), "r3", t=3)])
    [mark] = table_rows(ledger.warehouse.con, "meta.asset_watermarks")
    assert (mark["watermark_ts"], mark["last_run_id"]) == (_day(date(2025, 7, 31)), "r3")


def test_an_empty_chunk_records_the_asset_but_not_a_watermark(tmp_path: Path) -> None:
    """A chunk with no sessions (a weekend) is a success with 0 rows and leaves the watermark alone."""
    ledger = MiniLedger(tmp_path)
    ledger.submit([candles("AAPL", date(2025, 7, 5), date(2025, 7, 6), "r1")])
    [row] = table_rows(ledger.warehouse.con, "meta.ingestion_run_assets")
    assert (row["status"], row["rows_inserted"], row["rows_updated"]) == ("success", 0, 0)
    assert table_rows(ledger.warehouse.con, "meta.asset_watermarks") == []


# -- the offset and the transaction ----------------------------------------------------------
def test_offset_is_persisted_with_the_rows(tmp_path: Path) -> None:
    """After commits, ledger.offsets holds the last seq, and a reopened warehouse starts from it."""
    ledger = MiniLedger(tmp_path)
    ledger.submit(_scenario()[:3])
    ledger.submit(_scenario()[3:5])
    assert ledger.warehouse.applied_seq == 5
    ledger.close()
    reopened = Warehouse(tmp_path / "warehouse" / "oh.duckdb")
    assert reopened.applied_seq == 5
    assert schema.applied_seq(reopened.con) == 5


class _PowerCut(BaseException):
    """Stands for the process being killed mid-transaction (not an error the ledger could handle)."""


@pytest.mark.parametrize("failing", ["index_events", "_set_offset"])
def test_a_failed_commit_leaves_neither_rows_nor_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """Rows and the offset are one transaction: the process dying after the rows were written but before the
    commit leaves the file as it was, and catch-up then applies the batch exactly once."""
    ledger = MiniLedger(tmp_path)
    ledger.submit([run_started("r1", 0)])
    before = snapshot(ledger.warehouse.con)
    events = _scenario()[1:4]

    def crash(*args: object, **kwargs: object) -> None:
        raise _PowerCut("power cut")

    if failing == "index_events":
        monkeypatch.setattr(projections, "index_events", crash)
    else:
        monkeypatch.setattr(Warehouse, "_set_offset", crash)
    with pytest.raises(_PowerCut):
        ledger.submit(events)
    monkeypatch.undo()
    assert snapshot(ledger.warehouse.con) == before
    assert schema.applied_seq(ledger.warehouse.con) == 1
    assert ledger.warehouse.applied_seq == 1
    assert ledger.journal.head_seq == 4  # journaled before the commit failed
    assert ledger.warehouse.catch_up(ledger.journal) == 3
    assert schema.applied_seq(ledger.warehouse.con) == 4
    assert len(table_rows(ledger.warehouse.con, "meta.ingestion_run_assets")) == 2
    assert ledger.warehouse.con.execute("SELECT list(seq ORDER BY seq) FROM ledger.events").fetchone() == ([1, 2, 3, 4],)


def test_a_poisonous_event_is_recorded_and_does_not_block_the_batch(tmp_path: Path) -> None:
    """An event DuckDB refuses (nulls in NOT NULL columns, journaled before validation caught that) is recorded
    in ledger.rejected; the rest of its batch is applied and the offset passes it; a rebuild does the same."""
    table = SIM.daily_candles("AAPL", date(2025, 1, 2), date(2025, 1, 3))
    poison_rows = table.set_column(2, "open", pa.array([None, None], pa.float64()))
    poison = CandlesIngested(run_id="r1", symbol="AAPL", provider="sim", first_date=date(2025, 1, 2),
                             last_date=date(2025, 1, 3), row_count=2, rows=to_ipc(poison_rows), started_at=at(1),
                             ended_at=at(1), ts=at(1))
    good = candles("MSFT", date(2025, 1, 1), date(2025, 1, 31), "r1", t=2)
    ledger = MiniLedger(tmp_path)
    ledger.submit([run_started("r1", 0), poison, good, run_finished("r1", 3)])
    con = ledger.warehouse.con
    assert [r[:2] for r in con.execute("SELECT seq, type FROM ledger.rejected").fetchall()] == [(2, "CandlesIngested")]
    assert ledger.warehouse.applied_seq == 4
    assert {r["symbol"] for r in table_rows(con, "candles_daily")} == {"MSFT"}
    assert table_rows(con, "meta.ingestion_runs")[0]["status"] == "success"
    before = snapshot(con), table_rows(con, "ledger.rejected")
    ledger.warehouse.rebuild(ledger.journal)
    assert (snapshot(ledger.warehouse.con), table_rows(ledger.warehouse.con, "ledger.rejected")) == before


def test_a_projection_bug_is_isolated_to_its_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An applier raising a Python error (a bug, not a DuckDB error) rejects only the events it cannot apply;
    the other events of the batch are committed and the offset moves past all of them."""
    from contracts import TradeUpdated

    def broken(con: duckdb.DuckDBPyConnection, batch: object) -> None:
        raise KeyError("bug in the trade projection")

    monkeypatch.setitem(projections.APPLIERS, TradeUpdated, broken)
    ledger = MiniLedger(tmp_path)
    events = [run_started("r1", 0), trade("o-1", 1), candles("AAPL", date(2025, 1, 1), date(2025, 1, 31), "r1", t=2)]
    ledger.submit(events)
    con = ledger.warehouse.con
    assert [r[:2] for r in con.execute("SELECT seq, type FROM ledger.rejected").fetchall()] == [(2, "TradeUpdated")]
    assert ledger.warehouse.applied_seq == 3
    assert len(table_rows(con, "meta.ingestion_runs")) == 1
    assert len(table_rows(con, "candles_daily")) == events[2].row_count
    assert table_rows(con, "trade_updates") == []
    ledger.submit([run_finished("r1", 3)])  # the connection is still usable
    assert table_rows(con, "meta.ingestion_runs")[0]["status"] == "success"


# -- rebuild and catch-up ----------------------------------------------------------------------
def test_rebuild_from_the_journal_gives_identical_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaying the journal into an empty file, in any chunking, reproduces every projected table exactly."""
    ledger = MiniLedger(tmp_path)
    ledger.submit_in_groups(_scenario(), [1, 1, 2, 3, 1, 4])
    live = snapshot(ledger.warehouse.con)
    assert all(live[t] for t in schema.PROJECTED_TABLES)  # every table has something to compare
    for chunk in (1, 3, 2000):
        monkeypatch.setattr(warehouse, "REPLAY_CHUNK_FRAMES", chunk)
        assert ledger.warehouse.rebuild(ledger.journal) == len(_scenario())
        assert snapshot(ledger.warehouse.con) == live
        assert ledger.warehouse.applied_seq == len(_scenario())
    ledger.close()
    fresh = Warehouse(tmp_path / "elsewhere" / "oh.duckdb")
    assert fresh.catch_up(Journal(tmp_path / "journal")) == len(_scenario())
    assert snapshot(fresh.con) == live
    assert not list((tmp_path / "warehouse").glob("*.rebuild-old*"))


def test_catch_up_after_a_crash_applies_exactly_the_missing_events(tmp_path: Path) -> None:
    """The ledger journaled events but died before committing them: on restart catch_up applies exactly those
    (each seq once), and the tables equal a warehouse that saw everything."""
    events = _scenario()
    ledger = MiniLedger(tmp_path)
    ledger.submit(events[:5])
    ledger.journal_only(events[5:8])
    ledger.journal_only(events[8:])
    ledger.close()

    journal = Journal(tmp_path / "journal")
    restarted = Warehouse(tmp_path / "warehouse" / "oh.duckdb")
    assert restarted.applied_seq == 5
    assert restarted.catch_up(journal) == len(events) - 5
    assert restarted.applied_seq == len(events)
    assert restarted.con.execute("SELECT list(seq ORDER BY seq) FROM ledger.events").fetchone() == (
        list(range(1, len(events) + 1)),)
    assert restarted.catch_up(journal) == 0  # nothing more to do

    reference = Warehouse(tmp_path / "reference" / "oh.duckdb")
    reference.catch_up(journal)
    assert snapshot(restarted.con) == snapshot(reference.con)


def test_catch_up_and_rebuild_refuse_a_journal_shorter_than_the_warehouse(tmp_path: Path) -> None:
    """If the journal lost its tail (the warehouse offset is past its head), neither catch-up nor rebuild touches
    the warehouse: rebuilding from the shorter journal would destroy committed rows. The refusal names the missing
    seqs. A new, empty warehouse is still built from that journal (nothing committed is at stake there)."""
    events = _scenario()
    ledger = MiniLedger(tmp_path)
    ledger.submit(events[:6])
    ledger.submit(events[6:])
    ledger.close()
    short = Journal(tmp_path / "short")
    short.append((f.type, f.payload) for f in Journal(tmp_path / "journal", read_only=True).read(to_seq=6))
    restarted = Warehouse(tmp_path / "warehouse" / "oh.duckdb")
    before = snapshot(restarted.con)
    with pytest.raises(WarehouseAhead, match=f"committed through seq {len(events)} but the journal ends at seq 6"):
        restarted.catch_up(short)
    with pytest.raises(WarehouseAhead, match=f"seqs 7..{len(events)} are missing"):
        restarted.rebuild(short)
    assert restarted.applied_seq == len(events)
    assert snapshot(restarted.con) == before
    assert table_rows(restarted.con, "trade_updates") != []
    fresh = Warehouse(tmp_path / "fresh" / "oh.duckdb")
    assert fresh.catch_up(short) == 6


def test_rebuild_refuses_a_damaged_journal(tmp_path: Path) -> None:
    """A journal that failed its checks on open is never replayed into the warehouse; the file is left as it was."""
    ledger = MiniLedger(tmp_path)
    ledger.submit(_scenario())
    ledger.close()
    segment = min((tmp_path / "journal").glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[40] ^= 0xFF  # inside the first frame's payload: the frames after it are still valid
    segment.write_bytes(bytes(data))
    damaged = Journal(tmp_path / "journal", committed_seq=len(_scenario()))
    assert damaged.faults
    restarted = Warehouse(tmp_path / "warehouse" / "oh.duckdb")
    before = snapshot(restarted.con)
    with pytest.raises(JournalCorrupt, match="refusing to rebuild from a damaged journal"):
        restarted.rebuild(damaged)
    assert snapshot(restarted.con) == before


@pytest.mark.parametrize("failure", ["duckdb-no-space", "oserror-enospc", "fsync"])
def test_a_full_disk_is_not_blamed_on_the_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """A COMMIT that fails for want of space (DuckDB's message, or ENOSPC), or because the journal's fsync failed,
    is raised as it is: no event is recorded in ledger.rejected, neither rows nor offset are committed, and the same
    batch applies normally once the disk allows (catch-up from the journal)."""
    import errno

    from services.ledger.stall import JournalNotDurable, is_disk_full

    ledger = MiniLedger(tmp_path)
    ledger.submit([run_started("r1", 0)])
    events = _scenario()[1:4]
    real = projections.apply_events

    def full(con: duckdb.DuckDBPyConnection, batch: object, new_ids: bool = False) -> None:
        real(con, batch, new_ids=new_ids)
        if failure == "duckdb-no-space":
            raise duckdb.TransactionException(
                'TransactionContext Error: Failed to commit: Could not write file "x.wal": No space left on device')
        raise OSError(errno.ENOSPC, "No space left on device")

    def failing_fsync() -> None:
        raise OSError(errno.EIO, "Input/output error")

    payloads = [encode(ev) for ev in events]
    seqs = ledger.journal.append((type(ev).__name__, p) for ev, p in zip(events, payloads, strict=True))
    if failure == "fsync":
        with pytest.raises(JournalNotDurable):
            ledger.warehouse.commit(list(zip(seqs, events, strict=True)), [len(p) for p in payloads], failing_fsync)
    else:
        monkeypatch.setattr(projections, "apply_events", full)
        with pytest.raises(Exception) as raised:
            ledger.warehouse.commit(list(zip(seqs, events, strict=True)), [len(p) for p in payloads])
        assert is_disk_full(raised.value)
        monkeypatch.undo()
    assert table_rows(ledger.warehouse.con, "ledger.rejected") == []
    assert ledger.warehouse.applied_seq == schema.applied_seq(ledger.warehouse.con) == 1
    assert ledger.warehouse.catch_up(ledger.journal) == 3
    assert len(table_rows(ledger.warehouse.con, "meta.ingestion_run_assets")) == 2


def test_rebuild_is_identical_when_the_same_candles_arrived_twice(tmp_path: Path) -> None:
    """Two runs ingesting the same candles, committed separately live, rebuild to the same meta rows."""
    ledger = MiniLedger(tmp_path)
    ledger.submit([candles("AAPL", date(2025, 1, 1), date(2025, 1, 31), "r1", t=1)])
    ledger.submit([candles("AAPL", date(2025, 1, 1), date(2025, 1, 31), "r2", t=2)])
    live = snapshot(ledger.warehouse.con)
    ledger.warehouse.rebuild(ledger.journal)
    assert snapshot(ledger.warehouse.con) == live


def test_same_candles_twice_in_one_batch_count_once_as_inserted(tmp_path: Path) -> None:
    """Rows inserted across all asset rows equal the candle rows actually created."""
    ledger = MiniLedger(tmp_path)
    a = candles("AAPL", date(2025, 1, 1), date(2025, 1, 31), "r1", t=1)
    b = candles("AAPL", date(2025, 1, 1), date(2025, 1, 31), "r2", t=2)
    ledger.submit([a, b])
    rows = {r["run_id"]: r for r in table_rows(ledger.warehouse.con, "meta.ingestion_run_assets")}
    assert (rows["r2"]["rows_inserted"], rows["r2"]["rows_updated"]) == (0, a.row_count)


_MONTHS = [(date(2025, m, 1), date(2025, m + 1, 1)) for m in range(1, 12)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(
        st.tuples(st.sampled_from(["AAPL", "MSFT", "SPY"]), st.integers(0, len(_MONTHS) - 1),
                  st.sampled_from(["r1", "r2", "r3"])),
        min_size=1, max_size=10, unique_by=lambda c: (c[0], c[1]),
    ),
    extras=st.lists(st.sampled_from(["start", "finish", "fail", "trade"]), max_size=6),
    cuts=st.lists(st.integers(1, 5), max_size=8),
)
def test_rebuild_matches_live_for_any_batching(chunks: list, extras: list, cuts: list[int]) -> None:
    """For any interleaving of runs, disjoint candle chunks, failures and trades, committed in any grouping,
    a rebuild from the journal gives exactly the live tables."""
    events: list[Message] = []
    for i, (symbol, month, run_id) in enumerate(chunks):
        start, next_month = _MONTHS[month]
        events.append(candles(symbol, start, date.fromordinal(next_month.toordinal() - 1), run_id, t=i))
        kind = extras[i] if i < len(extras) else None
        if kind == "start":
            events.append(run_started(run_id, i + 0.1))
        elif kind == "finish":
            events.append(run_finished(run_id, i + 0.2))
        elif kind == "fail":
            events.append(asset_failed(run_id, f"ZZ{i}", i + 0.3))
        elif kind == "trade":
            events.append(trade(f"o{i}", i))
    with tempfile.TemporaryDirectory() as tmp:
        ledger = MiniLedger(Path(tmp))
        ledger.submit_in_groups(events, cuts)
        live = snapshot(ledger.warehouse.con)
        assert ledger.warehouse.rebuild(ledger.journal) == len(events)
        assert snapshot(ledger.warehouse.con) == live
        ledger.close()


# -- validation at the door --------------------------------------------------------------------
def _candles_event(rows: bytes, row_count: int) -> CandlesIngested:
    return CandlesIngested(run_id="r", symbol="AAPL", provider="sim", first_date=date(2025, 1, 2),
                           last_date=date(2025, 1, 10), row_count=row_count, rows=rows, started_at=at(0),
                           ended_at=at(0), ts=at(0))


def test_validate_accepts_good_candles_and_other_events() -> None:
    """A well-formed candles event and events without bulk rows pass validation."""
    table = SIM.daily_candles("AAPL", date(2025, 1, 1), date(2025, 1, 10))
    projections.validate(_candles_event(to_ipc(table), table.num_rows))
    for event in _scenario():
        projections.validate(event)


@pytest.mark.parametrize(
    "rows", [b"", b"not arrow at all", b"\xff\xff\xff\xff" + b"\x00" * 64], ids=["empty", "text", "junk"]
)
def test_validate_rejects_bytes_that_are_not_arrow(rows: bytes) -> None:
    """rows that are not an Arrow IPC stream are a FrameError at the door."""
    with pytest.raises(projections.FrameError, match="not a valid Arrow IPC stream"):
        projections.validate(_candles_event(rows, 0))


def test_validate_rejects_a_truncated_stream() -> None:
    """An Arrow stream cut short is refused, whatever the cut."""
    table = SIM.daily_candles("AAPL", date(2025, 1, 1), date(2025, 1, 10))
    data = to_ipc(table)
    for end in range(0, len(data) - 8, 7):  # the last 8 bytes are the optional end-of-stream marker
        with pytest.raises(projections.FrameError):
            projections.validate(_candles_event(data[:end], table.num_rows))


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"symbol": ["AAPL"], "date": [date(2025, 1, 2)], "close": [1.0]}),
        SIM.daily_candles("AAPL", date(2025, 1, 2), date(2025, 1, 3)).cast(
            pa.schema([*list(SIM.daily_candles("AAPL", date(2025, 1, 2), date(2025, 1, 3)).schema)[:6],
                       pa.field("volume", pa.float64())])),
        SIM.daily_candles("AAPL", date(2025, 1, 2), date(2025, 1, 3)).rename_columns(
            ["symbol", "day", "open", "high", "low", "close", "volume"]),
    ],
    ids=["missing-columns", "volume-float", "renamed-column"],
)
def test_validate_rejects_the_wrong_schema(table: pa.Table) -> None:
    """Rows whose schema is not contracts.rows.CANDLES are a FrameError naming the schema problem."""
    with pytest.raises(projections.FrameError, match="schema mismatch"):
        projections.validate(_candles_event(to_ipc(table), table.num_rows))


@pytest.mark.parametrize("claimed", [0, 5, 7, 100])
def test_validate_rejects_a_wrong_row_count(claimed: int) -> None:
    """row_count must equal the rows actually carried (6 here)."""
    table = SIM.daily_candles("AAPL", date(2025, 1, 1), date(2025, 1, 10))
    assert table.num_rows == 6
    with pytest.raises(projections.FrameError, match="row_count"):
        projections.validate(_candles_event(to_ipc(table), claimed))


def _corrupt_offsets_stream() -> tuple[bytes, int]:
    """A candles stream whose symbol-column offsets point 1 GiB past the string data (schema still valid)."""
    import struct

    import numpy as np

    table = SIM.daily_candles("AAPL", date(2025, 1, 1), date(2025, 1, 10))
    data = bytearray(to_ipc(table))
    n = table.num_rows
    offsets = (np.arange(n + 1, dtype=np.int32) * 4).tobytes()
    at_ = bytes(data).find(offsets)
    assert at_ > 0 and bytes(data).count(offsets) == 1
    data[at_ + 4 * n : at_ + 4 * n + 4] = struct.pack("<i", 1 << 30)
    return bytes(data), n


def test_validate_rejects_corrupt_buffers() -> None:
    """A stream whose string offsets point outside its data is refused (applying it crashes DuckDB/Arrow)."""
    rows, n = _corrupt_offsets_stream()
    with pytest.raises(projections.FrameError):
        projections.validate(_candles_event(rows, n))


def test_validate_raises_only_frame_error_for_any_single_byte_corruption() -> None:
    """Corrupting any one byte of a valid stream (three ways) is either harmless or a FrameError."""
    table = SIM.daily_candles("AAPL", date(2025, 1, 1), date(2025, 1, 10))
    data = to_ipc(table)
    for position in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            corrupt = bytearray(data)
            corrupt[position] ^= mask
            try:
                projections.validate(_candles_event(bytes(corrupt), table.num_rows))
            except projections.FrameError:
                pass


def test_validate_error_is_a_frame_error() -> None:
    """Validation failures are the codec's FrameError, which the ledger counts and Nacks."""
    from bus.codec import FrameError

    assert projections.FrameError is FrameError
    with pytest.raises(FrameError):
        projections.validate(_candles_event(b"x", 0))


def test_connect_uses_utc(tmp_path: Path) -> None:
    """Warehouse connections run in UTC, so TIMESTAMP values mean UTC whoever reads them."""
    con = warehouse.connect(tmp_path / "x.duckdb")
    assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
    con.close()
    ro = warehouse.connect(tmp_path / "x.duckdb", read_only=True)
    with pytest.raises(duckdb.Error):
        ro.execute("CREATE TABLE t (a INT)")


def test_option_bars_and_briefings_are_upserted_with_their_asset_rows(tmp_path: Path) -> None:
    """A re-delivered bars day updates its rows instead of duplicating them, and counts them as updated;
    a re-built briefing replaces the day's text (the last delivery wins) and is one row per day."""
    ledger = MiniLedger(tmp_path)
    first = option_bars("AAPL", date(2025, 3, 3), "r1", t=1)
    ledger.submit([run_started("r1", 0), first, briefing(date(2025, 3, 3), "r1", t=2)])
    ledger.submit([run_started("r2", 2.5), option_bars("AAPL", date(2025, 3, 3), "r2", t=3),
                   briefing(date(2025, 3, 3), "r2", t=4, text="# Second")])
    con = ledger.warehouse.con
    assert con.execute("SELECT count(*) FROM options_bars").fetchone()[0] == first.row_count > 0
    assets = con.execute(
        "SELECT run_id, asset_key, partition_key, rows_inserted, rows_updated FROM meta.ingestion_run_assets ORDER BY 1, 2"
    ).fetchall()
    assert assets == [
        ("r1", "briefing_markdown", "2025-03-03", 1, 0), ("r1", "options_bars", "AAPL|2025-03-03", first.row_count, 0),
        ("r2", "briefing_markdown", "2025-03-03", 0, 1), ("r2", "options_bars", "AAPL|2025-03-03", 0, first.row_count),
    ]
    assert con.execute("SELECT markdown FROM briefings").fetchall() == [("# Second 2025-03-03\n",)]
    marks = con.execute("SELECT asset_key, scope_key, watermark_ts FROM meta.asset_watermarks ORDER BY 1").fetchall()
    assert marks == [("briefing_markdown", "ALL", datetime(2025, 3, 3)), ("options_bars", "AAPL", datetime(2025, 3, 3))]


def test_interleaved_deliveries_batch_per_type_and_give_the_tables_of_one_by_one(tmp_path: Path) -> None:
    """Chains, bars, checks and failures interleaved as several workers send them are applied in one batch per
    type, yet every table equals the one-event-at-a-time result (events writing the same rows keep seq order)."""
    from contracts import AssetChecked, AssetFailed, CheckRecord

    events = [
        run_started("r1", 0), run_started("r2", 0.1),
        chain("AAPL", date(2025, 3, 3), "r1", t=1), option_bars("AAPL", date(2025, 3, 3), "r2", t=1.1),
        AssetChecked(run_id="r1", asset_key="options_snapshot_file", partition_key="AAPL|2025-03-03", checked_at=at(1.2),
                     ts=at(1.2), results=[CheckRecord("snapshot_crossed_quotes", "error", "pass", "ok")]),
        chain("SPY", date(2025, 3, 3), "r1", t=1.3), asset_failed("r1", "ZZFAKE", t=1.35),
        option_bars("AAPL", date(2025, 3, 3), "r2", t=1.4),  # the same rows again: counted as updated
        AssetFailed(run_id="r1", asset_key="options_snapshot_file", partition_key="AAPL|2025-03-03",
                    error_type="Timeout", error_message="provider timed out", started_at=at(1.45), ended_at=at(1.46),
                    ts=at(1.46)),
        chain("AAPL", date(2025, 3, 3), "r1", t=1.5),  # the retry succeeds after the failure: it must stay last run_finished("r2", 2), run_finished("r1", 2.5, status="failed"),
    ]
    batched = Warehouse(tmp_path / "batched.duckdb")
    one_by_one = Warehouse(tmp_path / "single.duckdb")
    applied = list(enumerate(events, start=1))
    calls: list[int] = []
    original = projections.APPLIERS.copy()
    try:
        for kind, applier in original.items():
            projections.APPLIERS[kind] = lambda con, batch, applier=applier: (calls.append(len(batch)), applier(con, batch))
        projections.apply_events(batched.con, applied)
    finally:
        projections.APPLIERS.update(original)
    assert len(calls) < len(events) - 2  # the interleaved chains and bars were applied as batches
    for item in applied:
        projections.apply_events(one_by_one.con, [item])
    assert snapshot(batched.con) == snapshot(one_by_one.con)
