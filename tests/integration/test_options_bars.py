"""Job ingest_options_bars on the sim market: bars land per symbol and session, with their checks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from bus.home import Home
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.sim.provider import SimProvider
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration


@pytest.fixture
def bars_stack(home: Home) -> Iterator[Stack]:
    stack = Stack(home)
    stack.start_ledger()
    stack.start_ingest()
    checks = Service(home, "checks").start()
    wait_for_heartbeat(home, "checks")
    yield stack
    checks.stop()
    stack.stop()


def test_option_bars_land_with_asset_rows_and_the_seed_checks(bars_stack: Stack) -> None:
    """Two sessions of bars for AAPL land exactly the sim provider's bars; one asset row per session; the
    three seed checks (monotonic ts, no negative prices, duplicate pk) pass for each; an unknown symbol
    fails its own partitions only and the run says so."""
    result = run_oh("emit", "ingest-options-bars", "--symbols", "AAPL,ZZNOPE", "--start", "2025-06-02",
                    "--end", "2025-06-03", "--max-dte", "30", "--wait")
    assert result.returncode == 1 and "2 of 4 bar days failed" in result.stderr
    sim = SimProvider()
    expected = sum(sim.option_bars("AAPL", sim.option_contracts("AAPL", d, 30), d, d).num_rows
                   for d in (date(2025, 6, 2), date(2025, 6, 3)))
    assert bars_stack.scalar("SELECT count(*) FROM options_bars") == expected > 0
    assets = bars_stack.client.query(
        "SELECT partition_key, status FROM meta.ingestion_run_assets WHERE asset_key = 'options_bars' ORDER BY 1"
    ).to_pylist()
    assert assets == [
        {"partition_key": "AAPL|2025-06-02", "status": "success"}, {"partition_key": "AAPL|2025-06-03", "status": "success"},
        {"partition_key": "ZZNOPE|2025-06-02", "status": "failed"}, {"partition_key": "ZZNOPE|2025-06-03", "status": "failed"},
    ]
    import time

    deadline = time.monotonic() + 30
    while bars_stack.scalar("SELECT count(*) FROM meta.asset_checks WHERE asset_key = 'options_bars'") < 2 * 5:
        assert time.monotonic() < deadline, "checks did not arrive"
        time.sleep(0.1)
    checks = bars_stack.client.query(
        "SELECT check_name, severity, status, count(*) AS n FROM meta.asset_checks WHERE asset_key = 'options_bars' "
        "GROUP BY ALL ORDER BY 1"
    ).to_pylist()
    names = {c["check_name"]: (c["severity"], c["status"], c["n"]) for c in checks}
    for seed in ("options_bars_monotonic_ts", "options_bars_no_negative_prices", "options_bars_duplicate_pk"):
        assert names[seed] == ("error", "pass", 2)


def test_checks_rerun_on_stored_bars(bars_stack: Stack) -> None:
    """`oh emit checks --asset options_bars` re-checks the stored bars per underlying as a run_checks run."""
    assert run_oh("emit", "ingest-options-bars", "--symbols", "SPY", "--as-of", "2025-06-03", "--wait").returncode == 0
    result = run_oh("emit", "checks", "--asset", "options_bars", "--wait")
    assert result.returncode == 0, result.stderr
    rows = bars_stack.client.query(
        "SELECT c.partition_key, c.check_name, c.status FROM meta.asset_checks c JOIN meta.ingestion_runs r USING (run_id) "
        "WHERE r.job_name = 'run_checks' ORDER BY 2"
    ).to_pylist()
    assert {r["partition_key"] for r in rows} == {"SPY"}
    assert {r["check_name"] for r in rows} >= {"options_bars_monotonic_ts", "options_bars_duplicate_pk"}
    assert {r["status"] for r in rows} == {"pass"}
