"""`snapshot_options` end to end: full chains land in `option_snapshots`, idempotently, with checks."""

from __future__ import annotations

import time
from datetime import date

import pytest

from bus.home import Home
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.sim.options import option_chain
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration


@pytest.fixture
def snapshot_stack(home: Home):  # type: ignore[no-untyped-def]
    services = Stack(home)
    services.start_ledger()
    extra = [Service(home, "snapshot").start(), Service(home, "checks").start()]
    wait_for_heartbeat(home, "snapshot")
    wait_for_heartbeat(home, "checks")
    yield services
    for service in extra:
        service.stop()
    services.stop()


def test_snapshot_lands_every_contract_once_and_is_checked(snapshot_stack: Stack) -> None:
    """Two symbols on one session: every contract stored once, asset rows and watermarks right; a rerun
    updates the same rows; the chain checks ran and passed."""
    day = date(2025, 6, 3)
    expected = {s: option_chain(s, day).num_rows for s in ("AAPL", "SPY")}
    args = ("emit", "snapshot-options", "--symbols", "AAPL,SPY", "--as-of", str(day), "--wait")
    first = run_oh(*args)
    assert first.returncode == 0, first.stderr
    count = "SELECT underlying, count(*) AS n FROM option_snapshots GROUP BY ALL ORDER BY 1"
    assert {r["underlying"]: r["n"] for r in snapshot_stack.client.query(count).to_pylist()} == expected
    assert run_oh(*args).returncode == 0
    assert {r["underlying"]: r["n"] for r in snapshot_stack.client.query(count).to_pylist()} == expected
    assets = snapshot_stack.client.query(
        "SELECT a.partition_key, a.rows_inserted, a.rows_updated, r.started_at FROM meta.ingestion_run_assets a "
        "JOIN meta.ingestion_runs r USING (run_id) WHERE a.asset_key = 'options_snapshot_file' "
        "ORDER BY r.started_at, a.partition_key"
    ).to_pylist()
    assert [(a["partition_key"], a["rows_inserted"], a["rows_updated"]) for a in assets] == [
        ("AAPL|2025-06-03", expected["AAPL"], 0), ("SPY|2025-06-03", expected["SPY"], 0),
        ("AAPL|2025-06-03", 0, expected["AAPL"]), ("SPY|2025-06-03", 0, expected["SPY"]),
    ]
    assert snapshot_stack.scalar(
        "SELECT count(*) FROM meta.asset_watermarks WHERE asset_key = 'options_snapshot_file' AND watermark_ts = ?",
        [day],
    ) == 2
    names = ["snapshot_crossed_quotes", "snapshot_greeks_consistent", "snapshot_iv_fits_quote",
             "snapshot_no_future_dates", "snapshot_no_missing_prices", "snapshot_no_negative_prices",
             "snapshot_no_negative_volume", "snapshot_parseable_contract_symbol", "snapshot_stale_date"]
    deadline = time.monotonic() + 30
    check = "SELECT count(*) FROM meta.asset_checks WHERE asset_key = 'options_snapshot_file'"
    while snapshot_stack.scalar(check) < 2 * 2 * len(names):  # 2 runs x 2 partitions x every check
        assert time.monotonic() < deadline, "chain checks never arrived"
        time.sleep(0.1)
    statuses = snapshot_stack.client.query(
        "SELECT DISTINCT check_name, status FROM meta.asset_checks WHERE asset_key = 'options_snapshot_file' ORDER BY 1"
    ).to_pylist()
    assert statuses == [{"check_name": name, "status": "pass"} for name in names]
    one_day = snapshot_stack.client.query(
        "SELECT * FROM option_snapshots WHERE underlying = 'AAPL' AND snapshot_date = ?", [day]
    )
    assert one_day.num_rows == expected["AAPL"]


def test_ranged_snapshot_fails_only_the_unknown_symbol(snapshot_stack: Stack) -> None:
    """A week for AAPL and an unknown symbol: AAPL's five sessions land, ZZBAD's five fail, the run fails."""
    result = run_oh("emit", "snapshot-options", "--symbols", "AAPL,ZZBAD", "--start", "2025-06-02",
                    "--end", "2025-06-06", "--wait")
    assert result.returncode == 1
    assert "ZZBAD" in result.stderr
    assert snapshot_stack.scalar("SELECT count(DISTINCT snapshot_date) FROM option_snapshots") == 5
    rows = snapshot_stack.client.query(
        "SELECT split_part(partition_key, '|', 1) AS symbol, status, count(*) AS n FROM meta.ingestion_run_assets "
        "GROUP BY ALL ORDER BY 1"
    ).to_pylist()
    assert rows == [{"symbol": "AAPL", "status": "success", "n": 5}, {"symbol": "ZZBAD", "status": "failed", "n": 5}]


def test_snapshot_arguments_are_checked(home: Home) -> None:
    """A weekend, both --as-of and a range, or half a range exit 2 with one line."""
    for args, reason in (
        (("--as-of", "2025-06-07"), "no NYSE session"),
        (("--as-of", "2025-06-03", "--start", "2025-06-02", "--end", "2025-06-03"), "either --as-of"),
        (("--start", "2025-06-02"), "both --start and --end"),
    ):
        result = run_oh("emit", "snapshot-options", "--symbols", "AAPL", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert reason in result.stderr
