"""`oh watchlists ...`: named symbol sets in `$OH_HOME/config/watchlists.json` (see oh/watchlists.py).

`list` and `show` only read the file. `init`, `add`, `remove` and `sync-positions` are the only
commands that write it, atomically and only after the whole edited file validates; a command that
fails, or finds nothing to change, leaves the file untouched. Bad input exits 2 with one line.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bus.home import Home
from oh.adapters.watchlists import (
    DEFAULT_NAME,
    DEFAULT_WATCHLIST,
    POSITIONS_NAME,
    WatchlistError,
    add_symbols,
    load_watchlists,
    read_file,
    remove_symbols,
    save_watchlists,
    validate_name,
    watchlists_path,
)
from oh.cli.common import console, fail
from oh.domain.units import plural

watchlists_app = typer.Typer(help="Watchlists: named symbol sets ($OH_HOME/config/watchlists.json).",
                             no_args_is_help=True)


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


def _home() -> Home:
    return Home.from_env()


def _lists(home: Home) -> dict[str, list[str]]:
    """Every list (`default` included); a malformed file exits 2 naming the field."""
    try:
        return load_watchlists(home)
    except WatchlistError as exc:
        fail(str(exc), 2)


def _stored(home: Home) -> dict[str, list[str]]:
    """Only what the file defines (so `default` is written only when it was edited)."""
    try:
        return read_file(home) or {}
    except WatchlistError as exc:
        fail(str(exc), 2)


def _name(name: str) -> str:
    try:
        return validate_name(name)
    except WatchlistError as exc:
        fail(str(exc), 2)


def _symbols(words: list[str]) -> list[str]:
    """SYMBOLS... as words or comma lists (`AAPL MSFT` or `AAPL,MSFT`), upper-cased, unique, in order."""
    from oh.domain.symbols import BadSymbol, parse_symbols

    try:
        return parse_symbols(",".join(words))
    except BadSymbol as exc:
        fail(str(exc), 2)


def _save(home: Home, lists: dict[str, list[str]]) -> Path:
    try:
        return save_watchlists(home, lists)
    except WatchlistError as exc:
        fail(str(exc), 2)
    except OSError as exc:
        fail(f"{watchlists_path(home)}: cannot write: {exc.strerror or exc}", 1)


@watchlists_app.command("init")
def init(force: bool = typer.Option(False, "--force", help="Replace an existing watchlists file.")) -> None:
    """Create the watchlists file with the `default` list."""
    home = _home()
    path = watchlists_path(home)
    if path.exists() and not force:
        fail(f"{path} already exists; pass --force to replace it", 2)
    _save(home, {DEFAULT_NAME: list(DEFAULT_WATCHLIST)})
    _say(f"created {path} with {DEFAULT_NAME}: {', '.join(DEFAULT_WATCHLIST)}")


@watchlists_app.command("list")
def list_watchlists() -> None:
    """Every watchlist with its size (read-only)."""
    from rich.table import Table

    home = _home()
    stored = _stored(home)
    table = Table(title=f"Watchlists ({watchlists_path(home)})", title_justify="left")
    for column in ("name", "symbols", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for name, symbols in _lists(home).items():
        label = name if name in stored else f"{name} (built in)"
        table.add_row(label, ", ".join(symbols), str(len(symbols)))
    console.print(table)


@watchlists_app.command("show")
def show(name: str = typer.Argument(..., help="The watchlist's name.")) -> None:
    """The symbols of one watchlist, one per line (read-only)."""
    lists = _lists(_home())
    if name not in lists:
        fail(f"no watchlist named {name!r} (known: {', '.join(lists)})", 2)
    for symbol in lists[name]:
        typer.echo(symbol)


@watchlists_app.command("add")
def add(
    name: str = typer.Argument(..., help="The watchlist (created when new)."),
    symbols: list[str] = typer.Argument(..., help="Tickers, e.g. AAPL MSFT (or AAPL,MSFT)."),
) -> None:
    """Add symbols to a watchlist, creating it when new."""
    home = _home()
    _name(name)
    wanted = _symbols(symbols)
    _lists(home)  # a malformed file is reported before anything else
    stored = _stored(home)
    if name == DEFAULT_NAME and name not in stored:
        stored[name] = list(DEFAULT_WATCHLIST)  # editing the built-in list writes it out in full
    updated, added = add_symbols(stored, name, wanted)
    if not added:
        _say(f"{name} already has {', '.join(wanted)}; nothing changed")
        return
    path = _save(home, updated)
    _say(f"{name}: added {', '.join(added)} ({plural(len(updated[name]), 'symbol')}) in {path}")


@watchlists_app.command("remove")
def remove(
    name: str = typer.Argument(..., help="The watchlist."),
    symbols: list[str] = typer.Argument(..., help="Tickers to remove."),
) -> None:
    """Remove symbols from a watchlist (every one must be in it; otherwise nothing changes)."""
    home = _home()
    wanted = _symbols(symbols)
    lists = _lists(home)
    stored = _stored(home)
    if name in lists and name not in stored:
        stored[name] = list(lists[name])
    try:
        updated = remove_symbols(stored, name, wanted)
    except WatchlistError as exc:
        fail(str(exc), 2)
    path = _save(home, updated)
    _say(f"{name}: removed {', '.join(wanted)} ({plural(len(updated[name]), 'symbol')} left) in {path}")


@watchlists_app.command("sync-positions")
def sync_positions(
    name: str = typer.Argument(POSITIONS_NAME, help="The watchlist to add the portfolio's underlyings to."),
    portfolio: Path | None = typer.Option(None, "--portfolio", help="Portfolio file (default: "
                                          "$OH_HOME/config/portfolio.json)."),
) -> None:
    """Add the portfolio's underlyings (stock, single legs and every leg of every structure) to a watchlist."""
    from oh.adapters.portfolio_file import default_path, load
    from oh.domain.portfolio import PortfolioError, underlyings

    home = _home()
    _name(name)
    try:
        held = underlyings(load(portfolio or default_path()))
    except PortfolioError as exc:
        fail(str(exc), 2)
    _lists(home)
    stored = _stored(home)
    if name == DEFAULT_NAME and name not in stored:
        stored[name] = list(DEFAULT_WATCHLIST)
    updated, added = add_symbols(stored, name, held)
    if not added:
        _say(f"{name} already has every underlying of the portfolio ({', '.join(held) or 'none'}); nothing changed")
        return
    path = _save(home, updated)
    _say(f"{name}: added {', '.join(added)} ({plural(len(updated[name]), 'symbol')}) in {path}")
