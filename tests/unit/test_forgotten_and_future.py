"""Health's view of the truth: forgotten symbols leave it (and come back), future-dated data is flagged, and
"expected through" follows the clock it is given."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from contracts import SymbolsForgotten, SymbolsRemembered
from oh.adapters.sim.provider import SimProvider
from oh.read.health import HealthOptions, health_report
from tests.unit.factories import MiniLedger, at, table_rows

MONDAY_MORNING = datetime(2025, 3, 31, 14, 0, tzinfo=UTC)  # data expected through Friday 2025-03-28
LATER = SimProvider(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def _ledger_with_candles(tmp_path: Path) -> MiniLedger:
    """KO with a hole at the end (stale, a gap, in the plan), PEP complete, both since 2025-03-03."""
    from tests.unit.factories import candles, run_finished, run_started

    ledger = MiniLedger(tmp_path)
    ledger.submit([run_started("r1", 0), candles("KO", date(2025, 3, 3), date(2025, 3, 26), "r1", t=1),
                   candles("PEP", date(2025, 3, 3), date(2025, 3, 28), "r1", t=2), run_finished("r1", 3)])
    return ledger


def _report(ledger: MiniLedger, now: datetime = MONDAY_MORNING) -> dict:  # type: ignore[type-arg]
    con = ledger.warehouse.con
    return health_report(lambda sql, params: con.sql(sql, params=params).to_arrow_table(),
                         HealthOptions(days=30, now=now, coverage=True))


def _mentions(report: dict, symbol: str) -> set[str]:  # type: ignore[type-arg]
    found = set()
    if symbol in {w["scope_key"] for w in report["watermarks"]}:
        found.add("freshness")
    if symbol in {g["symbol"] for g in report["gaps"]}:
        found.add("gaps")
    if any(c["symbol"] == symbol for cells in report["coverage"].values() for c in cells):
        found.add("coverage")
    if any(symbol in p["symbols"] for p in report["plan"]):
        found.add("plan")
    return found


def test_a_forgotten_symbol_leaves_freshness_gaps_coverage_and_the_plan(tmp_path: Path) -> None:
    """SymbolsForgotten(KO) takes KO out of every part of the report that judges it, keeps its candles, and lists
    it as forgotten; SymbolsRemembered puts it back."""
    ledger = _ledger_with_candles(tmp_path)
    assert _mentions(_report(ledger), "KO") == {"freshness", "gaps", "coverage", "plan"}
    ledger.submit([SymbolsForgotten(symbols=["KO"], reason="typo", ts=at(10))])
    report = _report(ledger)
    assert _mentions(report, "KO") == set()
    assert _mentions(report, "PEP") == {"freshness", "coverage"}
    assert [(f["symbol"], f["reason"]) for f in report["forgotten"]] == [("KO", "typo")]
    assert ledger.warehouse.con.execute("SELECT count(*) FROM candles_daily WHERE symbol = 'KO'").fetchone()[0] == 18
    ledger.submit([SymbolsRemembered(symbols=["KO"], ts=at(11))])
    assert _mentions(_report(ledger), "KO") == {"freshness", "gaps", "coverage", "plan"}
    assert table_rows(ledger.warehouse.con, "meta.forgotten_symbols") == []


def test_new_data_for_a_forgotten_symbol_brings_it_back(tmp_path: Path) -> None:
    """Data written after the forget (its watermark moves) means the trader works with the symbol again: it is
    judged again. Data written before the forget does not."""
    from tests.unit.factories import candles

    ledger = _ledger_with_candles(tmp_path)
    ledger.submit([SymbolsForgotten(symbols=["KO"], ts=at(10))])
    assert _mentions(_report(ledger), "KO") == set()
    ledger.submit([candles("KO", date(2025, 3, 27), date(2025, 3, 28), "r2", t=12)])
    report = _report(ledger)
    assert "freshness" in _mentions(report, "KO") and report["forgotten"] == []


def test_forgetting_again_updates_when_and_why(tmp_path: Path) -> None:
    """The latest forget of a symbol holds (one row per symbol)."""
    ledger = MiniLedger(tmp_path)
    ledger.submit([SymbolsForgotten(symbols=["AAPLL"], reason="typo", ts=at(1)),
                   SymbolsForgotten(symbols=["AAPLL", "MSFTT"], reason="typos", ts=at(2))])
    rows = table_rows(ledger.warehouse.con, "meta.forgotten_symbols")
    assert [(r["symbol"], r["reason"]) for r in rows] == [("AAPLL", "typos"), ("MSFTT", "typos")]


def test_a_watermark_after_the_last_closed_session_is_flagged_future(tmp_path: Path) -> None:
    """Data dated after the last session closed by `now` cannot be real: its watermark is `future` (with the number
    of sessions ahead), never "0 sessions behind" and fresh."""
    from tests.unit.factories import run_started

    ledger = _ledger_with_candles(tmp_path)
    future = LATER.daily_candles("AAPL", date(2025, 3, 24), date(2025, 4, 4))  # stored as if on Monday morning
    from bus.arrow_ipc import to_ipc
    from contracts import CandlesIngested

    ledger.submit([run_started("r9", 4), CandlesIngested(
        run_id="r9", symbol="AAPL", provider="sim", first_date=date(2025, 3, 24), last_date=date(2025, 4, 4),
        row_count=future.num_rows, rows=to_ipc(future), started_at=at(4), ended_at=at(4), ts=at(4))])
    rows = {w["scope_key"]: w for w in _report(ledger)["watermarks"]}
    assert (rows["AAPL"]["future"], rows["AAPL"]["future_sessions"]) == (True, 5)
    assert (rows["PEP"]["future"], rows["PEP"]["future_sessions"], rows["PEP"]["staleness_sessions"]) == (False, 0, 0)
    later = {w["scope_key"]: w for w in _report(ledger, datetime(2025, 4, 4, 21, 0, tzinfo=UTC))["watermarks"]}
    assert later["AAPL"]["future"] is False


def test_expected_through_follows_the_given_clock(tmp_path: Path) -> None:
    """On Monday morning data is expected through Friday; on Monday evening through Monday."""
    ledger = _ledger_with_candles(tmp_path)
    assert _report(ledger)["expected_through"] == date(2025, 3, 28)
    assert _report(ledger, datetime(2025, 3, 31, 21, 0, tzinfo=UTC))["expected_through"] == date(2025, 3, 31)


def test_a_warehouse_without_the_forgotten_table_still_reports() -> None:
    """A file made before symbols could be forgotten (read-only, no meta.forgotten_symbols) gives a report with
    nothing forgotten instead of an error."""
    import duckdb

    from services.ledger.schema import create_schema

    con = duckdb.connect()
    create_schema(con)
    con.execute("DROP TABLE meta.forgotten_symbols")
    report = health_report(lambda sql, params: con.sql(sql, params=params).to_arrow_table(),
                           HealthOptions(now=MONDAY_MORNING))
    assert report["forgotten"] == [] and isinstance(report["watermarks"], list)


def test_health_refuses_a_clock_in_the_future(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`oh db health --now` may judge as of any earlier time (the seam for reproducible reports), never a later
    one: there is no data for sessions that have not closed, so every dataset would look stale. Exit 2, one line."""
    from typer.testing import CliRunner

    from oh.cli.main import app

    monkeypatch.setenv("OH_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["db", "health", "--now", "2999-01-04T12:00"])
    assert result.exit_code == 2 and "--now 2999-01-04T12:00 is in the future" in result.output
