"""The live page's marks channel: one small websocket per tab, beside Bokeh's, that carries the changed cells.

Why a channel of its own: through Bokeh (a JSComponent's `_send_msg`) every marking waited for the
session's document lock and a next-tick callback, went through Bokeh's message framing and model-event
dispatch in the browser, and an acknowledgement of each message, handled in the session's document,
gated the next one: that round trip alone was ~100 ms median and 340-430 ms p99 (bench/live_browser,
issue #14.3). Here the marker hands each marking to the session's `Channel` from its own thread; the
server's event loop diffs it against what each of the tab's sockets was sent and writes one compact
JSON frame. No document, no lock. Flow control, so that a starved browser never builds a queue of old
frames (measured without it: 1-2 s behind within 10 s at load 30): the browser acknowledges each frame
once written and painted (`{"ack": n}`, panel_app.live_grid), and a socket may have WINDOW (`OH_LIVE_WINDOW`, default 1) frames
unacknowledged and one write under way (a second frame in flight only queued behind the first in a
starved browser: sent -> received 180 ms median against 40-80 ms with one, bench/live_browser); meanwhile markings only replace the newest rows, and the next
frame carries every cell that changed since, with its newest text. The marker marks only for a session
with a socket that can take a frame at once (`ready`); a write's end or an acknowledgement wakes it.
With no acknowledgement for ACK_TIMEOUT after the newest frame one more goes (never a stream).
The Bokeh model still carries the layout and the page's slower parts.

A cadence (`OH_LIVE_FRAME_MS`, FRAME_EVERY): a socket's turns also come that far apart, on the server's one grid
(`Outlet.wrote`: the multiples of the cadence on the monotonic clock, the same for every socket, so every tab's turn
comes at one instant and one marking made then serves them all; counted from the grid, not from the last write, so
the few ms a turn takes before its frame goes do not add up into longer gaps; a frame that went late takes the next
point after it), so at most one frame per cadence. The
browser's cost of a frame hardly depends on how much changed since the last one (at 2,000 quotes/s nearly
every row moves between any two frames: ~600 cells, ~35 ms of renderer CPU and ~10 ms of the gpu-process's
compositor on the benchmark's screen, bench/live_browser), so a tab that takes frames as fast as it
acknowledges them spends whatever CPU the machine gives it; the cadence bounds that. It costs the values
nothing in age: when a socket's turn comes (its timeout, an acknowledgement, a write's end) the newest
marking goes only if it is younger than `fresh` (the marker's own interval); an older one, made for another
tab, is replaced by a marking made then (`on_ready` wakes the marker and says whether it has new quotes to
mark, or is marking; if not, the newest one goes). The tabs' turns all open at one point of the grid: the first asks
the marker for a marking, and the others wait for that one (`_scheduled`, or the marker says one is under way).

Frames (server -> browser), JSON: `{"seq": n, "positions": part, "legs": part, "summary": {"html": ...},
"tr": [...]}` where a table's part is `{"rows": [[...], ...]}` (the full rows: the first frame of a
socket, a different set of rows, a resync) or `{"cells": [[row, column, text], ...]}`. The browser
writes a frame's cells as it arrives (text only) and acknowledges it; a gap in `seq` makes it ask for
the full rows. The only frames a browser may send are
`{"resync": n}` (give me the full rows) and `{"ack": n}` (n: a frame it was sent): anything else, or a
frame over MAX_CLIENT_FRAME bytes (Tornado's own `max_message_size` check), closes that socket and
nothing else.

Who may open one (`LiveSocket.get`, before the upgrade; a refusal is HTTP 403): the same rule as
the dashboard (panel_app.server): an Origin header must be one of the dashboard's websocket origins
(the same allow-list Bokeh's own socket uses; checked here for every request, also when the Origin
matches the Host header, which Tornado would let through); with a login on, the request must carry
the login cookie (Bokeh's `AuthRequestHandler`: the same auth provider as every page); and it must
name, in its subprotocol header (`oh-live, TOKEN`, the way Bokeh's socket passes its session token),
the token of a live page session of this server. Each live page session draws its own random token
(`secrets.token_urlsafe`) and hands it to its tab through its document; the token dies with the
session (`Channel.close`, on Bokeh's session-destroyed callback), which also closes its sockets. Each
socket is diffed against what it was sent (`Outlet`); a session has at most MAX_SOCKETS open (a
reconnect may come before the server noticed the old socket's end): one more closes the oldest.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from bokeh.server.util import check_allowlist
from bokeh.server.views.auth_request_handler import AuthRequestHandler
from tornado.web import HTTPError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from services.settings import env_int

if TYPE_CHECKING:
    from panel_app.live_marks import LiveMarks

log = logging.getLogger(__name__)

ROUTE = "/oh-live"  # the channel's path on the `oh ui` server
PROTOCOL = "oh-live"  # the subprotocol a page asks for; the second one it offers is its session's token
MAX_CLIENT_FRAME = 256  # bytes: the biggest frame a browser may send (`{"resync": n}` is ~20)
CLOSE_BAD_FRAME = 4400  # a frame that is not `{"resync": n}` or `{"ack": n}` (n a frame it was sent)
CLOSE_REPLACED = 4000  # a page's MAX_SOCKETS + 1st socket opened: the oldest closes (a reconnect before
# the server noticed the old one was gone)
MAX_SOCKETS = 4  # sockets open at once per page session
WINDOW = env_int("OH_LIVE_WINDOW", 1, 1)  # frames a socket may have unacknowledged (each is
# acknowledged once written); bench/live_browser at load 25-31: 1 gave p99 1.5-2.6 s, 2 gave 3.6 s
ACK_TIMEOUT = 5.0  # seconds: with no acknowledgement that long after the newest frame, one more goes out
FRAME_EVERY = env_int("OH_LIVE_FRAME_MS", 65, 0) / 1000.0  # seconds: the server's grid of turns, one frame
# per socket per turn at most (the cadence; 0: as fast as the tab acknowledges); see the module docstring and docs/live.md
# (65 ms with the canvas grid: feed -> DOM p99 98-107 ms for 104-111% of a core of chromium, three tabs, against
# 111-144 ms at 75 and the DOM grid's 112-123 ms at 100 for 117%; the quiet box, 2026-12-08)
CLOSE_SESSION_GONE = 4001  # the page's session ended: the token is dead


Sent = dict[str, Any]  # what one socket was sent, per role: a table's rows, a LiveHTML's text


class Carrier(Protocol):
    """The table whose frames carry a marking (panel_app.live_grid.PatchedTable): its role names its part of a
    frame; `frame` is what a socket lacks (None: nothing), `full_frame` every row, each given what it was sent."""

    role: str

    def frame(self, sent: Sent) -> dict[str, Any] | None: ...

    def full_frame(self, sent: Sent) -> dict[str, Any]: ...


class Outlet:
    """One socket's side of a channel: what it was sent, its frame numbers and whether a write is under way.
    `socket` is anything with Tornado's `write_message` and `close` (LiveSocket; a stand-in in tests)."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.sent: Sent = {}  # per role, what this socket was sent (Sent)
        self.seq = 0  # frames written
        self.acked = 0  # the newest frame the tab applied
        self.writing = False  # a frame is being written (its future is not done)
        self.sent_at: dict[int, float] = {}  # unacknowledged frame -> when it was written (monotonic)
        self.ack_rtt = 0.0  # seconds from writing the last acknowledged frame to its acknowledgement
        self.held_since = 0.0  # when new rows first waited for this socket (time.time(); 0: none wait)
        self.due = -1e9  # when this socket's next turn in the cadence opens (monotonic; see `wrote`)
        self.timer: Any = None  # the event loop's timeout that opens this socket's next turn, if one is set

    def wait(self) -> float | None:
        """Seconds until a frame may go (0.0: now): its turn in the cadence (`wrote`); None: not before an event
        (a write under way, or WINDOW frames unacknowledged: the write's end or the acknowledgement comes; with
        none acknowledged for ACK_TIMEOUT after the newest, one more may go, never a stream)."""
        if self.writing:
            return None
        now = time.monotonic()
        if self.seq - self.acked >= WINDOW:
            newest = self.sent_at.get(self.seq)
            if newest is not None and now - newest < ACK_TIMEOUT:
                return None
        return max(self.due - now, 0.0)

    def wrote(self, now: float, every: float) -> None:
        """A frame went at `now` (monotonic): this socket's next turn opens at the next point of the server's one grid
        (the multiples of `every` on the monotonic clock), the same for every socket of the server, so all the tabs'
        turns come at one instant and one marking, made then, serves them all.

        Each tab on a grid of its own (from its first frame) took, at its turn, a marking made up to `fresh` earlier
        for another tab: the quotes in it had waited that much longer before the frame went (the wait of a quote for
        its frame up to 84 ms at p99 instead of the cadence's 63, by the tabs' phases: a model of three tabs at 65 ms,
        bench/README.md), and a marking per tab's turn costs `oh ui` a marking each. A frame that went late (an
        acknowledgement came late, a resync) takes the next point after it: never a gap longer than a cadence, and at
        most one frame per point."""
        self.due = (math.floor(now / every + 1e-9) + 1) * every if every > 0 else now


class Channel:
    """One live page session's marks channel: its token, the newest marking and its tab's sockets.

    `offer` may be called from any thread; everything else runs on the server's event loop (`loop`:
    Tornado's IOLoop, whose `add_callback` is its one thread-safe method)."""

    def __init__(self, loop: Any, positions: Carrier, apply: Callable[[LiveMarks], None]) -> None:
        self.token = secrets.token_urlsafe(32)
        self.loop = loop
        self.positions = positions  # the carrier: its riders (legs, summary) travel in its frames
        self.apply = apply  # puts a marking's rows into the tables (on the event loop)
        self.on_ready: Callable[[], bool] | None = None  # called when a socket can take a frame again; True: a
        # fresh marking is on its way (the marker has new quotes to mark)
        self.frame_every = FRAME_EVERY  # seconds between the starts of a socket's frames, at least
        self.fresh = 0.0  # seconds: a marking this young goes as it is when a socket's turn comes; an older one waits
        # for a fresh marking. The interval of the marker that feeds the channel (LiveMarker.mark_every): its page
        # sets it when it wires `on_ready`
        self.outlets: dict[Any, Outlet] = {}  # socket -> its state, oldest first
        self.closed = False
        self.frames = 0  # frames written, every socket
        self.resets = 0  # full frames written
        self._latest: LiveMarks | None = None
        self._offered_at = 0.0
        self._applied_at = -1e9  # when the tables took the newest marking (monotonic)
        self._trace: tuple[float, ...] = ()
        self._scheduled = False
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- the marker's side (any thread)
    def ready(self) -> bool:
        """Whether a marking made now would leave at once: a socket is open and may take a frame now (no write under
        way, room in its window, its turn in the cadence come), no flush waits."""
        return not self.closed and not self._scheduled and any(self.can_send(o) for o in list(self.outlets.values()))

    def can_send(self, outlet: Outlet) -> bool:
        """Whether a frame may go to this socket now (its window, its write, its cadence)."""
        return outlet.wait() == 0.0

    def offer(self, result: LiveMarks) -> None:
        """Keep `result` as the newest marking and have the event loop send it (one pending flush at most)."""
        with self._lock:
            if self.closed:
                return
            self._latest = result
            self._offered_at = time.time()
            if self._scheduled:
                return
            self._scheduled = True
        self.loop.add_callback(self._flush)

    # ---------------------------------------------------------------- the event loop's side
    def _flush(self) -> None:
        with self._lock:
            self._scheduled = False
            result, offered_at = self._latest, self._offered_at
            self._latest = None
        if self.closed or result is None:
            return
        self.apply(result)
        self._applied_at = time.monotonic()
        self._trace = (*result.trace, offered_at) if result.trace else ()
        for outlet in list(self.outlets.values()):
            if self.can_send(outlet):
                self._send(outlet)
            else:  # the write's end, the acknowledgement or the socket's turn sends the newest rows
                outlet.held_since = outlet.held_since or offered_at

    def _send(self, outlet: Outlet) -> bool:
        """Write what this socket lacks, if anything (True: a frame went)."""
        cpu0 = time.thread_time()
        frame = self.positions.frame(outlet.sent)
        if frame is None:
            return False
        if self._trace and "cells" in frame[self.positions.role]:
            waited = time.time() - outlet.held_since if outlet.held_since else 0.0
            frame["tr"] = [*self._trace, waited, time.thread_time() - cpu0, outlet.ack_rtt, time.time()]
        outlet.held_since = 0.0
        self._write(outlet, frame)
        return True

    def resync(self, socket: Any) -> None:
        """Send this socket the full rows of every table (a new socket; the browser asked)."""
        outlet = self.outlets.get(socket)
        if outlet is None or self.closed:
            return
        self.resets += 1
        self._write(outlet, self.positions.full_frame(outlet.sent))

    def _write(self, outlet: Outlet, frame: dict[str, Any]) -> None:
        outlet.seq += 1
        self.frames += 1
        frame["seq"] = outlet.seq
        outlet.writing = True
        outlet.sent_at[outlet.seq] = now = time.monotonic()
        outlet.wrote(now, self.frame_every)
        try:
            future = outlet.socket.write_message(json.dumps(frame, separators=(",", ":")))
        except WebSocketClosedError:
            self.unbind(outlet.socket)
            return
        future.add_done_callback(lambda f: self._written(outlet, f))

    def _written(self, outlet: Outlet, future: Any) -> None:
        outlet.writing = False
        if future.cancelled() or future.exception() is not None:
            self.unbind(outlet.socket)
            return
        self._next(outlet)

    def acknowledged(self, socket: Any, seq: int) -> bool:
        """The tab applied frame `seq` and every one before (False: it never got that frame, a lie)."""
        outlet = self.outlets.get(socket)
        if outlet is None:
            return True
        if seq > outlet.seq:
            return False
        if seq > outlet.acked:
            sent = outlet.sent_at.get(seq)
            if sent is not None:
                outlet.ack_rtt = time.monotonic() - sent
            outlet.acked = seq
            outlet.sent_at = {s: at for s, at in outlet.sent_at.items() if s > seq}
            self._next(outlet)
        return True

    def _next(self, outlet: Outlet) -> None:
        """A write ended, an acknowledgement came or the socket's turn opened: send the newest marking if it is
        fresh; else have the marker make one (it comes through `_flush`), or send what there is when the marker
        has nothing newer. Not yet the socket's turn: a timeout brings it back here when it is."""
        if self.closed or self.outlets.get(outlet.socket) is not outlet:
            return
        wait = outlet.wait()
        if wait is None:
            return
        if wait > 0:
            if outlet.timer is None:
                outlet.timer = self.loop.call_later(wait, self._turn, outlet)
            return
        if self._scheduled:
            return  # a marking is on its way to this loop (`_flush` sends it)
        if time.monotonic() - self._applied_at < self.fresh and self._send(outlet):
            return  # the end of this frame's write comes back here
        if self.on_ready is not None and self.on_ready():
            return  # a fresh marking comes (`_flush`)
        self._send(outlet)

    def _turn(self, outlet: Outlet) -> None:
        outlet.timer = None
        self._next(outlet)

    def bind(self, socket: Any) -> None:
        """A tab's socket opened with this token: it gets the full rows. Beyond MAX_SOCKETS the oldest closes."""
        while len(self.outlets) >= MAX_SOCKETS:
            oldest = next(iter(self.outlets))
            self.unbind(oldest)
            oldest.close(CLOSE_REPLACED, "replaced by a newer socket of this page")
        self.outlets[socket] = Outlet(socket)
        self.resync(socket)
        if self.on_ready is not None:
            self.on_ready()

    def unbind(self, socket: Any) -> None:
        """A socket closed: forget it."""
        self.outlets.pop(socket, None)

    def close(self) -> None:
        """The session ended: the token is dead and the sockets close. Safe to call twice."""
        self.closed = True
        with _lock:
            _channels.pop(self.token, None)
        sockets, self.outlets = list(self.outlets), {}
        for socket in sockets:
            socket.close(CLOSE_SESSION_GONE, "the page's session ended")


_channels: dict[str, Channel] = {}
_lock = threading.Lock()


def open_channel(loop: Any, positions: Carrier, apply: Callable[[LiveMarks], None]) -> Channel:
    """A new channel for one page session, its token valid until `Channel.close`."""
    channel = Channel(loop, positions, apply)
    with _lock:
        _channels[channel.token] = channel
    return channel


def channel_for(token: str) -> Channel | None:
    """The open channel with this token, or None."""
    with _lock:
        return _channels.get(token)


def open_channels() -> int:
    """How many channels are open (tests, the log)."""
    with _lock:
        return len(_channels)


class LiveSocket(AuthRequestHandler, WebSocketHandler):
    """The channel's Tornado route (see the module docstring for who may open one)."""

    channel: Channel | None = None

    @property
    def max_message_size(self) -> int:  # Tornado closes the socket (1009) on a bigger frame
        return MAX_CLIENT_FRAME

    def _offered_token(self) -> str | None:
        offered = [p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        return offered[1] if len(offered) == 2 and offered[0] == PROTOCOL else None

    def _origin_allowed(self) -> bool:
        origin = self.request.headers.get("Origin")
        if origin is None:
            return True  # not a browser (browsers always send it); the token and the login still apply
        host = urlparse(origin).netloc.lower()
        return bool(host) and check_allowlist(host, self.application.websocket_origins)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not self._origin_allowed():
            log.warning("live channel refused: origin %r is not one of the dashboard's", self.request.headers.get("Origin"))
            raise HTTPError(403, "origin not allowed")
        if self.current_user is None:
            raise HTTPError(403, "login required")
        token = self._offered_token()
        channel = channel_for(token) if token else None
        if channel is None or channel.closed:
            raise HTTPError(403, "no live session with this token")
        self.channel = channel
        await super().get(*args, **kwargs)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return PROTOCOL if subprotocols and subprotocols[0] == PROTOCOL else None

    def check_origin(self, origin: str) -> bool:
        return self._origin_allowed()

    def open(self, *args: Any, **kwargs: Any) -> None:
        assert self.channel is not None
        if self.channel.closed:
            self.close(CLOSE_SESSION_GONE, "the page's session ended")
            return
        self.set_nodelay(True)
        self.channel.bind(self)

    def on_message(self, message: str | bytes) -> None:
        try:
            data = json.loads(message) if isinstance(message, str) else None
        except ValueError:
            data = None
        kind = next(iter(data)) if isinstance(data, dict) and len(data) == 1 else None
        number = data[kind] if kind in ("resync", "ack") else None  # type: ignore[index]
        if type(number) is not int or number < 0 or self.channel is None:
            self.close(CLOSE_BAD_FRAME, "bad frame")
            return
        if kind == "resync":
            self.channel.resync(self)
        elif not self.channel.acknowledged(self, number):
            self.close(CLOSE_BAD_FRAME, "acknowledged a frame it was never sent")

    def on_close(self) -> None:
        if self.channel is not None:
            self.channel.unbind(self)
