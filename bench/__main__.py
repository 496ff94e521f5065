"""`python -m bench [--smoke] [NAME ...]`: run every benchmark (or the named ones) in sequence, then list the ratios.

Each runs as its own `python -m bench.NAME` subprocess (a fresh interpreter and a fresh OH_HOME),
its output passes straight through, and the `RATIO ...` lines are repeated at the end.

`--smoke` runs each at the smallest size its options allow (SMOKE, which also has the benchmark run only alone:
~6 minutes for all of them on the 2-core box, loaded) and fails a benchmark that exits non-zero or prints no `RATIO`
line: whether every benchmark still runs, not what it measures (its figures at those sizes mean nothing). Nothing in `make test` runs the benchmarks, and two of
them had stopped working unseen (an API they called changed; the sim stopped inventing symbols): `make bench-smoke`.
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

# The smallest honest size of each benchmark (benchrot, 2026-12-08: each well under 2 minutes at load 10-15).
SMOKE: dict[str, tuple[str, ...]] = {
    "bus_throughput": ("--events", "10000", "--unbatched-events", "5000", "--repeat", "1"),
    "candles_million": ("--symbols", "5", "--rows", "500", "--repeat", "1"),
    "replay_rebuild": ("--trades", "5000", "--candle-every", "500", "--candle-rows", "500", "--repeat", "1"),
    "health_scale": ("--runs", "1000", "--checks", "10000", "--symbols", "10", "--sessions", "30", "--repeat", "1"),
    "snapshot_chain": ("--contracts", "500", "--repeat", "1"),
    "flow_chains": ("--contracts", "500", "--repeat", "1"),
    "daily_fifty": ("--symbols", "2", "--repeat", "1", "--candle-days", "30"),
    "live_ticks": ("--rate", "200", "--positions", "10", "--seconds", "3", "--warmup", "1"),
    "dashboard_latency": ("--events", "20", "--repeat", "1"),
    "dashboard_soak": ("--minutes", "1", "--sample", "5"),
    "page_fill": ("--sessions", "3", "--years", "1", "--repeat", "1", "--pages", "symbol,health"),
    "live_browser": ("--tabs", "1", "--seconds", "3", "--warmup", "1", "--rate", "200"),
    "derived_backfill": ("--sessions", "10", "--skip-per-session"),
    "journal_open": ("--mb", "10", "--repeat", "1"),
    "runaway_query": ("--symbols", "2", "--days", "365", "--repeat", "1"),
    "producer_resends": ("--events", "10000", "--batch", "10000", "--repeat", "1"),
    "dagster_backfill": ("--sessions", "2", "--symbols", "1"),
    "bus_tcp": ("--events", "5000", "--pings", "50", "--repeat", "1"),
    "export": ("--symbols", "2", "--sessions", "100", "--trades", "5000", "--repeat", "1"),
    "ops_cli": ("--repeat", "1", "--rows", "10000"),
    "full_market": ("--symbols", "10", "--candle-days", "30"),
    "emit_wait": ("--repeat", "1"),
    "demo": ("--years", "1", "--sessions", "5"),
    "sim_fetch": ("--symbols", "20"),
    "candles_incremental": ("--symbols", "20", "--candle-days", "30", "--pairs", "1"),  # not in BENCHMARKS: run alone
}


def run(name: str, args: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    """Run one benchmark module with `args`, echoing its output; return its exit code and its RATIO lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
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
    """Run the chosen benchmarks (at SMOKE's sizes with `--smoke`); exit non-zero if any of them failed."""
    names = list(argv if argv is not None else sys.argv[1:])
    smoke = "--smoke" in names
    known = list(SMOKE) if smoke else list(BENCHMARKS)
    names = [name for name in names if name != "--smoke"] or known
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(known)}", file=sys.stderr)
        return 2
    summary: list[str] = []
    failed: list[str] = []
    for name in names:
        started = time.monotonic()
        code, ratios = run(name, SMOKE[name] if smoke else ())
        print(f"-- {name}: exit {code} after {time.monotonic() - started:.1f}s\n", flush=True)
        summary += ratios
        if code != 0 or (smoke and not ratios):
            failed.append(name)
    print("== summary")
    for line in summary:
        print(line)
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
