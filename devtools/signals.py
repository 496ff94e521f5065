"""The test process's signal dispositions, put back after each test (tests/conftest.py).

A disposition set to "ignore" is inherited by every process started afterwards (exec keeps SIG_IGN).
Dagster maps SIGTERM to SIGINT's handler whenever it captures interrupts
(`dagster._utils.interrupts.setup_interrupt_handlers`) and leaves it so; in an xdist worker SIGINT is
often ignored (a background job's shell ignores it), so SIGTERM stayed ignored for the rest of that
worker's life. A server a later test started then never stopped on `terminate()` (seen: the
test_patch_delivery server's teardown timing out, depending only on which modules its worker ran
before). In-process workers (services/runtime.py) likewise leave their SIGTERM handler installed.
`restored()` gives every test the dispositions the worker started with.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

KEPT = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


@contextmanager
def restored(signals: tuple[int, ...] = KEPT) -> Iterator[None]:
    """Run the block, then put back the Python-level handlers `signals` had before it (main thread only)."""
    saved = {sig: signal.getsignal(sig) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None and signal.getsignal(sig) != handler:
                signal.signal(sig, handler)
