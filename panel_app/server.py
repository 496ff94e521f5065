"""`oh ui`: serve every page with one Bokeh/Tornado server, one live hub and one query client.

The process heartbeats as service `ui` (so `oh up` and `oh status` see it like any worker), logs
to `OH_HOME/logs/ui.log`, and stops cleanly on SIGTERM/SIGINT. It binds to 127.0.0.1 unless told
otherwise, and serves Bokeh/Panel resources itself (no CDN: it works offline).
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from bus.home import Home

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def origins(host: str, port: int) -> list[str]:
    """The websocket origins a browser may load the dashboard from."""
    names = {host, "127.0.0.1", "localhost"}
    return sorted(f"{name}:{port}" for name in names if name not in ("0.0.0.0", "::"))


def build_server(home: Home, host: str, port: int) -> Any:
    """The (not yet started) Panel server with every route, the live hub running."""
    import panel as pn
    from tornado.web import RedirectHandler

    from panel_app import context
    from panel_app.app import routes

    pn.extension("tabulator", notifications=False)
    pn.config.design = None
    context.start(home)
    ws_origins = origins(host, port) if host not in ("0.0.0.0", "::") else ["*"]
    return pn.serve(
        routes(), port=port, address=host, show=False, start=False, title="options-helper",
        websocket_origin=ws_origins, verbose=False,
        extra_patterns=[(r"/", RedirectHandler, {"url": "/health"})],
        check_unused_sessions_milliseconds=5000, unused_session_lifetime_milliseconds=5000,
    )


def free_port(host: str) -> int:
    """A port free on `host` right now (for `--port 0`)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(home: Home, host: str = "127.0.0.1", port: int = 5006) -> None:
    """Serve the dashboard until SIGTERM or SIGINT (`port` 0: any free port, logged and printed)."""
    from services import logs
    from services.runtime import Heartbeater

    logs.configure("ui", home)
    for noisy in ("tornado.access", "bokeh.server.views.ws", "bokeh.server.tornado", "bokeh.server.server"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if host not in LOOPBACK:
        log.warning("serving on %s: anyone who can reach this address can read your data (no login)", host)
    port = port or free_port(host)
    server = build_server(home, host, port)  # binds now: a busy port fails here, before any heartbeat
    heartbeat = Heartbeater(home, "ui")
    heartbeat.state = "serving"
    heartbeat.start()

    def stop(*_: object) -> None:
        server.io_loop.add_callback_from_signal(server.io_loop.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    log.info("dashboard serving on http://%s:%d (home %s)", host, port, home.root)
    print(f"dashboard: http://{host}:{port}/health (Ctrl-C to stop)", flush=True)
    try:
        server.io_loop.start()
    finally:
        from panel_app import context

        heartbeat.stopped.set()
        server.stop()
        context.stop()
        log.info("dashboard stopped")
