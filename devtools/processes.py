"""Start and stop the real oh processes for integration tests and benchmarks (no mocks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from bus.control_client import ControlClient, LedgerUnavailable
from bus.home import Home
from devtools import forkserver
from devtools.paths import REPO


class Service:
    """One `python -m services.NAME` child process, logging to OH_HOME/logs/NAME.log."""

    def __init__(self, home: Home, name: str, *args: str, env: dict[str, str] | None = None,
                 module: str | None = None) -> None:
        self.home = home
        self.name = name
        self.module = module or f"services.{name}"
        self.args = args
        self.env = {**os.environ, "OH_HOME": str(home.root), **(env or {})}
        self.proc: subprocess.Popen[bytes] | forkserver.ForkedProcess | None = None

    def start(self) -> Service:
        with (self.home.logs / f"{self.name}.out.log").open("ab") as log:
            self.proc = forkserver.spawn([sys.executable, "-m", self.module, *self.args], cwd=REPO, env=self.env,
                                         stdout=log, stderr=log)
        return self

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash at an arbitrary point."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def log_text(self) -> str:
        """The service's own log file."""
        return (self.home.logs / f"{self.name}.log").read_text(errors="replace")


def _poll(home: Home, ready: Callable[[ControlClient], bool], timeout: float, what: str) -> None:
    """Ask the ledger until `ready(client)` holds (a down ledger counts as not ready)."""
    client = ControlClient(home, timeout=0.5)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                if ready(client):
                    return
            except LedgerUnavailable:
                pass
            time.sleep(0.03)
        raise TimeoutError(what)
    finally:
        client.close()


def wait_for_ledger(home: Home, timeout: float = 30.0) -> None:
    """Block until the ledger answers a status request."""
    _poll(home, lambda client: client.status() is not None, timeout, "the ledger did not come up")


def wait_for_heartbeat(home: Home, service: str, timeout: float = 30.0) -> None:
    """Block until the ledger has heard a heartbeat from `service`."""
    _poll(home, lambda client: service in client.status().heartbeats, timeout, f"no heartbeat from {service}")


def wait_applied(home: Home, seq: int, timeout: float = 60.0) -> None:
    """Block until the warehouse has committed everything up to `seq`."""
    _poll(home, lambda client: client.status().applied_seq >= seq, timeout, f"warehouse did not reach seq {seq}")
