"""alpaca-py's real stream classes against a local websocket server speaking Alpaca's protocol.

Only Alpaca's servers are simulated, at the network layer: `FakeAlpaca` listens on 127.0.0.1 and
plays recorded-shape sessions (msgpack frames for market data: connected, authenticated,
subscription ack, quotes and trades, error frames, a disconnect; JSON for the trading stream:
authorization, listening, trade_updates). alpaca-py's StockDataStream, OptionDataStream and
TradingStream connect to it through their url_override; everything of ours runs for real
(oh.adapters.alpaca.stream, oh.domain.conflate, the live_stream worker and the ledger in the last test).
The recorded messages are checked against alpaca-py's own models, so their shape is Alpaca's.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bus.control_client import ControlClient
from bus.home import Home
from bus.ticks import TickSubscriber, read_status
from contracts import TradeUpdated
from devtools.processes import Service, wait_for_heartbeat, wait_for_ledger
from oh.adapters.alpaca.stream import AlpacaFeed
from oh.adapters.streams import Backoff
from oh.domain.conflate import Conflator
from oh.domain.live_plan import LivePlan
from tests.integration.conftest import run_oh

pytestmark = pytest.mark.integration

KEY, SECRET = "PKTESTKEY0000000000", "test-secret-never-shown-0123456789"
STOCKS = ("AAPL", "MSFT")
OPTIONS = ("AAPL300118C00250000", "MSFT300118P00400000")  # 2030-01-18: never expired in a test run
T0 = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)

Script = Callable[[ServerConnection, "FakeAlpaca"], Awaitable[None]]


def ts(seconds: float = 0.0) -> msgpack.Timestamp:
    """An Alpaca market-data time (msgpack timestamp extension) T0 + seconds."""
    return msgpack.Timestamp.from_unix(T0.timestamp() + seconds)


def stock_quote(symbol: str, bid: float, ask: float, t: float = 0.0) -> dict[str, Any]:
    return {"T": "q", "S": symbol, "bx": "V", "bp": bid, "bs": 2, "ax": "V", "ap": ask, "as": 3, "c": ["R"],
            "z": "C", "t": ts(t)}


def stock_trade(symbol: str, price: float, t: float = 0.0) -> dict[str, Any]:
    return {"T": "t", "S": symbol, "i": 52983525029461, "x": "V", "p": price, "s": 100, "c": ["@"], "z": "C",
            "t": ts(t)}


def option_quote(symbol: str, bid: float, ask: float, t: float = 0.0) -> dict[str, Any]:
    return {"T": "q", "S": symbol, "t": ts(t), "bx": "C", "bp": bid, "bs": 10, "ax": "X", "ap": ask, "as": 15, "c": "A"}


def option_trade(symbol: str, price: float, t: float = 0.0) -> dict[str, Any]:
    return {"T": "t", "S": symbol, "t": ts(t), "x": "C", "p": price, "s": 1, "c": "I"}


def trade_update(event: str, qty: str | None, price: str | None, execution: str | None) -> dict[str, Any]:
    """A trade_updates frame as Alpaca's trading stream sends it (strings for numbers, nanosecond times)."""
    order = {
        "id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "client_order_id": "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4",
        "created_at": "2026-11-23T15:29:59.895311Z", "updated_at": "2026-11-23T15:30:00.100312Z",
        "submitted_at": "2026-11-23T15:29:59.891622Z", "filled_at": None, "expired_at": None, "canceled_at": None,
        "failed_at": None, "replaced_at": None, "replaced_by": None, "replaces": None,
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "symbol": "AAPL", "asset_class": "us_equity",
        "notional": None, "qty": "10", "filled_qty": qty or "0", "filled_avg_price": price, "order_class": "",
        "order_type": "limit", "type": "limit", "side": "buy", "time_in_force": "day", "limit_price": "189.55",
        "stop_price": None, "status": "filled" if event == "fill" else "new", "extended_hours": False, "legs": None,
        "trail_percent": None, "trail_price": None, "hwm": None,
    }
    data: dict[str, Any] = {"event": event, "order": order, "timestamp": "2026-11-23T15:30:00.100312345Z"}
    if execution:
        data |= {"execution_id": execution, "position_qty": qty, "price": price, "qty": qty}
    return {"stream": "trade_updates", "data": data}


class FakeAlpaca:
    """A websocket server on 127.0.0.1 playing one script per connection and path (the last repeats)."""

    def __init__(self, scripts: dict[str, list[Script]]) -> None:
        self.scripts = scripts
        self.connections: dict[str, int] = defaultdict(int)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0
        self.server: Any = None

    def __enter__(self) -> FakeAlpaca:
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _serve(self) -> int:
        self.server = await serve(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path
        n = self.connections[path]
        self.connections[path] += 1
        scripts = self.scripts.get(path)
        if not scripts:
            await ws.close(1008, "no such stream")
            return
        try:
            await scripts[min(n, len(scripts) - 1)](ws, self)
        except ConnectionClosed:
            pass

    async def recv_msgpack(self, ws: ServerConnection, path: str) -> dict[str, Any]:
        message = msgpack.unpackb(await ws.recv())
        self.received[path].append(message)
        return message


def pack(*frames: dict[str, Any]) -> bytes:
    return msgpack.packb(list(frames))


def data_session(*batches: list[dict[str, Any]], auth_error: dict[str, Any] | None = None,
                 then: str = "hold") -> Script:
    """A market-data session: connected, auth, subscription ack, the batches, then hold, close or repeat."""

    async def script(ws: ServerConnection, server: FakeAlpaca) -> None:
        path = ws.request.path
        await ws.send(pack({"T": "success", "msg": "connected"}))
        await server.recv_msgpack(ws, path)
        if auth_error is not None:
            await ws.send(pack(auth_error))
            await ws.wait_closed()
            return
        await ws.send(pack({"T": "success", "msg": "authenticated"}))
        sub = await server.recv_msgpack(ws, path)
        await ws.send(pack({"T": "subscription", "trades": sub.get("trades", []), "quotes": sub.get("quotes", []),
                            "bars": [], "updatedBars": [], "dailyBars": [], "statuses": [], "lulds": [],
                            "corrections": sub.get("trades", []), "cancelErrors": sub.get("trades", [])}))
        for batch in batches:
            await ws.send(pack(*batch))
        if then == "close":
            await ws.close(1000, "bye")
            return
        if then == "repeat":  # keep the stream busy: the last batch again every 0.2 s
            while True:
                await asyncio.sleep(0.2)
                await ws.send(pack(*batches[-1]))
        await ws.wait_closed()  # "hold": connected, nothing more

    return script


def trading_session(*updates: dict[str, Any], authorized: bool = True) -> Script:
    """The trading stream: JSON authorization, listening ack, then the trade updates (binary frames)."""

    async def script(ws: ServerConnection, server: FakeAlpaca) -> None:
        auth = json.loads(await ws.recv())
        server.received["/stream"].append(auth)
        status = "authorized" if authorized else "unauthorized"
        await ws.send(json.dumps({"stream": "authorization", "data": {"action": "authenticate", "status": status}}).encode())
        if not authorized:
            await ws.wait_closed()
            return
        listen = json.loads(await ws.recv())
        server.received["/stream"].append(listen)
        await ws.send(json.dumps({"stream": "listening", "data": {"streams": ["trade_updates"]}}).encode())
        for update in updates:
            await ws.send(json.dumps(update).encode())
        await ws.wait_closed()

    return script


def environ(server: FakeAlpaca, keys: bool = True) -> dict[str, str]:
    env = {"APCA_API_BASE_URL": f"http://127.0.0.1:{server.port}", "OH_ALPACA_STREAM_URL": server.url}
    if keys:
        env |= {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
    return env


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Feed:
    """An AlpacaFeed on a plan, with its conflator and the fills it emitted."""

    def __init__(self, home: Home, server: FakeAlpaca, *, keys: bool = True, stock_feed: str = "iex",
                 stocks: tuple[str, ...] = STOCKS, options: tuple[str, ...] = OPTIONS, fills: bool = True) -> None:
        self.plan = LivePlan(provider="alpaca", stocks=stocks, options=options, fills=fills)
        self.conflator = Conflator({s: "stock" for s in stocks} | {s: "option" for s in options})
        self.fills: list[TradeUpdated] = []
        self.feed = AlpacaFeed(self.plan, self.conflator, self.fills.append, home=home, stock_feed=stock_feed,
                               backoff=Backoff(base=0.05, cap=0.2), environ=environ(server, keys))
        self.monitor = {m.name: m for m in self.feed.monitors}

    def __enter__(self) -> Feed:
        self.feed.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.feed.stop()


def test_recorded_messages_have_alpacas_shape() -> None:
    """The recorded frames parse with alpaca-py's own models (so the server speaks Alpaca, not our guess)."""
    from alpaca.data.models import Quote, Trade
    from alpaca.trading.models import TradeUpdate

    for raw in (stock_quote("AAPL", 189.5, 189.52), option_quote(OPTIONS[0], 12.3, 12.5)):
        quote = Quote(raw["S"], dict(raw, t=raw["t"].to_datetime()))
        assert quote.ask_price > quote.bid_price > 0
    for raw in (stock_trade("AAPL", 189.51), option_trade(OPTIONS[0], 12.4)):
        assert Trade(raw["S"], dict(raw, t=raw["t"].to_datetime())).price > 0
    update = TradeUpdate(**trade_update("fill", "10", "189.51", "9ce1bb53-4ef1-4d0c-a3d9-3cde0e5a2e45")["data"])
    assert update.event == "fill" and update.price == 189.51 and update.order.symbol == "AAPL"


def test_quotes_trades_fills_an_error_frame_and_a_reconnect(home: Home) -> None:
    first = [[stock_quote("AAPL", 189.50, 189.52), stock_quote("MSFT", 401.10, 401.20)],
             [stock_trade("AAPL", 189.51, 0.5)],
             [{"T": "error", "code": 407, "msg": "slow client"}]]
    second = [[stock_quote("AAPL", 190.00, 190.04, 2.0)]]
    fill_id = "9ce1bb53-4ef1-4d0c-a3d9-3cde0e5a2e45"
    scripts = {
        "/v2/iex": [data_session(*first, then="close"), data_session(*second)],
        "/v1beta1/indicative": [data_session([option_quote(OPTIONS[0], 12.30, 12.50),
                                              option_quote(OPTIONS[1], 8.10, 8.40)],
                                             [option_trade(OPTIONS[0], 12.40, 1.0)])],
        "/stream": [trading_session(trade_update("new", None, None, None),
                                    trade_update("fill", "10", "189.51", fill_id))],
    }
    with FakeAlpaca(scripts) as server, Feed(home, server) as f:
        wait_until(lambda: (q := f.conflator.latest("AAPL")) is not None and q.bid == 190.00, what="AAPL after reconnect")
        wait_until(lambda: (q := f.conflator.latest(OPTIONS[0])) is not None and q.last == 12.40, what="option trade")
        wait_until(lambda: len(f.fills) == 2, what="two trade updates")
        wait_until(lambda: all(f.monitor[n].state == "connected" for n in ("stocks", "options", "fills")),
                   what="every stream connected")
        aapl, msft, call = (f.conflator.latest(s) for s in ("AAPL", "MSFT", OPTIONS[0]))
        assert (aapl.bid, aapl.ask, aapl.last, aapl.kind) == (190.00, 190.04, 189.51, "stock")  # type: ignore[union-attr]
        assert aapl.ts_feed == pytest.approx(T0.timestamp() + 2.0)  # type: ignore[union-attr]
        assert (msft.bid, msft.ask) == (401.10, 401.20)  # type: ignore[union-attr]
        assert (call.bid, call.ask, call.last, call.kind) == (12.30, 12.50, 12.40, "option")  # type: ignore[union-attr]
        new, fill = f.fills
        assert (new.event, new.side, new.qty, new.price, new.filled_at) == ("new", "buy", 10.0, None, None)
        assert (fill.event, fill.symbol, fill.qty, fill.price) == ("fill", "AAPL", 10.0, 189.51)
        assert fill.filled_at is not None and fill.filled_at.tzinfo is not None
        stocks = f.monitor["stocks"]
        assert server.connections["/v2/iex"] == 2 and stocks.reconnects >= 1
        assert stocks.last_error is not None and "slow client" in stocks.last_error
        # what the SDK sent: our keys, and exactly the planned symbols
        auth, sub = server.received["/v2/iex"][:2]
        assert auth == {"action": "auth", "key": KEY, "secret": SECRET}
        assert sorted(sub["quotes"]) == sorted(STOCKS) and sorted(sub["trades"]) == sorted(STOCKS)
        assert sorted(server.received["/v1beta1/indicative"][1]["quotes"]) == sorted(OPTIONS)
        assert server.received["/stream"][1] == {"action": "listen", "data": {"streams": ["trade_updates"]}}
        texts = [str(m.health()) for m in f.feed.monitors]
    assert all(SECRET not in text and KEY not in text for text in texts)
    assert {m.state for m in f.feed.monitors} == {"stopped"}


def test_a_repeated_trade_update_maps_to_the_same_event(home: Home) -> None:
    """Alpaca may deliver a trade update again after a reconnect: same id, so the ledger journals it once."""
    fill = trade_update("fill", "10", "189.51", "9ce1bb53-4ef1-4d0c-a3d9-3cde0e5a2e45")
    with FakeAlpaca({"/stream": [trading_session(fill, fill)]}) as server, \
            Feed(home, server, stocks=(), options=()) as f:
        wait_until(lambda: len(f.fills) == 2, what="both deliveries")
        assert f.fills[0].id == f.fills[1].id
        assert f.monitor["stocks"].state == "stopped" and f.monitor["stocks"].detail == "nothing to stream"
        assert server.connections["/v2/iex"] == 0


def test_no_entitlement_stops_that_stream_with_the_reason_in_words(home: Home) -> None:
    denied = {"T": "error", "code": 409, "msg": "insufficient subscription"}
    scripts = {"/v2/sip": [data_session(auth_error=denied)],
               "/v1beta1/indicative": [data_session([option_quote(OPTIONS[0], 12.3, 12.5)])],
               "/stream": [trading_session()]}
    with FakeAlpaca(scripts) as server, Feed(home, server, stock_feed="sip") as f:
        f.feed._threads["stocks"].join(30)
        assert not f.feed._threads["stocks"].is_alive()  # alpaca-py gave up, and so did we: no reconnect storm
        stocks = f.monitor["stocks"]
        assert stocks.state == "error" and "no entitlement" in (stocks.last_error or "")
        assert server.connections["/v2/sip"] == 1
        wait_until(lambda: f.conflator.latest(OPTIONS[0]) is not None, what="options still streaming")
        assert f.monitor["options"].state == "connected"


def test_connection_limit_is_retried_with_backoff(home: Home) -> None:
    limit = {"T": "error", "code": 406, "msg": "connection limit exceeded"}
    scripts = {"/v2/iex": [data_session(auth_error=limit), data_session([stock_quote("AAPL", 1.0, 1.1)])]}
    with FakeAlpaca(scripts) as server, Feed(home, server, options=(), fills=False) as f:
        wait_until(lambda: f.conflator.latest("AAPL") is not None, what="quote after the retry")
        stocks = f.monitor["stocks"]
        assert server.connections["/v2/iex"] == 2 and stocks.reconnects >= 1
        assert "connection limit exceeded" in (stocks.last_error or "")
        assert stocks.state == "connected"


def test_bad_keys_and_missing_keys(home: Home) -> None:
    with FakeAlpaca({"/stream": [trading_session(authorized=False)]}) as server:
        with Feed(home, server, stocks=(), options=()) as f:
            f.feed._threads["fills"].join(30)
            fills = f.monitor["fills"]
            assert fills.state == "error" and "authentication failed" in (fills.last_error or "")
            assert server.connections["/stream"] == 1
        with Feed(home, server, keys=False) as f:
            assert {m.state for m in f.feed.monitors} == {"error"}
            assert all("missing credentials" in (m.last_error or "") for m in f.feed.monitors)
            assert f.feed.streams == {}
        assert server.connections["/v2/iex"] == 0  # no keys: nothing connected at all


PORTFOLIO = {"positions": [
    {"type": "stock", "id": "aapl", "symbol": "AAPL", "quantity": 10, "cost_basis": 180.0},
    {"type": "option", "id": "aapl-call", "symbol": "AAPL", "expiry": "2030-01-18", "right": "call", "strike": 250,
     "quantity": 1, "cost_basis": 11.0},
    {"type": "option", "id": "msft-put", "symbol": "MSFT", "expiry": "2030-01-18", "right": "put", "strike": 400,
     "quantity": -1, "cost_basis": 9.0},
]}


def test_the_live_stream_worker_on_alpaca_journals_fills_and_reconnects_a_silent_stream(
    home: Home, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real ledger and live_stream processes against the local Alpaca: nothing connects before the
    start; quotes reach the tick channel; the fill lands in trade_updates; the options stream, mute
    after its subscription, is reconnected by the silence watchdog; stop stops everything."""
    (home.config / "portfolio.json").write_text(json.dumps(PORTFOLIO))
    fill_id = "9ce1bb53-4ef1-4d0c-a3d9-3cde0e5a2e45"
    scripts = {
        "/v2/iex": [data_session([stock_quote("AAPL", 189.50, 189.52), stock_quote("MSFT", 401.1, 401.2)],
                                 then="repeat")],
        "/v1beta1/indicative": [data_session()],  # subscribed, then mute
        "/stream": [trading_session(trade_update("new", None, None, None),
                                    trade_update("fill", "10", "189.51", fill_id))],
    }
    with FakeAlpaca(scripts) as server:
        for name, value in environ(server).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("OH_LIVE_SILENCE_SECONDS", "1")
        ledger = Service(home, "ledger").start()
        live = Service(home, "live_stream")
        try:
            wait_for_ledger(home)
            live.start()
            wait_for_heartbeat(home, "live_stream")
            idle = read_status(home, timeout=30)
            assert idle is not None and idle.state == "idle"
            assert sum(server.connections.values()) == 0  # idle means no network I/O

            subscriber = TickSubscriber(home)
            started = run_oh("live", "start", "--provider", "alpaca")
            assert started.returncode == 0, started.stderr
            wait_until(lambda: bool(subscriber.poll(100)) and "AAPL" in subscriber.quotes and "MSFT" in subscriber.quotes,
                       what="quotes on the tick channel")
            assert (subscriber.quotes["AAPL"].bid, subscriber.quotes["AAPL"].ask) == (189.50, 189.52)
            subscriber.close()

            client = ControlClient(home)
            try:
                wait_until(lambda: client.query("SELECT count(*) FROM trade_updates").column(0)[0].as_py() == 2,
                           what="both trade updates journaled")
                rows = client.query("SELECT event, symbol, side, qty, price FROM trade_updates ORDER BY event").to_pylist()
            finally:
                client.close()
            assert rows == [{"event": "fill", "symbol": "AAPL", "side": "buy", "qty": 10.0, "price": 189.51},
                            {"event": "new", "symbol": "AAPL", "side": "buy", "qty": 10.0, "price": None}]

            def options_reconnected() -> bool:
                status = read_status(home)
                stream = {s.name: s for s in status.streams} if status else {}
                return "options" in stream and stream["options"].reconnects >= 1 and \
                    "no data for 1s" in (stream["options"].last_error or "")

            wait_until(options_reconnected, what="the watchdog reconnecting the mute options stream")
            wait_until(lambda: server.connections["/v1beta1/indicative"] >= 2, what="a second options connection")
            def shown_connected() -> bool:
                shown = run_oh("live", "status", "--json")
                assert shown.returncode == 0 and SECRET not in shown.stdout and KEY not in shown.stdout
                streams = {s["name"]: s for s in json.loads(shown.stdout)["streams"]}
                return streams["stocks"]["state"] == streams["fills"]["state"] == "connected"

            wait_until(shown_connected, what="`oh live status` showing stocks and fills connected")

            assert run_oh("live", "stop").returncode == 0
            stopped = read_status(home)
            assert stopped is not None and stopped.state == "idle"
            assert {s.state for s in stopped.streams} == {"stopped"}
        finally:
            live.stop() if live.proc is not None else None
            ledger.stop()
    logged = (home.logs / "live_stream.log").read_text()
    assert SECRET not in logged and KEY not in logged
