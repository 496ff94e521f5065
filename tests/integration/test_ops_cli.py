"""The CLI an operator scripts, with the real processes: `oh db health --fail-on` exit codes (ledger up and down),
`--coverage` as text, `oh status` under honcho (heartbeats), `oh down` through supervisord's XML-RPC (workers
together, then the ledger), `oh emit` with oh down or a worker missing, `oh emit checks --wait` counts,
`--version`, shell completion and one-line usage errors.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

import oh
from bus.home import Home
from devtools import forkserver
from devtools.processes import REPO, Service, wait_for_heartbeat
from oh.adapters import supervisor
from oh.domain import calendar
from tests.integration.conftest import Stack, run_oh, shared_home

pytestmark = pytest.mark.integration


def _window() -> list[date]:
    """The sessions `oh db health` looks at for gaps (the last 30 closed ones), oldest first."""
    last = calendar.last_closed_session(calendar.wall_clock())
    return [day.astype(date) for day in calendar.last_sessions(last, 30)]


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """SPY candles for the first and last 10 of the 30 sessions (a 10-session gap, fresh), then a failed ingest run:
    seeded once for the module (its tests only read it), in a module-wide OH_HOME."""
    with shared_home(tmp_path_factory.mktemp("unhealthy")) as home:
        stack = Stack(home)
        try:
            stack.start_ledger()
            stack.start_ingest()
            window = _window()
            for start, end in ((window[0], window[9]), (window[20], window[29])):
                done = run_oh("emit", "ingest-candles", "--symbols", "SPY", "--start", str(start), "--end", str(end),
                              "--wait")
                assert done.returncode == 0, done.stderr
            failed = run_oh("emit", "ingest-candles", "--symbols", "ZZNOPE", "--as-of", str(window[-1]), "--wait")
            assert failed.returncode == 1, failed.stderr
            yield stack
        finally:
            stack.stop()


@pytest.fixture(scope="module", params=["ledger-up", "ledger-down"])
def unhealthy(request: pytest.FixtureRequest, seeded: Stack) -> str:
    """The seeded home with the ledger left running or stopped (health then opens the file read-only); the
    ledger-up tests run first (pytest groups a module-scoped parameter), and a ledger stopped before them is
    started again."""
    if request.param == "ledger-down":
        seeded.stop()
    elif seeded.ledger.proc is None or seeded.ledger.proc.poll() is not None:
        seeded.start_ledger()
    return str(request.param)


def test_fail_on_turns_each_condition_into_exit_3(unhealthy: str) -> None:
    """`--fail-on` exits 3 with one line naming what holds (a gap, a failed latest run), 0 for conditions that do not
    hold (stale, future, ledger, checks), 0 without `--fail-on`; `--json` counts every condition."""
    assert run_oh("db", "health").returncode == 0
    gaps = run_oh("db", "health", "--fail-on", "gaps")
    assert gaps.returncode == 3 and _one_line(gaps) == "unhealthy: gaps: 1 gap"
    failed = run_oh("db", "health", "--fail-on", "failed,stale")
    assert failed.returncode == 3 and _one_line(failed) == "unhealthy: failed: the latest run of 1 job failed"
    for calm in ("stale", "future,ledger", "checks"):
        assert run_oh("db", "health", "--fail-on", calm).returncode == 0, calm
    every = run_oh("db", "health", "--json", "--fail-on", "all")
    assert every.returncode == 3
    assert json.loads(every.stdout)["problems"] == {"failed": 1, "stale": 0, "gaps": 1, "checks": 0, "future": 0,
                                                    "ledger": 0}
    assert "gaps: 1 gap" in every.stderr and "failed:" in every.stderr


def test_coverage_without_json_prints_a_grid(unhealthy: str) -> None:
    """`--coverage` alone prints each dataset's symbol x session grid: SPY stored, missing for 10 sessions, stored."""
    shown = run_oh("db", "health", "--coverage")
    assert shown.returncode == 0, shown.stderr
    assert "Coverage (30 sessions" in shown.stdout and "candles_daily" in shown.stdout
    [line] = [line for line in shown.stdout.splitlines() if line.strip().startswith("SPY ")]
    assert line.split()[1:] == ["█" * 10 + "·" * 10 + "█" * 10, "20/30"]


def test_fail_on_refuses_an_unknown_condition(home: Home) -> None:
    """A misspelt condition is exit 2 and one line listing the conditions (before reading anything)."""
    bad = run_oh("db", "health", "--fail-on", "gaps,stail")
    assert bad.returncode == 2 and "choose from failed, stale, gaps, checks, future, ledger" in _one_line(bad)


def test_status_reports_services_started_by_honcho(home: Home) -> None:
    """`honcho start` with the repository's Procfile: `oh status` reports every service running from its heartbeats
    (exit 0, JSON managed_by `heartbeat`); after honcho stops them, every one is not running (exit 3)."""
    honcho = subprocess.Popen(
        [str(Path(sys.executable).parent / "honcho"), "-f", str(REPO / "Procfile"), "-d", str(REPO), "start"],
        env={**os.environ, **forkserver.service_python()}, stdout=(home.logs / "honcho.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while (shown := run_oh("status", "--json")).returncode != 0:
            assert honcho.poll() is None, (home.logs / "honcho.log").read_text()[-3000:]
            assert time.monotonic() < deadline, shown.stdout
            time.sleep(0.5)
        status = json.loads(shown.stdout)
        assert not status["supervisord"]["running"] and status["all_up"]
        names = [s["service"] for s in status["services"]]
        assert names == supervisor.program_names()
        for service in status["services"]:
            assert service["running"] and service["managed_by"] == "heartbeat", service
            if service["service"] != "ledger":
                assert service["pid"] and "-m" in Path(f"/proc/{service['pid']}/cmdline").read_text(errors="replace")
        text = run_oh("status")
        assert "heartbeat" in text.stdout and "honcho" in text.stdout
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        honcho.wait(60)
    after = run_oh("status", "--json")
    assert after.returncode == 3
    assert not any(s["running"] for s in json.loads(after.stdout)["services"])


def test_down_stops_the_workers_together_then_the_ledger(home: Home) -> None:
    """`oh up` then `oh down`: every program has exited when it returns; each worker stopped (exit 0) before the
    ledger, and none by supervisord's one-at-a-time shutdown (no "waiting for ... to die")."""
    up = run_oh("up", "--timeout", "180")
    try:
        assert up.returncode == 0, up.stderr
        pids = {s["service"]: s["pid"] for s in json.loads(run_oh("status", "--json").stdout)["services"]}
        supervisord = supervisor.supervisord_pid(home)
    finally:
        down = run_oh("down")
    assert down.returncode == 0 and down.stdout.strip() == "oh is down", down.stderr
    assert supervisord and not supervisor.pid_alive(supervisord)
    assert not [name for name, pid in pids.items() if supervisor.pid_alive(pid)]
    log = (home.logs / "supervisord.log").read_text()
    stops = re.findall(r"stopped: (\w+) \(exit status (\d+)\)", log)
    assert sorted(name for name, _ in stops) == sorted(supervisor.program_names())
    assert stops[-1][0] == "ledger" and {code for _, code in stops} == {"0"}
    assert "to die" not in log
    assert run_oh("down").stdout.strip() == "oh is not running"


def test_emit_with_oh_down_says_so_and_sends_nothing(home: Home) -> None:
    """No ledger: `oh emit ... --wait` exits 1 with one line saying oh is not running (not a 10 s acknowledgement
    timeout), and nothing is journaled."""
    result = run_oh("emit", "ingest-candles", "--symbols", "SPY", "--as-of", str(_window()[-1]), "--wait")
    assert result.returncode == 1
    line = _one_line(result)
    assert "oh is not running" in line and "oh up" in line and "within 10s" not in line
    assert not list(home.journal.glob("*"))


def test_emit_names_a_missing_worker_at_once(home: Home) -> None:
    """The ledger up, the ingest worker not: `oh emit` stores the command and says at once that its worker is not
    running; started later, the worker runs it."""
    stack = Stack(home)
    stack.start_ledger()
    try:
        sent = run_oh("emit", "ingest-candles", "--symbols", "SPY", "--as-of", str(_window()[-1]))
        assert sent.returncode == 0, sent.stderr
        assert "the ingest worker is not running" in sent.stderr
        stack.start_ingest()
        deadline = time.monotonic() + 60
        while stack.scalar("SELECT count(*) FROM meta.ingestion_runs WHERE status = 'success'") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        stack.stop()


def test_emit_checks_wait_says_how_many_passed_and_failed(home: Home) -> None:
    """`oh emit checks --wait` ends with the count of passed and failed checks of its run, as meta.asset_checks
    records them; one symbol is `1 partition`."""
    stack = Stack(home)
    stack.start_ledger()
    stack.start_ingest()
    checks = Service(home, "checks").start()
    try:
        wait_for_heartbeat(home, "checks")
        window = _window()
        assert run_oh("emit", "ingest-candles", "--symbols", "SPY", "--start", str(window[0]), "--end",
                      str(window[-1]), "--wait").returncode == 0
        result = run_oh("emit", "checks", "--asset", "candles_daily", "--symbols", "SPY", "--wait")
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert "run_checks succeeded: 1 partition in" in text
        run_id = re.search(r"\(run ([0-9a-f-]+)\)", text).group(1)  # type: ignore[union-attr]
        counts = stack.client.query("SELECT count(*) FILTER (WHERE status = 'pass') AS passed, count(*) FILTER "
                                    "(WHERE status = 'fail') AS failed FROM meta.asset_checks WHERE run_id = ?",
                                    [run_id]).to_pylist()[0]
        assert counts["passed"] > 0
        assert f"{counts['passed']} checks passed, {counts['failed']} failed" in text
    finally:
        checks.stop()
        stack.stop()


def test_version_completion_and_one_line_usage_errors(home: Home) -> None:
    """`oh --version`; bash completion completes commands and the --provider choices; every usage error (unknown
    option or command, a value outside a choice, a missing argument) is exit 2 and one line naming the command."""
    version = run_oh("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"oh {oh.__version__}"
    complete = subprocess.run([str(Path(sys.executable).parent / "oh")], capture_output=True, text=True,
                              env={**os.environ, "_OH_COMPLETE": "complete_bash",
                                   "COMP_WORDS": "oh emit snapshot-options --provider ", "COMP_CWORD": "4"})
    assert complete.stdout.split() == ["sim", "alpaca", "yahoo"]
    # `--show-completion` alone detects the shell it runs under (`sh` under `make test`); typer's own switch makes
    # it take the shell as its value instead, so the test asks for bash whatever runs it
    shown = subprocess.run([str(Path(sys.executable).parent / "oh"), "--show-completion", "bash"], capture_output=True,
                           text=True, env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert "_oh_completion" in shown.stdout, shown.stderr
    for argv, said in [
        (("emit", "ingest-candles", "--symbols", "SPY", "--provider", "nope"), "'nope' is not one of 'sim', 'alpaca', 'yahoo'"),
        (("emit", "daily", "--fallback", "yahooo"), "--fallback"),
        (("db", "health", "--provider", "Sim"), "--provider"),
        (("live", "start", "--provider", "yahoo"), "'yahoo' is not one of 'sim', 'alpaca'"),
        (("symbols", "list", "--provider", "x"), "--provider"),
        (("query", "SELECT 1", "-f", "xml"), "'xml' is not one of 'table', 'csv', 'json', 'parquet'"),
        (("query",), "Missing argument"),
        (("emit", "nosuch"), "No such command 'nosuch'"),
        (("status", "--bogus"), "No such option: --bogus"),
    ]:
        result = run_oh(*argv)
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        line = _one_line(result)
        assert said in line and line.startswith("error: oh "), (argv, line)


def test_query_prints_full_headers_in_trader_units_and_writes_files(home: Home, tmp_path: Path) -> None:
    """`oh query` (the file read-only, no ledger): the table keeps every header whole and shows IV as %, counts with
    separators; `-f parquet -o FILE` and `-f json` carry the exact values."""
    assert run_oh("db", "init").returncode == 0
    names = [f"column_number_{i:02d}_with_a_long_name" for i in range(6)]
    sql = ("SELECT 0.29793340052 AS atm_iv, 2765 AS n, 0.000123456 AS gamma, "
           + ", ".join(f"{i} AS {name}" for i, name in enumerate(names)))
    shown = run_oh("query", sql)
    assert shown.returncode == 0, shown.stderr
    for name in names:
        assert name in shown.stdout, shown.stdout
    assert "29.8%" in shown.stdout and "2,765" in shown.stdout and "0.0001235" in shown.stdout
    out = tmp_path / "answer.parquet"
    written = run_oh("query", sql, "-f", "parquet", "-o", str(out))
    assert written.returncode == 0 and "wrote 1 row to" in written.stdout, written.stderr
    import pyarrow.parquet as pq

    row = pq.read_table(out).to_pylist()[0]
    assert float(row["atm_iv"]) == pytest.approx(0.29793340052) and row["n"] == 2765
    [record] = json.loads(run_oh("query", sql, "-f", "json").stdout)
    assert float(record["atm_iv"]) == pytest.approx(0.29793340052) and record[names[-1]] == 5
