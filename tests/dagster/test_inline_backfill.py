"""Dagster in `inline` mode: a 2-symbol x 8-session backfill (across Juneteenth) whose steps run the jobs'
handlers in Dagster's own step processes (the multiprocess executor, 2 at a time) and send the events to the
ledger. It leaves the tables the CLI's backfill of the same range leaves, and every run in the ledger is Dagster's."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from bus.control_client import ControlClient, LedgerUnavailable
from bus.home import Home
from devtools.processes import Service, wait_for_ledger
from oh.domain import calendar
from tests.dagster.paths import cli_backfill, data_tables, other_home, stack_in
from tests.lazy import lazy
from tests.scenarios.harness import BusHarness

# Imported by the worker that runs these tests, not by every worker that collects them (tests/lazy.py).
dg = lazy("dagster")
materialize = lazy("oh_dagster.materialize")

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "SPY"]
DAYS = [d.astype(date) for d in calendar.last_sessions(date(2025, 6, 25), 8)]  # 6-13 .. 6-25, across Juneteenth


# A hang guard, not a time limit: the default 300 s was crossed at load 30-62 (312 s; 279 s at load 25-44), when
# the dagster backfill, then the CLI's of the same range, each run 6 jobs' steps on a starved box.
@pytest.mark.timeout(900)
def test_an_inline_backfill_over_the_multiprocess_executor_leaves_the_cli_backfill_tables(
        home: Home, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """Every step ran in a process of its own (the multiprocess executor), every run was executed by Dagster
    (service `dagster`, triggered_by=dagster, none chained by a worker), and the data tables equal the CLI's."""
    assert len(DAYS) == 8 and date(2025, 6, 19) not in DAYS
    with stack_in(home) as stack:
        results = materialize.materialize_range(DAYS[0], DAYS[-1], SYMBOLS, instance, mode="inline", processes=2)
        assert [r.success for r in results] == [True, True]
        dagster_tables = data_tables(stack.query, home)
        runs = stack.query("SELECT job_name, triggered_by, args_json FROM meta.ingestion_runs", []).to_pylist()
        assets = stack.query("SELECT partition_key FROM meta.ingestion_run_assets WHERE asset_key = 'derived_metrics' "
                             "AND status = 'success'", []).to_pylist()
        beats = stack.client.status().heartbeats
    assert {r["triggered_by"] for r in runs} == {"dagster"}
    assert {json.loads(r["args_json"])["orchestrator_run_id"] for r in runs} == {r.run_id for r in results}
    per_job = {job: sum(r["job_name"] == job for r in runs) for job in {r["job_name"] for r in runs}}
    # a step over a range sends one ranged command per job (oh_dagster/commands.py): one run, an asset per partition
    assert per_job == {"ingest_candles": 1, "ingest_options_bars": 1, "snapshot_options": 1,
                       "compute_flow": 1, "compute_derived": 1, "build_briefing": 1}
    assert len(assets) == len(DAYS) * len(SYMBOLS)
    assert "dagster" in beats  # the inline steps heartbeat as service `dagster`
    step_pids = {e.pid for r in results for e in r.all_events if e.event_type_value == "STEP_START"}
    assert len(step_pids) > 1 and os.getpid() not in step_pids  # each step in a process of its own
    executor = [e.message for r in results for e in r.all_events if e.event_type_value == "ENGINE_EVENT"]
    assert any("multiprocess executor" in (m or "") for m in executor)

    cli = other_home(tmp_path, "cli")
    with stack_in(cli) as stack:
        cli_backfill(stack, DAYS, SYMBOLS)
        cli_tables = data_tables(stack.query, cli)
    for table in dagster_tables:
        assert dagster_tables[table], table
        assert dagster_tables[table] == cli_tables[table], table


def test_the_ledger_killed_during_an_inline_step_loses_nothing_and_runs_nothing_twice(
        home: Home, instance: dg.DagsterInstance) -> None:
    """kill -9 the ledger while an inline step's snapshot run is writing: the step process keeps its events until
    the restarted ledger acknowledges them, the Dagster runs succeed, and each job ran once, successfully (no run
    abandoned, no event journaled twice), with every session's chain stored."""
    days = DAYS[-5:]
    killed: dict[str, object] = {}

    def kill_mid_snapshot(stack: BusHarness) -> None:
        client = ControlClient(home, timeout=1.0)
        deadline = time.monotonic() + 240
        try:
            while time.monotonic() < deadline:
                try:
                    if client.query("SELECT count(*) FROM option_snapshots").column(0)[0].as_py():
                        killed["status"] = client.query(
                            "SELECT status FROM meta.ingestion_runs WHERE job_name = 'snapshot_options'").column(0)[0].as_py()
                        break
                except LedgerUnavailable:
                    pass
                time.sleep(0.01)
        finally:
            client.close()
        stack.ledger.kill()
        time.sleep(0.5)
        stack.ledger = Service(home, "ledger").start()
        wait_for_ledger(home)

    with stack_in(home) as stack:
        killer = threading.Thread(target=kill_mid_snapshot, args=(stack,), daemon=True)
        killer.start()
        results = materialize.materialize_range(days[0], days[-1], ["QQQ"], instance, mode="inline", processes=None,
                                    resource={"checks_timeout": 10.0})
        killer.join(timeout=60)
        assert killed.get("status") == "started", "the snapshot run ended before the kill: the test proved nothing"
        assert [r.success for r in results] == [True, True]
        runs = stack.query("SELECT job_name, status FROM meta.ingestion_runs", []).to_pylist()
        stored = stack.query("SELECT count(DISTINCT snapshot_date) FROM option_snapshots", []).column(0)[0].as_py()
        duplicates = stack.query("SELECT count(*) - count(DISTINCT id) FROM ledger.events", []).column(0)[0].as_py()
        derived = stack.query("SELECT count(*) FROM derived_daily", []).column(0)[0].as_py()
        # every delivery committed, the one at the kill included, gets its check: a result the checks worker sent
        # into the dying ledger is resent by its producer's pump (bus/producer.py), not left for a later flush
        deliveries = "SELECT count(*) FROM ledger.events WHERE type IN ('ChainSnapshotted', 'FlowComputed')"
        checked = "SELECT count(*) FROM ledger.events WHERE type = 'AssetChecked'"
        deadline = time.monotonic() + 120
        while stack.query(checked, []).column(0)[0].as_py() < stack.query(deliveries, []).column(0)[0].as_py():
            assert time.monotonic() < deadline, "a committed delivery was never checked"
            time.sleep(0.1)
    per_job = sorted((r["job_name"], r["status"]) for r in runs)
    assert per_job == sorted([("ingest_candles", "success"), ("ingest_options_bars", "success"),
                              ("snapshot_options", "success")]
                             + [(job, "success") for job in ("compute_flow", "compute_derived", "build_briefing")])
    assert (stored, derived, duplicates) == (len(days), len(days), 0)
