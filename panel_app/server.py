"""`oh ui`: serve every page with one Bokeh/Tornado server, one live hub and one query client.

The process heartbeats as service `ui` (so `oh up` and `oh status` see it like any worker), logs
to `OH_HOME/logs/ui.log`, and stops cleanly on SIGTERM/SIGINT. It serves Bokeh/Panel resources
itself (no CDN: it works offline), only the bundles the pages use (not Bokeh's WebGL and MathJax ones; the
ES-module shim, 38 KB, only on a page whose document holds an ES-module component: the Live page's JSComponents
load through it, no other page has one), and the dashboard's own stylesheet at /oh-static/ (panel_app/static;
Tornado's StaticFileHandler: its versioned URL is cached by the browser for good).

Who may connect (`access_for`): the dashboard binds 127.0.0.1 by default. Any other address is
refused unless a login is on: a password (Panel's own basic-auth login page; the password comes from
a file or the environment, never the command line) or OAuth (Panel's providers, keys from Panel's
PANEL_OAUTH_* variables). Websocket connections are accepted only from the origins the dashboard is
served at (`allow_websocket_origin`: exactly host:port, plus the names given with `--origin`), so a
page on another site cannot drive a session even when the trader's browser can reach the server.
The Live page's marks channel (`/oh-live`, panel_app.live_channel) is a second websocket door under
the same rule: those origins, the same login cookie, and a token that only a live page session of
this server hands out (dead when the session ends).

Start-up objects are frozen (`gc.freeze()`, Python's own switch for long-running servers): the
modules, classes and caches alive once the server is built (about 190,000 objects) move to a permanent
generation that no garbage collection walks again. Panel runs a full `gc.collect()` after each closed
session's document is destroyed, on the event loop every page shares; without the freeze each one took
0.6-0.8 s at load 15-30 (it walked every object of pandas, pyarrow, Bokeh and Panel), with it a few ms.

A browser tab that closes while the server writes to it makes Tornado fail that write with
`WebSocketClosedError`; Panel cancels the document's pending writes without reading their result, so
asyncio would log each as "Task exception was never retrieved" with a traceback. `quiet_closed_tabs`
installs the event loop's exception handler that logs those as one debug line (anything else goes
to asyncio's default handler, traceback and all).
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import secrets
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus.home import Home

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")
LEAN_COMPONENTS_DROPPED = ("bokeh-gl", "bokeh-mathjax")  # no page draws with WebGL or typesets math
ESM_EXTENSION, ESM_MODULE = "oh-esm", "panel.models.esm"  # the ES-module components' models (and their shim)
LOGIN_USER = "trader"  # the login page's hidden user name: the login is the password alone
LOGIN_TEMPLATE = Path(__file__).parent / "templates" / "login.html"
OAUTH_PROVIDERS = ("auth0", "azure", "bitbucket", "generic", "github", "gitlab", "google", "okta")


class AccessRefused(ValueError):
    """The dashboard will not serve this way; the message (one line) says how to do it safely."""


@dataclass(frozen=True)
class Access:
    """How browsers get in: the password of the login page or an OAuth provider (or neither, on loopback),
    and the websocket origins allowed."""

    origins: tuple[str, ...]
    password: str | None = None
    oauth_provider: str | None = None

    @property
    def login(self) -> str:
        """The login in words, for the log."""
        if self.password is not None:
            return "password login"
        if self.oauth_provider:
            return f"OAuth login ({self.oauth_provider})"
        return "no login"


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origins(host: str, port: int, extra: tuple[str, ...] = ()) -> list[str]:
    """The websocket origins (host:port) a browser may load the dashboard from: the served address (both
    loopback names on loopback; the machine's names on a wildcard address) and any `extra` ones."""
    if is_loopback(host):
        names = {host, "127.0.0.1", "localhost"}
    elif host in WILDCARD:
        names = {socket.gethostname(), socket.getfqdn()}
    else:
        names = {host}
    found = {f"{name.lower()}:{port}" for name in names if name}
    found |= {o if ":" in o.rsplit("]", 1)[-1] else f"{o}:{port}" for o in (e.lower() for e in extra if e)}
    return sorted(found)


def read_password(path: str | None) -> str | None:
    """The login password: from the file at `path` (first line), else the OH_UI_PASSWORD variable, else None."""
    if path:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise AccessRefused(f"cannot read the password file {path}: {exc.strerror or exc}") from None
        password = text.splitlines()[0].strip() if text.strip() else ""
        if not password:
            raise AccessRefused(f"the password file {path} is empty: write the password on its first line")
        return password
    value = os.environ.get("OH_UI_PASSWORD")
    return value if value else None


def access_for(host: str, port: int, password: str | None = None, oauth_provider: str | None = None,
               extra_origins: tuple[str, ...] = ()) -> Access:
    """Who may connect, or AccessRefused: an address other than loopback needs a login."""
    if oauth_provider is not None:
        if oauth_provider not in OAUTH_PROVIDERS:
            raise AccessRefused(f"unknown OAuth provider {oauth_provider!r}: choose one of {', '.join(OAUTH_PROVIDERS)}")
        missing = [name for name in ("PANEL_OAUTH_KEY", "PANEL_OAUTH_SECRET") if not os.environ.get(name)]
        if missing:
            raise AccessRefused(f"OAuth with {oauth_provider} needs {' and '.join(missing)} in the environment "
                                "(the app's client id and secret; see docs/dashboard.md)")
    if not is_loopback(host) and password is None and oauth_provider is None:
        raise AccessRefused(
            f"refusing to serve the dashboard on {host or 'every address'} without a login: anyone who can reach it "
            "could read your data. Turn a login on with --password-file FILE (or the OH_UI_PASSWORD variable) or "
            "--oauth-provider NAME, or keep the default --host 127.0.0.1")
    return Access(tuple(origins(host, port, extra_origins)), password, oauth_provider)


def quiet_closed_tabs(loop: Any) -> None:
    """Log a write to a closed tab's websocket as one debug line instead of an asyncio traceback."""
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    def handler(loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, WebSocketClosedError | StreamClosedError):
            log.debug("a browser tab closed while the dashboard was writing to it (%s)", type(exc).__name__)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def esm_where_used(doc: Any) -> None:
    """Link the ES-module shim only if `doc` holds an ES-module component (a JSComponent's model).

    Panel links a model's `__javascript__` on every page once the model's module is imported (the Live page's
    JSComponents import `panel.models.esm`, whose files are the shim), unless the module is one of Panel's
    extensions and the document did not load that extension. So `panel.models.esm` is registered as an
    extension, and each document lists it only when one of its models is an ES-module component; every other
    extension module already imported stays listed, as it was linked before."""
    import panel as pn
    from panel.config import panel_extension
    from panel.models.esm import ReactiveESM

    panel_extension._imports.setdefault(ESM_EXTENSION, ESM_MODULE)
    loaded = pn.state._extensions_.get(doc)
    if loaded is None:
        loaded = pn.state._extensions_[doc] = [ext for ext, module in panel_extension._imports.items()
                                               if module in sys.modules and ext != ESM_EXTENSION]
    if ESM_EXTENSION not in loaded and any(isinstance(model, ReactiveESM) for model in doc.models):
        loaded.append(ESM_EXTENSION)


def lean_resources(server: Any) -> None:
    """Serve pages without Bokeh's WebGL and MathJax bundles (2 MB of JavaScript no page uses), and the
    ES-module shim only on pages that use it (`esm_where_used`)."""
    import panel as pn

    app = getattr(server, "_tornado", None)  # the BokehTornado application behind the Panel server
    if app is None:
        return
    full = app.resources

    def resources(absolute_url: Any = None) -> Any:
        # Panel asks for the resources with the session's document current, before it lists the page's files
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            esm_where_used(doc)
        bundle = full(absolute_url)
        return bundle.clone(components=[c for c in bundle.components if c not in LEAN_COMPONENTS_DROPPED])

    app.resources = resources


def build_server(home: Home, host: str, port: int, access: Access | None = None) -> Any:
    """The (not yet started) Panel server with every route, the live hub running."""
    import panel as pn
    from tornado.web import RedirectHandler

    from panel_app import context
    from panel_app.app import routes
    from panel_app.components import STATIC, STATIC_ROUTE
    from panel_app.live_channel import ROUTE as LIVE_CHANNEL
    from panel_app.live_channel import LiveSocket

    access = access or access_for(host, port)
    pn.extension(notifications=False)
    pn.config.design = None
    pn.config.browser_info = False  # nothing reads it; it was 7 messages from each page (and 7 answers) before its fill
    context.start(home)
    login: dict[str, Any] = {}
    if access.password is not None:
        # a {user: password} dict, not the bare string: Panel would read a string naming a file as a JSON user table
        login = {"basic_auth": {LOGIN_USER: access.password}, "basic_login_template": str(LOGIN_TEMPLATE)}
    elif access.oauth_provider:
        login = {"oauth_provider": access.oauth_provider}
    if login:
        login["cookie_secret"] = os.environ.get("PANEL_COOKIE_SECRET") or secrets.token_urlsafe(32)
    server = pn.serve(
        routes(), port=port, address=host, show=False, start=False, title="options-helper",
        websocket_origin=list(access.origins), verbose=False,
        extra_patterns=[(r"/", RedirectHandler, {"url": "/health"}), (LIVE_CHANNEL, LiveSocket)], static_dirs={STATIC_ROUTE: str(STATIC)},
        check_unused_sessions_milliseconds=5000, unused_session_lifetime_milliseconds=5000, **login,
    )
    lean_resources(server)
    return server


def free_port(host: str) -> int:
    """A port free on `host` right now (for `--port 0`)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(home: Home, host: str = "127.0.0.1", port: int = 5006, *, password: str | None = None,
          oauth_provider: str | None = None, extra_origins: tuple[str, ...] = ()) -> None:
    """Serve the dashboard until SIGTERM or SIGINT (`port` 0: any free port, logged and printed).

    Raises AccessRefused before binding anything when the address needs a login that is not on."""
    from services import logs
    from services.runtime import Heartbeater

    access_for(host, port or 1, password, oauth_provider, extra_origins)  # refuse before any side effect
    logs.configure("ui", home)
    for noisy in ("tornado.access", "bokeh.server.views.ws", "bokeh.server.tornado", "bokeh.server.server"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    port = port or free_port(host)
    access = access_for(host, port, password, oauth_provider, extra_origins)
    server = build_server(home, host, port, access)  # binds now: a busy port fails here, before any heartbeat
    gc.collect()
    gc.freeze()  # see the module docstring: later collections walk only what sessions create
    quiet_closed_tabs(server.io_loop.asyncio_loop)
    heartbeat = Heartbeater(home, "ui")
    heartbeat.state = "serving"
    heartbeat.start()

    def stop(*_: object) -> None:
        server.io_loop.add_callback_from_signal(server.io_loop.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    log.info("dashboard serving on http://%s:%d (home %s; %s; websocket origins %s)", host, port, home.root,
             access.login, ", ".join(access.origins))
    print(f"dashboard: http://{host}:{port}/health (Ctrl-C to stop)", flush=True)
    try:
        server.io_loop.start()
    finally:
        from panel_app import context

        heartbeat.stopped.set()
        server.stop()
        context.stop()
        log.info("dashboard stopped")
