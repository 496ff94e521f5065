"""`python -m services.ledger`: run the ledger for `OH_HOME` until SIGTERM.

`OH_LEDGER_PROFILE=PATH` runs the ledger's loop under cProfile and writes the stats to PATH when it stops
(`python -m pstats PATH`): how the bench/bus_throughput figures were split per step (docs/ledger.md).
"""

from __future__ import annotations

import argparse
import os
import signal

from bus.home import Home
from services import logs
from services.ledger.app import Ledger


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
    profile_to = os.environ.get("OH_LEDGER_PROFILE")
    if profile_to:
        import cProfile

        cProfile.runctx("ledger.run()", globals(), {"ledger": ledger}, profile_to)
    else:
        ledger.run()  # returns with the journal and the warehouse closed
    import gc

    gc.freeze()  # exiting: skip the interpreter's last collection over the heap (a faster `oh down`)


if __name__ == "__main__":
    main()
