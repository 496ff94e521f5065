"""Watchlists: the `default` list exists without a file, errors name the field, only editing commands write the
file (atomically, canonical form), and sync-positions adds every underlying of the portfolio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bus.home import Home
from oh.adapters.portfolio_file import save
from oh.adapters.watchlists import (
    DEFAULT_WATCHLIST,
    WatchlistError,
    add_symbols,
    load_watchlist,
    load_watchlists,
    remove_symbols,
    watchlists_path,
)
from oh.cli.watchlists import watchlists_app
from oh.domain.portfolio import Leg, OptionPosition, Portfolio, StockPosition, Structure

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(watchlists_app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def state(path: Path) -> tuple[bytes, int] | None:
    return (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None


def test_default_exists_without_a_file_and_unknown_names_are_errors(home: Home) -> None:
    """`oh emit --watchlist default` works on a fresh install; an unknown name is a one-line ValueError naming it."""
    assert load_watchlist(home, "default") == list(DEFAULT_WATCHLIST)
    assert not watchlists_path(home).exists()
    with pytest.raises(WatchlistError) as err:
        load_watchlist(home, "tech")
    assert isinstance(err.value, ValueError) and "'tech'" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"watchlists": {"tech": ["AAPL", 3]}}', "watchlists.tech[1]: expected `str`, got `int`"),
        ('{"watchlists": {"tech": ["AAPL", "not a ticker"]}}', "watchlists.tech[1]: malformed symbol"),
        ('{"watchlists": {"tech": ["AAPL", "aapl"]}}', "watchlists.tech[1]: AAPL is listed twice"),
        ('{"watchlists": {"tech": "AAPL"}}', "watchlists.tech: expected `array`, got `str`"),
        ('{"watchlists": {"Tech!": []}}', "watchlist name 'Tech!'"),
        ('{"lists": {}}', "lists: unknown key (allowed: version, watchlists)"),
        ('{"watchlist": {"tech": ["AAPL"]}}', "watchlist: unknown key"),
        ('{"version": true}', "version: expected `int`, got `bool`"),
        ('["AAPL"]', "expected `object`, got `array`"),
        ('{"version": 2}', "version must be 1"),
        ('{"watchlists": {', "malformed JSON at line 1"),
    ],
)
def test_malformed_files_name_the_field_and_are_never_rewritten(home: Home, text: str, expected: str) -> None:
    """Every reader and editor reports the problem in one line naming the field; `add` exits 2 and the file keeps
    its bytes."""
    path = watchlists_path(home)
    path.write_text(text)
    with pytest.raises(WatchlistError, match=None) as err:
        load_watchlists(home)
    assert expected in str(err.value) and str(err.value).startswith(str(path))
    before = state(path)
    code, out = invoke("add", "tech", "MSFT")
    assert code == 2 and expected in out
    assert state(path) == before


def test_add_remove_show_and_list_through_the_cli(home: Home) -> None:
    """add creates and extends lists (upper-cased, no duplicates, order kept), remove takes symbols out, show and
    list only read; a remove naming an absent symbol changes nothing."""
    path = watchlists_path(home)
    assert invoke("add", "tech", "aapl", "MSFT,nvda")[0] == 0
    assert invoke("add", "tech", "MSFT", "AMD")[0] == 0
    assert load_watchlist(home, "tech") == ["AAPL", "MSFT", "NVDA", "AMD"]
    assert json.loads(path.read_text()) == {"version": 1, "watchlists": {"tech": ["AAPL", "MSFT", "NVDA", "AMD"]}}
    before = state(path)
    code, out = invoke("add", "tech", "AAPL")
    assert code == 0 and "nothing changed" in out and state(path) == before
    code, out = invoke("show", "tech")
    assert code == 0 and out.split() == ["AAPL", "MSFT", "NVDA", "AMD"]
    code, out = invoke("list")
    assert code == 0 and "tech" in out and "default (built in)" in out
    assert state(path) == before
    code, out = invoke("remove", "tech", "NVDA", "TSLA")
    assert code == 2 and "TSLA not in watchlist 'tech'" in out and state(path) == before
    assert invoke("remove", "tech", "NVDA")[0] == 0
    assert load_watchlist(home, "tech") == ["AAPL", "MSFT", "AMD"]
    code, out = invoke("show", "nope")
    assert code == 2 and "no watchlist named 'nope'" in out


def test_editing_default_writes_it_out_in_full(home: Home) -> None:
    """The built-in default becomes a real list the first time it is edited, keeping its symbols."""
    assert invoke("add", "default", "IWM")[0] == 0
    assert load_watchlist(home, "default") == [*DEFAULT_WATCHLIST, "IWM"]
    assert invoke("remove", "default", "TSLA")[0] == 0
    assert "TSLA" not in load_watchlist(home, "default")


def test_init_refuses_to_replace_without_force(home: Home) -> None:
    """init writes the default list once; a second init without --force exits 2 and keeps the file."""
    path = watchlists_path(home)
    assert invoke("init")[0] == 0
    assert invoke("add", "tech", "AAPL")[0] == 0
    before = state(path)
    code, out = invoke("init")
    assert code == 2 and "--force" in out and state(path) == before
    assert invoke("init", "--force")[0] == 0
    assert list(load_watchlists(home)) == ["default"]


def test_sync_positions_adds_every_underlying_of_the_portfolio(home: Home) -> None:
    """Single legs, stock and every leg of every structure contribute their underlying, once, to `positions`."""
    from datetime import date

    expiry = date(2026, 5, 15)
    save(home.config / "portfolio.json", Portfolio(cash=0, positions=[
        StockPosition(id="msft", symbol="MSFT", quantity=10, cost_basis=400),
        OptionPosition(id="aapl", symbol="AAPL", expiry=expiry, right="call", strike=150, quantity=1, cost_basis=2),
        Structure(id="ic", symbol="QQQ", kind="iron_condor", net_debit=-2.0, legs=[
            Leg(expiry, "put", 400, 1, 1.0), Leg(expiry, "put", 410, -1, 2.0),
            Leg(expiry, "call", 470, -1, 2.0), Leg(expiry, "call", 480, 1, 1.0)]),
    ]))
    assert invoke("add", "positions", "SPY")[0] == 0
    code, out = invoke("sync-positions")
    assert code == 0 and "added AAPL, MSFT, QQQ" in out
    assert load_watchlist(home, "positions") == ["SPY", "AAPL", "MSFT", "QQQ"]
    before = state(watchlists_path(home))
    code, out = invoke("sync-positions")
    assert code == 0 and "nothing changed" in out and state(watchlists_path(home)) == before
    (home.config / "portfolio.json").write_text('{"positions": [{"type": "stock", "id": "x", "symbol": "X"}]}')
    code, out = invoke("sync-positions", "mine")
    assert code == 2 and "missing field 'quantity'" in out


def test_pure_edits_return_new_mappings() -> None:
    """add_symbols reports what it added and leaves its input alone; remove_symbols refuses absent symbols."""
    lists = {"a": ["SPY"]}
    updated, added = add_symbols(lists, "a", ["SPY", "QQQ"])
    assert updated == {"a": ["SPY", "QQQ"]} and added == ["QQQ"] and lists == {"a": ["SPY"]}
    assert remove_symbols(updated, "a", ["SPY"]) == {"a": ["QQQ"]}
    with pytest.raises(WatchlistError, match="QQQ not in watchlist"):
        remove_symbols(lists, "a", ["QQQ"])
    with pytest.raises(WatchlistError, match="watchlist name"):
        add_symbols(lists, "Bad Name", ["SPY"])
