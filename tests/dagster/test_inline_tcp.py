"""Dagster `inline` steps on another host: a code location with its own OH_HOME, a client key and
OH_BUS=tcp://127.0.0.2:PORT materializes a session through the ledger's CURVE-secured tcp bus."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bus import curve
from bus.home import Home
from devtools.ports import free_port_block
from tests.dagster.paths import start_stack
from tests.lazy import lazy

# Imported by the worker that runs these tests, not by every worker that collects them (tests/lazy.py).
dg = lazy("dagster")
definitions = lazy("oh_dagster.definitions")
materialize = lazy("oh_dagster.materialize")
partitions = lazy("oh_dagster.partitions")
resources = lazy("oh_dagster.resources")

pytestmark = pytest.mark.integration

HOST = "127.0.0.2"
DAY = date(2025, 6, 27)


def test_inline_steps_on_another_host_run_their_jobs_over_the_curve_bus(
        home: Home, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before its key is authorized, a step of the step host fails saying what to check (the refusal is counted).
    Once authorized, every step of one session x one symbol runs in the step host's process and reaches the
    ledger over tcp: the runs are Dagster's, the rows are in the ledger's warehouse, the step host stores no
    journal or warehouse, and the ledger saw no plain-text or wrong-server-key connection."""
    curve.init_keys(home.keys, server=True)
    port = free_port_block(HOST)
    (home.config / "bus.toml").write_text(f'[tcp]\naddress = "{HOST}"\nport = {port}\n')
    stack = start_stack(home)  # the ledger (ipc and tcp) and the workers on the ledger's host, over ipc
    try:
        steps = Home(tmp_path / "step-host", bus=f"tcp://{HOST}:{port}", bus_keys="").ensure()
        curve.init_keys(steps.keys, server=False, server_key=curve.public_file(home.keys, curve.SERVER))
        monkeypatch.setenv("OH_BUS", steps.bus)
        instance.add_dynamic_partitions(partitions.SYMBOLS.name, ["AAPL"])
        refused = dg.materialize(  # not authorized yet: the step fails saying what to check, and sends nothing
            [a for a in definitions.ASSETS if a.key == dg.AssetKey("candles_daily")], instance=instance,
            partition_key=f"{DAY}|AAPL", resources={"oh": resources.OhResource(home=str(steps.root), mode="inline")},
            raise_on_error=False,
        )
        failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
        assert "oh keys allow" in failure.event_specific_data.error.message
        assert stack.client.status().counters["tcp_refused_key"] > 0
        curve.allow(home.keys, curve.public_file(steps.keys, curve.CLIENT), "step-host")
        monkeypatch.setenv("OH_HOME", str(steps.root))  # the code location's environment on the step host
        results = materialize.materialize_range(DAY, DAY, ["AAPL"], instance, mode="inline", processes=None,
                                    resource={"checks_timeout": 30.0})
        assert [r.success for r in results] == [True, True]
        runs = stack.query("SELECT job_name, status, triggered_by FROM meta.ingestion_runs", []).to_pylist()
        stored = {table: stack.query(f"SELECT count(*) FROM {table}", []).column(0)[0].as_py()
                  for table in ("candles_daily", "options_bars", "option_snapshots", "briefings")}
        status = stack.client.status()
    finally:
        monkeypatch.delenv("OH_BUS", raising=False)
        stack.close()
    assert {r["triggered_by"] for r in runs} == {"dagster"} and {r["status"] for r in runs} == {"success"}
    assert {r["job_name"] for r in runs} >= {"ingest_candles", "snapshot_options", "compute_derived", "build_briefing"}
    assert all(stored.values()), stored
    assert "dagster" in status.heartbeats  # the inline steps' heartbeat came over tcp
    assert status.counters["tcp_authenticated"] > 0
    assert status.counters.get("tcp_refused_handshake", 0) == 0
    assert not steps.warehouse.exists() and not any(steps.journal.iterdir())
