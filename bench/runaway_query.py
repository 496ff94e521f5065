"""Ingest while a runaway query runs on the ledger, against the same ingest without it, in one run.

Each pair is a fresh home with the real ledger (OH_QUERY_BUDGET_SECONDS=600, so the runaway runs
for the whole measurement) and the real ingest worker. After an untimed warm-up ingest, it times an
`IngestCandles` command for `--symbols` symbols x `--days` calendar days (sim), from the send until
a query sees its run `success`: first alone (baseline), then while another client runs a cross join
that would take hours (`RUNAWAY`), waiting until the ledger reports it running. During both, a
thread asks the ledger's status every 50 ms and records how long each answer takes. The pair ends
by stopping the ledger, which interrupts the runaway (its answer must be `interrupted`).

Judged by: ingest rows/s with the runaway / rows/s without, median of `--repeat` pairs (aim >= 0.8).
Printed beside it: each pair's rates, and the status latency (median, max) in both phases.

    python -m bench.runaway_query [--symbols 40] [--days 3650] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from datetime import date, timedelta

from bench._common import (
    environ,
    fmt_rate,
    fresh_home,
    header,
    load_line,
    ratio_line,
    running_ledger,
    stop_service,
    wait_run,
)
from bus.control_client import ControlClient, LedgerUnavailable, QueryError
from bus.home import Home
from bus.producer import Producer
from contracts import IngestCandles, run_id_for
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.sim.universe import SYNTHETIC_DEFAULT, SYNTHETIC_ENV, synthetic_symbols

RUNAWAY = "SELECT count(*) FROM range(1000000000000) a, range(100000) b WHERE a.range + b.range = 3"
END = date(2025, 6, 30)


class StatusProbe(threading.Thread):
    """Asks the ledger's status every `interval` s until stopped; keeps each answer's latency (ms)."""

    def __init__(self, home: Home, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.home = home
        self.interval = interval
        self.stopped = threading.Event()
        self.latencies: list[float] = []
        self.failures = 0

    def run(self) -> None:
        client = ControlClient(self.home, timeout=10)
        try:
            while not self.stopped.is_set():
                t0 = time.perf_counter()
                try:
                    client.status()
                    self.latencies.append((time.perf_counter() - t0) * 1000)
                except LedgerUnavailable:
                    self.failures += 1
                self.stopped.wait(self.interval)
        finally:
            client.close()

    def summary(self) -> str:
        if not self.latencies:
            return f"no answer ({self.failures} unanswered)"
        values = sorted(self.latencies)
        return (f"status median {statistics.median(values):.1f} ms, max {values[-1]:.1f} ms "
                f"({len(values)} answers, {self.failures} unanswered)")


def ingest(home: Home, symbols: list[str], days: int) -> tuple[float, str]:
    """Seconds from sending IngestCandles until its run is `success`, and the status probe's summary."""
    control, producer = ControlClient(home, timeout=30.0), Producer(home)
    command = IngestCandles(symbols=symbols, start=END - timedelta(days=days), end=END, provider="sim")
    run_id = run_id_for(command.id, "ingest_candles")
    probe = StatusProbe(home)
    probe.start()
    t0 = time.monotonic()
    try:
        producer.send(command)
        producer.flush(timeout=60)
        seen, status = wait_run(control, run_id, timeout=900, interval=0.02)
    finally:
        probe.stopped.set()
        probe.join()
        producer.close()
        control.close()
    if status != "success":
        raise RuntimeError(f"ingest run {run_id} {status}: see {home.logs}")
    return seen - t0, probe.summary()


def rows_of(home: Home, symbols: list[str]) -> int:
    """Candle rows stored for `symbols`."""
    control = ControlClient(home, timeout=30.0)
    try:
        marks = ", ".join("?" for _ in symbols)
        sql = f"SELECT count(*) FROM candles_daily WHERE symbol IN ({marks})"
        return int(control.query(sql, list(symbols)).column(0)[0].as_py())
    finally:
        control.close()


def start_runaway(home: Home) -> tuple[threading.Thread, list[str]]:
    """Run RUNAWAY from another client; return once the ledger reports it running."""
    answers: list[str] = []

    def run() -> None:
        client = ControlClient(home, timeout=600)
        try:
            client.query(RUNAWAY)
            answers.append("rows")
        except QueryError as exc:
            answers.append(exc.kind)
        except LedgerUnavailable:
            answers.append("unavailable")
        finally:
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    status = ControlClient(home, timeout=10)
    try:
        deadline = time.monotonic() + 60
        while status.status().counters.get("queries_running", 0) < 1:
            if time.monotonic() > deadline or answers:
                raise RuntimeError(f"the runaway query never ran: {answers}")
            time.sleep(0.05)
    finally:
        status.close()
    return thread, answers


def pair(index: int, n_symbols: int, days: int) -> float:
    """One fresh home: warm-up, baseline ingest, ingest beside the runaway; returns with/without rows/s."""
    with fresh_home("runaway") as home, running_ledger(home) as ledger:
        worker = Service(home, "ingest").start()
        try:
            wait_for_heartbeat(home, "ingest", timeout=60)
            # listed sim names (the sim answers any other UnknownSymbol): the warm-up's, then two disjoint sets
            names = synthetic_symbols(2 * n_symbols + 1)
            ingest(home, names[-1:], 30)
            alone, beside = names[:n_symbols], names[n_symbols:-1]
            alone_s, alone_status = ingest(home, alone, days)
            thread, answers = start_runaway(home)
            beside_s, beside_status = ingest(home, beside, days)
            running = answers == []
            alone_rows, beside_rows = rows_of(home, alone), rows_of(home, beside)
        finally:
            stop_service(worker)
        code = ledger.stop(timeout=30)
        thread.join(30)
    if not running:
        raise RuntimeError(f"the runaway query ended during the measurement: {answers}")
    alone_rate, beside_rate = alone_rows / alone_s, beside_rows / beside_s
    print(f"#{index} alone  {fmt_rate(alone_rate):>8} rows/s ({alone_s:.2f}s, {alone_rows:,} rows); {alone_status}")
    print(f"#{index} beside {fmt_rate(beside_rate):>8} rows/s ({beside_s:.2f}s, {beside_rows:,} rows); {beside_status}")
    print(f"#{index} with/without {beside_rate / alone_rate:.3f}; runaway answered {answers}, ledger exit {code}",
          flush=True)
    return beside_rate / alone_rate


def main() -> None:
    """Parse the options, run the pairs, print the judged ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.runaway_query", description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=40, help="symbols per timed ingest")
    parser.add_argument("--days", type=int, default=3650, help="calendar days of candles per symbol")
    parser.add_argument("--repeat", type=int, default=3, help="pairs (fresh home each); the median ratio is judged")
    args = parser.parse_args()
    os.environ["OH_QUERY_BUDGET_SECONDS"] = "600"  # the ledger child inherits it: the runaway outlives the ingest
    header(f"runaway_query: IngestCandles of {args.symbols} symbols x {args.days} days, alone and beside a runaway query")
    load_line("at start")
    with environ(SYNTHETIC_ENV, str(max(2 * args.symbols + 1, SYNTHETIC_DEFAULT))):  # inherited by the services
        ratios = [pair(i + 1, args.symbols, args.days) for i in range(args.repeat)]
    load_line("at end")
    ratio_line("ingest rows/s with a runaway query / without", statistics.median(ratios), ">= 0.8")


if __name__ == "__main__":
    main()
