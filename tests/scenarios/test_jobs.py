"""Every job's scenarios (success, a provider error or missing data for one symbol, an empty result), each run
on the in-process stack AND on the real bus with the same assertions: the handlers are tested without
sockets, and the in-process context cannot drift from the real one.

The harness of each kind is started once per module (the bus: a ledger and every worker as real
processes); scenarios use their own command ids and read back only their own runs and rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from contracts import (
    BuildBriefing,
    ComputeDerived,
    ComputeFlow,
    IngestCandles,
    IngestOptionsBars,
    RunChecks,
    RunDaily,
    SnapshotOptions,
)
from tests.scenarios.harness import BusHarness, Harness, InProcessHarness

MON, TUE, WED = date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4)
SAT, SUN = date(2025, 6, 7), date(2025, 6, 8)
UNKNOWN = "ZZNOPE"  # not a symbol of the sim market


@pytest.fixture(scope="module", params=["inprocess", "bus"])
def harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    from bus.home import Home

    home = Home(tmp_path_factory.mktemp(f"scenarios-{request.param}") / "oh_home").ensure()
    made = InProcessHarness(home) if request.param == "inprocess" else BusHarness(home)
    yield made
    made.close()


def count(harness: Harness, sql: str, params: list[object]) -> int:
    return int(harness.query(sql, params).column(0)[0].as_py())


# -- ingest_candles ------------------------------------------------------------------------------------
def test_ingest_candles_stores_each_session_of_each_symbol(harness: Harness) -> None:
    """Success: one asset row per symbol, one candle per session."""
    out = harness.run(IngestCandles(symbols=["AAPL", "MSFT"], start=MON, end=date(2025, 6, 6)))
    assert (out.status, out.assets) == ("success", (("candles_daily", "AAPL", "success"), ("candles_daily", "MSFT", "success")))
    assert count(harness, "SELECT count(*) FROM candles_daily WHERE symbol IN ('AAPL', 'MSFT') AND date BETWEEN ? AND ?",
                 [MON, date(2025, 6, 6)]) == 10


def test_ingest_candles_fails_only_the_unknown_symbol(harness: Harness) -> None:
    """A provider error for one symbol: that partition fails, the other lands, the run fails naming it."""
    out = harness.run(IngestCandles(symbols=["SPY", UNKNOWN], start=MON, end=TUE))
    assert out.status == "failed" and UNKNOWN in (out.error_message or "")
    assert out.assets == (("candles_daily", "SPY", "success"), ("candles_daily", UNKNOWN, "failed"))
    assert count(harness, "SELECT count(*) FROM candles_daily WHERE symbol = ?", [UNKNOWN]) == 0


def test_ingest_candles_over_a_weekend_stores_nothing(harness: Harness) -> None:
    """An empty result: a range with no session succeeds with no rows."""
    out = harness.run(IngestCandles(symbols=["QQQ"], start=SAT, end=SUN))
    assert (out.status, out.assets) == ("success", (("candles_daily", "QQQ", "success"),))
    assert count(harness, "SELECT count(*) FROM candles_daily WHERE symbol = 'QQQ'", []) == 0


# -- ingest_options_bars -------------------------------------------------------------------------------
def test_ingest_options_bars_stores_one_partition_per_symbol_session(harness: Harness) -> None:
    """Success: bars of the symbol's traded contracts, partition SYMBOL|DATE."""
    out = harness.run(IngestOptionsBars(symbols=["AAPL"], start=TUE, end=TUE, max_dte=20))
    assert (out.status, out.assets) == ("success", (("options_bars", "AAPL|2025-06-03", "success"),))
    assert count(harness, "SELECT count(*) FROM options_bars WHERE underlying = 'AAPL' AND date = ?", [TUE]) > 0


def test_ingest_options_bars_fails_only_the_unknown_symbol(harness: Harness) -> None:
    """A provider error for one symbol fails its partition; the other lands."""
    out = harness.run(IngestOptionsBars(symbols=["SPY", UNKNOWN], start=TUE, end=TUE, max_dte=10))
    assert out.status == "failed" and UNKNOWN in (out.error_message or "")
    assert out.assets == (("options_bars", "SPY|2025-06-03", "success"), ("options_bars", f"{UNKNOWN}|2025-06-03", "failed"))


def test_ingest_options_bars_without_a_session_fails_saying_so(harness: Harness) -> None:
    """An empty range: nothing to fetch is a failed run that says there was no session."""
    out = harness.run(IngestOptionsBars(symbols=["AAPL"], start=SAT, end=SUN))
    assert out.status == "failed" and "no NYSE session" in (out.error_message or "") and out.assets == ()


# -- snapshot_options (and the chain it starts) ----------------------------------------------------------
def test_snapshot_options_stores_the_chain_and_chains_flow_derived_briefing(harness: Harness) -> None:
    """Success: the chain lands, then flow, derived and the briefing run on their own for the session."""
    out = harness.run(SnapshotOptions(symbols=["IWM"], start=MON, end=TUE))
    assert (out.status, out.assets) == ("success", (
        ("options_snapshot_file", "IWM|2025-06-02", "success"), ("options_snapshot_file", "IWM|2025-06-03", "success")))
    assert count(harness, "SELECT count(DISTINCT snapshot_date) FROM option_snapshots WHERE underlying = 'IWM'", []) == 2
    flow = harness.query(
        "SELECT a.partition_key, a.status FROM meta.ingestion_run_assets a JOIN meta.ingestion_runs r USING (run_id) "
        "WHERE r.parent_run_id IS NOT NULL AND a.asset_key = 'options_flow' AND a.partition_key LIKE 'IWM|%' ORDER BY 1", [],
    ).to_pylist()
    assert [(f["partition_key"], f["status"]) for f in flow] == [("IWM|2025-06-02", "skipped"), ("IWM|2025-06-03", "success")]
    assert count(harness, "SELECT count(*) FROM derived_daily WHERE symbol = 'IWM'", []) == 2
    assert count(harness, "SELECT count(*) FROM briefings WHERE as_of = ?", [TUE]) == 1


def test_a_snapshot_an_orchestrator_triggered_chains_nothing(harness: Harness) -> None:
    """Dagster runs flow, derived and the briefing as steps of their own: a snapshot it triggered must not chain
    them too (each would run twice). A CLI snapshot sent after it is chained as before; the flow worker reacts in
    journal order, so once that chain is done the orchestrated run's RunFinished was seen too."""
    from contracts import run_id_for

    orchestrated = SnapshotOptions(symbols=["XLE"], start=MON, end=TUE, triggered_by="dagster",
                                   orchestrator_run_id="dagster-run-1")
    out = harness.run(orchestrated)
    assert (out.status, len(out.assets)) == ("success", 2)
    assert harness.run(SnapshotOptions(symbols=["XLU"], start=TUE, end=TUE)).status == "success"
    run_id = run_id_for(orchestrated.id, "snapshot_options")
    assert count(harness, "SELECT count(*) FROM meta.ingestion_runs WHERE parent_run_id = ?", [run_id]) == 0
    assert count(harness, "SELECT count(*) FROM options_flow WHERE symbol = 'XLE'", []) == 0
    assert count(harness, "SELECT count(*) FROM meta.ingestion_run_assets WHERE asset_key = 'options_flow' "
                          "AND partition_key = 'XLU|2025-06-03'", []) == 1  # the CLI one chained
    recorded = harness.query("SELECT triggered_by, args_json FROM meta.ingestion_runs WHERE run_id = ?",
                             [run_id]).to_pylist()[0]
    assert recorded["triggered_by"] == "dagster" and '"orchestrator_run_id": "dagster-run-1"' in recorded["args_json"]


def test_snapshot_options_fails_only_the_unknown_symbol(harness: Harness) -> None:
    out = harness.run(SnapshotOptions(symbols=["DIA", UNKNOWN], start=TUE, end=TUE))
    assert out.status == "failed" and UNKNOWN in (out.error_message or "")
    assert out.assets == (("options_snapshot_file", "DIA|2025-06-03", "success"),
                          ("options_snapshot_file", f"{UNKNOWN}|2025-06-03", "failed"))


def test_snapshot_options_without_a_session_fails_saying_so(harness: Harness) -> None:
    out = harness.run(SnapshotOptions(symbols=["DIA"], start=SAT, end=SUN))
    assert out.status == "failed" and "no NYSE session" in (out.error_message or "") and out.assets == ()


# -- compute_flow --------------------------------------------------------------------------------------
def test_compute_flow_computes_the_symbol_with_two_sessions_and_skips_the_other(harness: Harness) -> None:
    """Success for a symbol with snapshots on both sessions; a symbol without them is skipped, not failed."""
    harness.run(SnapshotOptions(symbols=["TSLA"], start=MON, end=TUE))
    out = harness.run(ComputeFlow(symbols=["TSLA", "NVDA"], sessions=[TUE]))
    assert (out.status, out.assets) == ("success", (("options_flow", "NVDA|2025-06-03", "skipped"),
                                                    ("options_flow", "TSLA|2025-06-03", "success")))
    assert count(harness, "SELECT count(*) FROM options_flow WHERE symbol = 'TSLA' AND to_date = ?", [TUE]) > 0


def test_compute_flow_with_no_snapshot_at_all_skips_every_symbol(harness: Harness) -> None:
    """An empty result: nothing stored for the day, every partition skipped, the run succeeds."""
    out = harness.run(ComputeFlow(symbols=["AMD"], sessions=[WED]))
    assert (out.status, out.assets) == ("success", (("options_flow", "AMD|2025-06-04", "skipped"),))


# -- compute_derived -----------------------------------------------------------------------------------
def test_compute_derived_writes_a_row_for_the_symbol_with_a_chain(harness: Harness) -> None:
    harness.run(IngestCandles(symbols=["AMZN"], start=date(2025, 3, 3), end=TUE))
    harness.run(SnapshotOptions(symbols=["AMZN"], start=TUE, end=TUE))
    out = harness.run(ComputeDerived(symbols=["AMZN", "META"], sessions=[TUE]))
    assert (out.status, out.assets) == ("success", (("derived_metrics", "AMZN|2025-06-03", "success"),
                                                    ("derived_metrics", "META|2025-06-03", "skipped")))
    row = harness.query("SELECT spot, atm_iv, rv_20 FROM derived_daily WHERE symbol = 'AMZN' AND session_date = ?", [TUE])
    assert row.num_rows == 1 and row.column("rv_20")[0].as_py() is not None


def test_compute_derived_without_chains_skips_every_symbol(harness: Harness) -> None:
    out = harness.run(ComputeDerived(symbols=["GOOGL"], sessions=[WED]))
    assert (out.status, out.assets) == ("success", (("derived_metrics", "GOOGL|2025-06-04", "skipped"),))


# -- build_briefing ------------------------------------------------------------------------------------
def test_build_briefing_writes_the_file_and_the_row(harness: Harness) -> None:
    """Success: the Markdown file and its row say the same; with no portfolio file it says so."""
    day = date(2025, 5, 30)
    out = harness.run(BuildBriefing(symbols=["AAPL"], sessions=[day]))
    assert (out.status, out.assets) == ("success", (("briefing_markdown", "2025-05-30", "success"),))
    stored = harness.query("SELECT markdown, path FROM briefings WHERE as_of = ?", [day]).to_pylist()[0]
    assert (harness.home.root / "briefings" / "2025-05-30.md").read_text() == stored["markdown"]
    assert "No portfolio file" in stored["markdown"]


# -- run_checks ----------------------------------------------------------------------------------------
def test_run_checks_rechecks_the_stored_candles_of_a_symbol(harness: Harness) -> None:
    harness.run(IngestCandles(symbols=["XOM"], start=MON, end=WED))
    command = RunChecks(asset="candles_daily", symbols=["XOM"])
    out = harness.run(command)
    assert out.status == "success"
    from contracts import run_id_for

    checks = harness.query(
        "SELECT check_name, status FROM meta.asset_checks WHERE run_id = ? AND partition_key = 'XOM' ORDER BY 1",
        [run_id_for(command.id, "run_checks")],
    ).to_pylist()
    assert checks and all(c["status"] == "pass" for c in checks)


def test_run_checks_of_an_asset_without_checks_fails_naming_it(harness: Harness) -> None:
    out = harness.run(RunChecks(asset="briefing_markdown"))
    assert out.status == "failed" and "briefing_markdown" in (out.error_message or "")


# -- daily ---------------------------------------------------------------------------------------------
def test_daily_runs_the_whole_chain_for_the_session(harness: Harness) -> None:
    out = harness.run(RunDaily(symbols=["GLD"], as_of=WED, with_portfolio=False, candle_days=40))
    assert out.status == "success", out.error_message
    for table, column, day_column in (("candles_daily", "symbol", "date"), ("options_bars", "underlying", "date"),
                                      ("option_snapshots", "underlying", "snapshot_date"),
                                      ("derived_daily", "symbol", "session_date")):
        assert count(harness, f"SELECT count(*) FROM {table} WHERE {column} = 'GLD' AND {day_column} = ?", [WED]) > 0


def test_daily_with_an_unknown_symbol_fails_naming_each_step(harness: Harness) -> None:
    out = harness.run(RunDaily(symbols=["SLV", UNKNOWN], as_of=WED, with_portfolio=False, candle_days=10))
    assert out.status == "failed"
    for step in ("ingest_candles failed", "snapshot_options failed", "ingest_options_bars failed"):
        assert step in (out.error_message or "")


def test_daily_without_symbols_fails_saying_what_to_give(harness: Harness) -> None:
    out = harness.run(RunDaily(symbols=[], as_of=WED, with_portfolio=False))
    assert out.status == "failed" and "no symbols" in (out.error_message or "")
