"""(c) `oh replay --rebuild` events per second, against the live ingest rate of the same events.

A fresh home's real ledger takes a mix of 50,000 `TradeUpdated` events (100 per `send_many`)
with one 5,000-row `CandlesIngested` every 2,500 trades; the live rate is events / (first send ->
the committed offset covering the last event). Then the ledger stops and the warehouse is rebuilt
offline from the journal twice: in-process (`Warehouse(...).rebuild(Journal(...))`) and with
`oh replay --rebuild` as a subprocess. Each prints events/s and journal MB/s. Judged by:
`oh replay --rebuild` events/s, by the time it reports itself (journal open + rebuild, without
interpreter start-up and its 1 s probe for a running ledger), / live events/s; the wall-clock
ratio is printed beside it.

    python -m bench.replay_rebuild [--trades 50000] [--candle-every 2500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench._common import (
    REPO,
    fmt_rate,
    fresh_home,
    header,
    ratio_line,
    running_ledger,
    wait_committed,
)
from bench.bus_throughput import make_trades
from bench.candles_million import build_events, build_tables, symbols
from bus.control_client import ControlClient
from bus.home import Home
from bus.journal import Journal
from bus.producer import Producer
from contracts import Message, new_id
from services.ledger.warehouse import Warehouse, connect


def build_mix(trades: int, candle_every: int, candle_rows: int) -> list[list[Message]]:
    """The events as send batches: 100 trades per batch, one candles event every `candle_every` trades."""
    messages = make_trades(trades)
    n_candles = trades // candle_every
    candles = build_events(new_id(), build_tables(symbols(n_candles), candle_rows)) if n_candles else []
    batches: list[list[Message]] = []
    for i in range(0, trades, 100):
        batches.append(list(messages[i : i + 100]))
        if candles and (i + 100) % candle_every == 0:
            batches.append([candles.pop(0)])
    return batches


def run_live(home: Home, batches: list[list[Message]]) -> float:
    """Send every batch to the running ledger; seconds until the last event is committed."""
    control = ControlClient(home, timeout=60.0)
    producer = Producer(home)
    t0 = time.monotonic()
    for batch in batches:
        producer.send_many(batch)
    producer.flush(timeout=300)
    t_end = wait_committed(control, producer.last_acked_seq)
    producer.close()
    control.close()
    return t_end - t0


def rebuild_in_process(home: Home) -> float:
    """`Warehouse.rebuild` over the whole journal (opening both included); seconds."""
    t0 = time.monotonic()
    journal = Journal(home.journal)
    warehouse = Warehouse(home.warehouse)
    try:
        warehouse.rebuild(journal)
    finally:
        warehouse.close()
        journal.close()
    return time.monotonic() - t0


def oh_command() -> list[str]:
    """The `oh` executable next to this interpreter (the venv's), else the module entry point."""
    exe = Path(sys.executable).parent / "oh"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from oh.cli.main import main; main()"]


def rebuild_cli(home: Home) -> tuple[float, float]:
    """`oh replay --rebuild` as a subprocess: (wall seconds, the seconds it reports itself)."""
    t0 = time.monotonic()
    done = subprocess.run(
        [*oh_command(), "replay", "--rebuild"], cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OH_HOME": str(home.root), "COLUMNS": "200"},
    )
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"oh replay --rebuild failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    found = re.search(r"in ([0-9.]+)s", done.stdout)
    return wall, float(found.group(1)) if found else float("nan")


def table_counts(home: Home) -> tuple[int, int]:
    """(trade_updates rows, candles_daily rows), read straight from the file (no ledger running)."""
    con = connect(home.warehouse, read_only=True)
    try:
        trades = con.execute("SELECT count(*) FROM trade_updates").fetchone()[0]  # type: ignore[index]
        candles = con.execute("SELECT count(*) FROM candles_daily").fetchone()[0]  # type: ignore[index]
        return int(trades), int(candles)
    finally:
        con.close()


def one_round(batches: list[list[Message]], events: int) -> tuple[float, float, float, float, float, bool]:
    """Live ingest then both rebuilds in a fresh home: (live, in-process, cli wall, cli self seconds, MB, same rows)."""
    with fresh_home("replay") as home:
        with running_ledger(home):
            live = run_live(home, batches)
        journal_mb = sum(p.stat().st_size for p in home.journal.glob("*.seg")) / 1e6
        live_counts = table_counts(home)
        in_process = rebuild_in_process(home)
        rebuilt_counts = table_counts(home)
        cli_wall, cli_self = rebuild_cli(home)
        same = live_counts == rebuilt_counts == table_counts(home)
    if not same:
        print(f"   WARNING: rebuilt row counts differ from the live ones {live_counts} vs {rebuilt_counts}")
    return live, in_process, cli_wall, cli_self, journal_mb, same


def bench(trades: int, candle_every: int, candle_rows: int, repeat: int) -> float:
    """Build the journal live, rebuild it twice offline, print the figures; return the judged ratio.

    Repeated `repeat` times in fresh homes; the judged ratio is the median of the rounds' ratios.
    """
    header("replay_rebuild: `oh replay --rebuild` from the journal vs live ingest of the same events")
    batches = build_mix(trades, candle_every, candle_rows)
    events = sum(len(b) for b in batches)
    print(f"   {events:,} events: {trades:,} TradeUpdated + {events - trades} CandlesIngested x {candle_rows} rows")
    ratios = []
    for i in range(repeat):
        live, in_process, cli_wall, cli_self, mb, same = one_round(batches, events)
        cli = cli_self if cli_self == cli_self and cli_self > 0 else cli_wall  # NaN if its output changed
        ratios.append(live / cli)
        print(
            f"#{i + 1} journal {mb:.1f} MB, rows equal after rebuilds: {same}\n"
            f"   live ingest           {fmt_rate(events / live):>7} events/s {mb / live:5.1f} MB/s ({live:.2f}s)\n"
            f"   rebuild in-process    {fmt_rate(events / in_process):>7} events/s {mb / in_process:5.1f} MB/s "
            f"({in_process:.2f}s)  /live {live / in_process:.3f}\n"
            f"   oh replay --rebuild   {fmt_rate(events / cli):>7} events/s {mb / cli:5.1f} MB/s ({cli:.2f}s)  "
            f"/live {live / cli:.3f}   [wall {cli_wall:.2f}s = {fmt_rate(events / cli_wall)} events/s, "
            f"/live {live / cli_wall:.3f}]",
            flush=True,
        )
    ratio = sorted(ratios)[len(ratios) // 2]
    ratio_line(f"replay_rebuild `oh replay --rebuild` events/s / live ingest events/s (median of {repeat})", ratio)
    return ratio


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.replay_rebuild", description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=50_000)
    parser.add_argument("--candle-every", type=int, default=2_500, help="one candles event per this many trades")
    parser.add_argument("--candle-rows", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds (live + rebuilds); the median ratio is used")
    args = parser.parse_args(argv)
    bench(args.trades, args.candle_every, args.candle_rows, args.repeat)


if __name__ == "__main__":
    main()
