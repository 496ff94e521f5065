"""Issue #14.1: the fixed cost of one small command, `oh emit ... --wait` end to end, split into its parts.

A fresh home, the real ledger and flow worker (`devtools.processes.Service`). The command is the smallest real
job: `ComputeFlow` for one symbol and one session with no chains stored (the worker claims it, reads, records
the partition skipped and finishes: a whole run lifecycle with next to no work). Median of `--repeat` (7):

- **in process** (no CLI start): a `Producer` sends the command; times until the ledger acknowledged it, until
  its `RunStarted` and its `RunFinished` arrived committed on a `Subscriber` (what `--wait` listens to).
- **oh emit compute-flow ... --wait** as a subprocess: its wall time, and from the run ledger (same clock) when
  the run started and ended relative to the subprocess's start (CLI start + imports + probe + send + claim,
  then the run, then commit + publish + the wait loop + exit).
- the floors of a CLI run, for comparison: `python -c pass`, and `python -c "import oh.cli.main"` (every
  `oh` command imports it).

Judged by: `oh emit ... --wait` wall / (the import floor + the in-process send -> RunFinished), both medians of
this run (aim: close to 1, the wait adding nothing of its own).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

from bench._common import REPO, fresh_home, header, load_line, ratio_line, running_ledger, stop_service
from bus.control_client import ControlClient
from bus.producer import Producer
from bus.subscriber import Subscriber
from contracts import ComputeFlow, RunFinished, RunStarted, run_id_for
from devtools.paths import OH
from devtools.processes import Service, wait_for_heartbeat
from oh.domain import calendar

SYMBOL = "ZZZZ"  # nothing stored for it: the partition is skipped, the run succeeds


def in_process(home, day) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """(ack, RunStarted, RunFinished) seconds after the send of one ComputeFlow, in this process."""
    command = ComputeFlow(symbols=[SYMBOL], sessions=[day])
    run_id = run_id_for(command.id, "compute_flow")
    producer = Producer(home)
    try:
        started = time.perf_counter()
        producer.send(command)
        producer.flush(timeout=30.0)
        acked = time.perf_counter() - started
        subscriber = Subscriber(home, types=["RunStarted", "RunFinished"], from_seq=producer.last_acked_seq + 1)
        run_started = None
        try:
            while True:
                for _, event in subscriber.poll(200):
                    if isinstance(event, RunStarted) and event.run_id == run_id:
                        run_started = time.perf_counter() - started
                    if isinstance(event, RunFinished) and event.run_id == run_id:
                        assert run_started is not None
                        return acked, run_started, time.perf_counter() - started
                if time.perf_counter() - started > 60:
                    raise TimeoutError("the run did not finish within 60 s")
        finally:
            subscriber.close()
    finally:
        producer.close()


def cli(client: ControlClient, day) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """(wall, run started, run ended) seconds after the start of one `oh emit compute-flow ... --wait`."""
    wall_start = datetime.now(UTC)
    started = time.perf_counter()
    done = subprocess.run([OH, "emit", "compute-flow", "--symbols", SYMBOL, "--as-of", str(day), "--wait"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.rsplit("(run ", 1)[1].split(")")[0]
    row = client.query("SELECT epoch(started_at) AS s, epoch(ended_at) AS e FROM meta.ingestion_runs WHERE run_id = ?",
                       [run_id]).to_pylist()[0]
    origin = wall_start.timestamp()
    return wall, float(row["s"]) - origin, float(row["e"]) - origin


def floor(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    # byte-code cached as in an installed checkout, in a private place (PYTHONDONTWRITEBYTECODE=1 in the caller's
    # environment would make every CLI start compile oh): the warm-up runs below fill it
    pycache = tempfile.mkdtemp(prefix="oh-bench-pycache-")
    os.environ["PYTHONPYCACHEPREFIX"] = pycache
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    header("one small command: oh emit ... --wait end to end")
    load_line("at start")
    day = calendar.last_closed_session(calendar.wall_clock())
    with fresh_home("emit-wait") as home, running_ledger(home):
        flow = Service(home, "flow").start()
        client = ControlClient(home, timeout=30.0)
        try:
            wait_for_heartbeat(home, "flow", timeout=60)
            in_process(home, day)  # warm: the worker's first run
            cli(client, day)
            floor("import oh.cli.main")
            inner, outer, bare, imports = [], [], [], []
            for _ in range(args.repeat):
                inner.append(in_process(home, day))
                outer.append(cli(client, day))
                bare.append(floor("pass"))
                imports.append(floor("import oh.cli.main"))

            def ms(values: list[float]) -> str:
                return f"{1000 * statistics.median(values):.0f} ms"

            print(f"   in process: ack {ms([r[0] for r in inner])}, RunStarted {ms([r[1] for r in inner])}, "
                  f"RunFinished {ms([r[2] for r in inner])} after the send")
            print(f"   oh emit compute-flow --wait: wall {ms([r[0] for r in outer])}; the run started "
                  f"{ms([r[1] for r in outer])} and ended {ms([r[2] for r in outer])} after the CLI's start")
            print(f"   floors: python -c pass {ms(bare)}, import oh.cli.main {ms(imports)}")
            load_line("at end")
            expected = statistics.median(imports) + statistics.median([r[2] for r in inner])
            ratio_line("emit_wait cli wall / (import floor + in-process send->end)",
                       statistics.median([r[0] for r in outer]) / expected, "close to 1")
        finally:
            client.close()
            stop_service(flow)
            shutil.rmtree(pycache, ignore_errors=True)


if __name__ == "__main__":
    main()
