"""Dagster in `bus` mode against the real stack: its steps send the commands through the ledger and the
supervisord workers run them. The warehouse it leaves is the one `oh emit daily` leaves, the run ledger
records every run as Dagster's, and a failure (a bad symbol, a worker down) fails the step that met it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from bus.home import Home
from oh.domain import calendar
from tests.dagster.paths import cli_dailies, data_tables, other_home, stack_in
from tests.integration.conftest import run_oh
from tests.lazy import lazy
from tests.scenarios.harness import BusHarness

# Imported by the worker that runs these tests, not by every worker that collects them (tests/lazy.py).
dg = lazy("dagster")
materialize = lazy("oh_dagster.materialize")

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "SPY"]
DAYS = [d.astype(date) for d in calendar.sessions(date(2025, 6, 3), date(2025, 6, 5))]
ASSET_JOBS = ["build_briefing", "compute_derived", "compute_flow", "ingest_candles", "ingest_options_bars",
              "snapshot_options"]


def _step_failures(result: dg.ExecuteJobResult) -> dict[str, str]:
    return {e.step_key: e.event_specific_data.error.message for e in result.all_events
            if e.event_type_value == "STEP_FAILURE"}


def test_bus_mode_leaves_the_tables_oh_emit_daily_leaves_and_every_run_is_dagsters(
        home: Home, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """2 symbols x 3 sessions through Dagster's Python API, then the same sessions with `oh emit daily` in a second
    home: every data table is equal. Each job ran exactly as often as its commands (nothing chained twice), every
    run says triggered_by=dagster with its Dagster run id, and `oh db health` lists them so."""
    with stack_in(home) as stack:
        results = materialize.materialize_range(DAYS[0], DAYS[-1], SYMBOLS, instance, mode="bus")
        assert [r.success for r in results] == [True, True], [_step_failures(r) for r in results]
        dagster_tables = data_tables(stack.query, home)
        runs = stack.query("SELECT run_id, job_name, status, triggered_by, args_json FROM meta.ingestion_runs",
                           []).to_pylist()
        health = run_oh("db", "health", "--json")
        text = run_oh("db", "health")
        checks = stack.query("SELECT count(*) FROM meta.asset_checks", []).column(0)[0].as_py()
    assert sorted((r["job_name"], r["status"]) for r in runs) == sorted(
        [("ingest_candles", "success"), ("ingest_options_bars", "success"), ("snapshot_options", "success")]
        + [(job, "success") for job in ("compute_flow", "compute_derived", "build_briefing")])  # one ranged run each
    assert {r["triggered_by"] for r in runs} == {"dagster"}
    assert {json.loads(r["args_json"])["orchestrator_run_id"] for r in runs} == {r.run_id for r in results}
    assert health.returncode == 0, health.stderr
    latest = json.loads(health.stdout)["latest_runs"]
    assert sorted(r["job_name"] for r in latest) == ASSET_JOBS
    assert {r["triggered_by"] for r in latest} == {"dagster"} and {r["status"] for r in latest} == {"success"}
    assert text.returncode == 0 and "dagster" in text.stdout
    assert checks > 0

    materialized = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for r in results for e in r.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
    }
    candles = materialized["candles_daily"]
    assert candles["rows"].value > 0 and candles["provider"].value == "sim" and candles["mode"].value == "bus"
    assert candles["ledger_run_ids"].value == next(r["run_id"] for r in runs if r["job_name"] == "ingest_candles")
    assert sorted(materialized) == sorted(["candles_daily", "options_bars", "options_snapshot_file", "options_flow",
                                           "derived_metrics", "briefing_markdown"])

    cli = other_home(tmp_path, "cli")
    with stack_in(cli) as stack:
        cli_dailies(DAYS, SYMBOLS)
        cli_tables = data_tables(stack.query, cli)
    for table in dagster_tables:
        assert dagster_tables[table], table
        assert dagster_tables[table] == cli_tables[table], table


def test_an_unknown_symbol_fails_its_steps_and_is_a_failed_run_in_the_ledger(
        home: Home, stack: BusHarness, instance: dg.DagsterInstance) -> None:
    """A partition of a symbol the provider does not know: the steps that fetch it fail with the ledger's error,
    the steps after them do not run, and `meta.ingestion_runs` shows each as a failed Dagster run."""
    (result,) = materialize.materialize_range(DAYS[0], DAYS[0], ["ZZNOPE"], instance, mode="bus")
    assert not result.success
    failures = _step_failures(result)
    assert sorted(failures) == ["candles_daily", "options_bars", "options_snapshot_file"]
    assert all("ZZNOPE" in message and "failed" in message for message in failures.values())
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "options_flow" not in started and "derived_metrics" not in started, skipped
    runs = stack.query("SELECT job_name, status, triggered_by, error_message, args_json FROM meta.ingestion_runs",
                       []).to_pylist()
    assert sorted(r["job_name"] for r in runs) == ["ingest_candles", "ingest_options_bars", "snapshot_options"]
    for run in runs:
        assert (run["status"], run["triggered_by"]) == ("failed", "dagster")
        assert "ZZNOPE" in run["error_message"]
        assert json.loads(run["args_json"])["orchestrator_run_id"] == result.run_id
    health = json.loads(run_oh("db", "health", "--json").stdout)
    assert {(g["job_name"], g["error_type"]) for g in health["failure_groups"]} >= {("ingest_candles", "UnknownSymbol")}


def test_a_worker_that_is_down_fails_the_step_waiting_for_it_in_one_line(
        home: Home, stack: BusHarness, instance: dg.DagsterInstance) -> None:
    """With the flow worker stopped, the steps before flow succeed and the flow step fails saying which job no
    worker started and what to check; nothing after it runs."""
    next(w for w in stack.workers if w.name == "flow").stop()
    (result,) = materialize.materialize_range(DAYS[0], DAYS[0], ["AAPL"], instance, mode="bus", resource={"start_timeout": 5.0})
    assert not result.success
    failures = _step_failures(result)
    assert list(failures) == ["options_flow"]
    assert "compute_flow did not start within 5s" in failures["options_flow"] and "oh status" in failures["options_flow"]
    done = {e.asset_key.to_user_string() for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert done == {"candles_daily", "options_bars", "options_snapshot_file"}
