"""Dashboard latency: committed event -> the browser's DOM, and first paint of every page.

A fresh OH_HOME gets the real ledger, the workers and sim data (candles, a few sessions of chains,
flow and derived), then the real `oh ui` process. Debian's chromium (playwright) opens the Health
page and records, in the page itself, when each run id first appears in the DOM (a MutationObserver
on the run board's shadow root plus a 4 ms scan, times as performance.timeOrigin + now()).
The benchmark sends `--events` RunStarted events one at a time through a Producer and notes when the
ledger acknowledges each (after its journal append, before its DuckDB COMMIT and its publish), so
DOM time - ack time is an upper bound of "committed -> in the DOM" (same machine clock). A
Subscriber thread here also stamps each publish, for information. Each next event is
sent only after the previous one showed up, so this measures latency, not throughput. The page's
high-resolution clock is aligned to the wall clock (Date.now) before the difference is taken.

First paint: each page is opened `--repeat` times in a fresh browser context (cold cache) and once
more in the same context (warm); reported are the browser's first-contentful-paint and the time
until the page's first fill is done (`.oh-ready`), medians. The judged ratio is p99 event->DOM over the issue's budget of one second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

from bench._common import fresh_home, header, ratio_line
from bus.home import Home
from bus.producer import Producer
from bus.subscriber import Subscriber
from contracts import RunFinished, RunStarted, utc_now
from devtools.browser import CHROMIUM, STALE_SESSIONS, Stack, browser

PAGES = ("health", "portfolio", "symbol", "flow", "derived", "explorer", "live")
WATCH_JS = """() => {
  window.__ohSeen = {};
  const now = () => performance.timeOrigin + performance.now();
  const record = (root) => root.querySelectorAll('tr.oh-run').forEach(tr => {
      const id = tr.dataset.runId; if (!(id in window.__ohSeen)) window.__ohSeen[id] = now(); });
  const observed = new WeakSet();
  const scan = () => { const walk = (root) => {
      if (root.querySelector && root.querySelector('tr.oh-run') && !observed.has(root)) {
          observed.add(root);
          new MutationObserver(() => record(root)).observe(root, {childList: true, subtree: true, attributes: true});
      }
      record(root);
      root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot); }); };
    walk(document); };
  setInterval(scan, 4); scan();
}"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[index]


class Published(threading.Thread):
    """Records when the ledger publishes each RunStarted (wall clock), from its own subscriber."""

    def __init__(self, home: Home) -> None:
        super().__init__(daemon=True)
        self.home = home
        self.at: dict[str, float] = {}
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        subscriber = Subscriber(self.home, types=["RunStarted"])
        self.ready.set()
        try:
            while not self.stop.is_set():
                for _, message in subscriber.poll(50):
                    self.at.setdefault(message.run_id, time.time())  # type: ignore[attr-defined]
        finally:
            subscriber.close()


def _load(page: object, url: str) -> tuple[float | None, float]:
    """Open `url`; return (first-contentful-paint ms from the browser, ms until `.oh-ready`)."""
    started = time.perf_counter()
    page.goto(url)  # type: ignore[attr-defined]
    page.wait_for_selector(".oh-ready", state="attached", timeout=120_000)  # type: ignore[attr-defined]
    ready = 1000 * (time.perf_counter() - started)
    fcp = page.evaluate("() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null")  # type: ignore[attr-defined]
    return (None if fcp is None else float(fcp)), ready


def first_paint(chromium: object, stack: Stack, repeat: int) -> dict[str, tuple[float, float, float, float]]:
    """Per page, medians over `repeat` fresh contexts: (cold FCP, cold ready, warm FCP, warm ready) in ms.

    Cold: a new browser context (empty cache: BokehJS and Panel's bundles are fetched). Warm: the same
    page opened again in that context, as a trader's browser that keeps the dashboard's files cached.
    """
    out = {}
    for slug in PAGES:
        cold_fcp, cold_ready, warm_fcp, warm_ready = [], [], [], []
        for _ in range(repeat):
            context = chromium.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
            page = context.new_page()
            for fcps, readies in ((cold_fcp, cold_ready), (warm_fcp, warm_ready)):
                fcp, ready = _load(page, f"{stack.url}/{slug}")
                readies.append(ready)
                if fcp is not None:
                    fcps.append(fcp)
            context.close()
        out[slug] = tuple(statistics.median(v) if v else float("nan")  # type: ignore[assignment]
                          for v in (cold_fcp, cold_ready, warm_fcp, warm_ready))
    return out


def clock_offset(page: object, samples: int = 25) -> float:
    """Wall clock (Date.now, the system clock Python's time.time() reads) minus the page's
    performance.timeOrigin + now(), which is anchored at navigation and may drift: median of samples."""
    pairs = [page.evaluate("() => [Date.now(), performance.timeOrigin + performance.now()]")  # type: ignore[attr-defined]
             for _ in range(samples)]
    return statistics.median(float(wall) - float(high) for wall, high in pairs)


def event_latency(chromium: object, stack: Stack, events: int) -> tuple[list[float], list[float]]:
    """ms to the DOM for `events` RunStarted events sent one at a time: (from the ledger's ack, from the
    publish as stamped by a subscriber thread here). The ack comes after the journal append and before
    the COMMIT and the publish, so the first is an upper bound of commit -> DOM; the second can be
    stamped late when that thread waits for the GIL, so it is only for information."""
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.goto(f"{stack.url}/health")
    page.wait_for_selector(".oh-ready", state="attached", timeout=120_000)
    page.evaluate(WATCH_JS)
    published = Published(stack.home)
    published.start()
    published.ready.wait(10)
    time.sleep(0.5)  # let the SUB socket connect before the first event
    producer = Producer(stack.home)
    acked: dict[str, float] = {}
    seen: dict[str, float] = {}
    try:
        for i in range(events):
            run_id = f"bench-latency-{i:04d}-{time.time_ns()}"
            producer.send(RunStarted(run_id=run_id, job_name="bench_latency", triggered_by="bench", started_at=utc_now()))
            producer.flush(30)
            acked[run_id] = time.time()
            page.wait_for_function(f"() => '{run_id}' in window.__ohSeen", timeout=60_000, polling=5)
            seen[run_id] = float(page.evaluate(f"() => window.__ohSeen['{run_id}']"))
            producer.send(RunFinished(run_id=run_id, status="success", ended_at=utc_now(), duration_ms=1))
        offset = clock_offset(page)
        print(f"   browser high-resolution clock vs wall clock: {offset:+.2f} ms (applied)")
        deadline = time.monotonic() + 10
        while len(published.at) < len(acked) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        producer.flush(30)
        producer.close()
        published.stop.set()
        page.close()
    from_ack = [seen[r] + offset - 1000 * acked[r] for r in acked]
    from_publish = [seen[r] + offset - 1000 * published.at[r] for r in acked if r in published.at]
    return from_ack, from_publish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200, help="RunStarted events to time (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="loads of each page for first paint (default 3)")
    parser.add_argument("--chain-sessions", type=int, default=6, help="sessions of sim chains to load (default 6)")
    args = parser.parse_args(argv)
    if args.chain_sessions < STALE_SESSIONS:
        parser.error(f"--chain-sessions: at least {STALE_SESSIONS} (the stale symbol's candles end on the chain session "
                     f"{STALE_SESSIONS} from the last)")
    header("dashboard_latency: committed event -> DOM, and first paint per page")
    if not Path(CHROMIUM).exists():
        print(f"no chromium at {CHROMIUM}: install Debian's chromium (.ci/run does)")
        return 1
    with fresh_home("dashlat") as home:
        stack = Stack(home)
        try:
            started = time.monotonic()
            stack.start_services()
            stack.populate(chain_sessions=args.chain_sessions)
            stack.start_ui()
            print(f"   stack up and sim data loaded in {time.monotonic() - started:.0f}s; dashboard at {stack.url}")
            with browser() as chromium:
                paints = first_paint(chromium, stack, args.repeat)
                from_ack, from_publish = event_latency(chromium, stack, args.events)
        finally:
            stack.stop()
    print(f"\nfirst paint, ms (median of {args.repeat}; cold = new browser context, warm = opened again in it):")
    print(f"   {'page':<10} {'cold FCP':>9} {'cold filled':>12} {'warm FCP':>9} {'warm filled':>12}")
    for slug, (cold_fcp, cold_ready, warm_fcp, warm_ready) in paints.items():
        print(f"   {slug:<10} {cold_fcp:>9.0f} {cold_ready:>12.0f} {warm_fcp:>9.0f} {warm_ready:>12.0f}")
    print("   FCP: the browser's first-contentful-paint; filled: until the page's first fill from the ledger is done")
    median, p99 = statistics.median(from_ack), percentile(from_ack, 99)
    print(f"\nevent -> DOM over {len(from_ack)} RunStarted events (row in the Health page's DOM):")
    print(f"   from the ledger's ack (upper bound of commit -> DOM): median {median:.1f} ms, "
          f"p90 {percentile(from_ack, 90):.1f} ms, p99 {p99:.1f} ms, max {max(from_ack):.1f} ms")
    if from_publish:
        print(f"   from the publish seen by a subscriber thread here (info): median {statistics.median(from_publish):.1f} ms, "
              f"p99 {percentile(from_publish, 99):.1f} ms")
    ratio_line("dashboard p99 event->DOM / 1000 ms budget", p99 / 1000.0, "< 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
