"""Flow chained after snapshots: a snapshot run triggers compute_flow runs that land `options_flow`."""

from __future__ import annotations

import time
from datetime import date

import pyarrow as pa
import pytest

from bus.home import Home
from oh.adapters.sim.options import option_chain
from oh.domain import derived, flow
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline(home: Home):  # type: ignore[no-untyped-def]
    services = Stack(home)
    services.start_ledger()
    services.start_workers("snapshot", "flow", "derived", "checks")
    yield services
    services.stop()


def _wait_runs(stack: Stack, count: int, job: str = "compute_flow") -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + 60
    while True:
        runs = stack.client.query(
            "SELECT run_id, status, triggered_by, parent_run_id, args_json FROM meta.ingestion_runs "
            "WHERE job_name = ? AND status != 'started' ORDER BY args_json", [job]
        ).to_pylist()
        if len(runs) >= count:
            return runs
        assert time.monotonic() < deadline, f"only {len(runs)} {job} runs finished"
        time.sleep(0.1)


def test_snapshot_run_triggers_flow_for_each_session(pipeline: Stack) -> None:
    """Snapshots of two sessions start one compute_flow run over both sessions (linked, triggered_by pipeline),
    with a partition per symbol and session: the first session has no earlier snapshot and is skipped, the
    second lands exactly oh.domain.flow's rows."""
    snap = run_oh("emit", "snapshot-options", "--symbols", "AAPL,SPY", "--start", "2025-06-02", "--end", "2025-06-03", "--wait")
    assert snap.returncode == 0, snap.stderr
    snapshot_run = pipeline.scalar("SELECT run_id FROM meta.ingestion_runs WHERE job_name = 'snapshot_options'")
    runs = _wait_runs(pipeline, 1)
    assert [(r["status"], r["triggered_by"], r["parent_run_id"]) for r in runs] == [("success", "pipeline", snapshot_run)]
    assets = pipeline.client.query(
        "SELECT partition_key, status FROM meta.ingestion_run_assets WHERE asset_key = 'options_flow' ORDER BY 1"
    ).to_pylist()
    assert [(a["partition_key"], a["status"]) for a in assets] == [
        ("AAPL|2025-06-02", "skipped"), ("AAPL|2025-06-03", "success"),
        ("SPY|2025-06-02", "skipped"), ("SPY|2025-06-03", "success"),
    ]
    before, today = option_chain("AAPL", date(2025, 6, 2)), option_chain("AAPL", date(2025, 6, 3))
    contracts = flow.contract_flow(before, today)
    expected = pa.concat_tables([flow.group_flow(contracts, g, 1) for g in flow.GROUP_BYS])
    stored = pipeline.client.query(
        "SELECT group_by, label, count(*) AS n FROM options_flow WHERE symbol = 'AAPL' AND to_date = '2025-06-03' "
        "GROUP BY ALL ORDER BY ALL"
    ).to_pylist()
    want = expected.group_by(["group_by", "label"]).aggregate([("row_key", "count")]).to_pylist()
    assert stored == sorted(({"group_by": w["group_by"], "label": w["label"], "n": w["row_key_count"]} for w in want),
                            key=lambda r: (r["group_by"], r["label"]))
    labels = {r["label"] for r in stored if r["group_by"] == "contract"}
    assert {"building", "unwinding"} <= labels

    again = run_oh("emit", "compute-flow", "--symbols", "AAPL", "--as-of", "2025-06-03", "--wait")
    assert again.returncode == 0, again.stderr
    assert pipeline.scalar("SELECT count(*) FROM options_flow WHERE symbol = 'AAPL'") == expected.num_rows


def test_flow_runs_trigger_derived_rows(pipeline: Stack) -> None:
    """snapshot -> flow -> derived: the flow run starts one compute_derived run over its sessions (parent = that
    flow run) and derived_daily gets one row per symbol and session, the chain's spot and formula version included."""
    snap = run_oh("emit", "snapshot-options", "--symbols", "AAPL", "--start", "2025-06-02", "--end", "2025-06-03", "--wait")
    assert snap.returncode == 0, snap.stderr
    flow_runs = {r["run_id"] for r in _wait_runs(pipeline, 1)}
    derived_runs = _wait_runs(pipeline, 1, "compute_derived")
    assert {r["parent_run_id"] for r in derived_runs} == flow_runs
    assert {r["status"] for r in derived_runs} == {"success"}
    rows = pipeline.client.query(
        "SELECT session_date, spot, formula_version, atm_iv FROM derived_daily WHERE symbol = 'AAPL' ORDER BY 1"
    ).to_pylist()
    assert [r["session_date"] for r in rows] == [date(2025, 6, 2), date(2025, 6, 3)]
    assert [r["spot"] for r in rows] == [option_chain("AAPL", d).column("spot")[0].as_py() for d in
                                         (date(2025, 6, 2), date(2025, 6, 3))]
    assert {r["formula_version"] for r in rows} == {derived.FORMULA_VERSION}
    assert all(0 < r["atm_iv"] < 3 for r in rows)
    deadline = time.monotonic() + 30
    wanted = {"flow_no_null_primary_keys", "flow_unknown_doi_share", "derived_no_duplicate_keys"}
    while True:
        checks = pipeline.client.query(
            "SELECT DISTINCT check_name, status FROM meta.asset_checks WHERE asset_key IN ('options_flow', 'derived_metrics')"
        ).to_pylist()
        if {c["check_name"] for c in checks} >= wanted:
            break
        assert time.monotonic() < deadline, f"flow and derived checks never arrived: {checks}"
        time.sleep(0.1)
    assert {c["status"] for c in checks} == {"pass"}
