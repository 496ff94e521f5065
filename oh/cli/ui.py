"""`oh ui`: serve the Panel dashboard (read-only; history through the ledger, live from the bus)."""

from __future__ import annotations

import typer

from bus.home import Home
from oh.cli.common import fail


def ui(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default; the dashboard has no login)."),
    port: int = typer.Option(5006, envvar="OH_UI_PORT",
                             help="Port to listen on (0 picks a free one and prints it)."),
) -> None:
    """Serve the dashboard: every page live from the bus; it never writes anything. Not financial advice."""
    if not 0 <= port < 65536:
        fail(f"--port must be between 0 and 65535, got {port}", 2)
    from panel_app.server import serve

    try:
        serve(Home.from_env(), host=host, port=port)
    except OSError as exc:
        fail(f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc} "
             "(another `oh ui` running? choose another with --port or OH_UI_PORT)")
