"""CPU per fetch of the sim provider, as a full-market worker meets it: each of N numbered symbols once a day.

A full-market day (bench.full_market) asks the snapshot worker for 5,000 chains, the options_bars worker for
5,000 contract lists and their bars (45 days), the ingest worker for 5,000 candle ranges, each symbol once; the
sim's own work was ~65-75% of those workers' CPU (issue #14.4). This measures, in one process, CPU milliseconds per
fetch (`time.process_time`) of each kind over N symbols S1000.. (default 1,000):

- first day: the symbols have not been met before in this process (their paths drawn, their constants made);
- next day: the same symbols on the next session, after the first (what the timed day of full_market is, since
  its untimed day before warms the same processes).

Baseline, same run: the first day's fetch of the same kind. RATIO: next-day / first-day CPU per chain.

    python -m bench.sim_fetch [--symbols 1000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from bench._common import environ, header, load_line, ratio_line
from oh.adapters.sim.provider import SimProvider
from oh.adapters.sim.universe import SYNTHETIC_ENV
from oh.domain import calendar

FIRST, NEXT = date(2026, 12, 3), date(2026, 12, 4)  # two sessions in a row
MAX_DTE = 45  # contracts.commands.IngestOptionsBars' default
CANDLE_SPAN = timedelta(days=45)  # an incremental daily's tail and overlap (GAP_WINDOW 30 sessions)


def _cpu_ms(symbols: list[str], fetch: Callable[[str], object]) -> float:
    start = time.process_time()
    for symbol in symbols:
        fetch(symbol)
    return (time.process_time() - start) / len(symbols) * 1000


def main(argv: list[str] | None = None) -> int:
    """Print CPU ms per fetch (first day, next day) of chains, contract lists + bars and candles; the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=1000, help="numbered symbols S1000.. (default 1000)")
    args = parser.parse_args(argv)
    header(f"sim_fetch: CPU per sim fetch, {args.symbols} numbered symbols met once a day, {FIRST} then {NEXT}")
    load_line("at start")
    with environ(SYNTHETIC_ENV, str(1000 + 3 * args.symbols)):
        calendar.all_sessions()
        provider = SimProvider(clock=lambda: datetime(2027, 1, 4, tzinfo=UTC))
        kinds: dict[str, Callable[[date], Callable[[str], object]]] = {
            "chain": lambda day: lambda s: provider.option_chain(s, day),
            "contracts + bars": lambda day: lambda s: provider.option_bars(
                s, provider.option_contracts(s, day, MAX_DTE), day, day),
            "candles": lambda day: lambda s: provider.daily_candles(s, day - CANDLE_SPAN, day),
        }
        for fetch in kinds.values():  # the process's one-time costs (imports, the calendar, first calls) out
            fetch(FIRST - timedelta(days=30))("S0001")
        figures: dict[str, tuple[float, float]] = {}
        for at, (kind, fetch) in enumerate(kinds.items()):  # each kind on its own symbols: cold on its first day
            first = args.symbols * at + 1000
            symbols = [f"S{i:04d}" for i in range(first, first + args.symbols)]
            figures[kind] = (_cpu_ms(symbols, fetch(FIRST)), _cpu_ms(symbols, fetch(NEXT)))
            print(f"   {kind:18s} first day {figures[kind][0]:6.3f} CPU ms/fetch, next day {figures[kind][1]:6.3f}"
                  f" (x5,000 symbols: {figures[kind][0] * 5:5.1f} and {figures[kind][1] * 5:5.1f} CPU-s)")
    load_line("at end")
    ratio_line("sim_fetch chain CPU next day / first day", figures["chain"][1] / figures["chain"][0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
