"""The live page's marks channel (`/oh-live`, panel_app.live_channel) is a door of its own; it keeps the dashboard's
access rule. Attacks tried against real `oh ui` processes: a socket with no token, a wrong one, a token in the
wrong place or spelling, the token of a tab that closed; a socket opened from another origin (many spellings),
with the token; with a login on, a socket without the login cookie; garbage and oversized frames from a socket
that holds a good token, which must close that socket and nothing else. Handshakes are plain HTTP requests with
the websocket headers (403 refused, 101 accepted); frames are sent from a real browser. The address rule
(loopback by default, a login anywhere else) is the server's, unchanged for this route on the same port:
tests/ui/test_dashboard_access.py. Waits are for conditions, never for time."""

from __future__ import annotations

import base64
import http.client
import os
from collections.abc import Iterator
from typing import Any

import pytest

from bus.home import Home
from devtools.browser import Stack
from oh.adapters.portfolio_file import save
from oh.adapters.sim.stream import sim_portfolio
from panel_app.live_channel import CLOSE_BAD_FRAME, CLOSE_SESSION_GONE, MAX_CLIENT_FRAME, PROTOCOL, ROUTE
from tests.ui.conftest import _needs_browser, live_stack
from tests.ui.test_dashboard_access import Ui, _signed_in, password_ui

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT = 60_000  # ms
# The channel token a live page's session handed to its tab, read from the tab's Bokeh document.
TOKEN_JS = """() => { for (const doc of (window.Bokeh ? Bokeh.documents : []))
  for (const model of doc.all_models) { const data = model.data;
    if (data && typeof data.token === 'string' && data.token) return data.token; }
  return null; }"""
# Open a socket on the channel from this page with `token`, send `frames` once open; the close code, or "open"
# when the socket is still open `settle` ms after the last frame went, and the frames it received.
ATTACK_JS = """async ([route, protocol, token, frames, settle]) => {
  const ws = new WebSocket('ws://' + location.host + route, [protocol, token]);
  const got = [];
  const closed = new Promise(done => { ws.onclose = e => done(e.code); });
  ws.onmessage = e => got.push(JSON.parse(e.data));
  const opened = await Promise.race([new Promise(done => { ws.onopen = () => done(true); }), closed.then(() => false)]);
  if (!opened) return {code: await closed, got, opened};
  for (const frame of frames) ws.send(frame.binary ? new Uint8Array(frame.binary) : frame.text);
  const code = await Promise.race([closed, new Promise(done => setTimeout(() => done('open'), settle))]);
  if (code === 'open') ws.close();
  return {code, got, opened};
}"""
# The feed times the positions grid shows (its rows' data-ts), to see that a tab keeps receiving marks.
SHOWN_JS = """() => { const find = (root) => { const h = root.querySelector('.oh-live-positions'); if (h) return h;
    for (const e of root.querySelectorAll('*')) { if (e.shadowRoot) { const f = find(e.shadowRoot); if (f) return f; } }
    return null; }; const host = find(document); if (!host || !host.shadowRoot) return [];
  return [...host.shadowRoot.querySelectorAll('[data-ts]')].map(e => e.dataset.ts); }"""


def handshake(port: int, token: str | None, origin: str | None = None, cookie: str = "",
              protocols: str | None = None) -> int:
    """The HTTP status of a websocket handshake on the channel (101 accepted, 403 refused): `protocols` is the
    Sec-WebSocket-Protocol header as sent (default: the channel's protocol and `token`)."""
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    if origin is not None:
        headers["Origin"] = origin
    if cookie:
        headers["Cookie"] = cookie
    offered = protocols if protocols is not None else (f"{PROTOCOL}, {token}" if token is not None else None)
    if offered is not None:
        headers["Sec-WebSocket-Protocol"] = offered
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", ROUTE, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def token_of(page: Any) -> str:
    """The channel token of the live page open in `page`, once its session handed it over."""
    page.wait_for_function(TOKEN_JS, timeout=WAIT)
    token = page.evaluate(TOKEN_JS)
    assert isinstance(token, str) and len(token) >= 40
    return token


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real ledger, live_stream and `oh ui` (no login, loopback) on a temp home with a small portfolio."""
    yield from live_stack(tmp_path_factory, "ui-live-channel", sim_portfolio(["AAPL", "SPY"], 6))


def open_live(chromium: Any, stack: Stack, query: str = "") -> tuple[Any, Any]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.goto(f"{stack.url}/live{query}")
    page.wait_for_selector(".oh-ready", state="attached", timeout=WAIT)
    return context, page


@pytest.fixture(scope="module")
def streaming(stack: Stack, chromium: Any) -> Iterator[tuple[Any, str]]:
    """A tab on the live page, streaming sim marks (its Start pressed), and its channel token."""
    context, page = open_live(chromium, stack, "?rate=200")
    page.locator(".oh-live-start button:not([disabled])").wait_for(timeout=WAIT)
    page.locator(".oh-live-start button").click()
    page.locator('.oh-live-health[data-state="streaming"]').wait_for(timeout=WAIT)
    page.wait_for_function("() => (" + SHOWN_JS + ")().some(ts => parseFloat(ts) > 0)", timeout=WAIT)
    yield page, token_of(page)
    context.close()


def keeps_receiving(page: Any) -> None:
    """The tab's positions grid shows newer quotes than it does now (its own socket still brings marks)."""
    before = page.evaluate(SHOWN_JS)
    page.wait_for_function("(before) => { const now = (" + SHOWN_JS + ")();"
                           " return now.length > 0 && now.some((ts, i) => ts !== before[i]); }", arg=before, timeout=WAIT)


# ---------------------------------------------------------------- the token
@pytest.mark.parametrize("offered", [
    None,  # no subprotocol at all
    PROTOCOL,  # the protocol without a token
    f"{PROTOCOL}, ",
    f"{PROTOCOL}, not-a-token",
    f"{PROTOCOL}, " + "A" * 43,  # a token's length and alphabet, not a session's
    "{token}",  # the token alone
    "bokeh, {token}",  # the token under Bokeh's protocol name
    "{token}, " + PROTOCOL,  # the two swapped
    f"{PROTOCOL}, {{token}}x",  # the token with a character more
    f"{PROTOCOL}, {{token_cut}}",  # ... or less
    f"{PROTOCOL}, {{token_upper}}",  # another case
    f"{PROTOCOL}, {{token}}, extra",  # a third protocol
    f"{PROTOCOL.upper()}, {{token}}",
])
def test_a_socket_without_its_pages_token_is_refused(stack: Stack, streaming: tuple[Any, str], offered: str | None) -> None:
    """Nobody reads marks without a page: the handshake must name, as the channel's second subprotocol, the token
    of a live page session of this server; every other spelling is refused at the handshake (403). The
    right one, from the dashboard's own origin, is accepted (101)."""
    _, token = streaming
    port = int(stack.url.rsplit(":", 1)[1])
    origin = stack.url
    if offered is None:
        assert handshake(port, None, origin) == 403
    else:
        spelled = offered.format(token=token, token_cut=token[:-1], token_upper=token.upper())
        assert handshake(port, None, origin, protocols=spelled) == 403
    assert handshake(port, token, origin) == 101


@pytest.mark.parametrize("origin", ["http://evil.example", "http://evil.example:{port}", "http://127.0.0.1.evil.example:{port}",
                                    "null", "http://127.0.0.1:1", "http://localhost.evil.example:{port}",
                                    "https://127.0.0.1:{port}.evil.example", "file://", "http://[::1]:{port}"])
def test_a_socket_from_another_origin_is_refused_even_with_the_token(
        stack: Stack, streaming: tuple[Any, str], origin: str) -> None:
    """A page on another site (or port) that got hold of a token still cannot open the channel: its Origin is not
    one of the dashboard's (the same allow-list as Bokeh's socket: 127.0.0.1 and localhost at the served port)."""
    _, token = streaming
    port = int(stack.url.rsplit(":", 1)[1])
    assert handshake(port, token, origin.format(port=port)) == 403
    assert handshake(port, token, f"http://localhost:{port}") == 101


def test_the_token_dies_with_its_tab_and_closes_its_sockets(stack: Stack, chromium: Any,
                                                             streaming: tuple[Any, str]) -> None:
    """When a tab closes, Bokeh destroys its session and the token with it: a socket opened with it later is refused,
    and a socket that was open on it (here from another tab that stole it) is closed by the server."""
    streaming_page, _ = streaming
    context, page = open_live(chromium, stack)
    token = token_of(page)
    port = int(stack.url.rsplit(":", 1)[1])
    assert handshake(port, token, stack.url) == 101
    streaming_page.evaluate("""([route, protocol, token]) => { window.__ohStolen = {code: null};
      const ws = new WebSocket('ws://' + location.host + route, [protocol, token]);
      ws.onopen = () => { window.__ohStolen.open = true; }; ws.onclose = e => { window.__ohStolen.code = e.code; }; }""",
                            [ROUTE, PROTOCOL, token])
    streaming_page.wait_for_function("() => window.__ohStolen.open === true", timeout=WAIT)
    context.close()
    streaming_page.wait_for_function("() => window.__ohStolen.code !== null", timeout=WAIT)
    assert streaming_page.evaluate("() => window.__ohStolen.code") == CLOSE_SESSION_GONE
    assert handshake(port, token, stack.url) == 403


# ---------------------------------------------------------------- frames from the browser
BAD_FRAMES = [
    {"text": "hello"}, {"text": ""}, {"text": "{}"}, {"text": "null"}, {"text": "[1, 2]"}, {"text": '{"resync": "1"}'},
    {"text": '{"resync": 1.5}'}, {"text": '{"resync": true}'}, {"text": '{"resync": 1, "more": 2}'}, {"text": '{"ack": 99999}'},
    {"text": '{"ack": -1}'}, {"text": '{"ack": "1"}'}, {"text": '{"ack": 1, "resync": 1}'},
    {"text": '{"resync": 1'}, {"binary": [0, 159, 146, 150, 255]},
    {"text": '{"resync": 1, "pad": "' + "x" * (2 * MAX_CLIENT_FRAME) + '"}'},  # over the size limit
    {"text": "x" * (1 << 20)},
]


@pytest.mark.parametrize("frame", BAD_FRAMES, ids=lambda f: (f.get("text") or "binary")[:24] or "empty")
def test_a_bad_frame_closes_that_socket_and_nothing_else(stack: Stack, streaming: tuple[Any, str],
                                                         frame: dict[str, Any]) -> None:
    """A socket holding a good token that sends anything but `{"resync": n}` or `{"ack": n}` (n a frame it was
    sent), or a frame over the size limit, is closed by the server (4400, or Tornado's 1009 "too big", 1006 for a sender still writing a megabyte); the
    page's own socket keeps bringing marks."""
    page, token = streaming
    result = page.evaluate(ATTACK_JS, [ROUTE, PROTOCOL, token, [frame], 20_000])
    assert result["opened"], "the page's own token was refused"
    if len(frame.get("text", "")) > MAX_CLIENT_FRAME:  # Tornado's own check; a megabyte's sender sees the abort
        assert result["code"] in (1009, 1006)
    else:
        assert result["code"] == CLOSE_BAD_FRAME
    keeps_receiving(page)


def test_a_resync_frame_gets_the_full_rows_and_the_socket_stays_open(stack: Stack, streaming: tuple[Any, str]) -> None:
    """The one frame a browser may send, `{"resync": n}`, is answered with the full rows of every table (the first
    frame of a socket is such a full frame too), and the socket stays open."""
    page, token = streaming
    result = page.evaluate(ATTACK_JS, [ROUTE, PROTOCOL, token, [{"text": '{"resync": 0}'}], 3_000])
    assert result["code"] == "open"
    full = [f for f in result["got"] if "rows" in f.get("positions", {})]
    assert len(full) >= 2 and all(len(f["positions"]["rows"]) == 6 for f in full)
    assert [f["seq"] for f in result["got"]] == list(range(1, len(result["got"]) + 1))


# ---------------------------------------------------------------- with a login
@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """`oh ui --password-file` on a fresh home (no ledger: the live page still opens, with its channel)."""
    _needs_browser()
    root = tmp_path_factory.mktemp("ui-live-channel-login")
    home = Home(root / "oh_home").ensure()
    save(home.config / "portfolio.json", sim_portfolio(["AAPL"], 3))
    yield from password_ui(home, root)


def test_with_a_login_a_socket_without_the_login_cookie_is_refused(guarded: Ui, chromium: Any) -> None:
    """With a password on, the channel wants the login cookie like every page: the right token without the cookie,
    with a forged or another server's cookie, is refused; with the cookie of a signed-in browser it is accepted."""
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{guarded.url}/live")
        page.locator("input[type=password]").fill("correct horse battery staple")
        with page.expect_navigation(timeout=WAIT):
            page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector(".oh-ready", state="attached", timeout=WAIT)
        token = token_of(page)
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies() if c["name"] == "user")
        assert cookie, "signing in set no login cookie"
        origin = guarded.url
        for forged in ("", "user=trader", 'user="2|1:0|10:1700000000|4:user|8:dHJhZGVy|' + "0" * 64 + '"',
                       "user=" + cookie.split("=", 1)[1][:-4] + "AAAA", "other=" + cookie.split("=", 1)[1]):
            assert handshake(guarded.port, token, origin, cookie=forged) == 403, forged
        assert handshake(guarded.port, token, origin, cookie=_signed_in(guarded)) == 101  # another signed-in browser
        assert handshake(guarded.port, token, origin, cookie=cookie) == 101
        assert handshake(guarded.port, token, "http://evil.example", cookie=cookie) == 403
        assert page.evaluate(ATTACK_JS, [ROUTE, PROTOCOL, token, [], 1_000])["code"] == "open"  # the tab's own way in
    finally:
        context.close()
