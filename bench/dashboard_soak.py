"""Dashboard soak: memory of the `oh ui` process under live updates with two open tabs.

A fresh OH_HOME gets the real ledger, the ingest and checks workers, a few symbols of sim candles,
and the real `oh ui`. Chromium (playwright) keeps two tabs open on the Health page (the busiest:
a live run board, liveness every second, and a throttled re-read of the health report on every
burst of events). A producer sends run lifecycles (RunStarted, a skipped or failed partition,
RunFinished) at `--rate` events per second for `--minutes`. The dashboard's RSS (/proc/PID/status
VmRSS) is sampled every `--sample` seconds. Reported: RSS after the warm-up, at the end, the
maximum, and the least-squares slope after the warm-up in MiB per hour; at the end, both tabs must
still show the last run (live all along). The judged ratio is end RSS / RSS after warm-up.

`python -m bench` runs it for 2 minutes; the issue's soak is `--minutes 30`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._common import fresh_home, header, ratio_line
from bus.producer import Producer
from contracts import AssetFailed, RunFinished, RunStarted, utc_now
from devtools.browser import CHROMIUM, Stack, browser, run_oh
from oh.domain import calendar

JOBS = ("ingest_candles", "snapshot_options", "compute_flow", "compute_derived", "run_checks")


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) samples, in MiB per hour."""
    if len(samples) < 2:
        return float("nan")
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return 3600.0 * cov / var if var else float("nan")


def lifecycle(index: int) -> list[object]:
    """One run's events: started, one partition skipped or failed, finished."""
    run_id = f"soak-{index:06d}-{time.time_ns()}"
    now = utc_now()
    failed = index % 7 == 0
    return [
        RunStarted(run_id=run_id, job_name=JOBS[index % len(JOBS)], triggered_by="bench", started_at=now),
        AssetFailed(run_id=run_id, asset_key="candles_daily", partition_key=f"S{index % 50:02d}",
                    status="failed" if failed else "skipped", error_type="SoakError" if failed else "Skipped",
                    error_message="soak failure" if failed else "nothing to do", started_at=now, ended_at=now),
        RunFinished(run_id=run_id, status="failed" if failed else "success", ended_at=utc_now(), duration_ms=3,
                    error_type="SoakError" if failed else None, error_message="soak failure" if failed else None,
                    error_stack_hash="soak" if failed else None),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="how long to run (default 2; the issue asks 30)")
    parser.add_argument("--rate", type=float, default=6.0, help="events per second (default 6: two run lifecycles)")
    parser.add_argument("--tabs", type=int, default=2, help="open Health tabs (default 2)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples (default 10)")
    parser.add_argument("--warmup", type=float, default=None, help="minutes before the baseline (default min(3, 20%%))")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(3.0, 0.2 * args.minutes)
    header(f"dashboard_soak: {args.minutes:g} min of live updates at {args.rate:g} events/s, {args.tabs} tabs")
    print(f"   {'time':>9}  {'RSS':>11}  sent", flush=True)
    if not Path(CHROMIUM).exists():
        print(f"no chromium at {CHROMIUM}: install Debian's chromium (.ci/run does)")
        return 1
    samples: list[tuple[float, float]] = []
    sent = 0
    with fresh_home("dashsoak") as home:
        stack = Stack(home)
        try:
            stack.start_services(workers=("ingest", "checks"))
            last = calendar.last_closed_session(datetime.now(UTC))
            run_oh(home, "emit", "ingest-candles", "--symbols", "SPY,AAPL,MSFT,QQQ", "--start",
                   str(last - timedelta(days=365)), "--end", str(last), "--wait")
            stack.start_ui()
            assert stack.ui is not None
            pid = stack.ui.pid
            with browser() as chromium:
                tabs = []
                context = chromium.new_context(viewport={"width": 1400, "height": 1000})
                for _ in range(args.tabs):
                    tab = context.new_page()
                    tab.goto(f"{stack.url}/health")
                    tab.wait_for_selector(".oh-ready", state="attached", timeout=120_000)
                    tabs.append(tab)
                producer = Producer(home)
                started = time.monotonic()
                next_sample = started
                interval = 3.0 / args.rate  # one lifecycle is three events
                index = 0
                last_run = ""
                try:
                    while time.monotonic() - started < 60.0 * args.minutes:
                        events = lifecycle(index)
                        last_run = events[0].run_id  # type: ignore[attr-defined]
                        producer.send_many(events)  # type: ignore[arg-type]
                        sent += len(events)
                        index += 1
                        now = time.monotonic()
                        if now >= next_sample:
                            samples.append((now - started, rss_mib(pid)))
                            print(f"   {samples[-1][0] / 60:5.1f} min  {samples[-1][1]:7.1f} MiB  {sent:,} events",
                                  flush=True)
                            next_sample += args.sample
                            for tab in tabs:  # keep the tabs' own event loops turning
                                tab.evaluate("() => 1")
                        time.sleep(max(0.0, started + index * interval - time.monotonic()))
                    producer.flush(60)
                finally:
                    producer.close()
                samples.append((time.monotonic() - started, rss_mib(pid)))
                live = []
                for number, tab in enumerate(tabs, 1):
                    try:
                        tab.locator(f'tr.oh-run[data-run-id="{last_run}"]').wait_for(timeout=60_000)
                        live.append(number)
                    except Exception as exc:
                        print(f"   tab {number} does NOT show the last run {last_run}: {str(exc).splitlines()[0]}")
                print(f"   tabs showing the last run ({last_run}): {live} of {len(tabs)}")
        finally:
            stack.stop()
            kept = Path(tempfile.mkdtemp(prefix="oh-dashboard-soak-logs-"))
            for name in ("ui.log", "ui.test.out.log", "ledger.log"):
                if (home.logs / name).exists():
                    shutil.copy(home.logs / name, kept / name)
            print(f"   logs kept in {kept}")
    after = [(t, m) for t, m in samples if t >= 60.0 * warmup] or samples
    base, end = after[0][1], samples[-1][1]
    print(f"\nsent {sent:,} events over {samples[-1][0] / 60:.1f} min; RSS samples every {args.sample:g}s (MiB):")
    print("   " + " ".join(f"{m:.0f}" for _, m in samples))
    print(f"   at start {samples[0][1]:.1f}, after {warmup:g} min warm-up {base:.1f}, end {end:.1f}, "
          f"max {max(m for _, m in samples):.1f}")
    print(f"   slope after warm-up: {slope_per_hour(after):+.1f} MiB/hour")
    ratio_line("dashboard RSS end / after warm-up", end / base, "~1.0, flat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
