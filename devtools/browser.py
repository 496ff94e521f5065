"""A real stack for the dashboard's browser tests and benchmarks: ledger, workers, sim data, `oh ui`.

Everything is a real process on real sockets under one temp OH_HOME: the ledger and the workers
(`python -m services.NAME`), the `oh` CLI for emitting jobs and writing the portfolio file, and
`oh ui` serving the dashboard on a free 127.0.0.1 port. Nothing is mocked.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

from bus.control_client import ControlClient, LedgerUnavailable
from bus.home import Home
from devtools import forkserver
from devtools.paths import OH, REPO
from devtools.processes import Service, wait_for_heartbeat, wait_for_ledger
from oh.domain import calendar

WORKERS = tuple(n for n in ("ingest", "snapshot", "flow", "derived", "checks") if (REPO / "services" / f"{n}.py").exists())
CHAIN_SYMBOLS = ("SPY", "AAPL")
CANDLE_SYMBOLS = ("SPY", "AAPL", "MSFT")
STALE_SESSIONS = 6  # `Stack.populate`: QQQ's candles end on the sixth-last chain session (stale, a gap)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-gpu-compositing", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def home_env(home: Home) -> dict[str, str]:
    """The environment of a child process working on `home`."""
    env = {**os.environ, "OH_HOME": str(home.root)}
    env.pop("OH_SOCKET_DIR", None)
    return env


def run_oh(home: Home, *args: str, timeout: float = 600.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `oh` console script on `home`."""
    result = forkserver.run([OH, *args], timeout=timeout, cwd=REPO, env=home_env(home))
    if check and result.returncode != 0:
        raise RuntimeError(f"oh {' '.join(args)} exited {result.returncode}: {result.stderr or result.stdout}")
    return result


class Stack:
    """The ledger, the workers and the `oh ui` server of one home."""

    def __init__(self, home: Home) -> None:
        self.home = home.ensure()
        self.ledger = Service(home, "ledger")
        self.workers: list[Service] = []
        self.ui: subprocess.Popen[bytes] | forkserver.ForkedProcess | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The dashboard's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start_services(self, workers: tuple[str, ...] = WORKERS) -> Stack:
        """Start the ledger and the workers; wait until each answers or beats."""
        self.ledger.start()
        wait_for_ledger(self.home, timeout=60)
        self.workers = [Service(self.home, name).start() for name in workers]
        for name in workers:
            wait_for_heartbeat(self.home, name, timeout=60)
        return self

    def start_ui(self, port: int | None = None, timeout: float = 90.0) -> Stack:
        """Start `oh ui` on a free port and wait for its first HTTP 200."""
        self.port = port or free_port()
        with (self.home.logs / "ui.test.out.log").open("ab") as log:
            self.ui = forkserver.spawn([OH, "ui", "--host", "127.0.0.1", "--port", str(self.port)], cwd=REPO,
                                       env=home_env(self.home), stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            if self.ui.poll() is not None:
                raise RuntimeError(f"oh ui exited {self.ui.returncode}; see {self.home.logs}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=10) as reply:
                    if reply.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("oh ui did not serve /health in time")
            time.sleep(0.2)

    def stop_ui(self) -> None:
        """SIGTERM the dashboard and wait for it."""
        if self.ui is not None and self.ui.poll() is None:
            self.ui.terminate()
            try:
                self.ui.wait(20)
            except subprocess.TimeoutExpired:
                self.ui.kill()
                self.ui.wait(10)

    def stop_ledger(self) -> None:
        """Stop the ledger (the dashboard must say it is down)."""
        if self.ledger.proc is not None and self.ledger.proc.poll() is None:
            self.ledger.stop()

    def stop(self) -> None:
        """Stop everything this stack started, dashboard first."""
        self.stop_ui()
        for service in [*self.workers, self.ledger]:
            if service.proc is not None and service.proc.poll() is None:
                try:
                    service.stop()
                except subprocess.TimeoutExpired:
                    service.kill()

    def query(self, sql: str, params: list[object] | None = None) -> list[dict[str, object]]:
        """Rows of a read-only query through the ledger."""
        client = ControlClient(self.home, timeout=30)
        try:
            return client.query(sql, params).to_pylist()
        finally:
            client.close()

    def wait_until(self, sql: str, done: object = True, timeout: float = 300.0) -> None:
        """Poll a scalar query until it equals `done`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                rows = self.query(sql)
                if rows and next(iter(rows[0].values())) == done:
                    return
            except LedgerUnavailable:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"never true: {sql}")

    def populate(self, chain_sessions: int = 26) -> dict[str, object]:
        """Sim data like `oh demo`, smaller: a year of candles, chains of `chain_sessions` sessions (flow and
        derived chained; 21+ gives IV ranks), a stale symbol with a gap, a failed run, and a portfolio
        holding contracts of the latest chain. `chain_sessions`: at least STALE_SESSIONS (QQQ's candles end on that
        chain session counted from the last)."""
        if chain_sessions < STALE_SESSIONS:
            raise ValueError(f"chain_sessions {chain_sessions}: at least {STALE_SESSIONS} (QQQ's candles end on the "
                             f"chain session {STALE_SESSIONS} from the last)")
        last = calendar.last_closed_session(datetime.now(UTC))
        sessions = [d.astype(date) for d in calendar.last_sessions(last, chain_sessions)]
        first_year = last - timedelta(days=365)
        run_oh(self.home, "emit", "ingest-candles", "--symbols", ",".join(CANDLE_SYMBOLS), "--start", str(first_year),
               "--end", str(last), "--wait")
        # QQQ stops a week early: stale in the freshness table, a gap the planner fills
        run_oh(self.home, "emit", "ingest-candles", "--symbols", "QQQ", "--start", str(first_year),
               "--end", str(sessions[-STALE_SESSIONS]), "--wait")
        run_oh(self.home, "emit", "ingest-candles", "--symbols", "ZZBAD", "--start", str(sessions[0]),
               "--end", str(last), "--wait", check=False)  # an unknown symbol: a failed run
        run_oh(self.home, "emit", "snapshot-options", "--symbols", ",".join(CHAIN_SYMBOLS), "--start", str(sessions[0]),
               "--end", str(last), "--wait")
        self.wait_until(f"SELECT count(DISTINCT session_date) >= {chain_sessions - 1} FROM derived_daily")
        self.wait_until("SELECT count(*) = 0 FROM meta.ingestion_runs WHERE status = 'started'")
        self.write_portfolio(last)
        return {"last": last, "sessions": sessions}

    def write_portfolio(self, as_of: date) -> None:
        """A portfolio of contracts that exist in the latest SPY and AAPL chains (through `oh portfolio`)."""
        run_oh(self.home, "portfolio", "init", "--cash", "25000", "--force")
        close = self.query("SELECT close FROM candles_daily WHERE symbol = 'MSFT' ORDER BY date DESC LIMIT 1 OFFSET 15")
        run_oh(self.home, "portfolio", "add-position", "--symbol", "MSFT", "--quantity", "20", "--cost",
               f"{float(close[0]['close']):.2f}")
        rows = self.query(
            "SELECT underlying, expiry, strike, put_call, mark FROM option_snapshots WHERE snapshot_date = ? "
            "AND expiry > ? ORDER BY underlying, expiry, abs(strike - spot), put_call", [as_of, as_of + timedelta(days=20)])
        aapl = next(r for r in rows if r["underlying"] == "AAPL" and r["put_call"] == "C")
        run_oh(self.home, "portfolio", "add-position", "--symbol", "AAPL", "--quantity", "2", "--cost",
               f"{float(aapl['mark']):.2f}", "--expiry", str(aapl["expiry"]), "--right", "call", "--strike",
               f"{float(aapl['strike']):g}")
        spy = [r for r in rows if r["underlying"] == "SPY" and r["put_call"] == "P" and r["expiry"] == rows[0]["expiry"]]
        strikes = sorted({float(r["strike"]) for r in rows if r["underlying"] == "SPY" and r["expiry"] == spy[0]["expiry"]})
        atm = float(spy[0]["strike"])
        lower = max(s for s in strikes if s < atm - 5)
        expiry = spy[0]["expiry"]
        run_oh(self.home, "portfolio", "add-spread", "--symbol", "SPY", "--kind", "vertical",
               "--leg", f"{expiry}:put:{atm:g}:-1:4.00", "--leg", f"{expiry}:put:{lower:g}:+1:2.50")


def emitted_run_id(result: subprocess.CompletedProcess[str]) -> str:
    """The run id `oh emit` (without --wait) prints."""
    found = re.search(r"run id (\S+)", result.stdout)
    if not found:
        raise AssertionError(f"no run id in {result.stdout!r}")
    return found.group(1)


@contextmanager
def browser() -> Iterator[object]:
    """Debian's chromium driven by playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
