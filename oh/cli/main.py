"""The `oh` command line. Commands import their heavy dependencies lazily, so `oh emit` starts fast."""

from __future__ import annotations

import typer

from oh.cli.data import db_app, query
from oh.cli.emit import emit_app
from oh.cli.export import export
from oh.cli.health import health as _health  # noqa: F401  (registers `oh db health`)
from oh.cli.journal import journal_app
from oh.cli.keys import keys_app
from oh.cli.live import live_app
from oh.cli.portfolio import portfolio_app
from oh.cli.replay import replay
from oh.cli.services import demo, down, status, up
from oh.cli.symbols import symbols_app
from oh.cli.ui import ui
from oh.cli.watchlists import watchlists_app

app = typer.Typer(
    name="oh",
    help="options-helper: a local, event-sourced data platform for an options trader. Not financial advice.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(up)
app.command()(down)
app.command()(status)
app.command()(demo)
app.command()(query)
app.command()(replay)
app.command()(ui)
app.command()(export)
app.add_typer(emit_app, name="emit")
app.add_typer(db_app, name="db")
app.add_typer(journal_app, name="journal")
app.add_typer(portfolio_app, name="portfolio")
app.add_typer(live_app, name="live")
app.add_typer(watchlists_app, name="watchlists")
app.add_typer(symbols_app, name="symbols")
app.add_typer(keys_app, name="keys")


def main() -> None:
    """Console-script entry point: files it writes are private; an unsafe home is one line and exit 2."""
    import sys

    from bus.home import HomeError, private_umask

    private_umask()
    try:
        app()
    except HomeError as exc:
        print(f"oh: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
