"""Watchlists: named symbol sets in `$OH_HOME/config/watchlists.json`, a file the user owns.

Public API (what `oh emit --watchlist`, the daily job and `oh watchlists` use):

- `load_watchlist(home, name) -> list[str]`: one list's symbols; `WatchlistError` for an unknown name
  or a malformed file. `default` always exists: `DEFAULT_WATCHLIST` unless the file defines it.
- `load_watchlists(home) -> dict[str, list[str]]`: every list, `default` included, sorted by name.
- `read_file(home) -> dict[str, list[str]] | None`: only what the file defines (None: no file).
- `save_watchlists(home, lists)`: validate, then write atomically (temp file, fsync, os.replace).
- `add_symbols`, `remove_symbols`: pure edits returning a new mapping.
- `watchlists_path(home)`, `validate_name(name)`.

The file is rewritten only by the `oh watchlists` editing commands. Its form:
`{"version": 1, "watchlists": {"default": ["SPY", "QQQ"], "tech": ["AAPL", "MSFT"]}}`.
Symbols are upper-case tickers, unique within a list and kept in the order they were added.
The decoded JSON is converted into the typed msgspec struct `WatchlistsFile` (unknown keys and wrong
types refused, oh.adapters.config_files), then names and tickers are validated. A malformed file is
reported in one line naming the field (`watchlists.tech[2]: ...`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from bus.home import Home
from oh.adapters.config_files import ConfigFileError, convert
from oh.adapters.files import write_atomically
from oh.domain.symbols import BadSymbol, parse_symbols

DEFAULT_WATCHLIST = ("SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA")
DEFAULT_NAME = "default"
POSITIONS_NAME = "positions"  # where `oh watchlists sync-positions` puts the portfolio's underlyings
VERSION = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9._\-]{0,63}$")


class WatchlistError(ValueError):
    """An unknown watchlist, a bad name or symbol, or a malformed file; the message is one line."""


def watchlists_path(home: Home) -> Path:
    """`$OH_HOME/config/watchlists.json`."""
    return home.config / "watchlists.json"


def validate_name(name: str) -> str:
    """A watchlist name: 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise WatchlistError(f"watchlist name {name!r} must be 1-64 lower-case letters, digits, '.', '_' or '-'")
    return name


class WatchlistsFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The file's shape: `{"version": 1, "watchlists": {NAME: [SYMBOL, ...]}}`."""

    version: int = VERSION
    watchlists: dict[str, list[str]] = msgspec.field(default_factory=dict)


def _symbols(raw: list[str], where: str) -> list[str]:
    out: list[str] = []
    for i, item in enumerate(raw):
        if not item.strip() or "," in item:
            raise WatchlistError(f"{where}[{i}] must be one ticker such as AAPL, got {json.dumps(item)}")
        try:
            symbol = parse_symbols(item)[0]
        except BadSymbol as exc:
            raise WatchlistError(f"{where}[{i}]: {exc}") from None
        if symbol in out:
            raise WatchlistError(f"{where}[{i}]: {symbol} is listed twice")
        out.append(symbol)
    return out


def parse(data: Any) -> dict[str, list[str]]:
    """Validate decoded JSON into {name: symbols}; raise WatchlistError naming the field."""
    try:
        if not isinstance(data, dict):
            convert(data, WatchlistsFile, "the file")  # says which type it got instead of an object
        outer = convert({k: v for k, v in data.items() if k != "watchlists"}, WatchlistsFile, "")
        lists = data.get("watchlists", {})
        if not isinstance(lists, dict):
            convert(lists, dict[str, list[str]], "", "watchlists")
        typed = {name: convert(symbols, list[str], "", f"watchlists.{name}") for name, symbols in lists.items()}
    except ConfigFileError as exc:
        raise WatchlistError(str(exc).removeprefix(": ")) from None
    if outer.version != VERSION:
        raise WatchlistError(f"version must be {VERSION} (the only version this build reads), got {outer.version}")
    out: dict[str, list[str]] = {}
    for name, symbols in typed.items():
        try:
            validate_name(name)
        except WatchlistError as exc:
            raise WatchlistError(f"watchlists: {exc}") from None
        out[name] = _symbols(symbols, f"watchlists.{name}")
    return out


def read_file(home: Home) -> dict[str, list[str]] | None:
    """What the file defines (None when there is no file); raise WatchlistError, prefixed by the path."""
    path = watchlists_path(home)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WatchlistError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return parse(json.loads(text))
    except json.JSONDecodeError as exc:
        raise WatchlistError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise WatchlistError(f"{path}: {exc}") from None


def load_watchlists(home: Home) -> dict[str, list[str]]:
    """Every watchlist, sorted by name; `default` is DEFAULT_WATCHLIST unless the file defines it."""
    lists = read_file(home) or {}
    lists.setdefault(DEFAULT_NAME, list(DEFAULT_WATCHLIST))
    return dict(sorted(lists.items()))


def load_watchlist(home: Home, name: str) -> list[str]:
    """The symbols of watchlist `name`; WatchlistError (one line) when there is no such list."""
    lists = load_watchlists(home)
    if name not in lists:
        raise WatchlistError(f"no watchlist named {name!r} (known: {', '.join(lists)}); see `oh watchlists list`")
    return list(lists[name])


def add_symbols(lists: Mapping[str, list[str]], name: str, symbols: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """A copy with `symbols` appended to list `name` (created when new); also returns those actually added."""
    validate_name(name)
    out = {k: list(v) for k, v in lists.items()}
    current = out.setdefault(name, [])
    added = []
    for symbol in symbols:
        if symbol not in current:
            current.append(symbol)
            added.append(symbol)
    return out, added


def remove_symbols(lists: Mapping[str, list[str]], name: str, symbols: Iterable[str]) -> dict[str, list[str]]:
    """A copy without `symbols` in list `name`; WatchlistError naming a list or symbol that is not there."""
    if name not in lists:
        raise WatchlistError(f"no watchlist named {name!r} (known: {', '.join(sorted(lists))})")
    wanted = list(symbols)
    absent = [s for s in wanted if s not in lists[name]]
    if absent:
        raise WatchlistError(f"{', '.join(absent)} not in watchlist {name!r}; nothing removed")
    out = {k: list(v) for k, v in lists.items()}
    out[name] = [s for s in out[name] if s not in wanted]
    return out


def dumps(lists: Mapping[str, list[str]]) -> bytes:
    """The canonical file text: lists sorted by name, symbols in their order, 2-space indent, newline."""
    data = {"version": VERSION, "watchlists": {name: list(lists[name]) for name in sorted(lists)}}
    return (json.dumps(data, indent=2) + "\n").encode()


def save_watchlists(home: Home, lists: Mapping[str, list[str]]) -> Path:
    """Validate and write atomically (temp file in the same directory, fsync, os.replace); returns the path."""
    data = dumps(lists)
    parse(json.loads(data))
    path = watchlists_path(home)
    write_atomically(path, data)
    return path
