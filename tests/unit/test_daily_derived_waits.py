"""A daily sends its snapshot beside the candles (services/daily.py), so its chain's derived step, which reads the
session's close, must wait for the same daily's candles (services/pipeline.py, `waits_for`). Protected here, on the
in-process stack (every worker's handlers and reactions, the in-process ledger):

- candles ending LAST: snapshot, flow end and derived is not sent; once the candles end, derived runs (after them)
  and the briefing after it, and derived's rows are exactly those of a day whose candles came first;
- candles ending first: derived follows flow as before;
- a redelivered RunFinished (of flow or of the candles, with its job name or without, as version 1) sends a duplicate the ledger drops: one derived run;
- a chain no daily started (`oh emit snapshot-options`) does not wait for anything;
- the daily's command ids are the ones journals already hold (uuid5 of "<run id>:candles" and so on).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from bus.home import Home
from contracts import IngestCandles, RunFinished, RunStarted, SnapshotOptions, utc_now
from contracts.catalog import JOB_BY_NAME
from oh.domain import calendar
from services import derived
from services.pipeline import DAILY_NAMESPACE, daily_command_id, daily_step, next_step, waits_for
from services.stack import InProcessStack

SYMBOLS = ["AAPL", "SPY"]
DAY = date(2025, 6, 4)
BEFORE = calendar.last_sessions(DAY, 2)[0].astype(date)
DAILY = uuid.uuid4().hex  # the daily run the commands below belong to


@pytest.fixture
def stack(tmp_path: Any) -> Iterator[InProcessStack]:
    """Every worker in process, with the session before DAY snapshotted (flow has a day to compare with)."""
    made = InProcessStack(Home(tmp_path / "home").ensure())
    made.run(SnapshotOptions(symbols=SYMBOLS, start=BEFORE, end=BEFORE))
    made.send([RunStarted(run_id=DAILY, job_name="daily", triggered_by="cli", started_at=utc_now())])
    yield made
    made.close()


def _candles() -> IngestCandles:
    return IngestCandles(id=daily_command_id(DAILY, "ingest_candles"), symbols=SYMBOLS, start=DAY - timedelta(days=120),
                         end=DAY, parent_run_id=DAILY, triggered_by="pipeline")


def _snapshot() -> SnapshotOptions:
    return SnapshotOptions(id=daily_command_id(DAILY, "snapshot_options"), symbols=SYMBOLS, start=DAY, end=DAY,
                           parent_run_id=DAILY, triggered_by="pipeline")


def _runs(stack: InProcessStack, job: str) -> list[dict[str, Any]]:
    """The runs of `job` over DAY (not the seeded session before it)."""
    return stack.query("SELECT run_id, status, started_at, ended_at FROM meta.ingestion_runs WHERE job_name = ? "
                       "AND contains(args_json, ?) ORDER BY started_at", [job, str(DAY)]).to_pylist()


def _derived_rows(stack: InProcessStack) -> list[dict[str, Any]]:
    rows = stack.query("SELECT * FROM derived_daily WHERE session_date = ? ORDER BY symbol", [DAY]).to_pylist()
    assert len(rows) == len(SYMBOLS) and all(r["rv_20"] is not None for r in rows)  # the closes were read
    return rows


def test_derived_waits_for_the_candles_that_end_last_and_computes_what_candles_first_gives(
        stack: InProcessStack, tmp_path: Any) -> None:
    stack.run(_snapshot())
    (flow_run,) = _runs(stack, "compute_flow")
    assert flow_run["status"] == "success"
    assert _runs(stack, "compute_derived") == [] and _runs(stack, "build_briefing") == []  # no close yet: not sent

    stack.run(_candles())
    (candles,) = _runs(stack, "ingest_candles")
    (derived_run,) = _runs(stack, "compute_derived")
    assert derived_run["status"] == "success" and derived_run["started_at"] >= candles["ended_at"]
    assert [r["status"] for r in _runs(stack, "build_briefing")] == ["success"]
    last = _derived_rows(stack)

    first = InProcessStack(Home(tmp_path / "first").ensure())
    try:
        first.run(SnapshotOptions(symbols=SYMBOLS, start=BEFORE, end=BEFORE))
        first.send([RunStarted(run_id=DAILY, job_name="daily", triggered_by="cli", started_at=utc_now())])
        first.run(_candles())
        assert _runs(first, "compute_derived") == []  # no flow yet
        first.run(_snapshot())
        assert [r["status"] for r in _runs(first, "compute_derived")] == ["success"]
        assert _derived_rows(first) == last
    finally:
        first.close()


def test_a_redelivered_run_finished_sends_only_a_duplicate(stack: InProcessStack) -> None:
    stack.run(_snapshot())
    stack.run(_candles())
    flow_step = next_step(daily_step(DAILY, "snapshot_options"))
    assert flow_step is not None
    candles = daily_step(DAILY, "ingest_candles").run_id
    for run_id, job in ((flow_step[1].run_id, "compute_flow"), (candles, "ingest_candles"),
                        (flow_step[1].run_id, None), (candles, None)):  # None: a version-1 event, looked up
        derived.after_flow(RunFinished(run_id=run_id, job_name=job, status="success", ended_at=utc_now(),
                                       duration_ms=1), stack)
        stack.run_until_idle()
    assert len(_runs(stack, "compute_derived")) == 1
    assert stack.query("SELECT count(*) FROM derived_daily WHERE session_date = ?", [DAY]).column(0)[0].as_py() == 2


def test_a_chain_no_daily_started_does_not_wait(stack: InProcessStack) -> None:
    stack.run(SnapshotOptions(symbols=SYMBOLS, start=DAY, end=DAY))
    assert [r["status"] for r in _runs(stack, "compute_derived")] == ["success"]
    assert _runs(stack, "ingest_candles") == []


def test_derived_waits_for_what_it_reads_and_the_daily_ids_are_the_journaled_ones() -> None:
    assert waits_for(JOB_BY_NAME["compute_derived"]) == ("ingest_candles", "snapshot_options")
    for stage in ("compute_flow", "build_briefing"):
        assert waits_for(JOB_BY_NAME[stage]) == ()
    for job, key in (("ingest_candles", "candles"), ("ingest_options_bars", "bars"), ("snapshot_options", "snapshot")):
        assert daily_command_id(DAILY, job) == uuid.uuid5(DAILY_NAMESPACE, f"{DAILY}:{key}").hex
    assert str(DAILY_NAMESPACE) == "0b7d6c1e-52a4-4f0b-9a57-3e2f1d8c4b6a"
