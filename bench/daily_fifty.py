"""The full `daily` chain for 50 symbols on the sim market, against the previous tool's per-job costs.

Ours: the real ledger and the real workers (ingest, snapshot, flow, derived, briefing, checks,
scheduler; `python -m services.NAME`) in a fresh home, no portfolio file, the scheduler's timer
disabled. A first `RunDaily` for the session before (untimed) gives flow a day to compare with;
once its checks have caught up, a `RunDaily` for the session (the command `oh emit daily --wait`
sends) is timed from the send until a query through the ledger sees the `daily` run ended (its
RunFinished committed). The daily job sends candles (400 calendar days, upserted again) and option
bars, then snapshots; flow, derived and the briefing chain on by themselves; the checks worker
checks every committed delivery alongside (it is not part of the `daily` run; when its results
for this day are all committed is printed after). Printed: every run of the chain from
`meta.ingestion_runs` (job, status, start offset, duration_ms), rows written per asset from
`meta.ingestion_run_assets`, and table row counts before/after.

Baseline: the previous tool's measured per-job costs (issue #6), applied to the work this run did:
  symbols x 1.8 s start-up (one start per symbol, as the issue's estimate counts it; the per-step
  starts it also paid are left out) + per snapshot day 1.4 s x (its contracts / 9,000) (the
  1.2-1.6 s measured for a 9,000-contract day, scaled down to the sim's ~1.5-2.7k-contract chains)
  + per derived symbol-day 2.3 s (2.2-2.4 s measured) + per flow row 14.5 s / 18,000 (12-17 s for
  18,000 rows); candles, option bars, briefing and checks count 0 s.
That is the judged baseline (the conservative one); the issue's unscaled form, symbols x (1.8 +
1.4 + 2.3) s + flow, is printed beside it. Judged by: baseline seconds / ours seconds (aim >= 10).

    python -m bench.daily_fifty [--symbols 50] [--repeat 1] [--candle-days 400]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

from bench._common import (
    fresh_home,
    header,
    load_line,
    ratio_line,
    running_ledger,
    stop_service,
    wait_query,
    wait_run,
)
from bus.control_client import ControlClient
from bus.home import Home
from bus.producer import Producer
from contracts import RunDaily, run_id_for
from devtools.processes import Service, wait_for_heartbeat
from oh.domain import calendar
from services.stack import WORKERS as STACK_WORKERS

WORKERS = tuple(STACK_WORKERS)  # every worker of the pipeline, as `python -m services.NAME`
TABLES = ("candles_daily", "options_bars", "option_snapshots", "options_flow", "derived_daily", "briefings",
          "meta.asset_checks", "meta.ingestion_run_assets", "meta.ingestion_runs")
CHECKED_ASSETS = ("candles_daily", "options_bars", "options_snapshot_file", "options_flow", "derived_metrics")
PREVIOUS_STARTUP_S, PREVIOUS_SNAPSHOT_S, PREVIOUS_SNAPSHOT_CONTRACTS = 1.8, 1.4, 9_000
PREVIOUS_DERIVED_S, PREVIOUS_FLOW_S_PER_ROW = 2.3, 14.5 / 18_000
TREE = """WITH RECURSIVE tree(run_id) AS (
    SELECT run_id FROM meta.ingestion_runs WHERE run_id = ?
    UNION ALL SELECT r.run_id FROM meta.ingestion_runs r JOIN tree t ON r.parent_run_id = t.run_id)"""
RUNS_SQL = TREE + """
SELECT r.job_name, r.status, r.started_at, r.duration_ms FROM meta.ingestion_runs r JOIN tree USING (run_id)
ORDER BY r.started_at"""
ASSETS_SQL = TREE + """
SELECT a.asset_key, a.status, count(*) AS partitions, coalesce(sum(a.rows_inserted), 0)::BIGINT AS inserted,
       coalesce(sum(a.rows_updated), 0)::BIGINT AS updated, coalesce(sum(a.bytes_written), 0)::BIGINT AS bytes
FROM meta.ingestion_run_assets a JOIN tree USING (run_id) GROUP BY ALL ORDER BY 1, 2"""
CHECKS_SQL = TREE + f"""
SELECT (SELECT count(*) FROM meta.ingestion_run_assets JOIN tree USING (run_id)
        WHERE status = 'success' AND asset_key IN {CHECKED_ASSETS}) AS delivered,
       (SELECT count(DISTINCT (c.run_id, c.asset_key, c.partition_key)) FROM meta.asset_checks c
        JOIN tree USING (run_id)) AS checked"""
CHECKS_PENDING_SQL = f"SELECT delivered - checked FROM ({CHECKS_SQL})"


@contextmanager
def running_workers(home: Home, names: tuple[str, ...]) -> Iterator[list[Service]]:
    """Start every worker in `names` for `home`, wait for each one's heartbeat; stop them all on exit."""
    (home.config / "scheduler.toml").write_text("[daily]\nenabled = false\n")  # no timer firing mid-benchmark
    workers: list[Service] = []
    try:
        for name in names:
            workers.append(Service(home, name).start())
        for name in names:
            wait_for_heartbeat(home, name, timeout=90)
        yield workers
    finally:
        for worker in workers:
            stop_service(worker)


def run_daily(home: Home, symbols: list[str], day: date, candle_days: int) -> tuple[float, str]:
    """Send RunDaily for `day`; seconds until its run has ended, and its run id (raises unless `success`)."""
    control, producer = ControlClient(home, timeout=60.0), Producer(home)
    command = RunDaily(symbols=symbols, as_of=day, provider="sim", candle_days=candle_days)
    run_id = run_id_for(command.id, "daily")
    t0 = time.monotonic()
    producer.send(command)
    producer.flush(timeout=60)
    seen, status = wait_run(control, run_id, timeout=1800, interval=0.02)
    producer.close()
    control.close()
    if status != "success":
        raise RuntimeError(f"daily {day} run {run_id} {status}: see {home.logs}")
    return seen - t0, run_id


def wait_checks(home: Home, run_id: str, timeout: float = 300.0) -> float:
    """Seconds until the checks of every delivery in the run's chain are committed."""
    control = ControlClient(home, timeout=60.0)
    t0 = time.monotonic()
    try:
        return wait_query(control, CHECKS_PENDING_SQL, [run_id], lambda n: n <= 0, timeout, 0.05) - t0
    finally:
        control.close()


def table_counts(home: Home) -> dict[str, int]:
    """Row counts of the projected tables, through the ledger."""
    control = ControlClient(home, timeout=60.0)
    try:
        return {t: int(control.query(f"SELECT count(*) FROM {t}").column(0)[0].as_py()) for t in TABLES}
    finally:
        control.close()


def report(home: Home, run_id: str, seconds: float, n_symbols: int) -> tuple[float, float]:
    """Print the chain's runs and rows; return (conservative baseline, the issue's unscaled baseline) seconds."""
    control = ControlClient(home, timeout=60.0)
    runs = control.query(RUNS_SQL, [run_id]).to_pylist()
    assets = control.query(ASSETS_SQL, [run_id]).to_pylist()
    checks = control.query(CHECKS_SQL, [run_id]).to_pylist()[0]
    control.close()
    first = runs[0]["started_at"]
    print("   runs of the chain (job, status, start offset, duration_ms):")
    for r in runs:
        print(f"     {r['job_name']:<20} {r['status']:<8} +{(r['started_at'] - first).total_seconds():6.2f}s "
              f"{r['duration_ms']:>7,} ms")
    print("   rows written per asset (partitions, inserted, updated, MB of Arrow):")
    for a in assets:
        print(f"     {a['asset_key']:<22} {a['status']:<8} {a['partitions']:>4} {a['inserted']:>9,} {a['updated']:>9,} "
              f"{a['bytes'] / 1e6:8.2f}")
    print(f"   checks: {checks['checked']} of {checks['delivered']} deliveries of the chain checked "
          f"(one AssetChecked each)")
    done = {a["asset_key"]: a for a in assets if a["status"] == "success"}
    snapshot = done.get("options_snapshot_file", {"partitions": 0, "inserted": 0, "updated": 0})
    contracts = snapshot["inserted"] + snapshot["updated"]
    flow_rows = done["options_flow"]["inserted"] + done["options_flow"]["updated"] if "options_flow" in done else 0
    derived_days = done["derived_metrics"]["partitions"] if "derived_metrics" in done else 0
    flow_s = flow_rows * PREVIOUS_FLOW_S_PER_ROW
    scaled = (n_symbols * PREVIOUS_STARTUP_S + PREVIOUS_SNAPSHOT_S * contracts / PREVIOUS_SNAPSHOT_CONTRACTS
              + derived_days * PREVIOUS_DERIVED_S + flow_s)
    unscaled = n_symbols * (PREVIOUS_STARTUP_S + PREVIOUS_SNAPSHOT_S + PREVIOUS_DERIVED_S) + flow_s
    print(f"   baseline (previous tool's per-job costs): {n_symbols} x {PREVIOUS_STARTUP_S}s start-up "
          f"+ {PREVIOUS_SNAPSHOT_S}s x {contracts:,}/{PREVIOUS_SNAPSHOT_CONTRACTS:,} contracts snapshotted "
          f"+ {derived_days} x {PREVIOUS_DERIVED_S}s derived + {flow_rows:,} flow rows x "
          f"{PREVIOUS_FLOW_S_PER_ROW * 1e3:.3f} ms = {scaled:.1f}s (issue's unscaled form: {unscaled:.1f}s)")
    print(f"   ours: {seconds:.2f}s for the daily run ({n_symbols} symbols)")
    return scaled, unscaled


def bench(n_symbols: int, repeat: int, candle_days: int) -> float:
    """Run `repeat` timed dailies, each in a fresh home after an untimed one; return the median ratio."""
    header(f"daily_fifty: RunDaily for {n_symbols} sim symbols through every worker")
    load_line("at start")
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    before, day = (d.astype(date) for d in calendar.last_sessions(calendar.last_closed_session(datetime.now(UTC)), 2))
    print(f"   symbols {symbols[0]}..{symbols[-1]}; sessions {before} (untimed) then {day} (timed); workers: "
          f"{', '.join(WORKERS)}; candle_days {candle_days}")
    ratios = []
    for i in range(repeat):
        with fresh_home("daily") as home, running_ledger(home), running_workers(home, WORKERS):
            first, first_id = run_daily(home, symbols, before, candle_days)
            first_checks = wait_checks(home, first_id)
            counts_before = table_counts(home)
            load_line(f"before the timed daily #{i + 1}")
            seconds, run_id = run_daily(home, symbols, day, candle_days)
            checks = wait_checks(home, run_id)
            counts_after = table_counts(home)
            print(f"#{i + 1} first daily ({before}, untimed) {first:.2f}s, its checks +{first_checks:.2f}s | timed "
                  f"daily ({day}) {seconds:.2f}s, its checks committed +{checks:.2f}s after it ended", flush=True)
            scaled, _ = report(home, run_id, seconds, n_symbols)
            print("   table rows after the timed daily (+ added by it): " + ", ".join(
                f"{t} {counts_after[t]:,} (+{counts_after[t] - counts_before[t]:,})" for t in TABLES))
        ratios.append(scaled / seconds)
        print(f"#{i + 1} baseline/ours {ratios[-1]:.1f}", flush=True)
    ratio = sorted(ratios)[len(ratios) // 2]
    load_line("at end")
    ratio_line(f"daily_fifty previous-tool estimate/ours seconds, {n_symbols} symbols (median of {repeat})",
               ratio, ">= 10")
    return ratio


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.daily_fifty", description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50, help="how many sim symbols (S0000, S0001, ...)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed dailies, each in a fresh home; the median ratio is used")
    parser.add_argument("--candle-days", type=int, default=400, help="RunDaily.candle_days (calendar days of candles)")
    args = parser.parse_args(argv)
    bench(args.symbols, args.repeat, args.candle_days)


if __name__ == "__main__":
    main()
