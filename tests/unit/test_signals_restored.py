"""A test that leaves SIGTERM ignored (as Dagster's interrupt capture does in a worker whose SIGINT is
ignored) does not pass that on: `devtools.signals.restored` puts the handler back, so a process started
afterwards can be stopped with SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from devtools import signals

CHILD_IGNORES_TERM = ("import signal, sys; "
                      "sys.exit(3 if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN else 0)")


def _child_ignores_term() -> bool:
    return subprocess.run([sys.executable, "-c", CHILD_IGNORES_TERM], timeout=60).returncode == 3


def test_an_ignored_sigterm_is_put_back_and_not_inherited() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with signals.restored():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        assert _child_ignores_term()  # the hazard: exec keeps an ignored disposition
    assert signal.getsignal(signal.SIGTERM) == before
    assert not _child_ignores_term() or before is signal.SIG_IGN


def test_dagster_interrupt_capture_is_undone() -> None:
    """Dagster's capture copies SIGINT's handler to SIGTERM and leaves it there (dagster._utils.interrupts)."""
    interrupts = pytest.importorskip("dagster._utils.interrupts")
    before = {sig: signal.getsignal(sig) for sig in signals.KEPT}
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with signals.restored():
            with interrupts.capture_interrupts():
                pass
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # what Dagster leaves behind
    finally:
        signal.signal(signal.SIGINT, previous_int)
    assert {sig: signal.getsignal(sig) for sig in signals.KEPT} == before
