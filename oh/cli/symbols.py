"""`oh symbols list | forgotten | forget | remember`: which symbols exist, and retiring one from health.

`forget` journals SymbolsForgotten through the ledger (so `oh replay --rebuild` keeps it): the symbols
leave freshness, gaps, the coverage heatmap and the backfill plan of `oh db health` and the Health
page; nothing stored is deleted. Data written for a forgotten symbol later (a job run for it again)
brings it back, as does `remember` (SymbolsRemembered). Both need the ledger (`oh up`); `list` and
`forgotten` only read. Bad input exits 2 with one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from bus.home import Home
from oh.cli.common import Provider, console, fail

if TYPE_CHECKING:
    from contracts import Event

symbols_app = typer.Typer(help="Symbols: list the sim's, retire one from health (forget) or bring it back.",
                          no_args_is_help=True)


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


def _parse(symbols: list[str]) -> list[str]:
    from oh.domain.symbols import BadSymbol, parse_symbols

    try:
        return parse_symbols(",".join(symbols))
    except BadSymbol as exc:
        fail(str(exc), 2)


def _forgotten(home: Home) -> list[dict[str, object]]:
    from oh.cli.data import reader
    from oh.read.health import forgotten_symbols

    with reader(home) as read:
        return forgotten_symbols(lambda sql, params: read(sql, params))


def _send(home: Home, event: Event) -> None:
    """Journal `event` through the ledger, or exit 1 saying the ledger is not running."""
    from bus.producer import Producer

    producer = Producer(home)
    producer.send(event)
    try:
        producer.flush(timeout=10.0)
    except TimeoutError:
        fail("the ledger did not acknowledge within 10s: is oh running? (`oh up`, `oh status`); nothing was changed")
    finally:
        producer.close()
    if producer.rejected:
        fail(f"the ledger rejected it: {producer.rejected[0][1]}")


@symbols_app.command("list")
def list_symbols(provider: Provider = typer.Option(Provider.sim, help="Whose symbols: only the sim's universe is fixed.")) -> None:
    """Print the symbols a provider lists, one per line (the sim's universe; see docs/sim_market.md)."""
    if provider.value != "sim":
        fail(f"--provider {provider.value}: only the sim market has a fixed list; {provider.value} answers per symbol "
             "(an unknown one fails its partition)", 2)
    from oh.adapters.sim.universe import universe

    try:
        names = universe()
    except ValueError as exc:  # a malformed OH_SIM_SYNTHETIC
        fail(str(exc), 2)
    typer.echo("\n".join(names))


@symbols_app.command("forgotten")
def forgotten() -> None:
    """The symbols retired from health now, with when and why."""
    rows = _forgotten(Home.from_env())
    if not rows:
        _say("no forgotten symbols")
        return
    for row in rows:
        reason = f"  ({row['reason']})" if row.get("reason") else ""
        _say(f"{row['symbol']}  forgotten {row['forgotten_at']:%Y-%m-%d %H:%M} UTC{reason}")


@symbols_app.command("forget")
def forget(
    symbols: list[str] = typer.Argument(..., help="One or more symbols (spaces or commas)."),
    reason: str | None = typer.Option(None, help="Why, shown by `oh symbols forgotten`."),
) -> None:
    """Retire symbols from freshness, gaps, coverage and the backfill plan; their history stays."""
    from contracts import SymbolsForgotten

    chosen = _parse(symbols)
    home = Home.from_env()
    _send(home, SymbolsForgotten(symbols=chosen, reason=reason))
    _say(f"forgot {', '.join(chosen)}: out of freshness, gaps, coverage and the backfill plan; stored data is kept. "
         f"New data for one brings it back, as does `oh symbols remember {chosen[0]}`.")


@symbols_app.command("remember")
def remember(symbols: list[str] = typer.Argument(..., help="Forgotten symbols to bring back.")) -> None:
    """Bring forgotten symbols back into health."""
    from contracts import SymbolsRemembered

    chosen = _parse(symbols)
    home = Home.from_env()
    known = {str(row["symbol"]) for row in _forgotten(home)}
    absent = [s for s in chosen if s not in known]
    if absent:
        fail(f"{', '.join(absent)} not forgotten (see `oh symbols forgotten`); nothing changed", 2)
    _send(home, SymbolsRemembered(symbols=chosen))
    _say(f"remembered {', '.join(chosen)}: back in freshness, gaps, coverage and the plan")
