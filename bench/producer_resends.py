"""(f) A burst of 100k events from one Producer: how many does it resend while the ledger is still working?

One producer process sends `--events` `TradeUpdated` (`send_many`, `--batch` per multipart) as fast as
it can and then flushes; the real ledger acknowledges them as it journals and applies them. Printed
per run: seconds from the first send until all are acknowledged, the producer's resends, and the
ledger's `duplicates_dropped` (resends it had to recognise and drop). Issue #11 measured 75,600
dropped resends for such a burst: the old rule resent every event unacknowledged 2 s after its send,
although the ledger was acknowledging steadily and simply had not reached it yet.

Baseline, same run: the same burst from a Producer subclass with that old rule (`TimerRule`: resend
an event `resend_after` s after its own send, doubling per resend up to 16 s, whatever the ledger
is doing). Ours resends only after the ledger's acknowledgements have been silent for
`resend_after` s, or at once after the connection to the ledger dropped (bus/producer.py).
Judged by: ours / baseline duplicates dropped (aim 0), with the seconds of both printed.

    python -m bench.producer_resends [--events 100000] [--batch 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

from bench._common import fresh_home, header, load_line, ratio_line, running_ledger
from bus.control_client import ControlClient
from bus.home import Home
from bus.producer import Producer, _Pending
from contracts import TradeUpdated


class TimerRule(Producer):
    """The old resend rule, as the baseline: due `resend_after` s after the event's own last send."""

    def _due(self, item: _Pending, now: float) -> bool:
        backoff = min(self.resend_after * (2 ** max(item.sends - 1, 0)), 16.0)
        return now - item.sent_at >= backoff


def _burst(rule: str, root: str, n: int, batch: int, out: Any) -> None:
    """The producer process: send `n` events in `batch`es, flush, report (seconds to all acknowledged, resent)."""
    from bench.bus_throughput import make_trades

    messages = make_trades(n)
    producer = (TimerRule if rule == "timer" else Producer)(Home(Path(root)))
    started = time.monotonic()
    for i in range(0, n, batch):
        producer.send_many(messages[i : i + batch])
    producer.flush(timeout=600)
    seconds = time.monotonic() - started
    # one more event on the same connection: once it is acknowledged, the ledger has also read (and
    # counted) every resend queued before it
    producer.send(TradeUpdated(order_id="sentinel", symbol="SPY", event="new", side="buy", qty=1.0))
    producer.flush(timeout=600)
    out.put((seconds, producer.resent))
    producer.close()


def run(home: Home, rule: str, n: int, batch: int) -> dict[str, float]:
    """One burst through the running ledger; the ledger's duplicate counter is read before and after."""
    client = ControlClient(home, timeout=30)
    try:
        dropped = client.status().counters.get("duplicates_dropped", 0)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(target=_burst, args=(rule, str(home.root), n, batch, out), daemon=True)
        proc.start()
        seconds, resent = out.get(timeout=900)
        proc.join(60)
        dropped = client.status().counters.get("duplicates_dropped", 0) - dropped
    finally:
        client.close()
    return {"seconds": seconds, "resent": resent, "dropped": dropped}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    header(f"producer_resends: a burst of {args.events:,} events, {args.batch} per multipart")
    load_line("at start")
    pairs = []
    for i in range(args.repeat):
        figures = {}
        for rule in ("timer", "ours"):
            with fresh_home(f"resends-{rule}") as home, running_ledger(home):
                figures[rule] = run(home, rule, args.events, args.batch)
            f = figures[rule]
            print(f"pair {i + 1} {rule:>5}: all acknowledged after {f['seconds']:.2f}s; producer resent "
                  f"{int(f['resent']):,}, ledger dropped {int(f['dropped']):,} duplicates", flush=True)
        pairs.append(figures)
    load_line("at end")
    ratios = sorted(p["ours"]["dropped"] / max(p["timer"]["dropped"], 1) for p in pairs)
    ratio = ratios[len(ratios) // 2]
    ratio_line("ours/timer-rule duplicates dropped (median of pairs)", ratio, "0")
    return ratio


if __name__ == "__main__":
    main()
