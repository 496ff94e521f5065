"""`oh live start | stop | status`: the live_stream worker's controls (the dashboard sends the same commands).

`start` validates the portfolio and the options first (a bad file or option exits 2 naming it, and
nothing is sent), prints the subscription plan with its warnings, sends a journaled StartLive
through the ledger, then waits a few seconds for the worker to confirm on the tick channel.
`status` reads the worker's LiveStatus from the tick channel (it publishes one every half second).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from bus.home import Home
from oh.cli.common import LiveProvider, console, err_console, fail
from oh.domain.units import count, plural

if TYPE_CHECKING:
    from contracts import Command
    from contracts.live import LiveStatus

live_app = typer.Typer(help="Live quotes and fills for the portfolio (the live_stream worker). Not financial advice.",
                       no_args_is_help=True)

NOT_ANSWERING = "live_stream is not answering on the tick channel: is oh running? (`oh up`, `oh status`)"


def _send(command: Command) -> None:
    from bus.producer import Producer

    producer = Producer(Home.from_env())
    try:
        producer.send(command)
        producer.flush(timeout=10.0)
    except TimeoutError:
        fail("the ledger did not acknowledge the command within 10s: is oh running? (`oh up`, `oh status`)")
    finally:
        producer.close()
    if producer.rejected:
        fail(f"the ledger rejected the command: {producer.rejected[0][1]}")


def _wait_for(done: object, timeout: float) -> LiveStatus | None:
    """Statuses from the tick channel until `done(status)` holds; the last one seen (None if none came)."""
    from bus.ticks import TickSubscriber

    subscriber = TickSubscriber(Home.from_env(), ticks=False)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            subscriber.poll(100)
            if subscriber.status is not None and done(subscriber.status):  # type: ignore[operator]
                return subscriber.status
        return subscriber.status
    finally:
        subscriber.close()


@live_app.command("start")
def start(
    portfolio: Path | None = typer.Option(None, help="Portfolio file (default: $OH_HOME/config/portfolio.json)."),
    provider: LiveProvider = typer.Option(LiveProvider.sim, help="Where quotes and fills come from: sim or alpaca."),
    stocks: bool = typer.Option(True, "--stocks/--no-stocks", help="Stream the underlyings' quotes."),
    options: bool = typer.Option(True, "--options/--no-options", help="Stream the option contracts' quotes."),
    fills: bool = typer.Option(True, "--fills/--no-fills", help="Stream trade updates (fills are journaled)."),
    max_option_contracts: int = typer.Option(250, help="Subscribe to at most this many option contracts."),
    stock_feed: str = typer.Option("iex", help="Alpaca stock feed: iex | sip."),
    options_feed: str = typer.Option("indicative", help="Alpaca options feed: indicative | opra."),
    keep_running: bool = typer.Option(False, "--keep-running", help="Resume streaming after a worker restart."),
    sim_rate: float = typer.Option(200.0, "--sim-rate", help="Quotes per second of the sim feed."),
    wait: float = typer.Option(5.0, help="Seconds to wait for the worker to confirm (0: do not wait)."),
) -> None:
    """Start (or restart with new settings) live streaming for the portfolio."""
    from contracts import StartLive
    from oh.adapters.portfolio_file import default_path, load
    from oh.domain.live_plan import build_plan
    from oh.domain.portfolio import PortfolioError

    source = str(provider.value)
    if stock_feed not in ("iex", "sip"):
        fail(f"--stock-feed must be iex or sip, got {stock_feed!r}", 2)
    if options_feed not in ("indicative", "opra"):
        fail(f"--options-feed must be indicative or opra, got {options_feed!r}", 2)
    if max_option_contracts < 0:
        fail(f"--max-option-contracts must be 0 or more, got {max_option_contracts}", 2)
    if not sim_rate > 0:
        fail(f"--sim-rate must be > 0, got {sim_rate:g}", 2)
    path = portfolio.expanduser().resolve() if portfolio is not None else default_path()
    try:
        plan = build_plan(load(path), provider=source, stocks=stocks, options=options, fills=fills,
                          max_option_contracts=max_option_contracts)
    except PortfolioError as exc:
        fail(str(exc), 2)
    if source == "alpaca":
        _check_alpaca()
    console.print(f"plan: {plural(len(plan.stocks), 'stock')}, {plural(len(plan.options), 'option contract')}, "
                  f"fills {'on' if plan.fills else 'off'} ({source})", soft_wrap=True)
    for warning in plan.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)
    command = StartLive(
        portfolio=str(path) if portfolio is not None else None, provider=source, stocks=stocks, options=options,
        fills=fills, max_option_contracts=max_option_contracts, stock_feed=stock_feed, options_feed=options_feed,
        keep_running=keep_running, sim_quotes_per_second=sim_rate,
    )
    _send(command)
    if wait <= 0:
        console.print(f"sent StartLive {command.id}")
        return
    status = _wait_for(lambda s: s.command_id == command.id and s.state != "idle", wait)
    if status is None or status.command_id != command.id:
        console.print(f"sent StartLive {command.id}; live_stream has not confirmed yet (`oh live status`)")
        return
    if status.state == "error":
        fail(f"live_stream could not start: {status.last_error}")
    console.print(f"[green]streaming[/] ({source}); `oh live status` shows each stream")


def _check_alpaca() -> None:
    from oh.adapters.settings import ConfigError, load_settings

    try:
        settings = load_settings(Home.from_env())
    except ConfigError as exc:
        fail(str(exc), 2)
    if not settings.alpaca.has_credentials:
        err_console.print("[yellow]warning:[/] no Alpaca keys here (APCA_API_KEY_ID, APCA_API_SECRET_KEY or "
                          "$OH_HOME/config/alpaca.env); the worker will report missing credentials unless its "
                          "environment has them", soft_wrap=True)


@live_app.command("stop")
def stop(wait: float = typer.Option(5.0, help="Seconds to wait for the worker to confirm (0: do not wait).")) -> None:
    """Stop every live stream; the worker stays idle until the next start."""
    from contracts import StopLive

    command = StopLive()
    _send(command)
    if wait <= 0:
        console.print(f"sent StopLive {command.id}")
        return
    status = _wait_for(lambda s: s.state == "idle", wait)
    if status is None or status.state != "idle":
        console.print(f"sent StopLive {command.id}; live_stream has not confirmed yet (`oh live status`)")
        return
    console.print("live streams stopped")


def _age(now: float, then: float | None) -> str:
    return "never" if then is None else f"{max(now - then, 0):.1f}s ago"


@live_app.command("status")
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    timeout: float = typer.Option(3.0, help="Seconds to wait for the worker's status."),
) -> None:
    """Show each stream's state, last event age, reconnects and last error, and the conflation counters."""
    import msgspec

    from bus.ticks import read_status

    live = read_status(Home.from_env(), timeout)
    if live is None:
        fail(NOT_ANSWERING, 3)
    now = time.time()
    if as_json:
        data = msgspec.to_builtins(live)
        for stream in data["streams"]:
            stream["last_event_age"] = None if stream["last_event"] is None else round(now - stream["last_event"], 3)
        print(json.dumps(data | {"now": now}, indent=2))
        return
    if not live.streams and live.state == "idle":
        console.print("live_stream: idle (nothing started since it came up); `oh live start` streams the portfolio")
        return
    title = f"live_stream: {live.state}"
    if live.provider:
        title += f" ({live.provider}, {plural(live.stocks, 'stock')}, {plural(live.options, 'option contract')}"
        title += ", keep running" if live.keep_running else ""
        title += ", resumed after a restart)" if live.resumed else ")"
    table = Table(title=title)
    for column in ("stream", "state", "last event", "events", "reconnects", "next retry", "last error"):
        table.add_column(column)
    for s in live.streams:
        retry = f"in {s.next_retry_in:.1f}s" if s.next_retry_in is not None else ""
        table.add_row(s.name, s.state, _age(now, s.last_event), count(s.events), count(s.reconnects), retry,
                      s.last_error or "")
    console.print(table)
    c = live.counters
    console.print(f"received {c.received:,}, conflated {c.conflated:,}, dropped {c.dropped:,}; published "
                  f"{plural(c.quotes, 'quote')} in {plural(c.batches, 'batch', 'batches')}; fills journaled {c.fills:,}", soft_wrap=True)
    if live.portfolio:
        console.print(f"portfolio {live.portfolio}", soft_wrap=True, highlight=False)
    for warning in live.plan_warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)
    if live.last_error:
        console.print(f"[red]error:[/] {live.last_error}", soft_wrap=True, highlight=False)
