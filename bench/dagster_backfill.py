"""A 20-session backfill of 2 symbols: Dagster's `inline` mode on 2 step processes against the supervisord workers.

Both sides do the same work in a fresh home each, with the real ledger and every worker running
(`python -m services.NAME`, the scheduler's timer off), in the same run:

- workers (the baseline): the CLI's backfill, sent like `oh emit`: IngestCandles (daily's 400-day
  look-back before the first session .. the last), IngestOptionsBars and SnapshotOptions over the
  range, all at once; flow, derived and the briefing chain on by themselves (one ranged chain).
  Timed from the first send until every chained run has ended and the checks of every delivery are
  committed.
- Dagster: `oh_dagster.materialize.materialize_range(..., mode="inline", processes=2)`: one
  `per_symbol` run then one `per_session` run, each step in a process of its own (the multiprocess
  executor, 2 at a time, forkserver with the definitions preloaded), running the handlers itself and
  sending the events to the ledger; its `quality` check steps wait for the checks worker. Timed
  from the call until it returns.

Printed: both times, the tables' row counts (which must be equal), and Dagster's overhead per step
from its event log: a step's wall time (launch of its process to its end) minus the time of the
ledger runs it executed (`duration_ms` in `meta.ingestion_runs`); check steps run no job, so all
of theirs is overhead plus the wait for the checks worker. Judged by: Dagster seconds / workers
seconds (lower is better; 1.0 is as fast as the workers).

    python -m bench.dagster_backfill [--sessions 20] [--symbols 2] [--processes 2] [--with-bus]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import fresh_home, header, load_line, ratio_line, running_ledger, stop_service, wait_query, wait_run
from bus.control_client import ControlClient
from bus.home import Home
from bus.producer import Producer
from contracts import IngestCandles, IngestOptionsBars, SnapshotOptions, run_id_for
from contracts.catalog import job_of
from devtools.processes import Service, wait_for_heartbeat
from oh.domain import calendar
from services.pipeline import Step, follow_chain
from services.stack import WORKERS as STACK_WORKERS

WORKERS = tuple(STACK_WORKERS)  # every worker of the pipeline, as `python -m services.NAME`
SYMBOLS = ("AAPL", "SPY", "MSFT", "QQQ", "NVDA", "AMZN", "META", "TSLA")
TABLES = ("candles_daily", "options_bars", "option_snapshots", "options_flow", "derived_daily", "briefings")
CHECKED = ("candles_daily", "options_bars", "options_snapshot_file", "options_flow", "derived_metrics")
CHECKS_PENDING_SQL = f"""
SELECT (SELECT count(*) FROM meta.ingestion_run_assets WHERE status = 'success' AND asset_key IN {CHECKED})
     - (SELECT count(DISTINCT (run_id, asset_key, partition_key)) FROM meta.asset_checks WHERE run_id IS NOT NULL)"""
CANDLE_DAYS = 400


@contextmanager
def stack(home: Home) -> Iterator[None]:
    """The ledger and every worker for `home` (the scheduler's timer off), OH_HOME exported for child processes."""
    (home.config / "scheduler.toml").write_text("[daily]\nenabled = false\n")
    with running_ledger(home):
        workers = [Service(home, name).start() for name in WORKERS]
        try:
            for name in WORKERS:
                wait_for_heartbeat(home, name, timeout=120)
            yield
        finally:
            for worker in workers:
                stop_service(worker)


def counts(home: Home) -> dict[str, int]:
    client = ControlClient(home, timeout=60.0)
    try:
        return {t: int(client.query(f"SELECT count(*) FROM {t}").column(0)[0].as_py()) for t in TABLES}
    finally:
        client.close()


def workers_backfill(home: Home, days: list[date], symbols: list[str]) -> float:
    """The CLI's backfill on the workers; seconds until every chain ended and every delivery's checks are in."""
    first, last = days[0], days[-1]
    commands = [
        IngestCandles(symbols=symbols, start=first - timedelta(days=CANDLE_DAYS), end=last),
        IngestOptionsBars(symbols=symbols, start=first, end=last),
        SnapshotOptions(symbols=symbols, start=first, end=last),
    ]
    client, producer = ControlClient(home, timeout=60.0), Producer(home)
    t0 = time.monotonic()
    producer.send_many(commands)
    producer.flush(timeout=60)
    for command in commands:
        job = type(command).__name__
        _, status = wait_run(client, run_id_for(command.id, job_of(command).name), timeout=1800, interval=0.02)
        if status != "success":
            raise RuntimeError(f"{job} {status}: see {home.logs}")
    snapshot = Step("snapshot_options", run_id_for(commands[2].id, "snapshot_options"))
    outcomes = follow_chain(client.query, snapshot, 600, 1800)  # one ranged chain: flow, derived, briefing
    if set(outcomes.values()) != {"success"}:
        raise RuntimeError(f"the chain of {first}..{last}: {outcomes}")
    wait_query(client, CHECKS_PENDING_SQL, [], lambda n: n <= 0, 600, 0.05)
    seconds = time.monotonic() - t0
    producer.close()
    client.close()
    return seconds


def dagster_backfill(home: Home, dagster_home: Path, days: list[date], symbols: list[str], mode: str,
                     processes: int | None) -> tuple[float, list[Any]]:
    """`materialize_range` on this home; seconds and the Dagster results (raises unless both runs succeeded)."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    import dagster as dg

    from oh_dagster.materialize import materialize_range

    with dg.DagsterInstance.get() as instance:
        t0 = time.monotonic()
        results = materialize_range(days[0], days[-1], symbols, instance, mode=mode, processes=processes,
                                    log_level="WARNING")
        seconds = time.monotonic() - t0
        if not all(r.success for r in results) or len(results) != 2:
            raise RuntimeError(f"Dagster {mode} backfill failed: see {home.logs} and {dagster_home}")
        steps = [step for r in results for step in step_times(instance, r.run_id)]
    return seconds, steps


def step_times(instance: Any, run_id: str) -> list[dict[str, Any]]:
    """Per step of one Dagster run: wall seconds (launch or start -> end), launch seconds, ledger work seconds."""
    events: dict[str, dict[str, float]] = {}
    work: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        marks = events.setdefault(entry.step_key, {})
        marks.setdefault(event.event_type_value, entry.timestamp)
        if event.event_type_value == "ASSET_MATERIALIZATION":
            metadata = event.event_specific_data.materialization.metadata
            work[entry.step_key] = metadata["duration_ms"].value / 1000
    steps = []
    for key, marks in events.items():
        began = marks.get("STEP_WORKER_STARTING", marks.get("STEP_START"))
        ended = marks.get("STEP_SUCCESS", marks.get("STEP_FAILURE"))
        if began is None or ended is None:
            continue
        wall = ended - began
        steps.append({"step": key, "wall": wall, "launch": marks.get("STEP_START", began) - began,
                      "work": work.get(key, 0.0), "overhead": wall - work.get(key, 0.0)})
    return sorted(steps, key=lambda s: s["step"])


def report_steps(steps: list[dict[str, Any]]) -> float:
    """Print each step's wall, launch, ledger work and overhead; return the median overhead of the asset steps."""
    print("   Dagster steps (wall s = launch + body; ledger work s = the runs it executed; overhead s = wall - work):")
    for s in steps:
        print(f"     {s['step']:<32} wall {s['wall']:7.2f}  launch {s['launch']:6.2f}  work {s['work']:7.2f}  "
              f"overhead {s['overhead']:6.2f}")
    assets = [s["overhead"] for s in steps if not s["step"].endswith("_quality")]
    checks = [s["overhead"] for s in steps if s["step"].endswith("_quality")]
    launches = [s["launch"] for s in steps]
    median = statistics.median(assets)
    print(f"   per-step overhead: asset steps median {median:.2f}s (mean {statistics.mean(assets):.2f}s, "
          f"{len(assets)} steps); check steps median {statistics.median(checks) if checks else 0:.2f}s "
          f"({len(checks)} steps); process launch median {statistics.median(launches):.2f}s")
    return median


def bench(n_sessions: int, n_symbols: int, processes: int, with_bus: bool) -> float:
    """Run both sides in fresh homes, print the figures, return Dagster / workers seconds."""
    header(f"dagster_backfill: {n_symbols} symbols x {n_sessions} sessions, Dagster inline on {processes} processes "
           "vs the supervisord workers")
    days = [d.astype(date) for d in calendar.last_sessions(calendar.last_closed_session(datetime.now(UTC)), n_sessions)]
    symbols = list(SYMBOLS[:n_symbols])
    print(f"   sessions {days[0]}..{days[-1]}; symbols {', '.join(symbols)}; candles from {days[0] - timedelta(days=CANDLE_DAYS)}")
    load_line("at start")
    with fresh_home("dagster-workers") as home, stack(home):
        workers = workers_backfill(home, days, symbols)
        workers_counts = counts(home)
    print(f"   workers: {workers:.2f}s; rows {workers_counts}", flush=True)
    load_line("after the workers")
    with fresh_home("dagster-inline") as home, stack(home), tempfile.TemporaryDirectory() as dagster_home:
        (Path(dagster_home) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        inline, steps = dagster_backfill(home, Path(dagster_home), days, symbols, "inline", processes)
        inline_counts = counts(home)
    print(f"   Dagster inline ({processes} processes): {inline:.2f}s; rows {inline_counts}", flush=True)
    if inline_counts != workers_counts:
        raise RuntimeError(f"row counts differ: workers {workers_counts}, Dagster {inline_counts}")
    report_steps(steps)
    if with_bus:
        with fresh_home("dagster-bus") as home, stack(home), tempfile.TemporaryDirectory() as dagster_home:
            (Path(dagster_home) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
            bus, bus_steps = dagster_backfill(home, Path(dagster_home), days, symbols, "bus", None)
        print(f"   for information, Dagster bus mode (in-process executor, the workers do the work): {bus:.2f}s "
              f"({bus / workers:.2f} x the workers)")
        report_steps(bus_steps)
    load_line("at end")
    ratio = inline / workers
    ratio_line(f"dagster_backfill Dagster inline ({processes} processes) / supervisord workers seconds, "
               f"{n_symbols} symbols x {n_sessions} sessions", ratio, "lower is better; 1.0 = as fast as the workers")
    return ratio


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.dagster_backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="sessions in the backfill (the last closed ones)")
    parser.add_argument("--symbols", type=int, default=2, help=f"how many of {', '.join(SYMBOLS)}")
    parser.add_argument("--processes", type=int, default=2, help="Dagster step processes at a time")
    parser.add_argument("--with-bus", action="store_true", help="also time Dagster's bus mode, for information")
    args = parser.parse_args(argv)
    os.environ["PYTHONWARNINGS"] = "ignore"  # Dagster's beta/preview notices, in this process and the step processes
    warnings.simplefilter("ignore")
    bench(args.sessions, args.symbols, args.processes, args.with_bus)


if __name__ == "__main__":
    main()
