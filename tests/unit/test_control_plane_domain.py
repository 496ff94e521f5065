"""The control plane's pure parts: staleness in sessions, gaps, the planner (golden), checks, health."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import numpy as np
import pyarrow as pa

from oh.adapters.sim.provider import SimProvider
from oh.domain import calendar
from oh.domain.checks import (
    candle_gap_check,
    candle_payload_checks,
    chain_snapshot_checks,
    derived_checks,
    flow_checks,
    snapshot_date_check,
)
from oh.domain.coverage import Gap, coverage_matrix, find_gaps, missing_ranges
from oh.domain.planner import plan
from oh.read.health import HealthOptions, health_report
from services.ledger.schema import create_schema


def _days(*texts: str) -> np.ndarray:
    return np.array(texts, dtype="datetime64[D]")


def test_staleness_counts_sessions_not_calendar_days_across_a_weekend() -> None:
    """Friday's data on Monday morning is 0 sessions stale; after Monday's close it is 1."""
    monday_morning = datetime(2025, 11, 24, 14, 0, tzinfo=UTC)
    monday_evening = datetime(2025, 11, 24, 21, 30, tzinfo=UTC)
    assert calendar.last_closed_session(monday_morning) == date(2025, 11, 21)
    assert calendar.sessions_after(date(2025, 11, 21), calendar.last_closed_session(monday_morning)) == 0
    assert calendar.sessions_after(date(2025, 11, 21), calendar.last_closed_session(monday_evening)) == 1


def test_staleness_skips_a_holiday() -> None:
    """Wednesday's data on the Friday after Thanksgiving (before its early close) is 0 sessions stale."""
    friday_noon = datetime(2025, 11, 28, 16, 0, tzinfo=UTC)  # 11:00 in New York, before the 13:00 close
    assert calendar.last_closed_session(friday_noon) == date(2025, 11, 26)
    assert calendar.sessions_after(date(2025, 11, 26), date(2025, 11, 28)) == 1
    assert calendar.sessions_after(date(2025, 11, 26), date(2025, 12, 1)) == 2  # Friday and Monday


def test_missing_ranges_merge_consecutive_sessions_across_weekends() -> None:
    """Missing Thu, Fri and the next Mon form one range: consecutive in sessions, not in days."""
    expected = calendar.sessions(date(2025, 3, 3), date(2025, 3, 14))
    present = np.setdiff1d(expected, _days("2025-03-06", "2025-03-07", "2025-03-10", "2025-03-13"))
    assert missing_ranges(expected, present) == [
        (date(2025, 3, 6), date(2025, 3, 10), 3),
        (date(2025, 3, 13), date(2025, 3, 13), 1),
    ]


def test_planner_golden_output() -> None:
    """A known set of gaps gives exactly this ordered plan: upstream first (candles, bars, snapshots, then
    replays for flow and derived), shared ranges merged, sorted; a flow gap that a planned snapshot backfill
    covers is left to that backfill's chain."""
    gaps = [
        Gap("options_flow", "AAPL", date(2025, 3, 3), date(2025, 3, 7), 5),
        Gap("options_flow", "AAPL", date(2025, 1, 7), date(2025, 1, 8), 2),  # inside the AAPL snapshot gap
        Gap("derived_metrics", "SPY", date(2025, 3, 3), date(2025, 3, 4), 2),
        Gap("options_bars", "SPY", date(2025, 3, 3), date(2025, 3, 3), 1),
        Gap("candles_daily", "MSFT", date(2025, 3, 10), date(2025, 3, 14), 5),
        Gap("candles_daily", "AAPL", date(2025, 3, 10), date(2025, 3, 14), 5),
        Gap("candles_daily", "SPY", date(2025, 2, 3), date(2025, 2, 4), 2),
        Gap("candles_daily", "AAPL", date(2025, 3, 20), date(2025, 3, 20), 1),
        Gap("options_snapshot_file", "AAPL", date(2025, 1, 6), date(2025, 1, 8), 3),
    ]
    assert [str(c) for c in plan(gaps)] == [
        "oh emit ingest-candles --symbols SPY --start 2025-02-03 --end 2025-02-04",
        "oh emit ingest-candles --symbols AAPL,MSFT --start 2025-03-10 --end 2025-03-14",
        "oh emit ingest-candles --symbols AAPL --start 2025-03-20 --end 2025-03-20",
        "oh emit ingest-options-bars --symbols SPY --start 2025-03-03 --end 2025-03-03",
        "oh emit snapshot-options --symbols AAPL --start 2025-01-06 --end 2025-01-08",
        "oh replay --since 2025-03-03 --until 2025-03-07 --type ChainSnapshotted --symbols AAPL",
        "oh replay --since 2025-03-03 --until 2025-03-04 --type FlowComputed --symbols SPY",
    ]
    assert [str(c) for c in plan(list(reversed(gaps)))] == [str(c) for c in plan(gaps)]


def test_find_gaps_and_coverage_matrix() -> None:
    """Gaps per symbol, and a long-form matrix that tells missing from before-the-first-date."""
    sessions = calendar.sessions(date(2025, 3, 3), date(2025, 3, 7))
    present = {"AAPL": sessions[[0, 1, 3, 4]], "NEW": sessions[3:]}
    gaps = find_gaps("candles_daily", {"AAPL": sessions, "NEW": sessions[3:]}, present)
    assert gaps == [Gap("candles_daily", "AAPL", date(2025, 3, 5), date(2025, 3, 5), 1)]
    matrix = coverage_matrix(sessions, present, {"AAPL": date(2025, 3, 3), "NEW": date(2025, 3, 6)})
    states = {(r["symbol"], str(r["session"])): r["state"] for r in matrix.to_pylist()}
    assert states[("AAPL", "2025-03-05")] == "missing"
    assert states[("NEW", "2025-03-03")] == "before_start"
    assert states[("NEW", "2025-03-07")] == "present"
    assert matrix.num_rows == 10


def test_payload_checks_pass_on_clean_data_and_name_each_fault() -> None:
    """Clean sim candles pass every check; duplicates, disorder, negatives, bad OHLC and zero volume fail."""
    clean = SimProvider().daily_candles("AAPL", date(2025, 1, 1), date(2025, 1, 31))
    assert {r.check_name: r.status for r in candle_payload_checks(clean)} == {
        "candles_unique_symbol_date": "pass", "candles_monotonic_date": "pass", "candles_no_negative_prices": "pass",
        "candles_no_missing_prices": "pass", "candles_ohlc_consistent": "pass", "candles_no_negative_volume": "pass",
        "candles_zero_volume_days": "pass",
    }
    data = clean.to_pydict()
    data["low"][2] = -5.0
    data["high"][3] = data["low"][3] / 2
    data["volume"][4] = 0
    for column in data:
        data[column].append(data[column][0])  # duplicate of the first date, out of order
    results = {r.check_name: r for r in candle_payload_checks(pa.Table.from_pydict(data, schema=clean.schema))}
    assert results["candles_unique_symbol_date"].metrics["duplicates"] == 1
    assert results["candles_monotonic_date"].status == "fail"
    assert results["candles_no_negative_prices"].metrics["negative"] == 1
    assert results["candles_ohlc_consistent"].status == "fail"
    assert results["candles_zero_volume_days"].severity == "warn" and results["candles_zero_volume_days"].status == "fail"
    assert candle_payload_checks(clean.slice(0, 0))[0].status == "pass"


def test_gap_check_counts_missing_expected_sessions() -> None:
    """The gap check reports how many of the expected sessions are absent, and which."""
    expected = calendar.last_sessions(date(2025, 3, 31), 30)
    result = candle_gap_check(np.setdiff1d(expected, expected[5:7]), expected)
    assert result.status == "fail" and result.metrics["gap_days"] == 2
    assert candle_gap_check(expected, expected).status == "pass"


def test_health_report_reads_freshness_failures_and_plan_from_tables() -> None:
    """The report from plain tables: stale flagged in sessions, failures grouped by stack hash, a plan."""
    con = duckdb.connect()
    create_schema(con)
    for i, (stack, when) in enumerate([("h1", "2025-03-20"), ("h1", "2025-03-21"), ("h2", "2025-03-21")]):
        con.execute(
            "INSERT INTO meta.ingestion_runs (run_id, job_name, triggered_by, status, started_at, error_type, "
            "error_message, error_stack_hash) VALUES (?, 'ingest_candles', 'cli', 'failed', ?, 'E', ?, ?)",
            [f"r{i}", datetime.fromisoformat(when), f"boom {i}", stack],
        )
    con.execute("INSERT INTO meta.asset_watermarks VALUES ('candles_daily', 'KO', '2025-03-26', '2025-03-26', 'r0'), "
                "('candles_daily', 'PEP', '2025-03-28', '2025-03-28', 'r0')")
    candles = pa.concat_tables([SimProvider().daily_candles(s, date(2025, 3, 3), end) for s, end in
                                (("KO", date(2025, 3, 26)), ("PEP", date(2025, 3, 28)))])
    con.register("c", candles)
    con.execute("INSERT INTO candles_daily SELECT *, 'sim' FROM c")
    report = health_report(
        lambda sql, params: con.sql(sql, params=params).to_arrow_table(),
        HealthOptions(days=30, stale_days=1, now=datetime(2025, 3, 31, 14, 0, tzinfo=UTC), coverage=True),  # Monday morning
    )
    cells = {(c["symbol"], str(c["session"])): c["state"] for c in report["coverage"]["candles_daily"]}
    assert cells[("KO", "2025-03-27")] == "missing" and cells[("PEP", "2025-03-27")] == "present"
    assert cells[("KO", "2025-02-28")] == "before_start"
    assert [(g["error_stack_hash"], g["failures"]) for g in report["failure_groups"]] == [("h1", 2), ("h2", 1)]
    fresh = {w["scope_key"]: (w["staleness_sessions"], w["stale"]) for w in report["watermarks"]}
    assert fresh == {"PEP": (0, False), "KO": (2, True)}
    assert [p["command"] for p in report["plan"]] == [
        "oh emit ingest-candles --symbols KO --start 2025-03-27 --end 2025-03-28"
    ]


def test_chain_checks_name_each_fault() -> None:
    """A clean sim chain passes; junk symbols, a crossed quote, a negative price and a mislabeled date fail."""
    from oh.adapters.sim.options import option_chain

    day = date(2025, 6, 3)
    clean = option_chain("AAPL", day)
    assert {r.status for r in chain_snapshot_checks(clean)} == {"pass"}
    assert snapshot_date_check(clean, day).status == "pass"
    data = clean.to_pydict()
    data["contract_symbol"][0] = "NOT-A-SYMBOL"
    data["bid"][1], data["ask"][1] = 5.0, 4.0
    data["last"][2] = -1.0
    data["snapshot_date"][3] = date(2025, 6, 2)
    bad = pa.Table.from_pydict(data, schema=clean.schema)
    results = {r.check_name: r for r in chain_snapshot_checks(bad)}
    assert results["snapshot_parseable_contract_symbol"].status == "fail"
    assert results["snapshot_parseable_contract_symbol"].severity == "warn"  # 1 bad row is below 1%
    assert results["snapshot_crossed_quotes"].metrics["crossed"] == 1
    assert results["snapshot_no_negative_prices"].metrics["negative"] == 1
    assert snapshot_date_check(bad, day).metrics["stale"] == 1


def test_flow_and_derived_key_checks() -> None:
    """A flow row with a null key fails flow_no_null_primary_keys; a repeated derived key fails its check."""
    from oh.adapters.sim.options import option_chain
    from oh.domain import derived, flow

    rows = flow.group_flow(flow.contract_flow(option_chain("AAPL", date(2025, 6, 2)), option_chain("AAPL", date(2025, 6, 3))),
                           "contract", 1)
    assert flow_checks(rows, flow.PERSISTED_KEY)[0].status == "pass"
    broken = rows.set_column(rows.schema.get_field_index("row_key"), "row_key",
                             pa.array([None, *rows.column("row_key").to_pylist()[1:]], pa.string()))
    assert flow_checks(broken, flow.PERSISTED_KEY)[0].metrics["nulls"]["row_key"] == 1
    row = derived.derived_row("AAPL", date(2025, 6, 3), option_chain("AAPL", date(2025, 6, 3)), [], None)
    assert derived_checks(derived.derived_table([row]))[0].status == "pass"
    assert derived_checks(derived.derived_table([row, row]))[0].metrics["duplicates"] == 1
