"""Page fill: first paint and "filled" of every dashboard page in chromium, on the demo's data.

A fresh OH_HOME gets the real ledger and workers and the data `oh demo` loads (the default
watchlist: 2 years of sim candles, `--sessions` sessions of option bars and chains with their flow
and derived metrics, the demo's sample portfolio, then the daily chain for the last session), then
the real `oh ui` process. Loading is not timed. `--home DIR` reuses a home loaded before (only the
ledger and `oh ui` start; the home is left as it was found).

Each page is opened once untimed (the server's first visit), then `--repeat` times in a fresh
browser context (cold: Bokeh's and Panel's bundles are fetched) and twice more in that same context
(warm: a browser that keeps the dashboard's files cached, nothing is fetched but the page and its
favicon; hot: the third visit, the first one where V8 reads the scripts' compiled code from the code
cache it wrote on the second: a trader's normal case, the dashboard open every day). Per load, in the
page's own clock (milliseconds from the start of the navigation):

- first paint: the browser's first-contentful-paint;
- filled: when every section of the page has been filled from the ledger (the page's `.oh-ready`
  marker; read as `performance.now()` as soon as playwright sees it; it polls every frame);
- filled in the DOM (cold, printed for information): when the marker was inserted, recorded in the page
  by a MutationObserver on the document and on every shadow root (Panel renders each pane in one). The
  difference from "filled" is the measurement's own lag: playwright's polling and its round trip through
  a busy machine (0.15-0.7 s at load 20-35);
- CPU figures, steadier than the wall-clock ones on a shared machine: chromium's CPU (all its
  processes: renderer, browser, network, GPU; DevTools' SystemInfo.getProcessInfo, 10 ms steps) from
  the navigation to "filled", cold and hot; on cold loads also the page's main thread's busy time
  (chromium's TaskDuration: scripts, style, layout, paint; wall time of its tasks, so it grows when the
  machine is busy) and the server's (user + system CPU of the `oh ui` process from /proc/PID/stat, from
  the navigation to "filled": the HTML, the static files, the fill);
- and, independent of the load, once filled: the Bokeh models of the page's document in the browser, the plot
  paints (BokehJS's PlotView paints, counted by a hook the page gets before its scripts run), and the shadow
  roots in the page with the `<style>` elements in them (every BokehJS view renders in a shadow root of its own).

`--compare TREE` also starts the `oh ui` of another checkout (e.g. the code before a change, from
`git worktree add /tmp/old <commit>`) on the same home and ledger, and alternates every load
between the two servers, so both see the same data and the same load of this shared machine;
both tables and their ratio are printed. `--pages symbol,health` loads only those pages (the judged figures are
then over those).

Printed: the medians per page, cold, warm and hot (and the loads' browser and server CPU; with
`--compare`, their sums over the judged pages for both servers), and the load average. Judged by: the worst cold
"filled" median over the pages (the Live page is printed for information; it streams and has its
own benchmark, `live_browser`) divided by the issue's budget of 1.5 s (aim < 1). Also printed: the
worst cold first paint / 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import fresh_home, header, load_line, ratio_line, stop_service
from bus.home import Home
from devtools.browser import CHROMIUM, Stack, browser, free_port, home_env, run_oh
from oh.domain import calendar
from services.stack import WORKERS as STACK_WORKERS

PAGES = ("health", "portfolio", "symbol", "flow", "derived", "explorer", "live")
JUDGED = tuple(p for p in PAGES if p != "live")
WORKERS = tuple(STACK_WORKERS)  # every worker of the pipeline, as `python -m services.NAME`
FILLED_BUDGET_MS = 1500.0
PAINT_BUDGET_MS = 1000.0
FCP_JS = "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null"
LOADS = ("cold", "warm", "hot")
KINDS = ("cold_fcp", "cold_filled", "cold_dom", "warm_fcp", "warm_filled", "hot_fcp", "hot_filled", "cold_browser_cpu",
         "cold_chromium_cpu", "hot_chromium_cpu", "cold_server_cpu", "models", "paints", "shadow_roots", "shadow_styles")
READY_WATCH_JS = """(() => {
  const has = n => n.nodeType === 1 && (n.matches('.oh-ready') || n.querySelector('.oh-ready') !== null);
  const watch = root => new MutationObserver(records => {
    if (window.__ohReadyAt !== undefined) return;
    for (const r of records) for (const n of r.addedNodes) if (has(n)) { window.__ohReadyAt = performance.now(); return; }
  }).observe(root, {childList: true, subtree: true});
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) { const root = attach.call(this, init); watch(root); return root; };
  watch(document);
})()"""
MODELS_JS = "() => (window.Bokeh && Bokeh.documents.length) ? Bokeh.documents[0]._all_models.size : null"
PAINTS_WATCH_JS = """document.addEventListener('DOMContentLoaded', () => {
  window.__ohPlotPaints = 0;
  const PlotView = window.Bokeh && Bokeh.require && Bokeh.require('models/plots/plot_canvas').PlotView;
  if (!PlotView) return;
  const paint = PlotView.prototype._actual_paint;
  PlotView.prototype._actual_paint = function () { window.__ohPlotPaints++; return paint.apply(this, arguments); };
})"""
COUNTS_JS = """() => { let roots = 0, styles = 0;
  const walk = r => { for (const el of r.querySelectorAll('*')) if (el.shadowRoot) {
    roots++; for (const n of el.shadowRoot.children) if (n.tagName === 'STYLE') styles++; walk(el.shadowRoot); } };
  walk(document); return [window.__ohPlotPaints ?? null, roots, styles]; }"""
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_ms(pid: int) -> float:
    """User + system CPU of a process so far, in ms (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return 1000.0 * (int(fields[11]) + int(fields[12])) / TICKS


def chromium_cpu_ms(cdp: Any) -> float:
    """CPU of every chromium process so far, in ms (DevTools' SystemInfo.getProcessInfo; 10 ms steps)."""
    return 1000.0 * sum(p["cpuTime"] for p in cdp.send("SystemInfo.getProcessInfo")["processInfo"])


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


class OtherUi:
    """`oh ui` of another checkout (`--compare`), on the same home and ledger, on a free port."""

    def __init__(self, home: Home, tree: Path) -> None:
        self.port = free_port()
        env = {**home_env(home), "PYTHONPATH": str(tree)}
        log = (home.logs / "ui.compare.out.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "oh.cli", "ui", "--port", str(self.port)], cwd=tree,
                                     env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=10) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the compared `oh ui` did not serve; see {home.logs}/ui.compare.out.log")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def load(page: Any, url: str, timeout_ms: int = 120_000) -> tuple[float, float, float]:
    """Open `url`; return (first-contentful-paint, filled, filled in the DOM) in ms from the navigation's start
    (the last is NaN unless the context runs READY_WATCH_JS)."""
    page.goto(url, wait_until="commit")
    page.wait_for_selector(".oh-ready", state="attached", timeout=timeout_ms)
    filled = float(page.evaluate("() => performance.now()"))
    fcp = page.evaluate(FCP_JS)
    dom = page.evaluate("() => window.__ohReadyAt ?? null")
    return (float("nan") if fcp is None else float(fcp)), filled, (float("nan") if dom is None else float(dom))


def measure(chromium: Any, servers: dict[str, tuple[str, int]], repeat: int,
            pages: tuple[str, ...] = PAGES) -> dict[str, dict[str, dict[str, list[float]]]]:
    """server -> page -> kind -> samples; the servers (name -> (url, pid)) take turns load by load."""
    out = {name: {slug: {k: [] for k in KINDS} for slug in pages} for name in servers}
    system = chromium.new_browser_cdp_session()
    for slug in pages:
        for i in range(repeat):
            order = list(servers.items()) if i % 2 == 0 else list(reversed(servers.items()))
            for name, (base, pid) in order:
                context = chromium.new_context(viewport={"width": 1440, "height": 900})
                context.add_init_script(READY_WATCH_JS)
                context.add_init_script(PAINTS_WATCH_JS)
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")
                for kind in LOADS:
                    server_cpu, browser_cpu = process_cpu_ms(pid), chromium_cpu_ms(system)
                    try:
                        fcp, filled, dom = load(page, f"{base}/{slug}")
                    except Exception:
                        print(f"   {name}: {slug}, {kind} load {i + 1} did not fill (load {os.getloadavg()[0]:.0f})", flush=True)
                        raise
                    out[name][slug][f"{kind}_fcp"].append(fcp)
                    out[name][slug][f"{kind}_filled"].append(filled)
                    if f"{kind}_chromium_cpu" in out[name][slug]:
                        out[name][slug][f"{kind}_chromium_cpu"].append(chromium_cpu_ms(system) - browser_cpu)
                    if kind == "cold":
                        out[name][slug]["cold_dom"].append(dom)
                        out[name][slug]["cold_server_cpu"].append(process_cpu_ms(pid) - server_cpu)
                        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                        out[name][slug]["cold_browser_cpu"].append(1000.0 * metrics["TaskDuration"])
                        out[name][slug]["models"].append(float(page.evaluate(MODELS_JS) or "nan"))
                        paints, roots, styles = page.evaluate(COUNTS_JS)
                        out[name][slug]["paints"].append(float("nan") if paints is None else float(paints))
                        out[name][slug]["shadow_roots"].append(float(roots))
                        out[name][slug]["shadow_styles"].append(float(styles))
                context.close()
    return out


def report(name: str, results: dict[str, dict[str, list[float]]], repeat: int) -> dict[str, dict[str, float]]:
    """Print one server's medians; return them."""
    print(f"\n{name}: per page, ms from navigation start (median of {repeat}; cold = new browser context, "
          "warm = opened again in it, hot = a third time; CPU: chromium's, all processes, and the page's main "
          "thread's busy time):")
    print(f"   {'page':<10} {'cold paint':>11} {'cold filled':>12} {'warm paint':>11} {'warm filled':>12} "
          f"{'hot paint':>10} {'hot filled':>11} {'chromium CPU cold/hot':>22} {'main thread':>12} {'server CPU':>11} "
          f"{'models':>7} {'cold in DOM':>12}   cold filled samples")
    medians = {}
    for slug, samples in results.items():
        m = medians[slug] = {k: statistics.median(v) for k, v in samples.items()}
        cpu = f"{m['cold_chromium_cpu']:.0f} / {m['hot_chromium_cpu']:.0f}"
        print(f"   {slug:<10} {m['cold_fcp']:>11.0f} {m['cold_filled']:>12.0f} {m['warm_fcp']:>11.0f} "
              f"{m['warm_filled']:>12.0f} {m['hot_fcp']:>10.0f} {m['hot_filled']:>11.0f} {cpu:>22} "
              f"{m['cold_browser_cpu']:>12.0f} {m['cold_server_cpu']:>11.0f} "
              f"{m['models']:>7.0f} {m['cold_dom']:>12.0f}   "
              f"{', '.join(f'{v:.0f}' for v in samples['cold_filled'])}")
    print("   per cold load (median): " + ", ".join(
        f"{slug} {m['paints']:.0f} plot paints, {m['shadow_roots']:.0f} shadow roots with {m['shadow_styles']:.0f} <style>"
        for slug, m in medians.items()))
    judged = _judged(medians)
    for load_kind in LOADS:
        worst = max(judged, key=lambda s: medians[s][f"{load_kind}_filled"])
        worst_paint = max(judged, key=lambda s: medians[s][f"{load_kind}_fcp"])
        print(f"   worst {load_kind} filled: {worst} {medians[worst][f'{load_kind}_filled']:.0f} ms; worst {load_kind} "
              f"first paint: {worst_paint} {medians[worst_paint][f'{load_kind}_fcp']:.0f} ms (live is for information)")
    return medians


def _judged(medians: dict[str, dict[str, float]]) -> list[str]:
    """The judged pages measured (all but Live; Live alone if it is the only one asked for)."""
    return [s for s in JUDGED if s in medians] or list(medians)


def worst(medians: dict[str, dict[str, float]], kind: str) -> float:
    return max(medians[s][kind] for s in _judged(medians))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="cold loads of each page per server (default 3)")
    parser.add_argument("--sessions", type=int, default=30, help="sessions of chains, like the demo (default 30)")
    parser.add_argument("--years", type=int, default=2, help="years of candles, like the demo (default 2)")
    parser.add_argument("--home", type=Path, help="reuse a home loaded before (no loading; left as found)")
    parser.add_argument("--compare", type=Path, help="another checkout whose `oh ui` runs beside ours, for before/after")
    parser.add_argument("--pages", default=",".join(PAGES),
                        help="the pages to load, comma-separated (default all: " + ",".join(PAGES) + ")")
    args = parser.parse_args(argv)
    pages = tuple(p for p in PAGES if p in args.pages.split(","))
    if not pages:
        parser.error(f"--pages: none of {args.pages!r} is a page ({', '.join(PAGES)})")
    header("page_fill: first paint and filled per dashboard page, demo data, chromium")
    if not Path(CHROMIUM).exists():
        print(f"no chromium at {CHROMIUM}: install Debian's chromium (.ci/run does)")
        return 1
    with ExitStack() as stack_of:
        if args.home is not None:
            saved = os.environ.get("OH_HOME")
            os.environ["OH_HOME"] = str(args.home)
            stack_of.callback(lambda: os.environ.__setitem__("OH_HOME", saved) if saved else os.environ.pop("OH_HOME", None))
            home = Home.from_env().ensure()
        else:
            home = stack_of.enter_context(fresh_home("pagefill"))
        stack = Stack(home)
        stack_of.callback(stack.stop)
        started = time.monotonic()
        if args.home is not None:
            stack.start_services(workers=())
            print(f"   reusing {home.root}")
        else:
            (home.config / "scheduler.toml").write_text("[daily]\nenabled = false\n")  # no timer mid-benchmark
            stack.start_services(workers=WORKERS)
            loaded = populate_demo(stack, args.years, args.sessions)
            print(f"   demo data loaded in {time.monotonic() - started:.0f}s: {loaded['symbols']} symbols, "
                  f"{loaded['sessions']} sessions of chains through {loaded['last']}")
            for worker in stack.workers:
                stop_service(worker)  # the dashboard reads; nothing else needs to run while it is timed
        stack.start_ui()
        assert stack.ui is not None
        servers = {"ours": (stack.url, stack.ui.pid)}
        if args.compare is not None:
            other = OtherUi(home, args.compare.resolve())
            stack_of.callback(other.stop)
            servers[f"compare ({args.compare})"] = (other.url, other.proc.pid)
        load_line("before the loads")
        with browser() as chromium:
            for name, (base, _pid) in servers.items():
                first = chromium.new_context(viewport={"width": 1440, "height": 900})
                tab = first.new_page()
                print(f"   {name}, first visit after start (untimed): " + ", ".join(
                    f"{slug} {load(tab, f'{base}/{slug}')[1]:.0f} ms" for slug in pages))
                first.close()
            results = measure(chromium, servers, args.repeat, pages)
        load_line("after the loads")
    medians = {name: report(name, results[name], args.repeat) for name in servers}
    ours = medians["ours"]
    for name, other in medians.items():
        if name != "ours":
            print(f"\nmodels per page, {name} -> ours: " + ", ".join(
                f"{s} {other[s]['models']:.0f} -> {ours[s]['models']:.0f}" for s in pages))
            print(f"plot paints / shadow roots / <style> in them per cold load, {name} -> ours: " + ", ".join(
                f"{s} {other[s]['paints']:.0f}/{other[s]['shadow_roots']:.0f}/{other[s]['shadow_styles']:.0f} -> "
                f"{ours[s]['paints']:.0f}/{ours[s]['shadow_roots']:.0f}/{ours[s]['shadow_styles']:.0f}" for s in pages))
            print(f"{name} / ours, cold filled per page: " + ", ".join(
                f"{s} {other[s]['cold_filled'] / ours[s]['cold_filled']:.2f}" for s in pages))
            for load_kind in LOADS:
                print(f"   worst {load_kind} filled: {worst(other, f'{load_kind}_filled'):.0f} ms vs ours "
                      f"{worst(ours, f'{load_kind}_filled'):.0f} ms")
            for kind in ("cold_chromium_cpu", "hot_chromium_cpu", "cold_browser_cpu", "cold_server_cpu"):
                print(f"   {kind.replace('_', ' ').replace('browser', 'main thread')}, sum over the pages: "
                      f"{sum(other[s][kind] for s in _judged(ours)):.0f} ms vs ours "
                      f"{sum(ours[s][kind] for s in _judged(ours)):.0f} ms")
    print(f"\n   first paint / 1 s budget: cold {worst(ours, 'cold_fcp') / PAINT_BUDGET_MS:.3f}, "
          f"hot {worst(ours, 'hot_fcp') / PAINT_BUDGET_MS:.3f}")
    print(f"   hot filled / 1.5 s budget: {worst(ours, 'hot_filled') / FILLED_BUDGET_MS:.3f}")
    ratio_line("page_fill worst cold filled / 1.5 s", worst(ours, "cold_filled") / FILLED_BUDGET_MS, "< 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
