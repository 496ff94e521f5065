"""Integration fixtures: real ledger and worker processes on real sockets, one OH_HOME per test (or per module,
through `shared_home`, where the module's tests only read what one set-up seeded)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bus.control_client import ControlClient
from bus.home import Home
from devtools import forkserver
from devtools.paths import OH, REPO
from devtools.processes import Service, wait_for_heartbeat, wait_for_ledger


def run_oh(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run the real `oh` console script with the test's OH_HOME (from the environment)."""
    return forkserver.run([OH, *args], timeout=timeout, cwd=REPO, env=dict(os.environ))


class Stack:
    """The ledger plus the ingest workers (candles: `ingest`, option bars: `options_bars`), started as plain processes."""

    def __init__(self, home: Home, ledger_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.ledger = Service(home, "ledger", env=ledger_env)
        self.ingest = Service(home, "ingest")
        self.options_bars = Service(home, "options_bars")
        self.workers: dict[str, Service] = {}
        self.client = ControlClient(home, timeout=30)

    def start_ledger(self) -> None:
        self.ledger.start()
        wait_for_ledger(self.home)

    def start_ingest(self) -> None:
        """Start the candles' worker and, unless it still runs, the option bars' (a daily sends both at once), and
        wait for both. Tests restart `ingest` alone after stopping or killing it; a second `options_bars` beside a
        running one would outlive the test (`stop` knows only the newest)."""
        self.ingest.start()
        if self.options_bars.proc is None or self.options_bars.proc.poll() is not None:
            self.options_bars.start()
        wait_for_heartbeat(self.home, "ingest")
        wait_for_heartbeat(self.home, "options_bars")

    def start_workers(self, *names: str) -> None:
        """Start these workers (`python -m services.NAME`) and wait for a heartbeat from each; `stop` stops them."""
        for name in names:
            self.workers[name] = Service(self.home, name).start()
        for name in names:
            wait_for_heartbeat(self.home, name)

    def scalar(self, sql: str, params: list[object] | None = None) -> object:
        return self.client.query(sql, params).column(0)[0].as_py()

    def stop(self) -> None:
        for service in (*self.workers.values(), self.ingest, self.options_bars, self.ledger):
            if service.proc is not None and service.proc.poll() is None:
                service.stop()
        self.client.close()


@pytest.fixture
def stack(home: Home) -> Iterator[Stack]:
    """Ledger and the ingest workers (candles, option bars) running for this test's OH_HOME."""
    services = Stack(home)
    services.start_ledger()
    services.start_ingest()
    yield services
    services.stop()


PIPELINE_WORKERS = ("snapshot", "flow", "derived", "briefing")


@pytest.fixture
def pipeline(home: Home) -> Iterator[Stack]:
    """The ledger and the chain's workers (snapshot, flow, derived, briefing) for this test's OH_HOME."""
    stack = Stack(home)
    stack.start_ledger()
    stack.start_workers(*PIPELINE_WORKERS)
    yield stack
    stack.stop()


@contextmanager
def shared_home(root: Path) -> Iterator[Home]:
    """An OH_HOME under `root` for a module-scoped fixture (the `home` fixture's environment, set for as long as
    the fixture lives): for modules whose tests only read what one set-up seeded. A test that also asks for `home`
    gets its own OH_HOME for its duration, and this one back after it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OH_HOME", str(root / "oh_home"))
        patch.setenv("OH_UI_PORT", "0")
        patch.delenv("OH_SOCKET_DIR", raising=False)
        patch.delenv("OH_FSYNC", raising=False)
        patch.delenv("OH_BUS", raising=False)
        patch.delenv("OH_BUS_KEYS", raising=False)
        home = Home.from_env().ensure()
        yield home
        if home.sockets.parent != home.root:
            shutil.rmtree(home.sockets, ignore_errors=True)


def copy_home(source: Home, target: Home) -> None:
    """Copy a stopped home's journal, warehouse, worker offsets and config into `target` (not its logs or
    sockets): each test changes its own copy of data one set-up built once."""
    for part in ("journal", "warehouse", "state", "config"):
        if (source.root / part).exists():
            shutil.copytree(source.root / part, target.root / part, dirs_exist_ok=True)
