"""Backfill by replay: after a change of derived logic, `oh replay --since/--until` recomputes a month of
derived rows from the journaled snapshots, without refetching anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest

from devtools.processes import Service, wait_for_heartbeat
from oh.domain import calendar, derived
from tests.integration.conftest import Stack, run_oh, shared_home

pytestmark = pytest.mark.integration

FIRST, LAST = date(2025, 5, 1), date(2025, 5, 30)
WORKERS = ("snapshot", "flow", "briefing")


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A month of SPY snapshots with flow and derived chained after them (formula version 1), seeded once for the
    module: the refusal test (first) reads it and sends nothing, then the formula change rewrites it."""
    with shared_home(tmp_path_factory.mktemp("month")) as home:
        stack = Stack(home)
        services: dict[str, Service] = {}
        try:
            stack.start_ledger()
            stack.start_ingest()
            services.update({name: Service(home, name).start() for name in (*WORKERS, "derived")})
            for name in services:
                wait_for_heartbeat(home, name)
            stack.services = services  # type: ignore[attr-defined]
            candles = run_oh("emit", "ingest-candles", "--symbols", "SPY", "--start", "2025-01-02", "--end", str(LAST),
                             "--wait")
            assert candles.returncode == 0, candles.stderr
            snap = run_oh("emit", "snapshot-options", "--symbols", "SPY", "--start", str(FIRST), "--end", str(LAST),
                          "--wait")
            assert snap.returncode == 0, snap.stderr
            _wait_idle(stack, len(calendar.sessions(FIRST, LAST)))
            yield stack
        finally:
            for service in services.values():
                if service.proc is not None and service.proc.poll() is None:
                    service.stop()
            stack.stop()


def _wait_idle(stack: Stack, derived_rows: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = stack.scalar("SELECT count(*) FROM derived_daily")
        busy = stack.scalar("SELECT count(*) FROM meta.ingestion_runs WHERE status = 'started'")
        if rows == derived_rows and not busy:
            return
        time.sleep(0.2)
    raise AssertionError(f"the chain did not settle: {rows} derived rows, {busy} runs open")


def test_replay_refuses_a_range_without_events_and_a_bad_type(month: Stack) -> None:
    """A range with nothing journaled says so (exit 1); an unknown --type is a usage error (exit 2)."""
    empty = run_oh("replay", "--since", "2024-01-02", "--until", "2024-01-31")
    assert empty.returncode == 1 and "no journaled ChainSnapshotted" in empty.stderr + empty.stdout
    bad = run_oh("replay", "--since", str(FIRST), "--until", str(LAST), "--type", "CandlesIngested")
    assert bad.returncode == 2 and "cannot be replayed" in bad.stderr + bad.stdout


def test_replay_after_a_formula_change_recomputes_every_derived_row_of_the_month(month: Stack) -> None:
    """Every derived row of the month moves to formula version 2 with the new values; other months and
    tables are untouched, and nothing is refetched (no new snapshot or candle run)."""
    sessions = len(calendar.sessions(FIRST, LAST))
    before = {r["session_date"]: r for r in month.client.query(
        "SELECT session_date, formula_version, expected_move_pct, atm_iv FROM derived_daily").to_pylist()}
    assert len(before) == sessions and {r["formula_version"] for r in before.values()} == {derived.FORMULA_VERSION}
    fetch_runs = month.scalar("SELECT count(*) FROM meta.ingestion_runs WHERE job_name IN ('snapshot_options', 'ingest_candles')")

    home = month.home
    month.services["derived"].stop()  # type: ignore[attr-defined]
    v2 = Service(home, "derived", module="tests.integration.derived_v2").start()
    try:
        wait_for_heartbeat(home, "derived")
        result = run_oh("replay", "--since", str(FIRST), "--until", str(LAST), "--wait", "--timeout", "120")
        assert result.returncode == 0, result.stderr
        assert f"{sessions} sessions" in result.stdout
        after = {r["session_date"]: r for r in month.client.query(
            "SELECT session_date, formula_version, expected_move_pct, atm_iv FROM derived_daily").to_pylist()}
    finally:
        v2.stop()
    assert set(after) == set(before)
    assert {r["formula_version"] for r in after.values()} == {derived.FORMULA_VERSION + 1}
    for day, row in after.items():
        assert row["expected_move_pct"] == pytest.approx(2 * before[day]["expected_move_pct"])
        assert row["atm_iv"] == pytest.approx(before[day]["atm_iv"])
    replayed = month.client.query(
        "SELECT r.job_name, count(DISTINCT r.run_id) AS runs, sum(a.rows_updated) AS updated "
        "FROM meta.ingestion_runs r JOIN meta.ingestion_run_assets a USING (run_id) "
        "WHERE r.triggered_by = 'replay' OR r.parent_run_id IN (SELECT run_id FROM meta.ingestion_runs WHERE triggered_by = 'replay') "
        "GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert {"job_name": "compute_derived", "runs": 1, "updated": sessions} in replayed  # the month is one ranged run
    assert month.scalar(
        "SELECT count(*) FROM meta.ingestion_runs WHERE job_name IN ('snapshot_options', 'ingest_candles')") == fetch_runs
