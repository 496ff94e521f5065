"""`oh ui`: serve the Panel dashboard (read-only; history through the ledger, live from the bus)."""

from __future__ import annotations

import errno

import typer

from bus.home import Home
from oh.cli.common import fail


def ui(
    host: str = typer.Option("127.0.0.1", help="Address to listen on. Loopback by default; any other address "
                                                "needs a login (--password-file or --oauth-provider)."),
    port: int = typer.Option(5006, envvar="OH_UI_PORT",
                             help="Port to listen on (0 picks a free one and prints it)."),
    password_file: str | None = typer.Option(
        None, "--password-file", envvar="OH_UI_PASSWORD_FILE",
        help="Turn the login page on: the password is the file's first line (or set OH_UI_PASSWORD). "
             "Never pass a password on the command line."),
    oauth_provider: str | None = typer.Option(
        None, "--oauth-provider", help="Turn an OAuth login on (github, google, ...; Panel's PANEL_OAUTH_KEY and "
                                       "PANEL_OAUTH_SECRET give the app's id and secret)."),
    origin: list[str] = typer.Option(
        [], "--origin", help="Another host[:port] browsers open the dashboard at (websocket origin); repeatable."),
) -> None:
    """Serve the dashboard: every page live from the bus; it never writes anything. Not financial advice."""
    if not 0 <= port < 65536:
        fail(f"--port must be between 0 and 65535, got {port}", 2)
    from panel_app.server import AccessRefused, read_password, serve

    try:
        password = read_password(password_file)
        serve(Home.from_env(), host=host, port=port, password=password, oauth_provider=oauth_provider,
              extra_origins=tuple(origin))
    except AccessRefused as exc:
        fail(str(exc), 2)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            fail(f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc} "
                 "(another `oh ui` running? choose another with --port or OH_UI_PORT)")
        fail(f"cannot serve the dashboard: {exc}")  # not the address: say what failed (a missing file names itself)
