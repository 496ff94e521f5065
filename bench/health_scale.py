"""(d) `oh db health` on a big control plane: 100,000 runs and a million check rows, within a second.

The issue's requirement: "`oh db health` answers within a second on a warehouse with 100,000 runs
and a million check rows". A fresh home's warehouse (made by `services.ledger.warehouse.Warehouse`)
is filled with DuckDB generators (range, hash; no Python loop over rows): 100,000
`meta.ingestion_runs` over 400 days across the 7 seed jobs (~5% failed in 35 recurring stack
hashes, a few abandoned), 2 `meta.ingestion_run_assets` per run, 1,000,000 `meta.asset_checks` in
`checked_at` order (the 10 seed check names, ~3% failing), a `candles_daily` watermark per symbol,
and `candles_daily` for 500 symbols x the last 300 NYSE sessions with a few holes, late listings
and stale symbols. Then, median and max of 5 runs each:

  (a) `oh.read.health.health_report` in-process on a read-only DuckDB connection (every SQL it issues is
      timed through the reader, and its pure steps through wrappers: the per-section breakdown);
  (b) `oh db health --json` as a subprocess with services down (process start-up, its 1 s probe
      for a running ledger, then the file opened read-only);
  (c) `oh db health --json` through the real ledger process (`python -m services.ledger`).

All three judge freshness as of the same fixed clock (`--now`), so they print the same report.
Judged by: the worst of the three medians / the 1 s budget (below 1.0 passes).

    python -m bench.health_scale [--runs 100000] [--checks 1000000] [--symbols 500] [--sessions 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench._common import REPO, fresh_home, header, ratio_line, running_ledger
from bus.control_client import ControlClient, LedgerUnavailable
from bus.home import Home
from oh.domain import calendar
from services.ledger.warehouse import Warehouse, connect

BUDGET_SECONDS = 1.0
HISTORY_DAYS = 400

# (job_name, asset_key, asset_kind): the seed jobs and the asset each one writes.
JOBS = (
    ("ingest_candles", "candles_daily", "table"),
    ("ingest_options_bars", "options_bars", "table"),
    ("snapshot_options", "options_snapshot_file", "file"),
    ("compute_flow", "options_flow", "table"),
    ("compute_derived", "derived_metrics", "table"),
    ("build_briefing", "briefing_markdown", "file"),
    ("build_dashboard", "dashboard_html", "file"),
)
# (check_name, asset_key, severity): the seed checks.
CHECKS = (
    ("candles_unique_symbol_date", "candles_daily", "error"),
    ("candles_monotonic_date", "candles_daily", "error"),
    ("candles_no_negative_prices", "candles_daily", "error"),
    ("candles_gap_days_last_30", "candles_daily", "warn"),
    ("options_bars_monotonic_ts", "options_bars", "error"),
    ("options_bars_no_negative_prices", "options_bars", "error"),
    ("options_bars_duplicate_pk", "options_bars", "error"),
    ("snapshot_parseable_contract_symbol", "options_snapshot_file", "warn"),
    ("flow_no_null_primary_keys", "options_flow", "error"),
    ("derived_no_duplicate_keys", "derived_metrics", "error"),
)
ERROR_TYPES = ("ProviderError", "TimeoutError", "ValueError", "KeyError", "ConnectionError")
STACKS_PER_JOB = 5  # 7 jobs x 5 = 35 distinct error_stack_hash values


def _list(values: tuple[str, ...]) -> str:
    """A DuckDB list literal of our own constant strings (1-based indexing in SQL)."""
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _symbol(expr: str) -> str:
    """SQL for the ticker of symbol number `expr`: S0000, S0001, ..."""
    return f"'S' || lpad(CAST({expr} AS VARCHAR), 4, '0')"


# -- the warehouse ---------------------------------------------------------------------------------
def fill(home: Home, now: datetime, runs: int, checks: int, symbols: int, n_sessions: int) -> dict[str, float]:
    """Create the warehouse and fill every table the report reads; return seconds per table."""
    start = (now - timedelta(days=HISTORY_DAYS)).replace(tzinfo=None)
    run_step_us = HISTORY_DAYS * 86_400_000_000 // runs
    check_step_us = HISTORY_DAYS * 86_400_000_000 // checks
    checks_per_run = max(checks // runs, 1)
    jobs = _list(tuple(j[0] for j in JOBS))
    assets = _list(tuple(j[1] for j in JOBS))
    kinds = _list(tuple(j[2] for j in JOBS))
    errors = _list(ERROR_TYPES)
    # The run's random draws, shared by the runs and their assets so both agree.
    run_draws = f"""
        SELECT i, hash(i, 'run') AS h, i % {len(JOBS)} + 1 AS job,
               CAST(? AS TIMESTAMP) + to_microseconds(CAST(i * {run_step_us} + hash(i, 'jitter') % 60000000 AS BIGINT))
                   AS started_at,
               CASE WHEN h % 1000 < 50 THEN 'failed' WHEN h % 1000 < 53 THEN 'abandoned' ELSE 'success' END AS status,
               CAST(500 + (h // 1000) % 120000 AS BIGINT) AS dur,
               CAST((i % {len(JOBS)}) * {STACKS_PER_JOB} + (h // 1000000) % {STACKS_PER_JOB} AS BIGINT) AS stack,
               {_symbol(f'(h // 100000000) % {symbols}')} AS symbol
        FROM range({runs}) t(i)
    """
    seconds: dict[str, float] = {}
    warehouse = Warehouse(home.warehouse)
    con = warehouse.con
    try:
        t0 = time.perf_counter()
        con.execute(
            f"""
            INSERT INTO meta.ingestion_runs
            SELECT md5('run:' || i), NULL, {jobs}[job], CASE WHEN i % 20 = 0 THEN 'cli' ELSE 'schedule' END, status,
                   started_at, started_at + to_milliseconds(dur), dur, 'sim', 'duckdb',
                   '{{"symbols": ["' || symbol || '"]}}', '3f2a9c1', '0.1.0',
                   CASE status WHEN 'failed' THEN {errors}[stack % {len(ERROR_TYPES)} + 1]
                               WHEN 'abandoned' THEN 'WorkerLost' END,
                   CASE status WHEN 'failed' THEN {errors}[stack % {len(ERROR_TYPES)} + 1] || ' in step '
                                    || stack || ' for ' || symbol || ': upstream answered 503'
                               WHEN 'abandoned' THEN 'no heartbeat from worker for 31s: the worker died mid-run' END,
                   CASE WHEN status = 'failed' THEN substr(sha256('stack:' || stack), 1, 16) END
            FROM ({run_draws}) ORDER BY i
            """,
            [start],
        )
        seconds["meta.ingestion_runs"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        con.execute(
            f"""
            INSERT INTO meta.ingestion_run_assets
            SELECT md5('run:' || i), {assets}[job], {kinds}[job],
                   {_symbol(f"(hash(i, 'sym') % {symbols} + k) % {symbols}")},
                   CASE WHEN status = 'failed' AND k = 1 THEN 'failed' ELSE 'success' END,
                   CASE WHEN status = 'failed' AND k = 1 THEN NULL ELSE h % 300 END, 0, 0,
                   CASE WHEN status = 'failed' AND k = 1 THEN NULL ELSE 1000 + h % 50000 END,
                   started_at - INTERVAL 1 DAY, started_at, '{{"provider": "sim"}}',
                   started_at, started_at + to_milliseconds(dur // 2), dur // 2
            FROM ({run_draws}), range(2) u(k) ORDER BY i, k
            """,
            [start],
        )
        seconds["meta.ingestion_run_assets"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        names = _list(tuple(c[0] for c in CHECKS))
        check_assets = _list(tuple(c[1] for c in CHECKS))
        severities = _list(tuple(c[2] for c in CHECKS))
        con.execute(
            f"""
            INSERT INTO meta.asset_checks
            SELECT md5('check:' || i), {check_assets}[c], {_symbol(f'(i // {len(CHECKS)}) % {symbols}')},
                   {names}[c], {severities}[c], CASE WHEN failing THEN 'fail' ELSE 'pass' END,
                   CAST(? AS TIMESTAMP) + to_microseconds(CAST(i * {check_step_us} AS BIGINT)),
                   '{{"rows": ' || h % 5000 || ', "bad": ' || CASE WHEN failing THEN 1 + h // 7 % 9 ELSE 0 END || '}}',
                   CASE WHEN failing THEN (1 + h // 7 % 9) || ' offending rows' ELSE 'ok' END,
                   md5('run:' || least(i // {checks_per_run}, {runs - 1}))
            FROM (SELECT i, hash(i, 'check') AS h, i % {len(CHECKS)} + 1 AS c, h % 100 < 3 AS failing
                  FROM range({checks}) t(i))
            ORDER BY i
            """,
            [start],
        )
        seconds["meta.asset_checks"] = time.perf_counter() - t0

        # candles_daily: the last `n_sessions` NYSE sessions x `symbols`, with holes, late listings, stale tails.
        t0 = time.perf_counter()
        window = calendar.last_sessions(calendar.last_closed_session(now), n_sessions)
        sessions = pa.table(
            {"d": pa.array(window.astype("datetime64[D]")), "n": pa.array(range(len(window)), pa.int32())}
        )
        con.register("_sessions", sessions)
        s = len(window)
        con.execute(
            f"""
            CREATE TEMP TABLE _symbols AS
            SELECT y, {_symbol('y')} AS symbol, h,
                   CASE WHEN h % 100 < 2 THEN 1 + (h // 100) % 5 ELSE 0 END AS lag,
                   CASE WHEN (h // 1000) % 100 < 2 THEN (h // 10000) % {max(s - 40, 1)} ELSE 0 END AS first_n,
                   CASE WHEN (h // 1000000) % 100 < 5 THEN {s - 1} - (h // 100000000) % 60 ELSE -1 END AS hole_at,
                   1 + (h // 10000000000) % 3 AS hole_len
            FROM (SELECT y, hash(y, 'symbol') AS h FROM range({symbols}) t(y))
            """
        )
        con.execute(
            f"""
            INSERT INTO candles_daily
            SELECT symbol, d, o, greatest(o, c) * 1.01, least(o, c) * 0.99, c, 100000 + hash(y, n) % 1000000, 'sim'
            FROM (
                SELECT y.y, y.symbol, x.d, x.n,
                       (20 + y.h % 400) * (1 + 0.1 * sin(x.n / 9.0 + y.y)) AS c,
                       (20 + y.h % 400) * (1 + 0.1 * sin((x.n - 0.5) / 9.0 + y.y)) AS o
                FROM _symbols y JOIN _sessions x
                  ON x.n >= y.first_n AND x.n < {s} - y.lag AND NOT (x.n >= y.hole_at AND x.n < y.hole_at + y.hole_len)
            )
            ORDER BY symbol, d
            """
        )
        con.unregister("_sessions")
        seconds["candles_daily"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        con.execute(
            f"""
            INSERT INTO meta.asset_watermarks
            SELECT 'candles_daily', symbol, CAST(max(date) AS TIMESTAMP),
                   CAST(max(date) AS TIMESTAMP) + INTERVAL 22 HOUR, md5('run:' || hash(symbol) % {runs})
            FROM candles_daily GROUP BY symbol ORDER BY symbol
            """
        )
        con.execute("DROP TABLE _symbols")
        seconds["meta.asset_watermarks"] = time.perf_counter() - t0
    finally:
        warehouse.close()
    return seconds


def count_tables(path: Path) -> dict[str, int]:
    """Rows per table, read from the file opened read-only."""
    con = connect(path, read_only=True)
    try:
        tables = ("meta.ingestion_runs", "meta.ingestion_run_assets", "meta.asset_checks", "meta.asset_watermarks",
                  "candles_daily")
        counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]
        counts["  failed runs (all time)"] = int(con.execute(
            "SELECT count(*) FROM meta.ingestion_runs WHERE status = 'failed'").fetchone()[0])  # type: ignore[index]
        counts["  distinct error_stack_hash"] = int(con.execute(
            "SELECT count(DISTINCT error_stack_hash) FROM meta.ingestion_runs").fetchone()[0])  # type: ignore[index]
        counts["  failed checks (all time)"] = int(con.execute(
            "SELECT count(*) FROM meta.asset_checks WHERE status = 'fail'").fetchone()[0])  # type: ignore[index]
        return counts
    finally:
        con.close()


# -- (a) in-process, with the breakdown ------------------------------------------------------------
def _label(sql: str) -> str:
    """A short name for one SQL statement the report issues."""
    from oh.read import health

    known = {getattr(health, name, None): name.lower() for name in ("LATEST_RUNS", "FAILURE_GROUPS", "FAILED_CHECKS",
                                                                   "WATERMARKS")}
    if sql in known:
        return f"sql {known[sql]}"
    if "min(date)" in sql:
        return "sql gaps: first candle per symbol"
    if "candles_daily" in sql and "date >=" in sql:
        return "sql gaps: candles in the window"
    return "sql " + " ".join(sql.split())[:60]


@contextmanager
def timed_steps(calls: list[tuple[str, float]]) -> Iterator[None]:
    """Time the report's pure steps (calendar, gaps, coverage matrix, plan) by wrapping them in `oh.read.health`."""
    from oh.read import health

    wrapped = {
        "find_gaps": "python find_gaps", "coverage_matrix": "python coverage_matrix (built even without --coverage)",
        "plan": "python plan",
    }
    originals: dict[str, Callable[..., Any]] = {}

    def wrap(function: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                calls.append((label, time.perf_counter() - t0))
        return timed

    for name, label in wrapped.items():
        if hasattr(health, name):
            originals[name] = getattr(health, name)
            setattr(health, name, wrap(originals[name], label))
    original_closed = calendar.last_closed_session
    label = "python calendar.last_closed_session (the calendar is already loaded here)"
    calendar.last_closed_session = wrap(original_closed, label)  # type: ignore[method-assign]
    try:
        yield
    finally:
        calendar.last_closed_session = original_closed  # type: ignore[method-assign]
        for name, function in originals.items():
            setattr(health, name, function)


def run_in_process(
    path: Path, now: datetime, repeat: int
) -> tuple[list[float], dict[str, list[float]], dict[str, Any]]:
    """`health_report` on a read-only connection `repeat` times: seconds, per-step seconds, the last report."""
    from oh.read.health import HealthOptions, health_report

    con = connect(path, read_only=True)
    calls: list[tuple[str, float]] = []

    def read(sql: str, params: list[Any]) -> pa.Table:
        t0 = time.perf_counter()
        table = con.sql(sql, params=params).to_arrow_table()
        calls.append((_label(sql), time.perf_counter() - t0))
        return table

    times: list[float] = []
    steps: dict[str, list[float]] = defaultdict(list)
    report: dict[str, Any] = {}
    try:
        with timed_steps(calls):
            for _ in range(repeat):
                calls.clear()
                t0 = time.perf_counter()
                report = health_report(read, HealthOptions(now=now))
                total = time.perf_counter() - t0
                times.append(total)
                per_run: dict[str, float] = defaultdict(float)
                for label, seconds in calls:
                    per_run[label] += seconds
                rest = "python rest (per-symbol split of the window, staleness, to_pylist)"
                per_run[rest] = total - sum(per_run.values())
                for label, seconds in per_run.items():
                    steps[label].append(seconds)
    finally:
        con.close()
    return times, steps, report


# -- (b) and (c): the real CLI ---------------------------------------------------------------------
def oh_command() -> list[str]:
    """The installed `oh` script next to this interpreter (the venv's), else the repo's venv."""
    beside = Path(sys.executable).with_name("oh")
    return [str(beside if beside.exists() else REPO / ".venv" / "bin" / "oh")]


def run_cli(home: Home, args: list[str], repeat: int) -> tuple[list[float], str]:
    """Run `oh ARGS` `repeat` times in `home`; wall seconds each (process start-up included) and the last stdout."""
    env = {**os.environ, "OH_HOME": str(home.root)}
    times: list[float] = []
    out = ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run([*oh_command(), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"oh {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        out = proc.stdout
    return times, out


def startup_seconds(repeat: int = 3) -> dict[str, float]:
    """What every `oh db health` pays before its first query: interpreter + imports (medians)."""
    out = {}
    cases = {
        "`oh --help`": [*oh_command(), "--help"],
        "`python -c 'import oh.cli.main, oh.read.health'`": [sys.executable, "-c", "import oh.cli.main, oh.read.health"],
        "the same + the calendar load": [
            sys.executable, "-c",
            "import datetime, oh.cli.main, oh.read.health, oh.domain.calendar; oh.domain.calendar.last_closed_session(datetime.datetime.now(datetime.UTC))",
        ],
    }
    for label, argv in cases.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(argv, cwd=REPO, capture_output=True, check=True, timeout=120)
            times.append(time.perf_counter() - t0)
        out[label] = statistics.median(times)
    return out


def probe_seconds(home: Home) -> float:
    """The probe `oh.cli.data.reader` makes for a running ledger, when none runs."""
    client = ControlClient(home, timeout=30.0)
    t0 = time.perf_counter()
    try:
        client.status(timeout=1.0)
    except LedgerUnavailable:
        pass
    finally:
        client.close()
    return time.perf_counter() - t0


def run_via_client(home: Home, now: datetime, repeat: int) -> list[float]:
    """`health_report` in-process over `ControlClient.query` to the running ledger (no process start-up)."""
    from oh.read.health import HealthOptions, health_report

    client = ControlClient(home, timeout=60.0)
    times = []
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            health_report(lambda sql, params: client.query(sql, params), HealthOptions(now=now))
            times.append(time.perf_counter() - t0)
    finally:
        client.close()
    return times


def render_seconds(report: dict[str, Any], repeat: int = 3) -> tuple[float, float]:
    """What `oh db health --json` spends printing the report: rich's print_json (as it does now) vs json.dumps."""
    import io

    from rich.console import Console

    from oh.cli.health import _json_default

    text = json.dumps(report, default=_json_default, sort_keys=True)
    rich_times, plain_times = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        Console(file=io.StringIO()).print_json(text)
        rich_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        io.StringIO().write(json.dumps(report, default=_json_default, sort_keys=True, indent=2))
        plain_times.append(time.perf_counter() - t0)
    return statistics.median(rich_times), statistics.median(plain_times)


def summary(report: dict[str, Any]) -> str:
    """The report's size, section by section (to check every path printed the same report)."""
    keys = ("latest_runs", "failure_groups", "watermarks", "failed_checks", "gaps", "plan")
    stale = sum(1 for w in report.get("watermarks", []) if w.get("stale"))
    return ", ".join(f"{k} {len(report.get(k, []))}" for k in keys) + f", stale {stale}"


def _stats(times: list[float]) -> str:
    return (f"median {statistics.median(times):.3f}s  max {max(times):.3f}s   "
            f"[{', '.join(f'{t:.3f}' for t in times)}]")


# -- the benchmark ---------------------------------------------------------------------------------
def bench(runs: int, checks: int, symbols: int, n_sessions: int, repeat: int) -> float:
    """Fill, time the three paths, print the figures; return the judged ratio."""
    header("health_scale: `oh db health` on 100k runs + 1M check rows (in-process, CLI on the file, CLI via ledger)")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    now_arg = now.replace(tzinfo=None).isoformat(timespec="minutes")
    print(f"   clock fixed at {now_arg} UTC (`--now`); data expected through {calendar.last_closed_session(now)}")
    with fresh_home("health") as home:
        t0 = time.perf_counter()
        seconds = fill(home, now, runs, checks, symbols, n_sessions)
        fill_total = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in home.warehouse.parent.iterdir() if p.is_file()) / 1e6
        print(f"filled in {fill_total:.1f}s (" + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
              + f"); warehouse {size_mb:.0f} MB")
        print("rows per table:")
        for table, rows in count_tables(home.warehouse).items():
            print(f"   {table:<32} {rows:>11,}")

        a_times, steps, report = run_in_process(home.warehouse, now, repeat)
        print(f"report: {summary(report)}")
        cli_args = ["db", "health", "--json", "--now", now_arg]
        b_times, b_out = run_cli(home, cli_args, repeat)
        b_report = json.loads(b_out)
        probe = probe_seconds(home)
        t0 = time.perf_counter()
        with running_ledger(home):  # returns once the ledger answers status()
            ready = time.perf_counter() - t0
            c_times, c_out = run_cli(home, cli_args, repeat)
            c_report = json.loads(c_out)
            client_times = run_via_client(home, now, repeat)
        startup = startup_seconds()

    print(f"\ntimings, {repeat} runs each (median, max, every run):")
    print(f"(a) health_report in-process, read-only DuckDB : {_stats(a_times)}")
    print(f"(b) `oh db health --json`, services down       : {_stats(b_times)}   [{summary(b_report)}]")
    print(f"(c) `oh db health --json` via the ledger       : {_stats(c_times)}   [{summary(c_report)}]")
    print(f"    info: the ledger answered status() {ready:.2f}s after its start on this warehouse")
    print(f"    info: health_report in-process via ControlClient to the ledger: {_stats(client_times)}")
    print("    info: what a CLI run pays before its first query: "
          + "; ".join(f"{k} {v:.3f}s" for k, v in startup.items())
          + f"; the ledger probe when it is down (reader(): status(timeout=1.0)) {probe:.3f}s")
    rich_s, plain_s = render_seconds(report)
    print(f"    info: printing the report: rich print_json {rich_s:.3f}s (what the CLI does), json.dumps {plain_s:.3f}s")
    same = summary(b_report) == summary(report) == summary(c_report)
    print(f"    the three paths printed the same report sections: {'yes' if same else 'NO'}")

    print(f"\n(a) breakdown per section, median of {repeat} runs, slowest first (the calendar is loaded beforehand):")
    ranked = sorted(steps.items(), key=lambda item: statistics.median(item[1]), reverse=True)
    for label, values in ranked:
        print(f"   {statistics.median(values) * 1000:9.1f} ms  (max {max(values) * 1000:8.1f})  {label}")

    medians = {"(a) in-process": statistics.median(a_times), "(b) CLI, services down": statistics.median(b_times),
               "(c) CLI via ledger": statistics.median(c_times)}
    worst = max(medians, key=medians.__getitem__)
    print("\nper path, median / budget: " + ", ".join(f"{k} {v / BUDGET_SECONDS:.3f}" for k, v in medians.items()))
    print(f"worst median: {worst} {medians[worst]:.3f}s against a {BUDGET_SECONDS:g} s budget "
          f"({'PASS' if medians[worst] < BUDGET_SECONDS else 'FAIL'})")
    ratio = medians[worst] / BUDGET_SECONDS
    ratio_line("health_scale worst median / 1 s budget", ratio, "< 1.0")
    return ratio


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.health_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="meta.ingestion_runs rows")
    parser.add_argument("--checks", type=int, default=1_000_000, help="meta.asset_checks rows")
    parser.add_argument("--symbols", type=int, default=500, help="symbols with candles and a watermark")
    parser.add_argument("--sessions", type=int, default=300, help="NYSE sessions of candles per symbol")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timed path")
    args = parser.parse_args(argv)
    bench(args.runs, args.checks, args.symbols, args.sessions, args.repeat)


if __name__ == "__main__":
    main()
