"""(a) Small events per second through the whole ledger path, against raw pyzmq PUSH/PULL.

Ours: a producer process sends `TradeUpdated` events with `Producer.send_many` (100 per multipart)
to the real ledger, which acknowledges, journals, projects them into `trade_updates` (DuckDB) and
publishes them; the clock stops when a `Subscriber` in this process has received the last one
(so every event is committed and published). Raw: the same messages, msgpack-encoded the same
way, go from a PUSH process to a PULL socket here, 100 frames per multipart, decoded on receipt.
Both also run unbatched (one event per send). Judged by: ours / raw events/s, batched. Each fresh
ledger first gets one fill, waited for until applied, so that its one-time costs (DuckDB's lazy
imports on the first Arrow insert) fall outside every measurement.
Each of our lines also prints the CPU time per event of the ledger (all its threads), the producer
process and the subscriber (this process) over the run, a figure the machine's load moves far less
than the rates, and the mean events per group commit (the ledger's `group_commits` counter; n/a on a
ledger without it).

    python -m bench.bus_throughput [--events 100000] [--fsync batch,always] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from bench._common import (
    count_rows,
    fmt_rate,
    fresh_home,
    header,
    load_line,
    ratio_line,
    running_ledger,
    wait_applied,
)
from bus.codec import decode_message, encode
from bus.control_client import ControlClient
from bus.home import Home
from bus.subscriber import Subscriber
from contracts import TradeUpdated

SYMBOLS = ("AAPL", "MSFT", "NVDA", "SPY", "QQQ", "TSLA", "AMZN", "META")


def make_trades(n: int) -> list[TradeUpdated]:
    """`n` distinct fills (the small event): each ~170 bytes of msgpack."""
    out = []
    for i in range(n):
        out.append(
            TradeUpdated(
                order_id=f"ord-{i // 3}", symbol=SYMBOLS[i % len(SYMBOLS)], event="fill" if i % 3 else "partial_fill",
                side="buy" if i % 2 else "sell", qty=float(1 + i % 10), price=100.0 + (i % 500) / 100,
            )
        )
    return out


# -- the sending side (a spawned child process) ---------------------------------------------
def _produce(kind: str, root: str, n: int, batch: int, ready: MpEvent, go: MpEvent, out: Any) -> None:
    """Build the messages, wait for `go`, send them all; report (t_start, t_sent, t_acked, cpu) on `out`."""
    import zmq

    messages = make_trades(n)
    t_acked = 0.0
    if kind == "ours":
        from bus.producer import Producer

        producer = Producer(Home(Path(root)))
        ready.set()
        go.wait()
        t_start = time.monotonic()
        cpu = time.process_time()
        if batch > 1:
            for i in range(0, n, batch):
                producer.send_many(messages[i : i + batch])
        else:
            for message in messages:
                producer.send(message)
        t_sent = time.monotonic()
        producer.flush(timeout=300)
        t_acked = time.monotonic()
        producer.close()
    else:
        sock = zmq.Context.instance().socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, -1)
        sock.connect(root)
        ready.set()
        go.wait()
        t_start = time.monotonic()
        cpu = time.process_time()
        if kind == "packed":  # one frame holding `batch` events (a msgpack array): the zmq ceiling
            for i in range(0, n, batch):
                sock.send(encode(messages[i : i + batch]), copy=False)
        elif batch > 1:
            for i in range(0, n, batch):
                sock.send_multipart([encode(m) for m in messages[i : i + batch]], copy=False)
        else:
            for message in messages:
                sock.send(encode(message), copy=False)
        t_sent = time.monotonic()
        sock.close()
        zmq.Context.instance().term()  # waits until every queued frame is handed over (LINGER -1)
    out.put((t_start, t_sent, t_acked, time.process_time() - cpu))


def _start_producer(kind: str, target: str, n: int, batch: int) -> tuple[Any, MpEvent, Any]:
    """Spawn `_produce` and wait until it is connected; returns (process, go event, result queue)."""
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_produce, args=(kind, target, n, batch, ready, go, out), daemon=True)
    proc.start()
    if not ready.wait(120):
        proc.kill()
        raise RuntimeError("the producer process did not start")
    return proc, go, out


def _finish(proc: Any, out: Any) -> tuple[float, float, float, float]:
    """Collect the producer's timestamps and reap it."""
    times = out.get(timeout=300)
    proc.join(60)
    if proc.is_alive():
        proc.kill()
    return times


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def warm_ledger(home: Home) -> None:
    """One fill through a fresh ledger, waited for until applied, before anything is timed: whatever the ledger pays
    once (DuckDB imports pandas on its first Arrow `register`) lands outside both the raw and our measurements."""
    from bus.producer import Producer

    producer = Producer(home)
    producer.send(make_trades(1)[0])
    producer.flush(timeout=120)
    control = ControlClient(home)
    wait_applied(control, producer.last_acked_seq, timeout=120)
    control.close()
    producer.close()


# -- the two measurements ---------------------------------------------------------------------
def run_ours(home: Home, n: int, batch: int, ledger_pid: int) -> dict[str, float]:
    """Send `n` events through the ledger; time until the subscriber here has them all."""
    control = ControlClient(home)
    before = control.status()
    start_seq = before.head_seq + 1
    sub = Subscriber(home, types=["TradeUpdated"], from_seq=start_seq)
    sub.poll(50)  # connect and do the (empty) initial catch-up before the clock starts
    time.sleep(0.3)
    proc, go, out = _start_producer("ours", str(home.root), n, batch)
    ledger_cpu, sub_cpu = process_cpu(ledger_pid), time.process_time()
    go.set()
    got = 0
    deadline = time.monotonic() + 600
    while got < n:
        got += len(sub.poll(100))
        if proc.exitcode not in (None, 0):
            raise RuntimeError(f"the producer process failed (exit {proc.exitcode}) after {got} of {n} events")
        if time.monotonic() > deadline:
            raise TimeoutError(f"subscriber got {got} of {n} events")
    t_end = time.monotonic()
    ledger_cpu, sub_cpu = process_cpu(ledger_pid) - ledger_cpu, time.process_time() - sub_cpu
    t_start, t_sent, t_acked, producer_cpu = _finish(proc, out)
    catch_ups = sub.catch_ups
    after = control.status().counters
    groups = after.get("group_commits", 0) - before.counters.get("group_commits", 0)
    sub.close()
    control.close()
    return {
        "events_s": n / (t_end - t_start), "acked_s": n / (t_acked - t_start), "seconds": t_end - t_start,
        "send_s": n / (t_sent - t_start), "catch_ups": catch_ups,
        "per_group": n / groups if groups else float("nan"), "ledger_us": ledger_cpu / n * 1e6, "producer_us": producer_cpu / n * 1e6, "subscriber_us": sub_cpu / n * 1e6,
    }


def run_raw(home: Home, n: int, batch: int, packed: bool = False) -> dict[str, float]:
    """Send the same messages, encoded the same way, over raw PUSH/PULL; decode each on receipt.

    `packed` puts `batch` events in one msgpack array per frame instead of one frame per event.
    """
    import msgspec
    import zmq

    from contracts import AnyMessage

    packed_decoder = msgspec.msgpack.Decoder(list[AnyMessage])  # type: ignore[valid-type]

    endpoint = home.endpoint("raw-bench")
    sock = zmq.Context.instance().socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    proc, go, out = _start_producer("packed" if packed else "raw", endpoint, n, batch)
    go.set()
    got = 0
    while got < n:
        if not sock.poll(60_000):
            raise TimeoutError(f"raw PULL got {got} of {n} events")
        for frame in sock.recv_multipart(copy=True):
            if packed:
                got += len(packed_decoder.decode(frame))
            else:
                decode_message(frame)
                got += 1
    t_end = time.monotonic()
    t_start, t_sent, _, _ = _finish(proc, out)
    sock.close()
    return {"events_s": n / (t_end - t_start), "seconds": t_end - t_start, "send_s": n / (t_sent - t_start)}


def median_raw(home: Home, n: int, batch: int, repeat: int, packed: bool = False) -> dict[str, float]:
    """Median (by events/s) of `repeat` raw runs."""
    runs = sorted((run_raw(home, n, batch, packed) for _ in range(repeat)), key=lambda r: r["events_s"])
    return runs[len(runs) // 2]


def _line(label: str, ours: dict[str, float], raw: dict[str, float]) -> None:
    """Print one case: our rate, the raw rate it is compared with, and the ratio."""
    print(
        f"ours {label}: {fmt_rate(ours['events_s']):>9} events/s published ({ours['seconds']:.2f}s; "
        f"acked {fmt_rate(ours['acked_s'])}/s; catch-ups {int(ours['catch_ups'])})  "
        f"raw {fmt_rate(raw['events_s']):>9} events/s  ours/raw {ours['events_s'] / raw['events_s']:.3f}\n"
        f"      CPU per event: ledger {ours['ledger_us']:.1f} us, producer {ours['producer_us']:.1f} us, "
        f"subscriber {ours['subscriber_us']:.1f} us; {ours['per_group']:,.0f} events per group commit",
        flush=True,
    )


def bench(n: int, n_unbatched: int, batch: int, fsync_policies: list[str], repeat: int) -> float:
    """Run every case, print the figures, return the judged ratio (first fsync policy, batched).

    The judged ratio is the median over `repeat` pairs, each a fresh home and ledger where raw
    (median of 3) and ours run back to back, so that a noisy neighbour hits both sides alike.
    """
    header("bus_throughput: TradeUpdated through producer -> ledger -> journal -> DuckDB -> PUB -> subscriber")
    size = len(encode(make_trades(1)[0]))
    print(f"   event: TradeUpdated, {size} B msgpack; batched = {batch} events per multipart; {n:,} events per run")
    load_line("at start")
    first, others = fsync_policies[0], fsync_policies[1:]
    ratios, raws_b = [], []
    for i in range(repeat):
        with fresh_home(f"bus-{first}") as home, running_ledger(home, first) as ledger:
            pid = ledger.proc.pid  # type: ignore[union-attr]
            warm_ledger(home)
            raw_b = median_raw(home, n, batch, 3)
            ours_b = run_ours(home, n, batch, pid)
            _line(f"fsync={first:<6} batched   #{i + 1}", ours_b, raw_b)
            ratios.append(ours_b["events_s"] / raw_b["events_s"])
            raws_b.append(raw_b)
            if i == repeat - 1:
                raw_u = median_raw(home, n_unbatched, 1, 3)
                ours_u = run_ours(home, n_unbatched, 1, pid)
                _line(f"fsync={first:<6} unbatched   ", ours_u, raw_u)
                raw_p = run_raw(home, n, batch, packed=True)
                rows = count_rows(home, "trade_updates")
                print(f"   trade_updates rows: {rows:,} (expected {n + n_unbatched + 1:,}, one the warm-up's)")
    print(
        f"raw PUSH/PULL, packed: {fmt_rate(raw_p['events_s'])} events/s "
        f"({batch} events in ONE frame: the zmq ceiling, info only, not the baseline)"
    )
    raw_b = sorted(raws_b, key=lambda r: r["events_s"])[len(raws_b) // 2]
    for fsync in others:
        with fresh_home(f"bus-{fsync}") as home, running_ledger(home, fsync) as ledger:
            pid = ledger.proc.pid  # type: ignore[union-attr]
            warm_ledger(home)
            _line(f"fsync={fsync:<6} batched     ", run_ours(home, n, batch, pid), raw_b)
            _line(f"fsync={fsync:<6} unbatched   ", run_ours(home, n_unbatched, 1, pid), raw_u)
    load_line("at end")
    judged = sorted(ratios)[len(ratios) // 2]
    ratio_line(f"bus_throughput ours/raw events/s (batched, fsync={first}, median of {repeat} pairs)", judged)
    return judged


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.bus_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per batched run")
    parser.add_argument("--unbatched-events", type=int, default=50_000, help="events per unbatched run")
    parser.add_argument("--batch", type=int, default=100, help="events per send_many / multipart")
    parser.add_argument(
        "--fsync", default="batch,always", help="comma-separated ledger fsync policies; the first one is judged"
    )
    parser.add_argument("--repeat", type=int, default=3, help="judged (raw, ours) pairs; the median ratio is used")
    args = parser.parse_args(argv)
    bench(args.events, args.unbatched_events, args.batch, args.fsync.split(","), args.repeat)


if __name__ == "__main__":
    main()
