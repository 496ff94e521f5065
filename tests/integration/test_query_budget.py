"""Queries off the ledger's control loop: time budget, row cap, a bounded queue, rebuild and shutdown.

Real processes on real sockets: a runaway query (a cross join that would run for hours) must be
interrupted with a one-line message at its budget, while it runs `oh status` answers and an ingest
completes; `oh down` interrupts it and the ledger still exits 0 after a checkpoint; a rebuild
interrupts it; a full queue answers `busy` at once; the offline path has the same budget and cap.
No timing thresholds: every assertion is about outcomes and their order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bus.control_client import ControlClient, LedgerUnavailable, QueryError
from bus.home import Home
from devtools import forkserver
from devtools.processes import REPO, wait_for_heartbeat
from tests.integration.conftest import OH, Stack, run_oh

pytestmark = pytest.mark.integration

RUNAWAY = "SELECT count(*) AS n FROM range(1000000000000) a, range(100000) b WHERE a.range + b.range = 3"


class _Background:
    """The real `oh` running in the background (forked from the suite's fork server), its output in files."""

    def __init__(self, args: tuple[str, ...], env: dict[str, str]) -> None:
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 (read at the end)
        self.proc = forkserver.spawn([OH, *args], env=env, cwd=REPO, stdout=self.out, stderr=self.err)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the end (`subprocess.TimeoutExpired` past `timeout`), then its stdout and stderr as text."""
        self.proc.wait(timeout)
        texts = []
        for output in (self.out, self.err):
            output.seek(0)
            texts.append(output.read().decode())
        return texts[0], texts[1]


def _oh(*args: str, env: dict[str, str] | None = None) -> _Background:
    """Start the real `oh` in the background with the test's OH_HOME (plus `env`)."""
    return _Background(args, {**os.environ, **(env or {})})


def _oh_with(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `oh` to its end with the test's environment plus `env`."""
    return forkserver.run([OH, *args], timeout=120, cwd=REPO, env={**os.environ, **env})


def _stop(stack: Stack) -> None:
    """Stop what the test started; kill a process that does not stop in time (a runaway must not outlive us)."""
    for service in (stack.ingest, stack.options_bars, stack.ledger):
        if service.proc is not None and service.proc.poll() is None:
            try:
                service.stop()
            except subprocess.TimeoutExpired:
                service.kill()
    stack.client.close()


def _gauge(client: ControlClient, name: str) -> int:
    return client.status(timeout=10).counters.get(name, 0)


def _wait_gauge(client: ControlClient, name: str, value: int, proc: _Background | None = None) -> None:
    """Poll the ledger's status until gauge `name` reaches `value` (fails if `proc` ended first)."""
    deadline = time.monotonic() + 120
    while _gauge(client, name) < value:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the query ended before it was seen running: {proc.communicate()}")
        assert time.monotonic() < deadline, f"{name} never reached {value}"
        time.sleep(0.05)


def _wait_gauge_down(client: ControlClient, name: str, value: int) -> None:
    """Poll the ledger's status until gauge `name` has come down to `value` (fails if it never does)."""
    deadline = time.monotonic() + 120
    while (current := _gauge(client, name)) != value:
        assert time.monotonic() < deadline, f"{name} stayed at {current}, never {value}"
        time.sleep(0.05)


def _one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def patient_stack(home: Home) -> Iterator[Stack]:
    """Ledger (budget 600 s, so only the test decides when a runaway stops) and ingest worker."""
    services = Stack(home, ledger_env={"OH_QUERY_BUDGET_SECONDS": "600"})
    services.start_ledger()
    services.start_ingest()
    yield services
    _stop(services)


def test_oh_up_runaway_query_status_and_ingest_carry_on_and_oh_down_is_clean(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `oh up`: while a runaway `oh query` runs, `oh status` shows the ledger answering and an ingest of
    three symbols completes (the query still running after both); `oh down` then interrupts the query (one
    line, exit 1, no traceback), every program exits 0, and the ledger checkpointed (no WAL left)."""
    monkeypatch.setenv("OH_QUERY_BUDGET_SECONDS", "600")  # `oh up` passes it on to the ledger
    up = run_oh("up")
    assert up.returncode == 0, up.stderr
    client = ControlClient(home, timeout=10)
    query = _oh("query", RUNAWAY)
    try:
        _wait_gauge(client, "queries_running", 1, query)
        status = run_oh("status")
        assert "not answering" not in status.stdout and "answering" in status.stdout, status.stdout
        assert "queries_running=1" in status.stdout, status.stdout
        ingest = run_oh("emit", "ingest-candles", "--symbols", "AAPL,MSFT,SPY", "--start", "2025-03-03",
                        "--end", "2025-03-14", "--wait")
        assert ingest.returncode == 0, ingest.stderr
        assert query.poll() is None, "the runaway query ended before the ingest completed"
        assert client.query("SELECT count(*) FROM candles_daily").column(0)[0].as_py() == 3 * 10
        # the runaway alone (the checks worker queries after each ingest: its queries end, the runaway does not)
        _wait_gauge_down(client, "queries_running", 1)
    finally:
        client.close()
        down = run_oh("down")
    assert down.returncode == 0, down.stderr
    _, stderr = query.communicate(timeout=60)
    assert query.returncode == 1
    assert "shutting down" in _one_line_error(stderr)
    supervisor_log = (home.logs / "supervisord.log").read_text()
    assert "stopped: ledger (exit status 0)" in supervisor_log, supervisor_log[-2000:]
    assert "ledger stopped at seq" in (home.logs / "ledger.log").read_text()
    assert not home.warehouse.with_name(home.warehouse.name + ".wal").exists(), "no checkpoint at shutdown"


def test_runaway_query_stops_at_its_budget_with_one_line(home: Home) -> None:
    """`oh query` past the budget (OH_QUERY_BUDGET_SECONDS=3 for ledger and CLI) exits 1 with one line naming
    the budget; the ledger interrupted it (no query left running, counted as a timeout) and answers the next."""
    stack = Stack(home, ledger_env={"OH_QUERY_BUDGET_SECONDS": "3"})
    stack.start_ledger()
    try:
        result = _oh_with({"OH_QUERY_BUDGET_SECONDS": "3"}, "query", RUNAWAY)
        assert result.returncode == 1
        line = _one_line_error(result.stderr)
        assert "time budget of 3s" in line and "LIMIT" in line
        counters = stack.client.status().counters
        assert counters.get("queries_timeout") == 1 and counters.get("queries_running") == 0
        assert stack.scalar("SELECT 42") == 42
    finally:
        _stop(stack)


def test_a_request_may_ask_for_a_shorter_budget_but_not_a_longer_one(home: Home) -> None:
    """A client's timeout is its query's budget (the ledger interrupts it then and answers `timeout`); asking
    for more than the ledger's budget (OH_QUERY_BUDGET_SECONDS=2) gets the ledger's."""
    stack = Stack(home, ledger_env={"OH_QUERY_BUDGET_SECONDS": "2"})
    stack.start_ledger()
    try:
        with pytest.raises(QueryError, match=r"time budget of 1\.5s") as shorter:
            stack.client.query(RUNAWAY, timeout=1.5)
        assert shorter.value.kind == "timeout"
        patient = ControlClient(home, timeout=60)
        try:
            with pytest.raises(QueryError, match=r"time budget of 2s") as capped:
                patient.query(RUNAWAY)
        finally:
            patient.close()
        assert capped.value.kind == "timeout"
        assert _gauge(stack.client, "queries_running") == 0
    finally:
        _stop(stack)


def test_row_cap_through_the_ledger(home: Home) -> None:
    """OH_QUERY_MAX_ROWS=1000: 1000 rows answer, 1001 fail `too_large` with one line saying to add a LIMIT."""
    stack = Stack(home, ledger_env={"OH_QUERY_MAX_ROWS": "1000"})
    stack.start_ledger()
    try:
        assert stack.client.query("SELECT * FROM range(1000)").num_rows == 1000
        with pytest.raises(QueryError, match=r"more than 1,000 rows.*LIMIT") as failed:
            stack.client.query("SELECT * FROM range(1001)")
        assert failed.value.kind == "too_large"
        result = run_oh("query", "SELECT * FROM range(5000)", "--format", "csv")
        assert result.returncode == 1
        assert "LIMIT" in _one_line_error(result.stderr)
    finally:
        _stop(stack)


def test_the_offline_path_has_the_same_budget_and_cap(home: Home) -> None:
    """With no ledger, `oh query` interrupts a runaway at OH_QUERY_BUDGET_SECONDS and caps rows at
    OH_QUERY_MAX_ROWS, each with one line and exit 1."""
    assert run_oh("db", "init").returncode == 0
    env = {"OH_QUERY_BUDGET_SECONDS": "2", "OH_QUERY_MAX_ROWS": "1000"}
    runaway = _oh_with(env, "query", RUNAWAY)
    assert runaway.returncode == 1
    assert "time budget of 2s" in _one_line_error(runaway.stderr)
    capped = _oh_with(env, "query", "SELECT * FROM range(1001)")
    assert capped.returncode == 1
    assert "more than 1,000 rows" in _one_line_error(capped.stderr)
    fits = _oh_with(env, "query", "SELECT * FROM range(1000)", "--format", "csv")
    assert fits.returncode == 0, fits.stderr
    assert len(fits.stdout.splitlines()) == 1001
    bad = _oh_with({"OH_QUERY_BUDGET_SECONDS": "soon"}, "query", "SELECT 1")
    assert bad.returncode == 2
    assert "OH_QUERY_BUDGET_SECONDS" in _one_line_error(bad.stderr)


def test_a_full_queue_answers_busy_at_once_and_shutdown_answers_everyone(home: Home) -> None:
    """One query thread, one waiting place: a runaway runs, a second waits, a third is answered `busy` while
    both are still there, status still answers; SIGTERM then interrupts both (each gets `interrupted`)
    and the ledger exits 0."""
    stack = Stack(home, ledger_env={"OH_QUERY_THREADS": "1", "OH_QUERY_QUEUE": "1", "OH_QUERY_BUDGET_SECONDS": "600"})
    stack.start_ledger()
    answers: list[tuple[str, str]] = []

    def runaway() -> None:
        client = ControlClient(home, timeout=600)
        try:
            client.query(RUNAWAY)
            answers.append(("rows", ""))
        except QueryError as exc:
            answers.append((exc.kind, str(exc)))
        except LedgerUnavailable as exc:
            answers.append(("unavailable", str(exc)))
        finally:
            client.close()

    threads = [threading.Thread(target=runaway) for _ in range(2)]
    try:
        threads[0].start()
        _wait_gauge(stack.client, "queries_running", 1)
        threads[1].start()
        _wait_gauge(stack.client, "queries_waiting", 1)
        with pytest.raises(QueryError, match="busy") as busy:
            stack.client.query("SELECT 1")
        assert busy.value.kind == "busy"
        status = stack.client.status()
        assert (status.counters["queries_running"], status.counters["queries_waiting"]) == (1, 1)
        assert answers == [], "a runaway query answered before the shutdown"
        assert stack.ledger.stop() == 0
    finally:
        for thread in threads:
            thread.join(60)
        _stop(stack)
    assert sorted(kind for kind, _ in answers) == ["interrupted", "interrupted"], answers
    assert all("shutting down" in message for _, message in answers)
    assert "ledger stopped at seq" in stack.ledger.log_text()


def test_a_rebuild_interrupts_running_queries_and_queries_work_after(patient_stack: Stack, home: Home) -> None:
    """`oh replay --rebuild` during a runaway query: the query is answered `interrupted` (run it again), the
    rebuild succeeds with identical tables, and the same queries answer afterwards."""
    ok = run_oh("emit", "ingest-candles", "--symbols", "AAPL,MSFT", "--start", "2025-03-03", "--end", "2025-03-14",
                "--wait")
    assert ok.returncode == 0, ok.stderr
    before = patient_stack.client.query("SELECT * FROM candles_daily ORDER BY ALL").to_pylist()
    answers: list[Any] = []

    def runaway() -> None:
        client = ControlClient(home, timeout=600)
        try:
            answers.append(client.query(RUNAWAY))
        except QueryError as exc:
            answers.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=runaway)
    thread.start()
    _wait_gauge(patient_stack.client, "queries_running", 1)
    rebuild = run_oh("replay", "--rebuild")
    thread.join(60)
    assert rebuild.returncode == 0, rebuild.stderr
    assert len(answers) == 1 and isinstance(answers[0], QueryError), answers
    assert answers[0].kind == "interrupted" and "rebuilt" in str(answers[0])
    assert patient_stack.client.query("SELECT * FROM candles_daily ORDER BY ALL").to_pylist() == before
    assert _gauge(patient_stack.client, "queries_running") == 0


def test_ledger_killed_during_a_query_gives_one_line(home: Home) -> None:
    """The ledger dies (SIGKILL) while `oh query` waits: the CLI gives up after budget + grace with one line
    (exit 1, no traceback), not a hang and not a traceback."""
    stack = Stack(home, ledger_env={"OH_QUERY_BUDGET_SECONDS": "600"})
    stack.start_ledger()
    query = _oh("query", RUNAWAY, env={"OH_QUERY_BUDGET_SECONDS": "3"})
    try:
        _wait_gauge(stack.client, "queries_running", 1, query)
        stack.ledger.kill()
        _, stderr = query.communicate(timeout=120)
    finally:
        _stop(stack)
    assert query.returncode == 1
    assert "did not answer" in _one_line_error(stderr)


def test_group_commits_never_fail_while_readers_try_to_checkpoint(patient_stack: Stack, home: Home) -> None:
    """Reader threads send CHECKPOINT, checkpoint(), force_checkpoint(), VACUUM, ANALYZE and a data-modifying
    CTE through the endpoint (each refused) while an ingest runs: the ingest lands whole and the ledger
    counts no rejected projection and logs no failed commit."""
    attempts = ["CHECKPOINT", "FORCE CHECKPOINT", "SELECT * FROM checkpoint()", "SELECT * FROM force_checkpoint()",
                "VACUUM", "ANALYZE", "WITH d AS (DELETE FROM candles_daily RETURNING *) SELECT count(*) FROM d"]
    stop = threading.Event()
    kinds: list[str] = []

    def reader(sql: str) -> None:
        client = ControlClient(home, timeout=30)
        try:
            while not stop.is_set():
                try:
                    client.query(sql)
                    kinds.append("answered")
                except QueryError as exc:
                    kinds.append(exc.kind)
        finally:
            client.close()

    threads = [threading.Thread(target=reader, args=(sql,)) for sql in attempts]
    for thread in threads:
        thread.start()
    try:
        wait_for_heartbeat(home, "ingest")
        ingest = run_oh("emit", "ingest-candles", "--symbols", "AAPL,MSFT,SPY,QQQ", "--start", "2025-01-01",
                        "--end", "2025-06-30", "--wait")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert ingest.returncode == 0, ingest.stderr
    assert len(kinds) >= len(attempts) and set(kinds) == {"refused"}, set(kinds)
    assert patient_stack.client.query(
        "SELECT count(DISTINCT symbol) AS s, count(*) = 4 * count(DISTINCT date) AS whole FROM candles_daily"
    ).to_pylist() == [{"s": 4, "whole": True}]
    assert patient_stack.client.status().counters.get("projection_rejected", 0) == 0
    assert patient_stack.scalar("SELECT count(*) FROM ledger.rejected") == 0
    assert "projection rejected" not in patient_stack.ledger.log_text()


def test_a_ledger_slow_to_answer_is_asked_rather_than_bypassed(home: Home) -> None:
    """A ledger that misses `oh query`'s first 0.3 s ping (a busy machine; here stopped with SIGSTOP) still holds
    the warehouse: the CLI's offline attempt finds the file locked, so it asks the ledger with its whole budget
    and prints the answer once the ledger resumes. (It said "locked by a ledger that does not answer" and exited
    1 before; under load the read-path suite hit it.)"""
    stack = Stack(home)
    stack.start_ledger()
    assert stack.ledger.proc is not None
    try:
        os.kill(stack.ledger.proc.pid, signal.SIGSTOP)
        try:
            query = _oh("query", "SELECT 6 * 7 AS answer", "--format", "csv", env={"OH_QUERY_BUDGET_SECONDS": "120"})
            time.sleep(3)  # long past the ping: the CLI has given up on it and found the file locked
        finally:
            os.kill(stack.ledger.proc.pid, signal.SIGCONT)
        stdout, stderr = query.communicate(timeout=120)
    finally:
        _stop(stack)
    assert query.returncode == 0, stderr
    assert stdout.split() == ['"answer"', "42"]
