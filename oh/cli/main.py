"""The `oh` command line. Commands import their heavy dependencies lazily, so `oh emit` starts fast.

Every bad argument (an unknown option, a value that is not one of a choice, a missing argument) is
one line on stderr and exit 2, like the commands' own checks (`oh.cli.common.fail`). `oh --version`
prints the version; `oh --install-completion` / `--show-completion` are typer's shell completion.
"""

from __future__ import annotations

import typer

from oh import __version__
from oh.cli.data import db_app, query
from oh.cli.demo import demo
from oh.cli.emit import emit_app
from oh.cli.export import export
from oh.cli.health import health as _health  # noqa: F401  (registers `oh db health`)
from oh.cli.journal import journal_app
from oh.cli.keys import keys_app
from oh.cli.live import live_app
from oh.cli.notify import notify_app
from oh.cli.portfolio import portfolio_app
from oh.cli.replay import replay
from oh.cli.services import down, status, up
from oh.cli.symbols import symbols_app
from oh.cli.ui import ui
from oh.cli.watchlists import watchlists_app

app = typer.Typer(
    name="oh",
    help="options-helper: a local, event-sourced data platform for an options trader. Not financial advice.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"oh {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit."),
) -> None:
    """options-helper: a local, event-sourced data platform for an options trader. Not financial advice."""


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
app.add_typer(notify_app, name="notify")

# click's usage error, whichever click typer ships with (it vendors its own since 0.2x)
UsageError = next(kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "UsageError")


def usage_line(error: Exception) -> str:
    """A click usage error as one line: `oh query: Invalid value for '--format' / '-f': 'x' is not one of ...`."""
    message = " ".join(error.format_message().replace("Value error, ", "").split())  # type: ignore[attr-defined]
    ctx = getattr(error, "ctx", None)
    where = ctx.command_path if ctx is not None and ctx.command_path else "oh"
    return f"{where}: {message} (`{where} --help`)"


def main() -> None:
    """Console-script entry point: files it writes are private; an unsafe home is one line and exit 2.

    On the way out the objects left are frozen (`gc.freeze`), so the interpreter skips the last garbage
    collection over them at shutdown: the process exits and the OS frees its memory. For the
    dashboard (`oh ui`, a heap of Bokeh and Panel objects) that collection took ~2 s of `oh down`.
    """
    import gc
    import sys

    from bus.errors import HomeError
    from bus.home import private_umask
    from oh.cli.common import say_error

    private_umask()
    try:
        code = app(prog_name="oh", standalone_mode=False)
    except HomeError as exc:
        print(f"oh: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is printed already
            raise SystemExit(0) from None
        say_error(usage_line(exc))
        raise SystemExit(2) from None
    except typer.Abort:
        raise SystemExit(130) from None
    finally:
        gc.freeze()
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
