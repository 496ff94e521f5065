"""`python -m bench [NAME ...]`: run every benchmark (or the named ones) in sequence, then list the ratios.

Each runs as its own `python -m bench.NAME` subprocess (a fresh interpreter and a fresh OH_HOME),
its output passes straight through, and the `RATIO ...` lines are repeated at the end.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench._common import REPO

BENCHMARKS = (
    "bus_throughput", "candles_million", "replay_rebuild", "health_scale", "snapshot_chain", "flow_chains", "daily_fifty",
    "live_ticks", "dashboard_latency", "dashboard_soak", "page_fill", "live_browser", "derived_backfill", "journal_open",
    "runaway_query", "producer_resends", "dagster_backfill", "bus_tcp", "export", "ops_cli", "full_market",
    "emit_wait", "demo", "sim_fetch",
)


def run(name: str) -> tuple[int, list[str]]:
    """Run one benchmark module, echoing its output; return its exit code and its RATIO lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ratios: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.startswith("RATIO "):
            ratios.append(line.rstrip())
    return proc.wait(), ratios


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; exit non-zero if any of them failed."""
    names = list(argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    summary: list[str] = []
    failed: list[str] = []
    for name in names:
        started = time.monotonic()
        code, ratios = run(name)
        print(f"-- {name}: exit {code} after {time.monotonic() - started:.1f}s\n", flush=True)
        summary += ratios
        if code != 0:
            failed.append(name)
    print("== summary")
    for line in summary:
        print(line)
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
