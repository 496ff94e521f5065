"""The run watchdog's rules: a run ends `abandoned` when its worker is silent, or alive but no longer running it."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import RunFinished, RunStarted
from services.ledger.watchdog import RunWatchdog

T0 = 1_000_000.0
TIMEOUT = 30.0


def _started(run_id: str, service: str = "ingest") -> RunStarted:
    return RunStarted(run_id=run_id, job_name="ingest_candles", service=service, started_at=datetime.now(UTC))


def _beat(at: float, state: str = "idle", run_id: str | None = None, pid: int = 7) -> dict[str, object]:
    return {"pid": pid, "state": state, "run_id": run_id, "last_seen": at}


def test_a_run_of_a_silent_service_is_abandoned_as_worker_lost() -> None:
    """No heartbeat for the timeout (never one since the ledger started, or the last one too old): WorkerLost."""
    dog = RunWatchdog(T0, TIMEOUT)
    dog.observe(_started("r1"), T0)
    assert dog.abandoned({}, T0 + TIMEOUT - 1) == []
    (finished,) = dog.abandoned({}, T0 + TIMEOUT)
    assert (finished.run_id, finished.status, finished.error_type) == ("r1", "abandoned", "WorkerLost")
    dog.observe(_started("r2"), T0)
    (finished,) = dog.abandoned({"ingest": _beat(T0 + 5, "running", "r2")}, T0 + 5 + TIMEOUT)
    assert finished.error_type == "WorkerLost" and "no heartbeat from ingest" in finished.error_message


def test_a_run_its_live_service_is_not_running_is_abandoned_as_run_lost() -> None:
    """The service heartbeats but says it is idle, or running another run, for the whole timeout: RunLost, naming it."""
    dog = RunWatchdog(T0, TIMEOUT)
    dog.observe(_started("r1"), T0)
    for at in range(0, int(TIMEOUT), 2):
        assert dog.abandoned({"ingest": _beat(T0 + at, "running", "other")}, T0 + at) == []
    (finished,) = dog.abandoned({"ingest": _beat(T0 + TIMEOUT, "running", "other")}, T0 + TIMEOUT)
    assert finished.error_type == "RunLost"
    assert "ingest is alive (pid 7, run other)" in finished.error_message and "lost" in finished.error_message


def test_a_run_its_service_is_running_is_never_abandoned() -> None:
    """A long run whose worker keeps saying it runs it stays open, however long it takes."""
    dog = RunWatchdog(T0, TIMEOUT)
    dog.observe(_started("r1"), T0)
    for at in range(0, 10 * int(TIMEOUT), 2):
        assert dog.abandoned({"ingest": _beat(T0 + at, "running", "r1")}, T0 + at) == []
    assert "r1" in dog.open


def test_a_worker_without_run_ids_that_says_running_is_not_judged_by_the_new_rule() -> None:
    """An old worker's heartbeat has no run id: while it says `running`, its runs are left alone (only silence counts)."""
    dog = RunWatchdog(T0, TIMEOUT)
    dog.observe(_started("r1"), T0)
    assert dog.abandoned({"ingest": _beat(T0 + 100, "running", None)}, T0 + 100) == []
    assert dog.abandoned({"ingest": _beat(T0 + 101, "idle", None)}, T0 + 101) == []
    (finished,) = dog.abandoned({"ingest": _beat(T0 + 100 + TIMEOUT, "idle", None)}, T0 + 100 + TIMEOUT)
    assert finished.error_type == "RunLost"


def test_runs_loaded_on_start_get_the_timeout_from_the_ledger_start() -> None:
    """Runs still `started` in the warehouse when the ledger starts (their RunFinished lost with a journal tail) are
    abandoned once their service has been seen idle for the timeout, not at once."""
    dog = RunWatchdog(T0, TIMEOUT)
    dog.load([("r1", "ingest_candles", datetime(2025, 1, 1))], T0)
    assert dog.abandoned({"ingest": _beat(T0 + 1)}, T0 + 1) == []
    assert dog.abandoned({}, T0 + 1) == []
    (finished,) = dog.abandoned({"ingest": _beat(T0 + TIMEOUT)}, T0 + TIMEOUT)
    assert finished.error_type == "RunLost" and finished.run_id == "r1"


def test_a_finished_or_restarted_run_is_tracked() -> None:
    """RunFinished closes a run; a RunStarted again (the worker re-runs the command) restarts its clock."""
    dog = RunWatchdog(T0, TIMEOUT)
    dog.observe(_started("r1"), T0)
    dog.observe(RunFinished(run_id="r1", status="success", ended_at=datetime.now(UTC), duration_ms=1), T0 + 1)
    assert dog.open == {}
    dog.observe(_started("r2"), T0)
    dog.observe(_started("r2"), T0 + TIMEOUT)
    assert dog.abandoned({"ingest": _beat(T0 + TIMEOUT + 1)}, T0 + TIMEOUT + 1) == []
