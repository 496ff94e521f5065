"""How a daily or replay waits for a chained run: polls that thin out, and a busy ledger is not an outcome.

A wide daily's steps run for minutes; polling 20 times a second the whole time kept the ledger's
query threads busy while it was committing millions of rows. `services.pipeline.wait_for_run` polls
every POLL_SECONDS at first and every elapsed/40 s later, up to POLL_MAX_SECONDS; and a poll the
ledger could not answer (busy, past its time budget, interrupted) is retried, while any other query
error still ends the wait. A simulated clock: no test waits for real time.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from bus.control_client import QueryError
from services import pipeline
from services.pipeline import POLL_MAX_SECONDS, POLL_SECONDS, Step, wait_for_run

STEP = Step("compute_flow", "r" * 32)


class Clock:
    """time.monotonic and time.sleep on a simulated clock; records every sleep."""

    def __init__(self) -> None:
        self.now, self.sleeps = 1000.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(pipeline.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(pipeline.time, "sleep", fake.sleep)
    return fake


def status_table(status: str | None) -> pa.Table:
    return pa.table({"status": pa.array([] if status is None else [status], pa.string())})


def test_polls_thin_out_over_a_long_step(clock: Clock) -> None:
    """A step that runs 300 s is polled ~1/s at the end, not 20/s; the first polls are as quick as before."""
    def read(sql: str, params: list[Any]) -> pa.Table:
        return status_table("success" if clock.now - 1000.0 > 300 else "started")

    assert wait_for_run(read, STEP, start_timeout=10, run_timeout=600) == "success"
    assert clock.sleeps[0] == POLL_SECONDS
    assert clock.sleeps == sorted(clock.sleeps)
    assert max(clock.sleeps) == POLL_MAX_SECONDS
    assert len(clock.sleeps) < 300 / POLL_SECONDS / 5


@pytest.mark.parametrize("kind", pipeline.TRANSIENT_QUERY_ERRORS)
def test_a_poll_the_ledger_could_not_answer_is_retried(clock: Clock, kind: str) -> None:
    answers: list[Any] = [QueryError("ledger busy", kind), status_table("started"),
                          QueryError("over budget", kind), status_table("failed")]

    def read(sql: str, params: list[Any]) -> pa.Table:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for_run(read, STEP, start_timeout=10, run_timeout=600) == "failed"
    assert answers == []


@pytest.mark.parametrize("kind", ["query", "refused", "malformed", "error"])
def test_any_other_query_error_ends_the_wait(clock: Clock, kind: str) -> None:
    def read(sql: str, params: list[Any]) -> pa.Table:
        raise QueryError("no such table", kind)

    with pytest.raises(QueryError):
        wait_for_run(read, STEP, start_timeout=10, run_timeout=600)


def test_a_step_no_worker_starts_still_times_out(clock: Clock) -> None:
    """Retried busy polls do not hide a worker that is down: the start timeout still fires."""
    def read(sql: str, params: list[Any]) -> pa.Table:
        raise QueryError("ledger busy", "busy")

    with pytest.raises(TimeoutError, match="did not start"):
        wait_for_run(read, STEP, start_timeout=5, run_timeout=600)
