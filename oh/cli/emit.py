"""`oh emit JOB ...`: send a command to the workers through the ledger, and optionally follow the run."""

from __future__ import annotations

from datetime import date

import typer

from bus.home import Home
from oh.cli.common import Provider, fail
from oh.cli.follow import emit_and_wait

emit_app = typer.Typer(help="Send a job's command to the workers (through the ledger).", no_args_is_help=True)


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not a date in YYYY-MM-DD form", 2)


def _symbols(text: str) -> list[str]:
    """Parse --symbols, or exit 2 naming the malformed one."""
    from oh.domain.symbols import BadSymbol, parse_symbols

    try:
        return parse_symbols(text)
    except BadSymbol as exc:
        fail(str(exc), 2)


def _symbol_set(symbols: str | None, watchlist: str | None) -> list[str]:
    """The symbols of --symbols and --watchlist together (one of them is required), or exit 2 saying why."""
    if not symbols and not watchlist:
        fail("give --symbols (e.g. AAPL,SPY) or --watchlist NAME (`oh watchlists list`)", 2)
    chosen = _symbols(symbols) if symbols else []
    if watchlist:
        from oh.adapters.watchlists import WatchlistError, load_watchlist

        try:
            chosen += [s for s in load_watchlist(Home.from_env(), watchlist) if s not in chosen]
        except WatchlistError as exc:
            fail(str(exc), 2)
    return chosen


def _check_provider(chosen: Provider, other: Provider | None = None) -> tuple[str, str | None]:
    """The provider and fallback names; exit 2 unless they can be used in this build."""
    from oh.adapters.registry import unavailable_reason

    name, fallback = str(chosen.value), (str(other.value) if other is not None else None)
    for option, value in (("--provider", name), ("--fallback", fallback)):
        reason = unavailable_reason(value) if value else None
        if reason:
            fail(f"{option}: {reason}", 2)
    if fallback is not None and fallback == name:
        fail(f"--fallback {fallback} is the same as --provider", 2)
    if {name, fallback} - {"sim", None}:  # a real provider reads its settings: a typo there is bad input now
        from oh.adapters.settings import ConfigError, load_settings

        try:
            load_settings()
        except ConfigError as exc:
            fail(str(exc), 2)
    return name, fallback


def _day_range(as_of: str | None, start: str | None, end: str | None) -> tuple[date, date, int]:
    """One session (--as-of, default the last closed one) or a range (--start/--end), and how many sessions it
    holds; exit 2 if none, or if it reaches a session that has not closed yet (no provider has its data)."""
    from oh.domain import calendar

    if as_of and (start or end):
        fail("give either --as-of or --start/--end, not both", 2)
    if bool(start) != bool(end):
        fail("a range needs both --start and --end", 2)
    if start and end:
        first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
        if first > last:
            fail(f"--start {first} is after --end {last}", 2)
    else:
        first = last = _parse_date(as_of, "--as-of") if as_of else calendar.last_closed_session(calendar.wall_clock())
    now = calendar.wall_clock()
    unclosed = calendar.unclosed_sessions(first, last, now)
    if len(unclosed):
        what = (f"--as-of {last}: that session" if as_of else
                f"--end {last}: the range reaches {unclosed[0].astype(date)}, a session that")
        fail(f"{what} has not closed yet; the last closed session is {calendar.last_closed_session(now)}", 2)
    try:
        count = len(calendar.sessions(first, last))
    except ValueError as exc:
        fail(str(exc), 2)
    if not count:
        fail(f"no NYSE session between {first} and {last}", 2)
    return first, last, count


def _session(as_of: str | None) -> date:
    """The session of --as-of (default: the last closed one); exit 2 if it is not a session day."""
    return _day_range(as_of, None, None)[0]


def _sessions(as_of: str | None, start: str | None, end: str | None) -> list[date]:
    """Every session of --as-of or of --start/--end, oldest first; exit 2 if none."""
    from oh.domain import calendar

    first, last, _ = _day_range(as_of, start, end)
    return [day.astype(date) for day in calendar.sessions(first, last)]


SYMBOLS_HELP = "Comma-separated tickers, e.g. AAPL,SPY."
WATCHLIST_HELP = "A watchlist's symbols (`oh watchlists list`); adds to --symbols."
AS_OF_HELP = "One session, YYYY-MM-DD (default: the latest closed session)."
PROVIDER_HELP = "Where the data comes from: sim (offline), alpaca or yahoo."
FALLBACK_HELP = "A second provider tried per symbol when the first fails."
WAIT_HELP = "Show progress; exit non-zero if the run fails."
TIMEOUT_HELP = "With --wait, give up after this many seconds."
START_HELP = "First session of a backfill range (with --end)."
END_HELP = "Last session of a backfill range (with --start)."


@emit_app.command("ingest-candles")
def ingest_candles(
    symbols: str | None = typer.Option(None, help=SYMBOLS_HELP),
    watchlist: str | None = typer.Option(None, help=WATCHLIST_HELP),
    start: str | None = typer.Option(None, help="First date, YYYY-MM-DD (with --end)."),
    end: str | None = typer.Option(None, help="Last date, YYYY-MM-DD (inclusive)."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    provider: Provider = typer.Option(Provider.sim, help=PROVIDER_HELP),
    fallback: Provider | None = typer.Option(None, help=FALLBACK_HELP),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(3600.0, help=TIMEOUT_HELP),
) -> None:
    """Ingest daily candles (job ingest_candles, asset candles_daily)."""
    from contracts import IngestCandles

    symbol_list = _symbol_set(symbols, watchlist)
    first, last, _ = _day_range(as_of, start, end)
    provider_name, fallback_name = _check_provider(provider, fallback)
    command = IngestCandles(symbols=symbol_list, start=first, end=last, provider=provider_name, fallback=fallback_name)
    emit_and_wait(command, len(symbol_list), wait, timeout)


@emit_app.command("ingest-options-bars")
def ingest_options_bars(
    symbols: str | None = typer.Option(None, help=SYMBOLS_HELP),
    watchlist: str | None = typer.Option(None, help=WATCHLIST_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    start: str | None = typer.Option(None, help=START_HELP),
    end: str | None = typer.Option(None, help=END_HELP),
    max_dte: int = typer.Option(45, "--max-dte", help="Only contracts expiring within this many days."),
    provider: Provider = typer.Option(Provider.sim, help=PROVIDER_HELP),
    fallback: Provider | None = typer.Option(None, help=FALLBACK_HELP),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(3600.0, help=TIMEOUT_HELP),
) -> None:
    """Ingest daily option bars (job ingest_options_bars, asset options_bars), one partition per symbol and session."""
    from contracts import IngestOptionsBars

    symbol_list = _symbol_set(symbols, watchlist)
    first, last, sessions = _day_range(as_of, start, end)
    if max_dte < 0:
        fail(f"--max-dte must be 0 or more, got {max_dte}", 2)
    provider_name, fallback_name = _check_provider(provider, fallback)
    command = IngestOptionsBars(symbols=symbol_list, start=first, end=last, max_dte=max_dte, provider=provider_name,
                                fallback=fallback_name)
    emit_and_wait(command, len(symbol_list) * sessions, wait, timeout)


@emit_app.command("checks")
def checks(
    asset: str | None = typer.Option(None, help="Asset key to check (default: every checked asset)."),
    symbols: str | None = typer.Option(None, help="Comma-separated tickers (default: all stored)."),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(3600.0, help=TIMEOUT_HELP),
) -> None:
    """Re-run the data-quality checks on stored data (job run_checks); results go to meta.asset_checks."""
    from contracts import RunChecks

    known = ("candles_daily", "options_bars")
    if asset is not None and asset not in known:
        fail(f"no checks for asset {asset!r} in this build; checked assets: {', '.join(known)}", 2)
    symbol_list = _symbols(symbols) if symbols else None
    emit_and_wait(RunChecks(asset=asset, symbols=symbol_list), len(symbol_list or []), wait, timeout)


@emit_app.command("snapshot-options")
def snapshot_options(
    symbols: str | None = typer.Option(None, help=SYMBOLS_HELP),
    watchlist: str | None = typer.Option(None, help=WATCHLIST_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    start: str | None = typer.Option(None, help=START_HELP),
    end: str | None = typer.Option(None, help=END_HELP),
    provider: Provider = typer.Option(Provider.sim, help=PROVIDER_HELP),
    fallback: Provider | None = typer.Option(None, help=FALLBACK_HELP),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(3600.0, help=TIMEOUT_HELP),
) -> None:
    """Snapshot full option chains (job snapshot_options, asset options_snapshot_file), one per symbol and session."""
    from contracts import SnapshotOptions

    symbol_list = _symbol_set(symbols, watchlist)
    first, last, sessions = _day_range(as_of, start, end)
    provider_name, fallback_name = _check_provider(provider, fallback)
    command = SnapshotOptions(symbols=symbol_list, start=first, end=last, provider=provider_name, fallback=fallback_name)
    emit_and_wait(command, len(symbol_list) * sessions, wait, timeout)


@emit_app.command("compute-flow")
def compute_flow(
    symbols: str | None = typer.Option(None, help="Comma-separated underlyings with stored snapshots."),
    watchlist: str | None = typer.Option(None, help=WATCHLIST_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help="The session the window ends at (default: the latest closed)."),
    start: str | None = typer.Option(None, help=START_HELP),
    end: str | None = typer.Option(None, help=END_HELP),
    window: int = typer.Option(1, help="Number of consecutive snapshot pairs in the window."),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(3600.0, help=TIMEOUT_HELP),
) -> None:
    """Compute open-interest/volume flow (job compute_flow, asset options_flow), every grouping at once."""
    from contracts import ComputeFlow

    symbol_list = _symbol_set(symbols, watchlist)
    if window < 1:
        fail(f"--window must be at least 1, got {window}", 2)
    days = _sessions(as_of, start, end)
    emit_and_wait(ComputeFlow(symbols=symbol_list, sessions=days, window=window), len(symbol_list) * len(days), wait,
                  timeout)


@emit_app.command("compute-derived")
def compute_derived(
    symbols: str | None = typer.Option(None, help="Comma-separated underlyings with stored snapshots."),
    watchlist: str | None = typer.Option(None, help=WATCHLIST_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    start: str | None = typer.Option(None, help=START_HELP),
    end: str | None = typer.Option(None, help=END_HELP),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(3600.0, help=TIMEOUT_HELP),
) -> None:
    """Compute derived metrics (job compute_derived, asset derived_metrics) from each session's chain, oldest first."""
    from contracts import ComputeDerived

    symbol_list = _symbol_set(symbols, watchlist)
    days = _sessions(as_of, start, end)
    emit_and_wait(ComputeDerived(symbols=symbol_list, sessions=days), len(symbol_list) * len(days), wait, timeout)


@emit_app.command("briefing")
def briefing(
    symbols: str | None = typer.Option(None, help=SYMBOLS_HELP),
    watchlist: str | None = typer.Option(None, help=WATCHLIST_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    start: str | None = typer.Option(None, help=START_HELP),
    end: str | None = typer.Option(None, help=END_HELP),
    portfolio: str | None = typer.Option(None, help="Portfolio file (default: $OH_HOME/config/portfolio.json)."),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(3600.0, help=TIMEOUT_HELP),
) -> None:
    """Write the day's Markdown briefing (job build_briefing, asset briefing_markdown) to $OH_HOME/briefings/."""
    from pathlib import Path

    from contracts import BuildBriefing

    symbol_list = _symbol_set(symbols, watchlist or (None if symbols else "default"))
    days = _sessions(as_of, start, end)
    path = str(Path(portfolio).expanduser().resolve()) if portfolio else None
    if path:  # the portfolio asked for must be there and valid: never a briefing silently without it
        from oh.adapters.portfolio_file import load
        from oh.domain.portfolio import PortfolioError

        try:
            load(Path(path))
        except PortfolioError as exc:
            fail(f"--portfolio: {exc}", 2)
    emit_and_wait(BuildBriefing(symbols=symbol_list, sessions=days, portfolio=path), len(days), wait, timeout)


@emit_app.command("daily")
def daily(
    symbols: str | None = typer.Option(None, help=SYMBOLS_HELP),
    watchlist: str | None = typer.Option(None, help="A watchlist (default: `default` when --symbols is not given)."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    provider: Provider = typer.Option(Provider.sim, help=PROVIDER_HELP),
    fallback: Provider | None = typer.Option(None, help=FALLBACK_HELP),
    with_portfolio: bool = typer.Option(True, "--with-portfolio/--without-portfolio",
                                        help="Add the portfolio's underlyings (every leg of every structure)."),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    timeout: float = typer.Option(7200.0, help=TIMEOUT_HELP),
) -> None:
    """The whole daily chain for a session (job daily): candles and option bars, snapshots, then flow,
    derived and the briefing, each started by the step before it."""
    from contracts import RunDaily

    chosen = watchlist or (None if symbols else "default")
    if chosen:
        _symbol_set(None, chosen)  # an unknown watchlist is an error now, not in the worker later
    day = _session(as_of)
    provider_name, fallback_name = _check_provider(provider, fallback)
    command = RunDaily(symbols=_symbols(symbols) if symbols else [], watchlist=chosen, as_of=day, provider=provider_name,
                       fallback=fallback_name, with_portfolio=with_portfolio)
    emit_and_wait(command, 0, wait, timeout)
