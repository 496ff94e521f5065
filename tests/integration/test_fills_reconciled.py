"""Fills never lost: a fill seen on Alpaca's trade-updates stream but not yet journaled survives kill -9.

Alpaca is simulated at the network layer only: its trading stream by the local websocket server of
tests/integration/test_live_alpaca_streams.py (FakeAlpaca), its REST API by tests/http_replay.py with
recorded account activities (tests/fixtures/http/alpaca/v2_account_activities_FILL_*.json, checked
against alpaca-py's TradeActivity model). The ledger and live_stream are the real processes.

The attacks: the ledger is down when the fill arrives on the stream and live_stream is killed -9
before any acknowledgement; the fill happens while the stream is disconnected; the REST API fails
for a while. Each time the fill ends up journaled exactly once, whichever way it came.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from bus.control_client import ControlClient
from bus.home import Home
from bus.ticks import read_status
from contracts import TradeUpdated
from devtools.processes import Service, wait_for_heartbeat, wait_for_ledger
from oh.adapters.alpaca import activities
from oh.adapters.alpaca.activities import fetch_fills, fill_event, fill_id
from oh.adapters.alpaca.stream import trade_update_event
from oh.adapters.base import ProviderError
from oh.adapters.settings import load_settings
from oh.adapters.streams import Backoff
from services.live.fills import STATE_FILE, FillReconciler
from services.live.publisher import FillJournal
from tests.http_replay import FIXTURES, ReplayServer, replay_server
from tests.integration.conftest import run_oh
from tests.integration.test_live_alpaca_streams import KEY, SECRET, FakeAlpaca, Script, trade_update, wait_until

pytestmark = pytest.mark.integration

FILLS = "/v2/account/activities/FILL"
EXECUTION = "9ce1bb53-4ef1-4d0c-a3d9-3cde0e5a2e45"
ORDER = "61e69015-8549-4bfd-b9c3-01e75843f47d"  # the order of trade_update() and of the recorded activity
PORTFOLIO = {"positions": [{"type": "stock", "id": "aapl", "symbol": "AAPL", "quantity": 10, "cost_basis": 180.0}]}


def _recorded(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "alpaca" / name).read_text())


def _fill_frame() -> dict[str, Any]:
    return trade_update("fill", "10", "189.51", EXECUTION)


def _other_order_frame() -> dict[str, Any]:
    """A `new` update of another order: sent after the fill, it marks that the stream's frames were handled."""
    frame = copy.deepcopy(trade_update("new", None, None, None))
    frame["data"]["order"]["id"] = "0d7c2a9e-5b41-4f8e-a6d3-c2b19e8f7a64"
    return frame


# -- one fill, one id --------------------------------------------------------------------------------
def test_the_recorded_activities_have_alpacas_shape() -> None:
    """Every recorded FILL activity parses with alpaca-py's own TradeActivity model."""
    from alpaca.trading.models import TradeActivity

    for name in ("v2_account_activities_FILL_AAPL_fill.json", "v2_account_activities_FILL_option_page1.json",
                 "v2_account_activities_FILL_option_page2.json"):
        for raw in _recorded(name):
            activity = TradeActivity(**raw)
            assert activity.activity_type == "FILL" and activity.qty > 0 and activity.cum_qty >= activity.qty


def test_a_fill_from_the_stream_and_from_rest_is_one_event() -> None:
    """The stream's frame and the REST activity of the same execution map to the same TradeUpdated id and
    fields; the three executions of one order get three ids; quantity spellings do not matter."""
    streamed = trade_update_event(_fill_frame())
    [fetched] = [fill_event(a) for a in _recorded("v2_account_activities_FILL_AAPL_fill.json")]
    assert streamed is not None and fetched is not None
    assert streamed.id == fetched.id == fill_id(ORDER, "10")
    for field in ("order_id", "symbol", "event", "side", "qty", "price"):
        assert getattr(streamed, field) == getattr(fetched, field), field
    assert fetched.filled_at == datetime(2026, 11, 23, 15, 30, 0, 100312, UTC)
    pages = _recorded("v2_account_activities_FILL_option_page1.json") + _recorded("v2_account_activities_FILL_option_page2.json")
    ids = [fill_event(a).id for a in pages]  # type: ignore[union-attr]
    assert len(set(ids)) == 3
    assert fill_id(ORDER, "10") == fill_id(ORDER, 10) == fill_id(ORDER, "10.000")
    assert fill_event({**pages[0], "activity_type": "DIV"}) is None and fill_event({**pages[0], "qty": None}) is None


# -- the REST call ------------------------------------------------------------------------------------
@pytest.fixture
def rest(home: Home) -> Iterator[ReplayServer]:
    with replay_server("alpaca", alpaca_keys=(KEY, SECRET)) as server:
        yield server


def _settings(home: Home, server: ReplayServer, key: str = KEY) -> Any:
    return load_settings(home, {"APCA_API_BASE_URL": server.service_url("alpaca-trading"),
                                "APCA_API_KEY_ID": key, "APCA_API_SECRET_KEY": SECRET})


def test_fetch_fills_pages_through_the_account_activities(home: Home, rest: ReplayServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages are followed by page_token (the last activity's id) until a short page; the query asks for fills
    after the time given, oldest first; the answer is every execution in order."""
    monkeypatch.setattr(activities, "PAGE_SIZE", 2)
    page1 = _recorded("v2_account_activities_FILL_option_page1.json")
    rest.add_route("alpaca-trading", FILLS, "v2_account_activities_FILL_option_page1.json", query={"page_token": None})
    rest.add_route("alpaca-trading", FILLS, "v2_account_activities_FILL_option_page2.json",
                   query={"page_token": page1[-1]["id"]})
    fills = fetch_fills(_settings(home, rest), datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    assert [(f.event, f.qty, f.price, f.side) for f in fills] == [
        ("partial_fill", 10.0, 12.4, "sell"), ("partial_fill", 10.0, 12.4, "sell"), ("fill", 5.0, 12.35, "sell")]
    asked = rest.hits("alpaca-trading", FILLS)
    assert [s.query.get("page_token") for s in asked] == [None, page1[-1]["id"]]
    assert all(s.query["after"] == "2026-11-23T14:00:00Z" and s.query["direction"] == "asc"
               and s.query["page_size"] == "2" for s in asked)


def test_fetch_fills_fails_in_words_without_the_keys(home: Home, rest: ReplayServer) -> None:
    """Refused keys are a ProviderError in words that never shows the keys."""
    with pytest.raises(ProviderError) as caught:
        fetch_fills(_settings(home, rest, key="PKWRONGKEY000000000"), datetime.now(UTC))
    assert "keys were refused" in str(caught.value) and SECRET not in str(caught.value)


def test_the_reconciler_retries_a_failing_fetch_and_then_journals_once(home: Home) -> None:
    """Against the real ledger: REST fails twice (shown as the session's error), then answers; the fill is
    journaled, a second reconciliation fetching it again adds nothing, and the watermark moves to the moment
    the stream was listening, never past a fill not yet journaled."""
    [fill] = [fill_event(a) for a in _recorded("v2_account_activities_FILL_AAPL_fill.json")]
    assert fill is not None
    calls: list[datetime] = []

    def fetch(after: datetime) -> list[TradeUpdated]:
        calls.append(after)
        if len(calls) <= 2:
            raise ProviderError("alpaca: server error (503) on the account's fills; try again later")
        return [fill]

    ledger = Service(home, "ledger").start()
    journal = FillJournal(home)
    journal.start()
    reconciler = FillReconciler(home, fetch, journal, backoff=Backoff(base=0.01, cap=0.05))
    try:
        wait_for_ledger(home)
        reconciler.prepare()
        first = reconciler.watermark()
        assert first is not None
        reconciler.start()
        reconciler.request(listening=True)
        wait_until(lambda: reconciler.reconciled == 1, what="the first reconciliation")
        assert reconciler.error is None and len(calls) == 3
        assert all(after < first for after in calls)  # asked from before the watermark (the margin)
        moved = reconciler.watermark()
        assert moved is not None and moved >= first
        reconciler.request(listening=True)
        wait_until(lambda: reconciler.reconciled == 2, what="the second reconciliation")
        client = ControlClient(home)
        try:
            assert client.query("SELECT count(*) FROM trade_updates").column(0)[0].as_py() == 1
            assert client.query("SELECT count(*) FROM ledger.events").column(0)[0].as_py() == 1
            assert client.status().counters.get("duplicates_dropped", 0) == 1
        finally:
            client.close()
        assert datetime.fromisoformat(json.loads((home.state / STATE_FILE).read_text())["after"]) >= moved
    finally:
        reconciler.stop()
        journal.stopped.set()
        journal.join(10)
        ledger.stop()


# -- the real processes -----------------------------------------------------------------------------
def fills_session(*updates: dict[str, Any], before_listening: threading.Event | None = None,
                  before_updates: threading.Event | None = None, close_after: bool = False) -> Script:
    """Alpaca's trading stream: authorization, listening, then `updates` (each gate, if given, is waited for)."""

    async def gate(event: threading.Event | None) -> None:
        while event is not None and not event.is_set():
            await asyncio.sleep(0.02)

    async def script(ws: ServerConnection, server: FakeAlpaca) -> None:
        server.received["/stream"].append(json.loads(await ws.recv()))
        await ws.send(json.dumps({"stream": "authorization",
                                  "data": {"action": "authenticate", "status": "authorized"}}).encode())
        server.received["/stream"].append(json.loads(await ws.recv()))
        await gate(before_listening)
        await ws.send(json.dumps({"stream": "listening", "data": {"streams": ["trade_updates"]}}).encode())
        await gate(before_updates)
        for update in updates:
            await ws.send(json.dumps(update).encode())
        if close_after:
            await ws.close(1000, "bye")
            return
        await ws.wait_closed()

    return script


@pytest.fixture
def alpaca_env(home: Home, monkeypatch: pytest.MonkeyPatch, rest: ReplayServer) -> Iterator[ReplayServer]:
    """The portfolio, and the environment pointing live_stream at the local Alpaca (REST here, stream set later)."""
    (home.config / "portfolio.json").write_text(json.dumps(PORTFOLIO))
    for name, value in {"APCA_API_BASE_URL": rest.service_url("alpaca-trading"), "APCA_API_KEY_ID": KEY,
                        "APCA_API_SECRET_KEY": SECRET}.items():
        monkeypatch.setenv(name, value)
    yield rest


def _fills_connected(home: Home) -> bool:
    status = read_status(home)
    streams = {s.name: s for s in status.streams} if status else {}
    return "fills" in streams and streams["fills"].state == "connected"


def _scalar(client: ControlClient, sql: str) -> Any:
    return client.query(sql).column(0)[0].as_py()


def test_a_fill_seen_on_the_stream_survives_kill_9_before_the_ledger_acknowledged_it(
    home: Home, monkeypatch: pytest.MonkeyPatch, alpaca_env: ReplayServer,
) -> None:
    """The ledger is down when the fill arrives on the stream, and live_stream is killed -9 with the fill in
    hand: nothing is journaled. After the restart, the fill comes both from REST (the reconciliation) and
    again on the stream, and it is journaled exactly once, with Alpaca's figures."""
    rest = alpaca_env
    fill_now = threading.Event()
    scripts = {"/stream": [fills_session(_fill_frame(), before_updates=fill_now),
                           fills_session(_fill_frame(), _other_order_frame())]}
    with FakeAlpaca(scripts) as ws:
        monkeypatch.setenv("OH_ALPACA_TRADING_STREAM_URL", f"{ws.url}/stream")
        ledger = Service(home, "ledger").start()
        live = Service(home, "live_stream")
        try:
            wait_for_ledger(home)
            live.start()
            wait_for_heartbeat(home, "live_stream")
            started = run_oh("live", "start", "--provider", "alpaca", "--no-stocks", "--no-options", "--keep-running")
            assert started.returncode == 0, started.stderr
            wait_until(lambda: _fills_connected(home), what="the fills stream listening")

            assert ledger.stop() == 0
            fill_now.set()  # the fill is executed: it arrives on the stream ...
            rest.add_route("alpaca-trading", FILLS, "v2_account_activities_FILL_AAPL_fill.json")  # ... and is on REST
            wait_until(lambda: (s := read_status(home)) is not None and s.counters.fills == 1,
                       what="live_stream holding the fill, with no ledger to acknowledge it")
            live.kill()

            ledger = Service(home, "ledger").start()
            wait_for_ledger(home)
            client = ControlClient(home)
            try:
                assert _scalar(client, "SELECT count(*) FROM ledger.events WHERE type = 'TradeUpdated'") == 0
                live = Service(home, "live_stream").start()  # resumes: the last live command kept running
                wait_until(lambda: _scalar(client, "SELECT count(*) FROM trade_updates WHERE event = 'new'") == 1
                           and "reconciled 1 fill(s)" in live.log_text(), timeout=60,
                           what="the fill reconciled over REST and the stream's frames handled")
                rows = client.query(
                    "SELECT event_id, order_id, symbol, event, side, qty, price FROM trade_updates WHERE event = 'fill'"
                ).to_pylist()
                assert rows == [{"event_id": fill_id(ORDER, "10"), "order_id": ORDER, "symbol": "AAPL", "event": "fill",
                                 "side": "buy", "qty": 10.0, "price": 189.51}]
                assert _scalar(client, "SELECT count(*) FROM ledger.events WHERE type = 'TradeUpdated'") == 2
                assert client.status().counters.get("duplicates_dropped", 0) >= 1  # the second copy came, and was dropped
            finally:
                client.close()
        finally:
            if live.proc is not None and live.proc.poll() is None:
                live.stop()
            ledger.stop()
    assert SECRET not in (home.logs / "live_stream.log").read_text()


def test_a_fill_while_the_stream_was_down_is_journaled_after_the_reconnect(
    home: Home, monkeypatch: pytest.MonkeyPatch, alpaca_env: ReplayServer,
) -> None:
    """The trade-updates stream drops; the fill is executed before it is listening again, so it never comes
    on the stream. The reconciliation after the reconnect journals it, once."""
    rest = alpaca_env
    drop, listen_again = threading.Event(), threading.Event()
    scripts = {"/stream": [fills_session(before_updates=drop, close_after=True),
                           fills_session(before_listening=listen_again)]}
    with FakeAlpaca(scripts) as ws:
        monkeypatch.setenv("OH_ALPACA_TRADING_STREAM_URL", f"{ws.url}/stream")
        ledger = Service(home, "ledger").start()
        live = Service(home, "live_stream")
        try:
            wait_for_ledger(home)
            live.start()
            wait_for_heartbeat(home, "live_stream")
            assert run_oh("live", "start", "--provider", "alpaca", "--no-stocks", "--no-options").returncode == 0
            wait_until(lambda: _fills_connected(home), what="the fills stream listening")
            before_drop = datetime.now(UTC)
            drop.set()
            wait_until(lambda: ws.connections["/stream"] == 2, what="the SDK reconnecting")
            asked = len(rest.hits("alpaca-trading", FILLS))
            rest.add_route("alpaca-trading", FILLS, "v2_account_activities_FILL_AAPL_fill.json")
            listen_again.set()
            client = ControlClient(home)
            try:
                wait_until(lambda: _scalar(client, "SELECT count(*) FROM trade_updates") == 1, timeout=60,
                           what="the missed fill journaled after the reconnect")
                assert len(rest.hits("alpaca-trading", FILLS)) > asked
                assert _scalar(client, "SELECT event_id FROM trade_updates") == fill_id(ORDER, "10")
            finally:
                client.close()
        finally:
            if live.proc is not None and live.proc.poll() is None:
                live.stop()
            ledger.stop()
    watermark = datetime.fromisoformat(json.loads((home.state / STATE_FILE).read_text())["after"])
    assert watermark > before_drop  # moved up to the reconnect, as its reconciliation was journaled
