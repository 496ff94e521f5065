"""Issue #14: a 250-session derived backfill for one symbol, through the stack, against the compute alone.

Setup (not timed): a fresh home, the real ledger, ingest, snapshot and derived workers; candles and
`--sessions` sessions of sim chains for one symbol stored through the bus.

- **compute** (the baseline): the same chains, closes and IV history read back once, then
  `oh.domain.derived.derived_row` for every session in order, in this process: the work itself.
- **ranged**: one `ComputeDerived` over every session (what the pipeline and `oh replay` now send),
  from send until its run is `success` in the run ledger (its RunFinished published: committed). The
  worker has run once before (one session, timed and printed as its first run): a process's first run
  pays one-time costs (pyarrow imports pandas the first time it builds an array, 0.3-0.8 s here) which
  the baseline, computed in this process after its reads, does not pay either.
- **per session** (for information; what they sent before): one command per session, all sent at
  once, until the last run has finished.
- **one small emit --wait**: `oh emit compute-derived --as-of D --wait` end to end as a subprocess
  (CLI start included), and the same command sent from this process (no CLI start), median of 5.

Judged by: compute seconds / ranged seconds (aim >= 0.5).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from datetime import date

import numpy as np

from bench._common import REPO, fresh_home, header, load_line, ratio_line, running_ledger, stop_service
from bus.control_client import ControlClient
from bus.home import Home
from bus.producer import Producer
from bus.subscriber import Subscriber
from contracts import ComputeDerived, IngestCandles, RunFinished, SnapshotOptions, run_id_for
from contracts.catalog import job_of
from devtools.paths import OH
from devtools.processes import Service, wait_for_heartbeat
from oh.domain import calendar, derived
from services.snapshots import load_chains


def send_and_wait(home: Home, client: ControlClient, commands: list, timeout: float = 1800.0) -> float:  # type: ignore[type-arg]
    """Send `commands` at once; seconds until the last one's run has ended (each must succeed).

    A run has ended when its RunFinished is published, which the ledger does once it is committed: this
    waits on a subscriber, not on a query of the run ledger every 5 ms (`_common.wait_run`), which took
    a CPU second or more of the ledger's own during a ranged run, on a 2-core box, from the run it timed.
    """
    subscriber = Subscriber(home, types=["RunFinished"], from_seq=client.status().head_seq + 1)
    waiting = {run_id_for(command.id, job_of(command).name) for command in commands}
    producer = Producer(home)
    started = time.monotonic()
    try:
        producer.send_many(commands)
        producer.flush(timeout=60)
        while waiting:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{len(waiting)} runs still going after {timeout:.0f}s")
            for _, finished in subscriber.poll(100):
                if isinstance(finished, RunFinished) and finished.run_id in waiting:
                    assert finished.status == "success", f"{finished.job_name} ended {finished.status}"
                    waiting.discard(finished.run_id)
        return time.monotonic() - started
    finally:
        producer.close()
        subscriber.close()


def compute_alone(client: ControlClient, symbol: str, days: list[date]) -> float:
    """Seconds to compute every session's row in this process from data read beforehand."""
    chains = load_chains(client.query, symbol, days[0], days[-1])
    closes = client.query("SELECT date, close FROM candles_daily WHERE symbol = ? ORDER BY date", [symbol])
    dates = closes.column(0).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    values = np.asarray(closes.column(1).to_numpy(zero_copy_only=False), dtype=float)
    history: dict[date, float] = {}
    started = time.perf_counter()
    for day in days:
        until = dates <= np.datetime64(day, "D")
        row = derived.derived_row(symbol, day, chains[day], values[until][-61:], (list(history), list(history.values())))
        derived.derived_table([row])
        history[day] = row["atm_iv_30d"]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbol", default="AAPL")
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--last", default="2025-11-28", help="the last session of the backfill")
    parser.add_argument("--skip-per-session", action="store_true", help="skip the one-command-per-session run")
    args = parser.parse_args()
    header(f"derived backfill: {args.sessions} sessions of {args.symbol}")
    load_line("at start")
    last = date.fromisoformat(args.last)
    days = [d.astype(date) for d in calendar.last_sessions(last, args.sessions)]
    with fresh_home("derived-backfill") as home, running_ledger(home):
        workers = [Service(home, name).start() for name in ("ingest", "snapshot", "derived")]
        client = ControlClient(home, timeout=60)
        try:
            for name in ("ingest", "snapshot", "derived"):
                wait_for_heartbeat(home, name, timeout=60)
            setup = time.monotonic()
            send_and_wait(home, client, [
                IngestCandles(symbols=[args.symbol], start=date(days[0].year - 1, 1, 1), end=last),
                SnapshotOptions(symbols=[args.symbol], start=days[0], end=last),
            ])
            rows = client.query("SELECT count(*) FROM option_snapshots").column(0)[0].as_py()
            print(f"   setup: {rows:,} chain rows over {len(days)} sessions stored in {time.monotonic() - setup:.1f}s")
            compute = compute_alone(client, args.symbol, days)
            print(f"   compute alone: {compute:.2f}s ({1000 * compute / len(days):.1f} ms per session)")
            first = send_and_wait(home, client, [ComputeDerived(symbols=[args.symbol], sessions=[last])])
            print(f"   the derived worker's first run (one session): {1000 * first:.0f} ms")
            ranged = send_and_wait(home, client, [ComputeDerived(symbols=[args.symbol], sessions=days)])
            print(f"   ranged, one command: {ranged:.2f}s ({1000 * ranged / len(days):.1f} ms per session)")
            if not args.skip_per_session:
                per = send_and_wait(home, client, [ComputeDerived(symbols=[args.symbol], sessions=[d]) for d in days])
                print(f"   per session, {len(days)} commands: {per:.2f}s ({1000 * per / len(days):.1f} ms per command); "
                      f"compute/per-session = {compute / per:.3f}")
            in_process = [send_and_wait(home, client, [ComputeDerived(symbols=[args.symbol], sessions=[last])])
                          for _ in range(5)]
            cli = []
            for _ in range(5):
                started = time.monotonic()
                done = subprocess.run([OH, "emit", "compute-derived", "--symbols", args.symbol, "--as-of", str(last),
                                       "--wait"], cwd=REPO, capture_output=True, text=True, timeout=300)
                cli.append(time.monotonic() - started)
                assert done.returncode == 0, done.stderr
            print(f"   one small command, send -> run ended: median {1000 * statistics.median(in_process):.0f} ms; "
                  f"`oh emit ... --wait` end to end: median {1000 * statistics.median(cli):.0f} ms")
            load_line("at end")
            ratio_line("derived_backfill compute/ranged", compute / ranged, ">= 0.5")
        finally:
            client.close()
            for worker in workers:
                stop_service(worker)


if __name__ == "__main__":
    main()
