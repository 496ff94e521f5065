"""Each check result is written once per (run, asset, partition, check), even when a worker is killed mid-run.

A run left `started` by a kill -9 is run again when its worker restarts (services/runtime.py): the
re-run emits its data events again under new event ids, the checks worker checks them again, and
the check rows must still come out once each (issue #11 item 5a).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bus.home import Home
from devtools.processes import Service, wait_for_heartbeat
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "SPY", "MSFT", "QQQ", "NVDA", "AMZN", "META", "TSLA", "GOOGL", "AMD", "IWM", "JPM",
           "NFLX", "DIS", "INTC", "ORCL", "BAC", "XOM", "KO", "PFE")
DUPLICATES = """
SELECT run_id, asset_key, partition_key, check_name, count(*) AS n FROM meta.asset_checks
GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL
"""


@pytest.fixture
def stack_with_checks(home: Home) -> Iterator[tuple[Stack, dict[str, Service]]]:
    services = Stack(home)
    services.start_ledger()
    workers = {name: Service(home, name).start() for name in ("snapshot", "checks")}
    for name in workers:
        wait_for_heartbeat(home, name)
    yield services, workers
    for service in workers.values():
        if service.proc is not None and service.proc.poll() is None:
            service.stop()
    services.stop()


def _wait(stack: Stack, sql: str, done: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.scalar(sql) != done:
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _events(stack: Stack, kind: str) -> int:
    return int(stack.scalar("SELECT count(*) FROM ledger.events WHERE type = ?", [kind]))  # type: ignore[arg-type]


def test_kill_9_of_the_flow_worker_mid_run_leaves_one_check_row_per_result(
    home: Home, stack_with_checks: tuple[Stack, dict[str, Service]]
) -> None:
    """kill -9 the flow worker while its run has emitted some symbols; on restart the run is redone and every
    (run, asset, partition, check) still has exactly one row in meta.asset_checks."""
    stack, workers = stack_with_checks
    snap = run_oh("emit", "snapshot-options", "--symbols", ",".join(SYMBOLS), "--start", "2025-06-02",
                  "--end", "2025-06-03", "--wait")
    assert snap.returncode == 0, snap.stderr
    # The flow worker catches up: the finished snapshot run chains one compute_flow run over both sessions (a
    # ranged command; services/pipeline.py). One symbol per frame: by default its 20 symbols go in one frame and
    # land at once, leaving no "mid-run" to kill it in (the restarted worker below batches as by default).
    flow = Service(home, "flow", env={"OH_FLOW_BATCH_PARTITIONS": "1"}).start()
    workers["flow"] = flow
    deadline = time.monotonic() + 120
    while True:
        landed = stack.scalar("SELECT count(*) FROM meta.ingestion_run_assets WHERE asset_key = 'options_flow' "
                              "AND status = 'success'")
        if landed:
            break
        assert time.monotonic() < deadline, "no flow landed"
        time.sleep(0.005)
    flow.kill()
    unfinished = stack.scalar("SELECT count(*) FROM meta.ingestion_runs WHERE job_name = 'compute_flow' "
                              "AND status = 'started'")
    assert unfinished, "the flow run finished before the kill; the test would prove nothing"
    flow = Service(home, "flow").start()
    workers["flow"] = flow
    wait_for_heartbeat(home, "flow")
    _wait(stack, "SELECT count(*) FROM meta.ingestion_runs WHERE job_name = 'compute_flow' AND status = 'success'",
          1, "the flow run did not succeed after the restart")
    assert _events(stack, "FlowComputed") > len(SYMBOLS), "the re-run emitted nothing again; nothing was tested"
    # every committed chain and flow delivery gets its AssetChecked; wait until the checks worker caught up
    deadline = time.monotonic() + 120
    while _events(stack, "AssetChecked") < _events(stack, "FlowComputed") + _events(stack, "ChainSnapshotted"):
        assert time.monotonic() < deadline, "the checks worker did not check every delivery"
        time.sleep(0.05)
    duplicates = stack.client.query(DUPLICATES).to_pylist()
    assert duplicates == []
    flow_rows = stack.scalar("SELECT count(*) FROM meta.asset_checks WHERE asset_key = 'options_flow'")
    assert flow_rows == stack.scalar(
        "SELECT count(DISTINCT (run_id, partition_key, check_name)) FROM meta.asset_checks WHERE asset_key = 'options_flow'")
    names = stack.scalar("SELECT count(DISTINCT check_name) FROM meta.asset_checks WHERE asset_key = 'options_flow'")
    assert flow_rows == len(SYMBOLS) * names  # the one computing run: a row per symbol and flow check


def test_a_check_run_killed_mid_run_and_redone_writes_each_result_once(
    home: Home, stack_with_checks: tuple[Stack, dict[str, Service]]
) -> None:
    """`oh emit checks` re-checks stored candles per symbol; kill -9 the checks worker mid-run, restart it, and
    the redone run still has one row per (run, asset, partition, check)."""
    stack, workers = stack_with_checks
    stack.start_ingest()
    ingest = run_oh("emit", "ingest-candles", "--symbols", ",".join(SYMBOLS), "--start", "2015-01-01",
                    "--end", "2025-06-30", "--wait")
    assert ingest.returncode == 0, ingest.stderr
    sent = run_oh("emit", "checks", "--asset", "candles_daily")
    assert sent.returncode == 0, sent.stderr
    deadline = time.monotonic() + 120
    while not stack.scalar("SELECT count(*) FROM meta.asset_checks a JOIN meta.ingestion_runs r USING (run_id) "
                           "WHERE r.job_name = 'run_checks'"):
        assert time.monotonic() < deadline, "the check run wrote nothing"
        time.sleep(0.005)
    workers["checks"].kill()
    assert stack.scalar("SELECT status FROM meta.ingestion_runs WHERE job_name = 'run_checks'") == "started", \
        "the check run finished before the kill; the test would prove nothing"
    workers["checks"] = Service(home, "checks").start()
    _wait(stack, "SELECT status FROM meta.ingestion_runs WHERE job_name = 'run_checks'", "success",
          "the check run did not succeed after the restart")
    assert stack.client.query(DUPLICATES).to_pylist() == []
    per_symbol = stack.client.query(
        "SELECT partition_key, count(*) AS n FROM meta.asset_checks a JOIN meta.ingestion_runs r USING (run_id) "
        "WHERE r.job_name = 'run_checks' GROUP BY 1").to_pylist()
    assert sorted(r["partition_key"] for r in per_symbol) == sorted(SYMBOLS)
    assert len({r["n"] for r in per_symbol}) == 1
