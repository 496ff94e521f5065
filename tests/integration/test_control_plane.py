"""The control plane end to end: checks after ingest, failures grouped, abandoned runs, gaps and the plan."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest

from bus.arrow_ipc import to_ipc
from bus.home import Home
from bus.producer import Producer
from contracts import CandlesIngested, RunFinished, RunStarted, utc_now
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.sim.provider import SimProvider
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

NOW = "2025-03-31T22:00"  # a Monday after the close


def _health(now: str = NOW) -> dict:  # type: ignore[type-arg]
    result = run_oh("db", "health", "--json", "--now", now, "--days", "3650")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _deliver_bad_candles(home: Home) -> None:
    """A provider delivering duplicate dates and negative prices, sent as the ingest worker would."""
    rows = SimProvider().daily_candles("IBM", date(2025, 3, 3), date(2025, 3, 31))
    data = rows.to_pydict()
    data["close"][3] = -1.0
    for column in data:
        data[column].insert(5, data[column][4])  # a duplicated (symbol, date) row
    import pyarrow as pa

    from contracts.rows import CANDLES

    bad = pa.Table.from_pydict(data, schema=CANDLES)
    start = utc_now()
    producer = Producer(home)
    producer.send(RunStarted(run_id="bad-run", job_name="ingest_candles", provider="sim", started_at=start))
    producer.send(
        CandlesIngested(run_id="bad-run", symbol="IBM", provider="sim", first_date=date(2025, 3, 3),
                        last_date=date(2025, 3, 31), row_count=bad.num_rows, rows=to_ipc(bad),
                        started_at=start, ended_at=utc_now())
    )
    producer.send(RunFinished(run_id="bad-run", status="success", ended_at=utc_now(), duration_ms=1))
    producer.flush(30)
    producer.close()


@pytest.fixture
def control_stack(home: Home):  # type: ignore[no-untyped-def]
    services = Stack(home, ledger_env={"OH_ABANDON_SECONDS": "3"})
    services.start_ledger()
    services.start_ingest()
    checks = Service(home, "checks").start()
    wait_for_heartbeat(home, "checks")
    yield services
    checks.stop()
    services.stop()


def test_failures_on_purpose_each_show_up_in_health(control_stack: Stack, home: Home) -> None:
    """An unknown symbol, negative prices, duplicate keys and a missing week: each in `oh db health --json`."""
    ok = run_oh("emit", "ingest-candles", "--symbols", "AAPL,MSFT,ZZBAD", "--start", "2025-02-03", "--end", "2025-03-07", "--wait")
    assert ok.returncode == 1  # ZZBAD fails the run ...
    run_oh("emit", "ingest-candles", "--symbols", "AAPL,MSFT", "--start", "2025-03-17", "--end", "2025-03-31", "--wait")
    _deliver_bad_candles(home)
    deadline = time.monotonic() + 30
    while control_stack.scalar("SELECT count(DISTINCT partition_key) FROM meta.asset_checks") < 3:
        assert time.monotonic() < deadline, "checks never arrived"
        time.sleep(0.1)
    time.sleep(0.5)
    report = _health()

    assert control_stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol IN ('AAPL', 'MSFT')") == 2 * (24 + 11)
    groups = report["failure_groups"]
    assert [(g["job_name"], g["error_type"], g["failures"]) for g in groups] == [("ingest_candles", "UnknownSymbol", 1)]
    assert "ZZBAD" in groups[0]["last_message"]

    failed = {(c["partition_key"], c["check_name"]): c for c in report["failed_checks"]}
    assert failed[("IBM", "candles_no_negative_prices")]["severity"] == "error"
    assert failed[("IBM", "candles_unique_symbol_date")]["severity"] == "error"
    assert failed[("IBM", "candles_monotonic_date")]["severity"] == "error"
    gap = failed[("AAPL", "candles_gap_days_last_30")]
    assert gap["severity"] == "warn" and gap["asset_key"] == "candles_daily"
    assert json.loads(gap["metrics_json"])["gap_days"] == 5  # 2025-03-10 .. 2025-03-14
    assert ("AAPL", "candles_no_negative_prices") not in failed
    statuses = control_stack.client.query(
        "SELECT status FROM meta.ingestion_runs WHERE run_id = 'bad-run'").column(0).to_pylist()
    assert statuses == ["success"], "checks must never change the status of the run they check"

    gaps = [(g["symbol"], g["start"], g["end"]) for g in report["gaps"]]
    assert ("AAPL", "2025-03-10", "2025-03-14") in gaps and ("MSFT", "2025-03-10", "2025-03-14") in gaps
    assert report["plan"][0]["command"] == "oh emit ingest-candles --symbols AAPL,MSFT --start 2025-03-10 --end 2025-03-14"


def test_plan_run_fills_the_gaps(control_stack: Stack) -> None:
    """`oh db health --run` runs the planner's commands, and the next health shows no gaps."""
    for start, end in (("2025-02-18", "2025-02-28"), ("2025-03-10", "2025-03-20"), ("2025-03-26", "2025-03-31")):
        run_oh("emit", "ingest-candles", "--symbols", "SPY,QQQ", "--start", start, "--end", end, "--wait")
    run_oh("emit", "ingest-candles", "--symbols", "QQQ", "--start", "2025-03-21", "--end", "2025-03-25", "--wait")
    before = _health()
    assert [s["command"] for s in before["plan"]] == [
        "oh emit ingest-candles --symbols QQQ,SPY --start 2025-03-03 --end 2025-03-07",
        "oh emit ingest-candles --symbols SPY --start 2025-03-21 --end 2025-03-25",
    ]
    filled = run_oh("db", "health", "--now", NOW, "--run")
    assert filled.returncode == 0, filled.stderr
    assert _health()["gaps"] == []


def test_killed_worker_leaves_an_abandoned_run_then_reruns_it(control_stack: Stack, home: Home) -> None:
    """kill -9 the ingest worker mid-run: the run becomes `abandoned`, and the restarted worker completes it."""
    # one event per symbol, sent ahead of the ledger's applying them: 200 symbols of 10 years keep the worker busy
    # well past the first stored symbol, when it is killed (still `started` is asserted below)
    symbols = ",".join(f"S{i:04d}" for i in range(200))
    run_oh("emit", "ingest-candles", "--symbols", symbols, "--start", "2015-01-01", "--end", "2024-12-31")
    deadline = time.monotonic() + 60
    while control_stack.scalar("SELECT count(*) FROM candles_daily") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    control_stack.ingest.kill()
    assert control_stack.scalar("SELECT status FROM meta.ingestion_runs") == "started"
    deadline = time.monotonic() + 30
    while control_stack.scalar("SELECT status FROM meta.ingestion_runs") != "abandoned":
        assert time.monotonic() < deadline, "the run stayed `started` after its worker died"
        time.sleep(0.2)
    row = control_stack.client.query("SELECT error_type, error_message FROM meta.ingestion_runs").to_pylist()[0]
    assert row["error_type"] == "WorkerLost" and "ingest" in row["error_message"]
    assert any(g["last_status"] == "abandoned" for g in _health("2025-01-02T22:00")["failure_groups"])
    control_stack.start_ingest()
    deadline = time.monotonic() + 120
    while control_stack.scalar("SELECT status FROM meta.ingestion_runs") != "success":
        assert time.monotonic() < deadline, "the restarted worker did not finish the run"
        time.sleep(0.2)
