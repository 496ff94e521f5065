"""`python -m services.ledger`: run the ledger for `OH_HOME` until SIGTERM.

`OH_LEDGER_PROFILE=PATH` runs the ledger's loop under cProfile and writes the stats to PATH when it stops
(`python -m pstats PATH`): how the bench/bus_throughput figures were split per step (docs/architecture.md, "Group commit").
"""

from __future__ import annotations

import argparse
import gc
import os
import signal

from bus.home import Home
from services import logs
from services.ledger.app import Ledger

GC_GEN0_THRESHOLD = 100_000  # tracked objects allocated (net) before a young-generation collection


def main() -> None:
    """Parse the fsync policy, start the ledger and stop it cleanly on SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m services.ledger")
    parser.add_argument("--fsync", choices=["always", "batch", "off"], default=os.environ.get("OH_FSYNC", "batch"))
    args = parser.parse_args()
    home = Home.from_env().ensure()
    logs.configure("ledger", home)
    ledger = Ledger(home, fsync=args.fsync)
    signal.signal(signal.SIGTERM, ledger.stop)
    signal.signal(signal.SIGINT, ledger.stop)
    # A group commit holds thousands of decoded events at once; at CPython's default threshold (700 new objects)
    # that is dozens of collections per group, each walking them all: 10-15% of the ledger's CPU for small events.
    # What start-up built lives as long as the process, so the collector never walks it again (freeze).
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD)
    profile_to = os.environ.get("OH_LEDGER_PROFILE")
    if profile_to:
        import cProfile

        cProfile.runctx("ledger.run()", globals(), {"ledger": ledger}, profile_to)
    else:
        ledger.run()  # returns with the journal and the warehouse closed
    gc.freeze()  # exiting: skip the interpreter's last collection over the heap (a faster `oh down`)


if __name__ == "__main__":
    main()
