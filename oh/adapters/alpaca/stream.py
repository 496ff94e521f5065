"""The Alpaca live feed: alpaca-py's StockDataStream, OptionDataStream and TradingStream, supervised.

Each stream runs alpaca-py's own loop (connect, authenticate, subscribe, consume, reconnect) in a
thread of its own. A thin subclass of each SDK class reports to a StreamMonitor what the SDK
otherwise only logs: connecting, subscribed (connected), an error frame (in words), a disconnect,
and each reconnect wait, whose length comes from oh.adapters.streams.Backoff (the SDK's
`_reconnect_delay` hook). Errors no retry can fix (bad keys, no entitlement for a feed, the symbol
limit) stop that stream in state `error` instead of hammering Alpaca. The silence watchdog's
`reconnect` closes the websocket from the stream's own event loop; the SDK then reconnects.

Callbacks take raw frames (`raw_data=True`: no pydantic model per quote), write the conflator and
return: they never block. Trade updates become TradeUpdated events with ids derived from the update
itself, so one delivered twice is journaled once. A fill's id is `activities.fill_id(order id, the
order's filled quantity after it)`, the same id the REST account activities give that fill, so a
fill seen on the stream and fetched again by the reconciliation (services/live/fills.py) is
journaled once. Each time the trade-updates stream is listening (at start and after every
reconnect), `on_fills_connected` is called; `fetch_fills` reads the fills since a time over REST.

Credentials come from oh.adapters.settings (environment, then $OH_HOME/config/alpaca.env) and never
appear in logs or status. Endpoints: data streams at $OH_ALPACA_STREAM_URL (default
wss://stream.data.alpaca.markets; /v2/<feed> for stocks, /v1beta1/<feed> for options); trade updates
at $OH_ALPACA_TRADING_STREAM_URL, else the trading API's host (APCA_API_BASE_URL) + /stream.
The SDK relies on private hooks of alpaca-py 0.44 (`_start_ws`, `_consume`, `_dispatch`, `close`,
`_reconnect_delay`); tests/integration/test_live_alpaca_streams.py drives them over a local socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bus.home import Home
from contracts import TradeUpdated
from oh.adapters.alpaca.activities import TRADE_NAMESPACE, fill_id
from oh.adapters.streams import Backoff, StreamMonitor, describe_error
from oh.domain.conflate import Conflator
from oh.domain.live_plan import LivePlan

log = logging.getLogger(__name__)

DATA_STREAM_URL = "wss://stream.data.alpaca.markets"
MISSING_KEYS = ("missing credentials: set APCA_API_KEY_ID and APCA_API_SECRET_KEY in the environment "
                "or in $OH_HOME/config/alpaca.env")
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _stamp(value: Any) -> float:
    """Seconds since the epoch of an Alpaca time: msgpack Timestamp, datetime, ISO text or number."""
    if value is None:
        return 0.0
    if hasattr(value, "to_unix"):
        return float(value.to_unix())
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", str(value))).timestamp()
    except ValueError:
        return 0.0


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def trade_update_event(msg: dict[str, Any]) -> TradeUpdated | None:
    """A TradeUpdated from one raw `trade_updates` frame ({"stream": ..., "data": {...}}); None if unreadable.

    qty is the execution's quantity for fills (the order's for other events); price the execution
    price (else the order's average fill price). A fill's id comes from the order id and its filled
    quantity after this execution, the id REST gives the same fill (activities.fill_id); any other
    update's from Alpaca's execution id or the event's timestamp. A repeated frame maps to the same event.
    """
    data = msg.get("data") or {}
    order = data.get("order") or {}
    event, order_id, symbol = data.get("event"), order.get("id"), order.get("symbol")
    if not (event and order_id and symbol):
        return None
    fill = event in ("fill", "partial_fill")
    qty = _float(data.get("qty")) if fill else None
    if qty is None:
        qty = _float(order.get("filled_qty") if fill else order.get("qty")) or 0.0
    price = _float(data.get("price")) if fill else None
    if fill and price is None:
        price = _float(order.get("filled_avg_price"))
    when = _stamp(data.get("timestamp"))
    key = data.get("execution_id") or data.get("timestamp") or ""
    event_id = fill_id(str(order_id), order.get("filled_qty")) if fill else None
    return TradeUpdated(
        id=event_id or uuid.uuid5(TRADE_NAMESPACE, f"alpaca:{order_id}:{event}:{key}").hex, order_id=str(order_id),
        symbol=str(symbol), event=str(event), side=str(order.get("side") or "unknown"), qty=qty, price=price,
        filled_at=datetime.fromtimestamp(when, UTC) if fill and when else None,
    )


def _observed(base: type) -> type:
    """A subclass of an alpaca-py stream class that reports to a StreamMonitor (see module doc)."""

    class Observed(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, monitor: StreamMonitor, backoff: Backoff,
                     redact: Callable[[str], str], on_connected: Callable[[], None] | None = None,
                     **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.oh_monitor = monitor
            self.oh_on_connected = on_connected
            self.oh_backoff = backoff
            self.oh_redact = redact
            self.oh_forced: str | None = None
            self.oh_frame_error: str | None = None  # an error frame's words, kept for the disconnect that may follow

        def _reconnect_delay(self, retries: int) -> float:
            wait = self.oh_backoff.delay(retries)
            self.oh_monitor.reconnecting(wait)
            return wait

        def _fail(self, words: str, retry: bool) -> None:
            self.oh_monitor.error(self.oh_redact(words), retry)

        async def _start_ws(self) -> None:
            self.oh_monitor.connecting()
            try:
                await super()._start_ws()
            except Exception as exc:
                words, retry = describe_error(exc)
                self._fail(words, retry)
                if not retry:
                    await self.stop_ws()
                raise

        async def _consume(self) -> Any:
            try:
                return await super()._consume()
            except Exception as exc:
                if self._should_run:
                    forced, self.oh_forced = self.oh_forced, None
                    before, self.oh_frame_error = self.oh_frame_error, None
                    words = forced or describe_error(exc)[0]
                    self._fail(f"{before}; then {words}" if before and not forced else words, True)
                raise

        async def _dispatch(self, msg: dict[str, Any]) -> None:
            kind = msg.get("T")
            if kind == "subscription" or msg.get("stream") == "listening":
                self.oh_frame_error = None
                self.oh_monitor.connected(_subscribed(msg))
                if self.oh_on_connected is not None:
                    self.oh_on_connected()
            elif kind == "error":
                words, retry = describe_error(str(msg.get("msg", "")), msg.get("code"))
                self.oh_frame_error = f"{words} (code {msg.get('code')})"
                self._fail(self.oh_frame_error, retry)
                if not retry:
                    await self.stop_ws()
                    return
            await super()._dispatch(msg)

        async def close(self) -> None:
            await super().close()
            if not self._should_run:
                self.oh_monitor.stopped()

    Observed.__name__ = Observed.__qualname__ = f"Observed{base.__name__}"
    return Observed


def _subscribed(msg: dict[str, Any]) -> str:
    if "stream" in msg:
        return "listening to " + ", ".join((msg.get("data") or {}).get("streams") or [])
    parts = [f"{len(msg[k])} {k}" for k in ("quotes", "trades") if msg.get(k)]
    return "subscribed to " + (", ".join(parts) or "nothing")


def trading_stream_url(trading_url: str) -> str:
    """The trade-updates websocket of a trading API base URL (https://host -> wss://host/stream)."""
    override = os.environ.get("OH_ALPACA_TRADING_STREAM_URL")
    if override:
        return override
    url = trading_url.rstrip("/")
    url = re.sub(r"^https://", "wss://", re.sub(r"^http://", "ws://", url))
    return f"{url}/stream"


class AlpacaFeed:
    """Alpaca's three streams for one plan (see module doc). Nothing connects before `start`."""

    def __init__(
        self, plan: LivePlan, conflator: Conflator, on_fill: Callable[[TradeUpdated], None], *,
        home: Home | None = None, stock_feed: str = "iex", options_feed: str = "indicative",
        backoff: Backoff | None = None, environ: dict[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.conflator = conflator
        self.on_fill = on_fill
        self.home = home or Home.from_env()
        self.stock_feed = stock_feed
        self.options_feed = options_feed
        self.backoff = backoff or Backoff()
        self.environ = environ
        self.monitors = [StreamMonitor("stocks", len(plan.stocks)), StreamMonitor("options", len(plan.options)),
                         StreamMonitor("fills", 1 if plan.fills else 0)]
        self.streams: dict[str, Any] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stopping = False
        self._redact: Callable[[str], str] = lambda text: text
        self._settings: Any = None
        self.on_fills_connected: Callable[[], None] | None = None  # the trade-updates stream is listening (again)

    def start(self) -> None:
        """Build the SDK streams and run each in its own thread; a missing key is an error, not a crash."""
        from oh.adapters.settings import ConfigError, load_settings

        try:
            settings = load_settings(self.home, self.environ)
        except ConfigError as exc:
            for monitor in self.monitors:
                monitor.error(f"bad Alpaca settings: {exc}", retry=False)
            return
        self._redact = settings.redact
        self._settings = settings
        wanted = [m for m in self.monitors if m.symbols]
        for monitor in self.monitors:
            if not monitor.symbols:
                monitor.stopped("nothing to stream")
        if not wanted:
            return
        if not settings.alpaca.has_credentials:
            for monitor in wanted:
                monitor.error(MISSING_KEYS, retry=False)
            return
        key, secret = settings.alpaca.key_id, settings.alpaca.secret_key
        for monitor in wanted:
            try:
                self.streams[monitor.name] = self._build(monitor, key, secret, settings)  # type: ignore[arg-type]
            except Exception as exc:  # e.g. a feed name alpaca-py refuses
                monitor.error(self._redact(f"cannot set up the {monitor.name} stream: {exc}"), retry=False)
        for name, stream in self.streams.items():
            thread = threading.Thread(target=self._run, args=(name, stream), name=f"live-alpaca-{name}", daemon=True)
            self._threads[name] = thread
            thread.start()

    def _build(self, monitor: StreamMonitor, key: str, secret: str, settings: Any) -> Any:
        from alpaca.data.enums import DataFeed, OptionsFeed
        from alpaca.data.live.option import OptionDataStream
        from alpaca.data.live.stock import StockDataStream
        from alpaca.trading.stream import TradingStream

        base = (self.environ or os.environ).get("OH_ALPACA_STREAM_URL", DATA_STREAM_URL).rstrip("/")
        common = {"monitor": monitor, "backoff": self.backoff, "redact": self._redact, "raw_data": True}
        if monitor.name == "stocks":
            stream = _observed(StockDataStream)(key, secret, feed=DataFeed(self.stock_feed),
                                                url_override=f"{base}/v2/{self.stock_feed}", **common)
            stream.subscribe_quotes(self._stock_quote, *self.plan.stocks)
            stream.subscribe_trades(self._stock_trade, *self.plan.stocks)
        elif monitor.name == "options":
            stream = _observed(OptionDataStream)(key, secret, feed=OptionsFeed(self.options_feed),
                                                 url_override=f"{base}/v1beta1/{self.options_feed}", **common)
            stream.subscribe_quotes(self._option_quote, *self.plan.options)
            stream.subscribe_trades(self._option_trade, *self.plan.options)
        else:
            url = trading_stream_url(settings.alpaca.trading_url)
            stream = _observed(TradingStream)(key, secret, paper=settings.alpaca.environment != "live",
                                              url_override=url, on_connected=self._fills_connected, **common)
            stream.subscribe_trade_updates(self._trade_update)
        return stream

    def _run(self, name: str, stream: Any) -> None:
        monitor = stream.oh_monitor
        try:
            stream.run()
        except Exception as exc:  # the SDK's loop should not raise; if it does, say so
            monitor.error(self._redact(f"the {name} stream crashed: {describe_error(exc)[0]}"), retry=False)
        if self._stopping:
            monitor.stopped()
        elif monitor.state != "error":
            monitor.error(monitor.last_error or "the stream ended by itself", retry=False)

    # -- callbacks: never block -----------------------------------------------------------------
    async def _stock_quote(self, q: dict[str, Any]) -> None:
        self._quote(q, "stock", self.monitors[0])

    async def _option_quote(self, q: dict[str, Any]) -> None:
        self._quote(q, "option", self.monitors[1])

    async def _stock_trade(self, t: dict[str, Any]) -> None:
        self._trade(t, "stock", self.monitors[0])

    async def _option_trade(self, t: dict[str, Any]) -> None:
        self._trade(t, "option", self.monitors[1])

    def _quote(self, q: dict[str, Any], kind: str, monitor: StreamMonitor) -> None:
        monitor.event()
        try:
            self.conflator.quote(q["S"], kind, q.get("bp") or 0.0, q.get("ap") or 0.0, q.get("bs") or 0.0,
                                 q.get("as") or 0.0, _stamp(q.get("t")))
        except (KeyError, TypeError, ValueError):
            self.conflator.drop()

    def _trade(self, t: dict[str, Any], kind: str, monitor: StreamMonitor) -> None:
        monitor.event()
        try:
            self.conflator.trade(t["S"], kind, t.get("p") or 0.0, _stamp(t.get("t")))
        except (KeyError, TypeError, ValueError):
            self.conflator.drop()

    async def _trade_update(self, msg: dict[str, Any]) -> None:
        self.monitors[2].event()
        event = trade_update_event(msg)
        if event is None:
            log.warning("unreadable trade update skipped")
            return
        self.on_fill(event)

    def _fills_connected(self) -> None:
        if self.on_fills_connected is not None:
            self.on_fills_connected()  # must not block: it runs on the stream's event loop

    def fetch_fills(self, after: datetime) -> list[TradeUpdated]:
        """The account's fills after `after` over REST (blocking; call from a thread of your own).

        Raises ProviderError (one line, credentials redacted), also when the feed has no usable settings.
        """
        from oh.adapters.alpaca.activities import fetch_fills
        from oh.adapters.base import ProviderError

        if self._settings is None or not self._settings.alpaca.has_credentials:
            raise ProviderError(f"alpaca: cannot read the account's fills: {MISSING_KEYS}")
        return fetch_fills(self._settings, after)

    # -- control from other threads ---------------------------------------------------------------
    def reconnect(self, name: str, reason: str) -> None:
        """Close stream `name`'s websocket from its loop; alpaca-py reconnects after a backoff wait."""
        stream = self.streams.get(name)
        loop = getattr(stream, "_loop", None)
        if stream is None or loop is None or not loop.is_running() or stream._ws is None:
            return
        stream.oh_forced = reason

        async def drop() -> None:
            if stream._ws is not None:
                await stream._ws.close()

        asyncio.run_coroutine_threadsafe(drop(), loop)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every stream (close its socket at once, even mid-receive) and wait for the threads."""
        self._stopping = True
        for stream in self.streams.values():
            loop = getattr(stream, "_loop", None)
            if loop is None or not loop.is_running():
                stream._should_run = False
                stream._stop_stream_queue.put_nowait({"should_stop": True})
                continue

            async def halt(s: Any = stream) -> None:
                await s.stop_ws()
                if s._ws is not None:
                    await s._ws.close()

            try:
                asyncio.run_coroutine_threadsafe(halt(), loop).result(timeout)
            except Exception:  # the loop ended meanwhile
                pass
        for thread in self._threads.values():
            thread.join(timeout)
        for monitor in self.monitors:
            monitor.stopped(force=True)
