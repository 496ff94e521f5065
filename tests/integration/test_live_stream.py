"""The live_stream worker as real processes: idle until started, ticks for every planned symbol,
fills journaled, stop, and restarts (kill -9 under supervisord) that resume only with keep_running."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus.control_client import ControlClient
from bus.home import Home
from bus.producer import Producer
from bus.ticks import TickSubscriber, read_status
from contracts import StartLive
from contracts.live import LiveStatus, TickBatch
from devtools.processes import Service, wait_for_heartbeat, wait_for_ledger
from oh.adapters.portfolio_file import load, save
from oh.adapters.sim.stream import sim_portfolio
from oh.domain.live_plan import build_plan
from oh.domain.portfolio import Portfolio
from tests.integration.conftest import run_oh

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT", "SPY"]


def wait_until(condition: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def status_where(home: Home, test: Callable[[LiveStatus], bool], what: str, timeout: float = 60.0) -> LiveStatus:
    """The first LiveStatus on the tick channel for which `test` holds."""
    def check() -> LiveStatus | None:
        status = read_status(home, timeout=2.0)
        return status if status is not None and test(status) else None

    return wait_until(check, timeout, what)  # type: ignore[return-value]


@pytest.fixture
def portfolio(home: Home) -> Portfolio:
    """A 9-position portfolio (stocks, calls, verticals) of listed sim contracts, at the default path."""
    value = sim_portfolio(SYMBOLS, 9)
    save(home.config / "portfolio.json", value)
    return value


@pytest.fixture
def services(home: Home, portfolio: Portfolio) -> Iterator[dict[str, Service]]:
    ledger = Service(home, "ledger").start()
    wait_for_ledger(home)
    live = Service(home, "live_stream").start()
    wait_for_heartbeat(home, "live_stream")
    yield {"ledger": ledger, "live": live}
    for service in (live, ledger):
        if service.proc is not None and service.proc.poll() is None:
            service.stop()


def fills(home: Home) -> list[dict[str, object]]:
    client = ControlClient(home)
    try:
        return client.query("SELECT order_id, symbol, event, side, qty, price FROM trade_updates "
                            "ORDER BY ts").to_pylist()
    finally:
        client.close()


def test_idle_until_started_then_ticks_for_every_symbol_fills_journaled_and_stop(
    home: Home, portfolio: Portfolio, services: dict[str, Service],
) -> None:
    idle = status_where(home, lambda s: True, "a status")
    assert idle.state == "idle" and idle.streams == [] and idle.counters.received == 0
    plan = build_plan(portfolio, provider="sim")
    subscriber = TickSubscriber(home)
    try:
        started = run_oh("live", "start", "--sim-rate", "400")
        assert started.returncode == 0, started.stderr
        assert f"plan: {len(plan.stocks)} stocks, {len(plan.options)} option contracts" in started.stdout

        def every_symbol_quoted() -> bool:  # a trade can come first (bid/ask 0 = none yet): wait for quotes
            subscriber.poll(100)
            return all(subscriber.quotes.get(s) is not None and subscriber.quotes[s].ask > 0 for s in plan.symbols)

        wait_until(every_symbol_quoted, what="a tick for every planned symbol")
        for symbol in plan.symbols:
            quote = subscriber.quotes[symbol]
            assert quote.kind == plan.kind_of(symbol)
            assert quote.ask > 0 and (quote.bid == 0 or quote.bid <= quote.ask) and quote.ts_recv > 0
        assert set(subscriber.quotes) == set(plan.symbols)  # nothing unplanned on the channel

        rows = wait_until(lambda: [r for r in fills(home) if r["event"] == "fill"] and fills(home),
                          what="fills in trade_updates")
        assert {r["event"] for r in rows} >= {"new", "fill"}  # type: ignore[union-attr]
        assert all(r["symbol"] in plan.symbols for r in rows)  # type: ignore[union-attr]

        shown = run_oh("live", "status", "--json")
        assert shown.returncode == 0, shown.stderr
        live = json.loads(shown.stdout)
        assert live["state"] == "streaming" and live["provider"] == "sim"
        assert {s["name"]: s["state"] for s in live["streams"]} == {
            "stocks": "connected", "options": "connected", "fills": "connected"}
        assert live["counters"]["received"] > 0 and live["counters"]["quotes"] > 0
        assert live["counters"]["fills"] >= 1

        stopped = run_oh("live", "stop")
        assert stopped.returncode == 0, stopped.stderr
        after = status_where(home, lambda s: s.state == "idle", "idle after stop")
        assert {s.state for s in after.streams} == {"stopped"}
        # no quotes follow the stop: once this subscriber sees the idle status (one PUB socket keeps
        # the order), two more statuses come without a tick batch in between
        seen: list[object] = []
        while not any(isinstance(m, LiveStatus) and m.state == "idle" for m in seen):
            seen += [m for _, m in subscriber.poll(200)]
        seen = seen[next(i for i, m in enumerate(seen) if isinstance(m, LiveStatus) and m.state == "idle") + 1:]
        while sum(isinstance(m, LiveStatus) for m in seen) < 2:
            seen += [m for _, m in subscriber.poll(200)]
        assert not any(isinstance(m, TickBatch) for m in seen)
    finally:
        subscriber.close()


def test_a_bad_portfolio_exits_2_naming_the_field_and_sends_nothing(
    home: Home, services: dict[str, Service], tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"positions": [{"type": "option", "id": "x", "symbol": "AAPL", "expiry": "2030-01-18",
                                              "right": "call", "strike": -5, "quantity": 1, "cost_basis": 1.0}]}))
    result = run_oh("live", "start", "--portfolio", str(bad))
    assert result.returncode == 2
    assert "strike must be > 0" in result.stderr and 'positions[0] (id "x")' in result.stderr
    client = ControlClient(home)
    try:
        assert client.query("SELECT count(*) FROM ledger.events WHERE type = 'StartLive'").column(0)[0].as_py() == 0
    finally:
        client.close()
    assert run_oh("live", "start", "--max-option-contracts", "-1").returncode == 2


def test_the_worker_reports_a_portfolio_it_cannot_read(home: Home, services: dict[str, Service]) -> None:
    """A start whose file vanished before the worker read it: state error, the reason in words, nothing streams."""
    missing = home.config / "gone.json"
    producer = Producer(home)
    command = StartLive(portfolio=str(missing))
    producer.send(command)
    producer.flush(timeout=30)
    producer.close()
    status = status_where(home, lambda s: s.command_id == command.id, "the worker's verdict")
    assert status.state == "error" and "no portfolio file" in (status.last_error or "")
    shown = run_oh("live", "status")
    assert shown.returncode == 0 and "no portfolio file" in shown.stdout


def _streaming_pid(home: Home, command_id: str | None = None) -> LiveStatus:
    return status_where(home, lambda s: s.state == "streaming" and s.counters.received > 0
                        and (command_id is None or s.command_id == command_id), "streaming")


def test_kill_9_under_supervisord_restarts_idle_unless_keep_running(home: Home, portfolio: Portfolio) -> None:
    up = run_oh("up")
    assert up.returncode == 0, up.stderr
    try:
        assert run_oh("live", "start", "--sim-rate", "200").returncode == 0
        first = _streaming_pid(home)
        os.kill(first.pid, signal.SIGKILL)
        restarted = status_where(home, lambda s: s.pid != first.pid, "supervisord restarting live_stream")
        assert restarted.state == "idle" and not restarted.resumed

        assert run_oh("live", "start", "--keep-running", "--sim-rate", "200").returncode == 0
        kept = _streaming_pid(home)
        assert kept.keep_running
        os.kill(kept.pid, signal.SIGKILL)
        resumed = status_where(home, lambda s: s.pid != kept.pid and s.state == "streaming", "resumed streaming")
        assert resumed.resumed and resumed.command_id == kept.command_id
        subscriber = TickSubscriber(home)
        try:
            wait_until(lambda: subscriber.poll(100) and len(subscriber.quotes) > 0, what="ticks after the restart")
        finally:
            subscriber.close()
        # a stop clears keep_running: the next restart stays idle
        assert run_oh("live", "stop").returncode == 0
        stopped = status_where(home, lambda s: s.state == "idle", "idle after stop")
        os.kill(stopped.pid, signal.SIGKILL)
        again = status_where(home, lambda s: s.pid != stopped.pid, "another restart")
        assert again.state == "idle"
    finally:
        down = run_oh("down")
    assert down.returncode == 0, down.stderr
    assert "stopped: live_stream (exit status 0)" in (home.logs / "supervisord.log").read_text()
    assert load(home.config / "portfolio.json") == portfolio  # read, never written
