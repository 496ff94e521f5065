"""(m) What the CURVE-secured tcp bus costs against the local ipc bus, on the same ledger in the same run.

One real ledger listens on ipc and on tcp://127.0.0.2 with CURVE (bus.toml, `oh keys`). A producer
process sends `--events` small `TradeUpdated` events (`send_many`, 100 per multipart) and flushes
until all are acknowledged (journaled), once through a home whose bus is ipc and once through a
second home with its own authorized client key and `OH_BUS=tcp://127.0.0.2:PORT` ("another host"
on loopback: the cost is CURVE's encryption and the tcp stack, not a network). Then `--bulk`
`CandlesIngested` events of 5,000 Arrow rows each (about 0.3 MB) the same two ways (MB/s), and
the round trip of a status request (median of `--pings`). The two ways alternate their order per pair.
Judged by: tcp+CURVE / ipc events/s for the small events (median of pairs).

    python -m bench.bus_tcp [--events 50000] [--bulk 100] [--pings 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench._common import fmt_rate, fresh_home, header, load_line, ratio_line, running_ledger
from bus import curve
from bus.control_client import ControlClient
from bus.home import Home
from devtools.ports import free_port_block

HOST = "127.0.0.2"


def _send(root: str, bus: str, kind: str, n: int, out: Any) -> None:
    """The producer process: build, send, flush; report (seconds, payload bytes)."""
    from bench.bus_throughput import make_trades
    from bench.candles_million import build_events, build_tables, symbols
    from bus.codec import encode
    from bus.producer import Producer

    messages: list[Any] = (make_trades(n) if kind == "small" else
                           build_events("bench-tcp", build_tables(symbols(n), 5000)))
    size = sum(len(encode(m)) for m in messages)
    producer = Producer(Home(Path(root), bus=bus, bus_keys=""))
    started = time.monotonic()
    step = 100 if kind == "small" else 10
    for i in range(0, len(messages), step):
        producer.send_many(messages[i : i + step])
    producer.flush(timeout=900)
    out.put((time.monotonic() - started, size))
    producer.close()


def _through(home: Home, kind: str, n: int) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_send, args=(str(home.root), home.bus, kind, n, out), daemon=True)
    proc.start()
    result = out.get(timeout=1800)
    proc.join(60)
    return result


def _pings(home: Home, count: int) -> float:
    client = ControlClient(home, timeout=10)
    try:
        client.status()
        times = []
        for _ in range(count):
            started = time.perf_counter()
            client.status()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000
    finally:
        client.close()


def one_pair(events: int, bulk: int, pings: int, tcp_first: bool) -> dict[str, dict[str, float]]:
    """One ledger, two homes (ipc, and tcp+CURVE): the same loads through each."""
    with fresh_home("bus-tcp") as home:
        curve.init_keys(home.keys, server=True)
        port = free_port_block(HOST)
        (home.config / "bus.toml").write_text(f'[tcp]\naddress = "{HOST}"\nport = {port}\n')
        remote = Home(home.root / "remote-host", bus=f"tcp://{HOST}:{port}", bus_keys="").ensure()
        curve.init_keys(remote.keys, server=False, server_key=curve.public_file(home.keys, curve.SERVER))
        curve.allow(home.keys, curve.public_file(remote.keys, curve.CLIENT), "remote")
        local = Home(home.root, bus="", bus_keys="")
        figures: dict[str, dict[str, float]] = {"ipc": {}, "tcp": {}}
        with running_ledger(home):
            order = [("tcp", remote), ("ipc", local)] if tcp_first else [("ipc", local), ("tcp", remote)]
            for way, target in order:
                seconds, _ = _through(target, "small", events)
                figures[way]["events_s"] = events / seconds
            for way, target in order:
                seconds, size = _through(target, "bulk", bulk)
                figures[way]["mb_s"] = size / seconds / 1e6
            for way, target in order:
                figures[way]["ping_ms"] = _pings(target, pings)
            status = ControlClient(local).status()
            assert status.counters.get("tcp_authenticated", 0) > 0  # the tcp runs really went over tcp
            assert status.counters.get("tcp_refused_key", 0) == 0
    return figures


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--bulk", type=int, default=100)
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    header(f"bus_tcp: {args.events:,} small events, {args.bulk} x 5,000-row candle events, {args.pings} status pings; "
           "ipc vs tcp+CURVE on one ledger")
    os.environ.pop("OH_BUS", None)
    load_line("at start")
    ratios = []
    for i in range(args.repeat):
        f = one_pair(args.events, args.bulk, args.pings, tcp_first=bool(i % 2))
        for way in ("ipc", "tcp"):
            print(f"pair {i + 1} {way}: {fmt_rate(f[way]['events_s'])} small events/s, {f[way]['mb_s']:.1f} MB/s bulk, "
                  f"status round trip {f[way]['ping_ms']:.2f} ms", flush=True)
        ratio = f["tcp"]["events_s"] / f["ipc"]["events_s"]
        print(f"pair {i + 1}: tcp/ipc small events {ratio:.3f}, bulk {f['tcp']['mb_s'] / f['ipc']['mb_s']:.3f}, "
              f"round trip {f['tcp']['ping_ms'] / f['ipc']['ping_ms']:.2f}x", flush=True)
        ratios.append(ratio)
    load_line("at end")
    value = statistics.median(ratios)
    ratio_line("tcp+CURVE/ipc small events/s (median of pairs)", value, ">= 0.5")
    return value


if __name__ == "__main__":
    main()
