"""`oh portfolio ...`: create, edit, show and analyze the portfolio file (`$OH_HOME/config/portfolio.json`).

Only `init`, `add-position`, `add-spread` and `remove` write the file, and only after the whole
edited portfolio validates; `list` and `analyze` only read it. Bad input exits 2 with one line.
`analyze` reads the latest option-chain snapshots through the ledger (or the warehouse file,
read-only, when it is down) and leaves the numbers to `oh.domain.analyze`; it values as of the last
closed session (like the briefing), not the calendar day, unless `--as-of` says otherwise, and flags
every risk-profile limit the book breaches (oh.domain.limits), in words, in the table and in `--json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from oh.adapters.portfolio_file import default_path, load, save
from oh.cli.common import console, fail
from oh.domain.portfolio import (
    KINDS,
    Leg,
    OptionPosition,
    Portfolio,
    PortfolioError,
    Position,
    RiskProfile,
    StockPosition,
    Structure,
    dumps,
    structure_net_debit,
    validate,
)
from oh.domain.units import money, pct_points, plural

if TYPE_CHECKING:
    import pyarrow as pa

    from oh.domain.analyze import PortfolioAnalysis
    from oh.domain.limits import Breach

portfolio_app = typer.Typer(
    help="The portfolio file: cash, stock, options and multi-leg structures. Not financial advice.",
    no_args_is_help=True,
)

PORTFOLIO_HELP = "Portfolio file (default: $OH_HOME/config/portfolio.json)."
WIDE_OUTPUT = 140  # columns for `analyze` tables when the output is not a terminal


def _path(portfolio: Path | None) -> Path:
    return portfolio if portfolio is not None else default_path()


def _load(path: Path) -> Portfolio:
    try:
        return load(path)
    except PortfolioError as exc:
        fail(str(exc), 2)


def _write(path: Path, portfolio: Portfolio) -> None:
    try:
        save(path, portfolio)
    except PortfolioError as exc:
        fail(str(exc), 2)
    except OSError as exc:
        fail(f"{path}: cannot write: {exc.strerror or exc}", 1)


def _symbol(text: str) -> str:
    from oh.domain.symbols import BadSymbol, parse_symbols

    try:
        symbols = parse_symbols(text)
    except BadSymbol as exc:
        fail(f"--symbol: {exc}", 2)
    if len(symbols) != 1:
        fail(f"--symbol takes one ticker, got {text!r}", 2)
    return symbols[0]


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{what} {text!r} is not a date in YYYY-MM-DD form", 2)


def _right(text: str, what: str) -> str:
    right = {"c": "call", "call": "call", "p": "put", "put": "put"}.get(text.strip().lower())
    if right is None:
        fail(f"{what} {text!r} must be call or put", 2)
    return right


def _unique_id(portfolio: Portfolio, base: str) -> str:
    taken = {p.id for p in portfolio.positions}
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _strike_text(strike: float) -> str:
    return f"{strike:g}"


def _add(path: Path, portfolio: Portfolio, position: Position) -> None:
    if portfolio.get(position.id) is not None:
        fail(f"a position with id {position.id!r} already exists in {path}; choose another --id", 2)
    updated = Portfolio(
        version=portfolio.version, cash=portfolio.cash, base_currency=portfolio.base_currency,
        risk_profile=portfolio.risk_profile, positions=[*portfolio.positions, position],
    )
    try:
        validate(updated)  # the new position is the last one: errors name it by index and id
    except PortfolioError as exc:
        fail(str(exc), 2)
    _write(path, updated)
    console.print(f"added {position.id} to {path}", soft_wrap=True, highlight=False)


@portfolio_app.command("init")
def init(
    cash: float = typer.Option(0.0, help="Starting cash."),
    base_currency: str = typer.Option("USD", help="3-letter currency code."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing portfolio file."),
    portfolio: Path | None = typer.Option(None, "--portfolio", help=PORTFOLIO_HELP),
) -> None:
    """Create an empty portfolio file (with the default risk profile)."""
    path = _path(portfolio)
    if path.exists() and not force:
        fail(f"{path} already exists; pass --force to replace it", 2)
    _write(path, Portfolio(cash=cash, base_currency=base_currency.upper(), risk_profile=RiskProfile(), positions=[]))
    console.print(f"created {path}", soft_wrap=True, highlight=False)


@portfolio_app.command("add-position")
def add_position(
    symbol: str = typer.Option(..., help="Ticker (the underlying, for an option)."),
    quantity: float = typer.Option(..., help="Signed: shares for stock, contracts for an option (- = short)."),
    cost: float = typer.Option(..., help="Cost basis: per share for stock, premium per share for an option."),
    expiry: str | None = typer.Option(None, help="Option expiry, YYYY-MM-DD (makes this an option position)."),
    right: str | None = typer.Option(None, help="Option right: call | put."),
    strike: float | None = typer.Option(None, help="Option strike."),
    position_id: str | None = typer.Option(None, "--id", help="Position id (default: derived from the symbol)."),
    portfolio: Path | None = typer.Option(None, "--portfolio", help=PORTFOLIO_HELP),
) -> None:
    """Add a stock position, or (with --expiry --right --strike) a single-leg option position."""
    path = _path(portfolio)
    ticker = _symbol(symbol)
    option_args = {"--expiry": expiry, "--right": right, "--strike": strike}
    given = [name for name, value in option_args.items() if value is not None]
    if given and len(given) != 3:
        missing = [name for name in option_args if name not in given]
        fail(f"an option position needs --expiry, --right and --strike; missing {', '.join(missing)}", 2)
    current = _load(path)
    position: Position
    if given:
        assert expiry is not None and right is not None and strike is not None
        when, side = _date(expiry, "--expiry"), _right(right, "--right")
        if quantity != int(quantity):
            fail(f"--quantity {quantity:g} must be a whole number of contracts", 2)
        base = f"{ticker.lower()}-{when:%y%m%d}{side[0]}{_strike_text(strike)}"
        position = OptionPosition(
            id=position_id or _unique_id(current, base), symbol=ticker, expiry=when, right=side,
            strike=strike, quantity=int(quantity), cost_basis=cost,
        )
    else:
        position = StockPosition(id=position_id or _unique_id(current, ticker.lower()), symbol=ticker,
                                 quantity=int(quantity) if quantity.is_integer() else quantity, cost_basis=cost)
    _add(path, current, position)


def _parse_leg(text: str, index: int) -> Leg:
    """`EXPIRY:RIGHT:STRIKE:QTY:COST`, e.g. `2026-03-20:call:150:+1:4.10`."""
    parts = text.split(":")
    where = f"--leg {index + 1} {text!r}"
    if len(parts) != 5:
        fail(f"{where}: expected EXPIRY:RIGHT:STRIKE:QTY:COST, e.g. 2026-03-20:call:150:+1:4.10", 2)
    expiry, right, strike, qty, cost = (p.strip() for p in parts)
    when = _date(expiry, f"{where}: expiry")
    side = _right(right, f"{where}: right")
    try:
        strike_value = float(strike)
    except ValueError:
        fail(f"{where}: strike {strike!r} is not a number", 2)
    try:
        quantity = int(qty)
    except ValueError:
        fail(f"{where}: quantity {qty!r} is not a whole signed number of contracts such as +1 or -2", 2)
    try:
        cost_value = float(cost)
    except ValueError:
        fail(f"{where}: cost {cost!r} is not a number", 2)
    return Leg(expiry=when, right=side, strike=strike_value, quantity=quantity, cost=cost_value)


@portfolio_app.command("add-spread")
def add_spread(
    symbol: str = typer.Option(..., help="Underlying ticker."),
    kind: str = typer.Option(..., help=f"One of: {', '.join(KINDS)}."),
    leg: list[str] = typer.Option(..., "--leg", help="EXPIRY:RIGHT:STRIKE:QTY:COST, repeated (QTY signed: +1 bought, -1 sold)."),
    net_debit: float | None = typer.Option(None, help="Net debit per share (negative = credit; default: from the legs' costs)."),
    position_id: str | None = typer.Option(None, "--id", help="Position id (default: SYMBOL-KIND)."),
    portfolio: Path | None = typer.Option(None, "--portfolio", help=PORTFOLIO_HELP),
) -> None:
    """Add a multi-leg structure (vertical, calendar, diagonal, iron condor, straddle, strangle, custom)."""
    path = _path(portfolio)
    ticker = _symbol(symbol)
    if kind not in KINDS:
        fail(f"--kind {kind!r} must be one of {', '.join(KINDS)}", 2)
    legs = [_parse_leg(text, i) for i, text in enumerate(leg)]
    current = _load(path)
    position = Structure(
        id=position_id or _unique_id(current, f"{ticker.lower()}-{kind.replace('_', '-')}"), symbol=ticker,
        kind=kind, legs=legs, net_debit=structure_net_debit(legs) if net_debit is None else net_debit,
    )
    _add(path, current, position)


@portfolio_app.command("remove")
def remove(
    position_id: str = typer.Argument(..., metavar="ID", help="The id of the position to remove."),
    portfolio: Path | None = typer.Option(None, "--portfolio", help=PORTFOLIO_HELP),
) -> None:
    """Remove one position by id."""
    path = _path(portfolio)
    current = _load(path)
    if current.get(position_id) is None:
        known = ", ".join(p.id for p in current.positions) or "none"
        fail(f"no position with id {position_id!r} in {path} (ids: {known})", 2)
    remaining = [p for p in current.positions if p.id != position_id]
    _write(path, Portfolio(version=current.version, cash=current.cash, base_currency=current.base_currency,
                           risk_profile=current.risk_profile, positions=remaining))
    console.print(f"removed {position_id} from {path}", soft_wrap=True, highlight=False)


def _money(value: float, currency: str = "USD") -> str:
    return money(value, currency)


@portfolio_app.command("list")
def list_positions(
    as_json: bool = typer.Option(False, "--json", help="Print the validated portfolio as JSON."),
    portfolio: Path | None = typer.Option(None, "--portfolio", help=PORTFOLIO_HELP),
) -> None:
    """Show cash, risk profile and every position, with each structure's legs (read-only)."""
    from rich.table import Table

    path = _path(portfolio)
    current = _load(path)
    if as_json:
        typer.echo(dumps(current).decode(), nl=False)
        return
    cur = current.base_currency
    table = Table(title=f"Portfolio ({path})", title_justify="left")
    for column in ("id", "type", "symbol", "contract", "qty", "cost"):
        table.add_column(column, justify="right" if column in ("qty", "cost") else "left", no_wrap=column == "contract")
    for position in current.positions:
        if isinstance(position, StockPosition):
            table.add_row(position.id, "stock", position.symbol, "", f"{position.quantity:g}", _money(position.cost_basis, cur))
        elif isinstance(position, OptionPosition):
            table.add_row(position.id, "option", position.symbol, position.occ.compact, f"{position.quantity:+d}",
                          _money(position.cost_basis, cur))
        else:
            label = "credit" if position.net_debit < 0 else "debit"
            table.add_row(position.id, position.kind, position.symbol, f"{plural(len(position.legs), 'leg')}, net {label}", "",
                          _money(position.net_debit, cur))
            for sym, leg in zip(position.leg_symbols(), position.legs, strict=True):
                table.add_row("", "  leg", "", sym.compact, f"{leg.quantity:+d}", _money(leg.cost, cur))
    console.print(table)
    risk = current.risk_profile
    console.print(
        f"cash {_money(current.cash, cur)} {current.base_currency}; {plural(len(current.positions), 'position')}; risk: "
        f"max position {pct_points(risk.max_position_pct)}, max delta {pct_points(risk.max_portfolio_delta_pct)}, stress "
        f"±{risk.stress_spot_pct:g}% spot, ±{risk.stress_vol_points:g} vol pts, {risk.stress_days}d",
        soft_wrap=True, highlight=False,
    )


def _shocks(text: str, option: str, above: float | None = None) -> tuple[float, ...]:
    """`5` means -5 and +5; `+5` or `-5` only that side; a comma list combines them (`5,-10`)."""
    shocks: set[float] = set()
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            fail(f"{option} {raw!r} is not a number (e.g. 5 for -5 and +5, or +10,-3)", 2)
        sides = {value} if raw[0] in "+-" else {value, -value}
        if above is not None and min(sides) <= above:
            fail(f"{option} {raw!r}: a shock must stay above {above:g}", 2)
        shocks |= sides
    if not shocks:
        fail(f"{option} needs at least one number", 2)
    return tuple(sorted(shocks))


def _unpriced(portfolio: Portfolio, chains: Mapping[str, object], closes: Mapping[str, float]) -> list[str]:
    """Underlyings that cannot be valued: an option needs a snapshot; stock a snapshot or a close."""
    missing = []
    for symbol in sorted({p.symbol for p in portfolio.positions}):
        options = any(p.symbol == symbol and not isinstance(p, StockPosition) for p in portfolio.positions)
        if symbol not in chains and (options or symbol not in closes):
            missing.append(symbol)
    return missing


@portfolio_app.command("analyze")
def analyze(
    portfolio: Path | None = typer.Option(None, "--portfolio", help=PORTFOLIO_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help="Value as of this session, YYYY-MM-DD (default: the "
                                     "last closed session, as the briefing does); quotes come from the latest "
                                     "snapshot on or before it."),
    spot_shocks: str | None = typer.Option(None, "--spot-shocks", help="Spot moves in %: 5 means -5 and +5; "
                                           "+5/-5 one side; comma list (default: the risk profile's, 5)."),
    vol_shocks: str | None = typer.Option(None, "--vol-shocks", help="IV moves in vol points, same form "
                                          "(default: the risk profile's, 5)."),
    days: int | None = typer.Option(None, "--days", min=0, max=3650, help="Days forward for the time-decay "
                                    "scenarios (default: the risk profile's, 7)."),
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON."),
) -> None:
    """Mark, PnL, DTE, Greeks and stress scenarios of every position from the latest snapshots (read-only)."""
    import json

    from bus.home import Home
    from oh.cli.data import reader
    from oh.domain.analyze import StressSpec, analyze_portfolio, to_jsonable
    from oh.domain.limits import breaches
    from oh.read.quotes import latest_chains, latest_closes

    path = _path(portfolio)
    current = _load(path)  # a bad file is reported first, naming the field and the position
    day = _date(as_of, "--as-of") if as_of else _last_closed_session()
    base = StressSpec.from_risk_profile(current.risk_profile)
    spec = StressSpec(
        _shocks(spot_shocks, "--spot-shocks", above=-100.0) if spot_shocks is not None else base.spot_shocks_pct,
        _shocks(vol_shocks, "--vol-shocks") if vol_shocks is not None else base.vol_shocks_pts,
        base.days_forward if days is None else days,
    )
    symbols = sorted({p.symbol for p in current.positions})
    home = Home.from_env()
    chains: dict[str, pa.Table] = {}
    closes: dict[str, float] = {}
    if symbols and not home.warehouse.exists():
        fail(f"no option-chain snapshots yet (no warehouse at {home.warehouse}): run "
             f"`oh emit snapshot-options --symbols {','.join(symbols)}`", 2)
    if symbols:
        with reader(home) as read:
            chains = latest_chains(read, symbols, day)
            closes = latest_closes(read, [s for s in symbols if s not in chains], day)
    missing = _unpriced(current, chains, closes)
    if missing:
        fail(f"no option-chain snapshot of {', '.join(missing)} on or before {day}: run "
             f"`oh emit snapshot-options --symbols {','.join(missing)}`", 2)
    analysis = analyze_portfolio(current, chains, day, spec, spots=closes)
    found = breaches(analysis, current.risk_profile, currency=current.base_currency)
    if as_json:
        data = {"portfolio": str(path), "base_currency": current.base_currency, **to_jsonable(analysis),
                "limits": _limits_json(current.risk_profile, found)}
        typer.echo(json.dumps(data, indent=2))
        return
    _print_analysis(path, current, analysis)
    _print_limits(current.risk_profile, found)


def _limits_json(profile: RiskProfile, found: list[Breach]) -> dict[str, object]:
    """The risk profile's limits and every breach (`--json`), NaN as null."""
    from oh.domain.analyze import to_jsonable

    return {
        "max_position_pct": profile.max_position_pct,
        "max_portfolio_delta_pct": profile.max_portfolio_delta_pct,
        "breached": bool(found),
        "breaches": [to_jsonable({**asdict(b), "label": b.label}) for b in found],
    }


def _print_limits(profile: RiskProfile, found: list[Breach]) -> None:
    """Each breached limit in words (red), or that the book is within them."""
    out = console if console.is_terminal else Console(width=max(console.width, WIDE_OUTPUT))
    if not found:
        out.print(f"Risk limits: within the risk profile (each position at most {pct_points(profile.max_position_pct)} "
                  f"of net liq, net delta at most {pct_points(profile.max_portfolio_delta_pct)})",
                  soft_wrap=True, highlight=False, style="green")
        return
    out.print(f"Risk limits: {plural(len(found), 'breach', 'breaches')}", soft_wrap=True, highlight=False,
              style="bold red")
    for breach in found:
        out.print(f"limit breached: {breach.text}", soft_wrap=True, highlight=False, style="red")


def _last_closed_session() -> date:
    """The session `analyze` values as of by default: the last one closed, like the briefing of that session (on a
    Sunday that is Friday, so DTE and time value match the briefing's for the same quotes, never the calendar day)."""
    from oh.domain import calendar

    return calendar.last_closed_session(calendar.wall_clock())


def _print_analysis(path: Path, current: Portfolio, analysis: PortfolioAnalysis) -> None:
    """The analysis as rich tables: positions (with legs), Greeks, stress grids, stress by position, warnings."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from oh.domain import analyze_tables as tables

    # Piped output gets room for whole tables; a terminal wraps the text columns, never the numbers.
    out = console if console.is_terminal else Console(width=max(console.width, WIDE_OUTPUT))
    out.print(f"Portfolio {path}; not financial advice", soft_wrap=True, highlight=False)
    if not current.positions:
        out.print(tables.summary_line(analysis, current.base_currency), highlight=False)
        return
    built = [tables.positions_table(analysis), tables.greeks_table(analysis),
             *tables.stress_tables(analysis), tables.stress_by_position_table(analysis)]
    for text in built:
        view = Table(title=text.title, title_justify="left", box=box.SIMPLE_HEAD)
        for name, numeric in zip(text.header, text.numeric, strict=True):
            view.add_column(name, justify="right" if numeric else "left", no_wrap=numeric)
        for row in text.rows:
            view.add_row(*row, style="bold" if row[0] == "total" else None)
        out.print(view)
    out.print(tables.summary_line(analysis, current.base_currency), soft_wrap=True, highlight=False)
    for line in tables.warning_lines(analysis):
        out.print(f"warning: {line}", soft_wrap=True, highlight=False, style="yellow")
