"""Page fill: first paint and "filled" of every dashboard page in chromium, on the demo's data.

A fresh OH_HOME gets the real ledger and workers and the data `oh demo` loads (the default
watchlist: 2 years of sim candles, `--sessions` sessions of option bars and chains with their flow
and derived metrics, the demo's sample portfolio, then the daily chain for the last session), then
the real `oh ui` process. Loading is not timed.

Each page is opened once untimed (the server's first visit), then `--repeat` times in a fresh
browser context (cold: Bokeh's and Panel's bundles are fetched) and once more in that same context
(warm: a browser that keeps the dashboard's files cached). Per load, measured in the page's own
clock (milliseconds from the start of the navigation):

- first paint: the browser's first-contentful-paint (the banner, sidebar and headings);
- filled: when every section of the page has been filled from the ledger (the page's `.oh-ready`
  marker; read as `performance.now()` as soon as playwright sees it, which it polls every frame).

Printed: the medians per page, cold and warm. Judged by: the worst cold "filled" median over the
pages (the Live page is printed for information; it streams and has its own benchmark,
`live_browser`) divided by the issue's budget of 1.5 s (aim < 1). Also printed: the worst cold first
paint / 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import fresh_home, header, load_line, ratio_line
from devtools.browser import CHROMIUM, Stack, browser, run_oh
from oh.domain import calendar

PAGES = ("health", "portfolio", "symbol", "flow", "derived", "explorer", "live")
JUDGED = tuple(p for p in PAGES if p != "live")
WORKERS = ("ingest", "snapshot", "flow", "derived", "checks", "briefing", "scheduler")
FILLED_BUDGET_MS = 1500.0
PAINT_BUDGET_MS = 1000.0
FCP_JS = "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null"


def populate_demo(stack: Stack, years: int, sessions: int) -> dict[str, Any]:
    """What `oh demo` loads, through the real CLI and workers (without supervisord)."""
    from oh.adapters.portfolio_file import save
    from oh.adapters.sim.stream import sim_portfolio
    from oh.adapters.watchlists import DEFAULT_WATCHLIST

    symbols = ",".join(DEFAULT_WATCHLIST)
    last = calendar.last_closed_session(datetime.now(UTC))
    days = [d.astype(date) for d in calendar.last_sessions(last, max(sessions, 2))]
    first, before_last = days[0], days[-2]
    save(stack.home.config / "portfolio.json", sim_portfolio(["SPY", "AAPL", "MSFT"], positions=8, day=first))
    run_oh(stack.home, "emit", "ingest-candles", "--symbols", symbols, "--start", str(last - timedelta(days=365 * years)),
           "--end", str(last), "--wait")
    run_oh(stack.home, "emit", "ingest-options-bars", "--symbols", symbols, "--start", str(first), "--end",
           str(before_last), "--wait")
    run_oh(stack.home, "emit", "snapshot-options", "--symbols", symbols, "--start", str(first), "--end",
           str(before_last), "--wait")
    stack.wait_until(f"SELECT count(DISTINCT session_date) >= {len(days) - 1} FROM derived_daily", timeout=900)
    stack.wait_until("SELECT count(*) = 0 FROM meta.ingestion_runs WHERE status = 'started'", timeout=900)
    run_oh(stack.home, "emit", "daily", "--symbols", symbols, "--as-of", str(last), "--wait", timeout=900)
    stack.wait_until("SELECT count(*) = 0 FROM meta.ingestion_runs WHERE status = 'started'", timeout=900)
    return {"symbols": len(DEFAULT_WATCHLIST), "sessions": len(days), "last": last}


def load(page: Any, url: str, timeout_ms: int = 120_000) -> tuple[float, float]:
    """Open `url`; return (first-contentful-paint, filled) in ms from the navigation's start."""
    page.goto(url, wait_until="commit")
    page.wait_for_selector(".oh-ready", state="attached", timeout=timeout_ms)
    filled = float(page.evaluate("() => performance.now()"))
    fcp = page.evaluate(FCP_JS)
    return (float("nan") if fcp is None else float(fcp)), filled


def measure(chromium: Any, base: str, repeat: int) -> dict[str, dict[str, list[float]]]:
    """Per page: cold and warm (first paint, filled) samples."""
    out: dict[str, dict[str, list[float]]] = {}
    for slug in PAGES:
        samples: dict[str, list[float]] = {"cold_fcp": [], "cold_filled": [], "warm_fcp": [], "warm_filled": []}
        for _ in range(repeat):
            context = chromium.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            for kind in ("cold", "warm"):
                fcp, filled = load(page, f"{base}/{slug}")
                samples[f"{kind}_fcp"].append(fcp)
                samples[f"{kind}_filled"].append(filled)
            context.close()
        out[slug] = samples
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="cold loads of each page (default 3)")
    parser.add_argument("--sessions", type=int, default=30, help="sessions of chains, like the demo (default 30)")
    parser.add_argument("--years", type=int, default=2, help="years of candles, like the demo (default 2)")
    args = parser.parse_args(argv)
    header("page_fill: first paint and filled per dashboard page, demo data, chromium")
    if not Path(CHROMIUM).exists():
        print(f"no chromium at {CHROMIUM}: install Debian's chromium (.ci/run does)")
        return 1
    with fresh_home("pagefill") as home:
        stack = Stack(home)
        try:
            started = time.monotonic()
            (home.config / "scheduler.toml").write_text("[daily]\nenabled = false\n")  # no timer mid-benchmark
            stack.start_services(workers=WORKERS)
            loaded = populate_demo(stack, args.years, args.sessions)
            stack.start_ui()
            print(f"   demo data loaded in {time.monotonic() - started:.0f}s: {loaded['symbols']} symbols, "
                  f"{loaded['sessions']} sessions of chains through {loaded['last']}; dashboard at {stack.url}")
            load_line("before the loads")
            with browser() as chromium:
                first = chromium.new_context(viewport={"width": 1440, "height": 900})
                tab = first.new_page()
                print("   first visit after start (untimed by the ratio): " + ", ".join(
                    f"{slug} {load(tab, f'{stack.url}/{slug}')[1]:.0f} ms" for slug in PAGES))
                first.close()
                results = measure(chromium, stack.url, args.repeat)
            load_line("after the loads")
        finally:
            stack.stop()
    print(f"\nper page, ms from navigation start (median of {args.repeat}; cold = new browser context, "
          "warm = opened again in it):")
    print(f"   {'page':<10} {'cold paint':>11} {'cold filled':>12} {'warm paint':>11} {'warm filled':>12}   cold filled samples")
    medians: dict[str, dict[str, float]] = {}
    for slug, samples in results.items():
        medians[slug] = {k: statistics.median(v) for k, v in samples.items()}
        m = medians[slug]
        print(f"   {slug:<10} {m['cold_fcp']:>11.0f} {m['cold_filled']:>12.0f} {m['warm_fcp']:>11.0f} "
              f"{m['warm_filled']:>12.0f}   {', '.join(f'{v:.0f}' for v in samples['cold_filled'])}")
    worst = max(JUDGED, key=lambda s: medians[s]["cold_filled"])
    worst_paint = max(JUDGED, key=lambda s: medians[s]["cold_fcp"])
    print(f"   worst cold filled: {worst} {medians[worst]['cold_filled']:.0f} ms; worst cold first paint: "
          f"{worst_paint} {medians[worst_paint]['cold_fcp']:.0f} ms (live is for information)")
    print(f"   first paint / 1 s budget: {medians[worst_paint]['cold_fcp'] / PAINT_BUDGET_MS:.3f}")
    ratio_line("page_fill worst cold filled / 1.5 s", medians[worst]["cold_filled"] / FILLED_BUDGET_MS, "< 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
