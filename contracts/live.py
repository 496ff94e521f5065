"""The live tick channel: quotes and stream health, ephemeral and conflated (never journaled).

The `live_stream` worker binds a PUB socket at `Home.endpoint("ticks")` (see docs/live.md) and
sends two-frame messages `[topic, msgpack payload]`:

- topic `TOPIC_TICKS` (b"q"): a `TickBatch`, the newest quote of every symbol that changed since
  the previous batch (every few ms), or, once a second, a snapshot of every symbol's newest quote
  (`snapshot=True`) so a subscriber that joined late or lost a batch is whole again within a second;
- topic `TOPIC_STATUS` (b"s"): a `LiveStatus` every half second, idle or streaming: per-stream
  health (state, last event, reconnects, last error in words) and the conflation counters.

A subscriber that only wants health subscribes to b"s" alone (ZeroMQ filters at the publisher).
Batches carry a `seq` (per publisher process) so a subscriber can count what its high-water mark
dropped. These are not bus `Message`s: they are never journaled or replayed (invariant 6).
Times are float seconds since the epoch (UTC), cheap to produce and compare at thousands per second.
"""

from __future__ import annotations

from typing import Literal

import msgspec

LIVE_SCHEMA_VERSION = 1
TICKS_ENDPOINT = "ticks"  # Home.endpoint(TICKS_ENDPOINT)
TOPIC_TICKS = b"q"
TOPIC_STATUS = b"s"

QuoteKind = Literal["stock", "option"]
StreamState = Literal["stopped", "connecting", "connected", "reconnecting", "error"]
LiveState = Literal["idle", "streaming", "error"]


class Quote(msgspec.Struct, frozen=True, array_like=True):
    """The newest known price of one symbol (a merge of its last quote and its last trade).

    `symbol` is in the provider's form (stock ticker, or compact OCC for an option: what the
    subscription plan in oh.domain.live_plan lists). Prices and sizes of 0.0 mean "none yet" (the rule of
    oh.domain.pricing.mark_price: a non-positive side is absent). `ts_feed` is the source's time of the
    newest update (the exchange timestamp from Alpaca, the generation time in the sim feed);
    `ts_recv` is when live_stream received it. Encoded as an array (no field names) to keep
    batches small.
    """

    symbol: str
    kind: QuoteKind
    bid: float = 0.0
    ask: float = 0.0
    last: float = 0.0
    bid_size: float = 0.0
    ask_size: float = 0.0
    ts_feed: float = 0.0
    ts_recv: float = 0.0


class TickBatch(msgspec.Struct, frozen=True, tag="ticks", tag_field="type"):
    """Quotes published together: the symbols that changed since the last batch, or all (`snapshot`).

    `seq` counts batches of one publisher process from 1 (a gap = batches this subscriber lost);
    `ts_sent` is when the batch left live_stream (one stamp per batch, not per quote).
    """

    seq: int
    ts_sent: float
    snapshot: bool
    quotes: list[Quote]
    v: int = LIVE_SCHEMA_VERSION


class StreamHealth(msgspec.Struct, frozen=True):
    """One stream (`stocks`, `options` or `fills`) as its supervisor sees it.

    state: stopped | connecting | connected | reconnecting | error. `reconnects` counts reconnect
    attempts since the start; `next_retry_in` is the backoff left before the next one (seconds);
    `last_error` is in words (missing credentials, no entitlement for a feed, connection limit...).
    """

    name: str
    state: StreamState
    since: float
    last_event: float | None = None
    events: int = 0
    reconnects: int = 0
    next_retry_in: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    symbols: int = 0
    detail: str = ""


class LiveCounters(msgspec.Struct, frozen=True):
    """Conflation counters since the start: every update received, those superseded by a newer one
    before publication (conflated), those refused (dropped: malformed, or a symbol not planned),
    and what was published (batches, quotes in them)."""

    received: int = 0
    conflated: int = 0
    dropped: int = 0
    batches: int = 0
    quotes: int = 0
    fills: int = 0


class LiveStatus(msgspec.Struct, frozen=True, tag="status", tag_field="type"):
    """The live_stream worker's state, published every half second on topic b"s".

    `state` is idle (no start command, or stopped), streaming, or error (the start failed, e.g.
    the portfolio became unreadable; `last_error` says why). `command_id` is the StartLive being
    served; `resumed` is True when it was resumed after a restart (StartLive.keep_running).
    """

    seq: int
    ts: float
    pid: int
    state: LiveState
    provider: str | None = None
    portfolio: str | None = None
    command_id: str | None = None
    keep_running: bool = False
    resumed: bool = False
    started_at: float | None = None
    stocks: int = 0
    options: int = 0
    plan_warnings: list[str] = msgspec.field(default_factory=list)
    streams: list[StreamHealth] = msgspec.field(default_factory=list)
    counters: LiveCounters = msgspec.field(default_factory=LiveCounters)
    last_error: str | None = None
    tick_seq: int = 0
    v: int = LIVE_SCHEMA_VERSION


LiveMessage = TickBatch | LiveStatus

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(LiveMessage)


def encode_live(message: LiveMessage) -> bytes:
    """msgpack bytes of a tick batch or a status."""
    return _encoder.encode(message)


def decode_live(payload: bytes) -> LiveMessage:
    """Decode a tick-channel payload; raises msgspec.DecodeError (ValidationError) on a bad frame."""
    return _decoder.decode(payload)
