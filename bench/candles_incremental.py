"""A daily's candles leg alone: the incremental `ingest_candles` a daily sends, against the full window it sent before.

Ours and the baseline run in the same home, alternating, day after day: the ledger and the ingest and checks
workers (`python -m services.NAME`; the checks check every delivery, as in a daily) with `OH_SIM_SYNTHETIC` large
enough to list S0000..S{N-1}. An untimed full fetch of the window (`--candle-days`, 400) for the first session
stores every symbol's history; then, for each following session, one `IngestCandles` for all the symbols over the
window up to it, alternately with `incremental` (what the daily sends now) and without (what it sent before),
each timed from the send until its run has ended and the checks of its deliveries are committed. Printed per
run: seconds, CPU seconds of the ledger, the ingest worker and the checks worker in that time, rows sent and
journal bytes added. Judged by: the full fetches' CPU seconds (all three processes) / the incremental ones'.

    python -m bench.candles_incremental [--symbols 5000] [--candle-days 400] [--pairs 2]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta

from bench._common import environ, fresh_home, header, load_line, ratio_line, running_ledger
from bench.daily_fifty import running_workers, wait_checks
from bench.full_market import cpu_seconds, journal_bytes
from bus.control_client import ControlClient
from bus.producer import Producer
from contracts import IngestCandles, run_id_for
from oh.adapters.sim.universe import SYNTHETIC_DEFAULT, SYNTHETIC_ENV, synthetic_symbols
from oh.domain import calendar

PROCESSES = ("ledger", "ingest", "checks")


def send_and_wait(home: object, command: IngestCandles, control: ControlClient) -> tuple[float, str]:
    """Send `command`; seconds until its run ended and the checks of its deliveries are committed, and its status."""
    producer = Producer(home)  # type: ignore[arg-type]
    run_id = run_id_for(command.id, "ingest_candles")
    try:
        t0 = time.monotonic()
        producer.send(command)
        producer.flush(timeout=120)
        while True:
            rows = control.query("SELECT status FROM meta.ingestion_runs WHERE run_id = ? AND status != 'started'",
                                 [run_id]).to_pylist()
            if rows:
                break
            time.sleep(0.05)
        wait_checks(home, run_id, timeout=1800)  # type: ignore[arg-type]
        return time.monotonic() - t0, rows[0]["status"]
    finally:
        producer.close()


def bench(n_symbols: int, candle_days: int, pairs: int) -> None:
    """Store the window once, then time `pairs` incremental and full fetches, alternating; print the ratio."""
    header(f"candles_incremental: IngestCandles of {n_symbols:,} sim symbols x {candle_days} days, incremental vs full")
    symbols = synthetic_symbols(n_symbols)
    days = [d.astype(date) for d in calendar.last_sessions(calendar.last_closed_session(datetime.now(UTC)), 2 * pairs + 1)]
    totals: dict[bool, list[float]] = {True: [], False: []}
    # the environment variable is inherited by every service started below
    with environ(SYNTHETIC_ENV, str(max(n_symbols, SYNTHETIC_DEFAULT))), fresh_home("candles") as home, \
            running_ledger(home) as ledger, running_workers(home, ("ingest", "checks")) as workers:
        pids = {"ledger": ledger.proc.pid, **{w.name: w.proc.pid for w in workers}}  # type: ignore[union-attr]
        control = ControlClient(home, timeout=120.0)
        first = days[0]
        seconds, status = send_and_wait(
            home, IngestCandles(symbols=symbols, start=first - timedelta(days=candle_days), end=first), control)
        print(f"   untimed full window for {first}: {seconds:.1f}s ({status})", flush=True)
        for index, day in enumerate(days[1:]):
            incremental = index % 2 == 0
            load_line(f"before {day}")
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            journal0 = journal_bytes(home)
            command = IngestCandles(symbols=symbols, start=day - timedelta(days=candle_days), end=day,
                                    incremental=incremental)
            seconds, status = send_and_wait(home, command, control)
            cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
            sent = control.query("SELECT sum(rows_inserted + rows_updated)::BIGINT FROM meta.ingestion_run_assets "
                                 "WHERE run_id = ?", [run_id_for(command.id, "ingest_candles")]).column(0)[0].as_py()
            totals[incremental].append(sum(cpu.values()))
            print(f"   {day} {'incremental' if incremental else 'full       '} {status}: {seconds:6.1f}s, "
                  f"{sent:>9,} rows, journal +{(journal_bytes(home) - journal0) / 1e6:5.1f} MB, CPU s "
                  f"{sum(cpu.values()):5.1f}: " + ", ".join(f"{name} {cpu[name]:.1f}" for name in PROCESSES),
                  flush=True)
        control.close()
    load_line("at end")
    full, incremental = sum(totals[False]) / len(totals[False]), sum(totals[True]) / len(totals[True])
    print(f"   mean CPU s per fetch: full {full:.1f}, incremental {incremental:.1f}")
    ratio_line(f"candles_incremental full/incremental CPU s, {n_symbols} symbols", full / incremental)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.candles_incremental", description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000, help="how many sim symbols (S0000, S0001, ...)")
    parser.add_argument("--candle-days", type=int, default=400, help="the window, in calendar days (RunDaily.candle_days)")
    parser.add_argument("--pairs", type=int, default=2, help="incremental + full fetches timed, alternating")
    args = parser.parse_args(argv)
    bench(args.symbols, args.candle_days, args.pairs)


if __name__ == "__main__":
    main()
