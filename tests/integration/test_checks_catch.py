"""Through the real ledger and checks worker: deliveries with bad rows fail the checks that name the fault.

The bad deliveries are sent the way a worker (with a broken provider behind it) would send them; the checks
worker reacts to the committed events and its results land in meta.asset_checks and `oh db health`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from bus.arrow_ipc import to_ipc
from bus.home import Home
from bus.producer import Producer
from contracts import (
    CandlesIngested,
    ChainSnapshotted,
    FlowComputed,
    OptionBarsIngested,
    RunFinished,
    RunStarted,
    utc_now,
)
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.sim.options import option_chain
from oh.adapters.sim.provider import SimProvider
from oh.domain import calendar, flow
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

DAY = date(2025, 6, 3)
RUN = "bad-deliveries"


@pytest.fixture
def checks_stack(home: Home) -> Iterator[Stack]:
    services = Stack(home)
    services.start_ledger()
    checks = Service(home, "checks").start()
    wait_for_heartbeat(home, "checks")
    yield services
    checks.stop()
    services.stop()


def _with(table: pa.Table, row: int, **values: Any) -> pa.Table:
    data = table.to_pydict()
    for column, value in values.items():
        data[column][row] = value
    return pa.Table.from_pylist([dict(zip(data, v, strict=True)) for v in zip(*data.values(), strict=True)],
                                schema=table.schema)


def _times() -> dict[str, datetime]:
    now = utc_now()
    return {"started_at": now, "ended_at": now}


def _future_candles() -> pa.Table:
    """The sim's candles for sessions that have not closed yet (made with a clock in the future, as a broken
    provider would serve them)."""
    last = calendar.last_closed_session(calendar.wall_clock())
    later = SimProvider(clock=lambda: datetime.combine(last + timedelta(days=60), datetime.min.time()).astimezone())
    return later.daily_candles("MSFT", last - timedelta(days=10), last + timedelta(days=20))


def test_bad_rows_of_every_dataset_fail_the_checks_that_name_them(checks_stack: Stack, home: Home) -> None:
    """Candles with a NaN open, high below low and negative volume; candles dated after the last closed session;
    option bars with NaN and negative volume; a chain with a put of delta +0.674, an IV three times what its
    quote implies and a negative open interest; flow with a negative volume: each fails its named check in
    meta.asset_checks and shows in `oh db health --json`; the clean deliveries' checks pass."""
    sim = SimProvider()
    candles = sim.daily_candles("AAPL", date(2025, 5, 1), date(2025, 5, 30))
    low = candles.column("low")[4].as_py()
    bad_candles = _with(candles, 4, open=math.nan, high=low - 1.0, volume=-100)
    future = _future_candles()
    contracts = sim.option_contracts("AAPL", DAY, 30)[:40]
    bars = sim.option_bars("AAPL", contracts, DAY, DAY)
    bad_bars = _with(bars, 1, close=math.nan, volume=-5)
    chain = option_chain("AAPL", DAY)
    rows = chain.to_pylist()
    put = next(i for i, r in enumerate(rows) if r["right"] == "P" and 14 <= (r["expiry"] - DAY).days <= 60
               and 0.95 < r["strike"] / r["spot"] < 1.0)
    call = next(i for i, r in enumerate(rows) if r["right"] == "C" and 14 <= (r["expiry"] - DAY).days <= 60
                and 1.0 < r["strike"] / r["spot"] < 1.05)
    bad_chain = _with(_with(_with(chain, put, delta=0.674), call, iv=rows[call]["iv"] * 3), 0, open_interest=-3)
    flow_rows = flow.group_flow(flow.contract_flow(option_chain("AAPL", date(2025, 6, 2)), chain), "contract", 1)
    bad_flow = _with(flow_rows, 0, volume=-1)

    producer = Producer(home)
    producer.send(RunStarted(run_id=RUN, job_name="ingest_candles", provider="sim", started_at=utc_now()))
    producer.send_many([
        CandlesIngested(run_id=RUN, symbol="AAPL", provider="sim", first_date=date(2025, 5, 1), last_date=date(2025, 5, 30),
                        row_count=bad_candles.num_rows, rows=to_ipc(bad_candles), **_times()),
        CandlesIngested(run_id=RUN, symbol="MSFT", provider="sim", first_date=future.column("date")[0].as_py(),
                        last_date=future.column("date")[-1].as_py(), row_count=future.num_rows, rows=to_ipc(future),
                        **_times()),
        OptionBarsIngested(run_id=RUN, symbol="AAPL", provider="sim", bar_date=DAY, row_count=bad_bars.num_rows,
                           rows=to_ipc(bad_bars), **_times()),
        ChainSnapshotted(run_id=RUN, symbol="AAPL", provider="sim", snapshot_date=DAY, row_count=bad_chain.num_rows,
                         rows=to_ipc(bad_chain), **_times()),
        FlowComputed(run_id=RUN, symbol="AAPL", as_of=DAY, window=1, row_count=bad_flow.num_rows, rows=to_ipc(bad_flow),
                     **_times()),
    ])
    producer.send(RunFinished(run_id=RUN, status="success", ended_at=utc_now(), duration_ms=1))
    producer.flush(30)
    producer.close()

    deadline = time.monotonic() + 60
    while checks_stack.scalar("SELECT count(DISTINCT (asset_key, partition_key)) FROM meta.asset_checks") < 5:
        assert time.monotonic() < deadline, "the checks never arrived"
        time.sleep(0.1)
    results = checks_stack.client.query(
        "SELECT asset_key, partition_key, check_name, status, severity FROM meta.asset_checks").to_pylist()
    failed = {(r["asset_key"], r["partition_key"], r["check_name"]) for r in results if r["status"] == "fail"}
    assert failed == {
        ("candles_daily", "AAPL", "candles_no_missing_prices"),
        ("candles_daily", "AAPL", "candles_ohlc_consistent"),
        ("candles_daily", "AAPL", "candles_no_negative_volume"),
        ("candles_daily", "MSFT", "candles_no_future_dates"),
        ("options_bars", f"AAPL|{DAY}", "options_bars_no_missing_prices"),
        ("options_bars", f"AAPL|{DAY}", "options_bars_no_negative_volume"),
        ("options_snapshot_file", f"AAPL|{DAY}", "snapshot_greeks_consistent"),
        ("options_snapshot_file", f"AAPL|{DAY}", "snapshot_iv_fits_quote"),
        ("options_snapshot_file", f"AAPL|{DAY}", "snapshot_no_negative_volume"),
        ("options_flow", f"AAPL|{DAY}", "flow_values_consistent"),
    }
    assert checks_stack.scalar(f"SELECT status FROM meta.ingestion_runs WHERE run_id = '{RUN}'") == "success"
    health = run_oh("db", "health", "--json", "--days", "3650")
    assert health.returncode == 0, health.stderr
    shown = {(c["partition_key"], c["check_name"]) for c in json.loads(health.stdout)["failed_checks"]}
    assert {(p, c) for _, p, c in failed} <= shown
    future_mark = {w["scope_key"]: w for w in json.loads(health.stdout)["watermarks"]}["MSFT"]
    assert future_mark["future"] is True and future_mark["future_sessions"] > 0


def test_oh_emit_checks_rechecks_stored_rows_by_its_own_clock(checks_stack: Stack, home: Home) -> None:
    """`oh emit checks` re-checks stored candles: the future-dated rows stored earlier fail
    candles_no_future_dates in the check run too."""
    future = _future_candles()
    producer = Producer(home)
    producer.send(RunStarted(run_id=RUN, job_name="ingest_candles", provider="sim", started_at=utc_now()))
    producer.send(CandlesIngested(run_id=RUN, symbol="MSFT", provider="sim", first_date=future.column("date")[0].as_py(),
                                  last_date=future.column("date")[-1].as_py(), row_count=future.num_rows,
                                  rows=to_ipc(future), **_times()))
    producer.send(RunFinished(run_id=RUN, status="success", ended_at=utc_now(), duration_ms=1))
    producer.flush(30)
    producer.close()
    result = run_oh("emit", "checks", "--asset", "candles_daily", "--wait")
    assert result.returncode == 0, result.stderr
    rows = checks_stack.client.query(
        "SELECT c.check_name, c.status FROM meta.asset_checks c JOIN meta.ingestion_runs r USING (run_id) "
        "WHERE r.job_name = 'run_checks'").to_pylist()
    assert {"check_name": "candles_no_future_dates", "status": "fail"} in rows
