"""`oh emit JOB ...`: send a command to the workers through the ledger, and optionally follow the run."""

from __future__ import annotations

import time
from datetime import date
from typing import TYPE_CHECKING

import typer

from oh.cli_common import console, err_console, fail
from oh.home import Home

if TYPE_CHECKING:
    from contracts import Command

emit_app = typer.Typer(help="Send a job's command to the workers (through the ledger).", no_args_is_help=True)

NO_WORKER_WARNING_SECONDS = 15.0


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not a date in YYYY-MM-DD form", 2)


def _symbols(text: str) -> list[str]:
    """Parse --symbols, or exit 2 naming the malformed one."""
    from oh.symbols import BadSymbol, parse_symbols

    try:
        return parse_symbols(text)
    except BadSymbol as exc:
        fail(str(exc), 2)


def _check_provider(name: str) -> None:
    """Exit 2 unless the provider can be used in this build."""
    from oh.providers import unavailable_reason

    reason = unavailable_reason(name)
    if reason:
        fail(reason, 2)


def emit_and_wait(command: Command, total: int, wait: bool, timeout: float) -> None:
    """Send the command; with `wait`, show progress until the run finishes and exit 1 if it failed."""
    from bus.producer import Producer
    from contracts import JOB_OF_COMMAND, run_id_for

    home = Home.from_env()
    job = JOB_OF_COMMAND[type(command).__name__]
    producer = Producer(home)
    producer.send(command)
    try:
        producer.flush(timeout=10.0)
    except TimeoutError:
        fail("the ledger did not acknowledge the command within 10s: is oh running? (`oh up`, `oh status`)")
    finally:
        producer.close()
    if producer.rejected:
        fail(f"the ledger rejected the command: {producer.rejected[0][1]}")
    run_id = run_id_for(command.id, job)
    if not wait:
        console.print(f"sent {job}; run id {run_id}", soft_wrap=True)
        return
    _follow(home, run_id, job, total, producer.last_acked_seq + 1, timeout)


def _follow(home: Home, run_id: str, job: str, total: int, from_seq: int, timeout: float) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bus.subscriber import Subscriber
    from contracts import (
        AssetChecked,
        AssetFailed,
        CandlesIngested,
        ChainSnapshotted,
        DerivedComputed,
        FlowComputed,
        RunFinished,
        RunStarted,
    )

    types = ["RunStarted", "CandlesIngested", "ChainSnapshotted", "FlowComputed", "DerivedComputed", "AssetFailed",
             "AssetChecked", "RunFinished"]
    subscriber = Subscriber(home, types=types, from_seq=from_seq)
    partitions: set[str] = set()
    rows = 0
    started = time.monotonic()
    warned = False
    finished: RunFinished | None = None
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=False,
    ) as progress:
        task = progress.add_task(f"{job}: waiting for a worker", total=total or None)
        while finished is None:
            if time.monotonic() - started > timeout:
                fail(f"the run {run_id} did not finish within {timeout:g}s; it may still be running (`oh status`)")
            for _, event in subscriber.poll(200):
                if getattr(event, "run_id", None) != run_id:
                    continue
                if isinstance(event, RunStarted):
                    progress.update(task, description=f"{job}: running")
                elif isinstance(event, CandlesIngested):
                    rows += event.row_count
                    partitions.add(event.symbol)
                elif isinstance(event, ChainSnapshotted):
                    rows += event.row_count
                    partitions.add(f"{event.symbol}|{event.snapshot_date}")
                elif isinstance(event, FlowComputed | DerivedComputed):
                    rows += event.row_count
                    partitions.add(f"{event.symbol}|{event.as_of}")
                elif isinstance(event, AssetFailed | AssetChecked):
                    partitions.add(event.partition_key or "")
                elif isinstance(event, RunFinished):
                    finished = event
                progress.update(task, completed=len(partitions))
            if not warned and not partitions and time.monotonic() - started > NO_WORKER_WARNING_SECONDS:
                warned = True
                err_console.print("no worker has picked the command up yet: is the worker running? (`oh status`)")
    subscriber.close()
    if finished.status != "success":
        fail(f"{job} run {run_id} {finished.status} after {finished.duration_ms} ms: {finished.error_message}")
    detail = f"{rows} rows in {len(partitions)} partitions" if rows else f"{len(partitions)} partitions"
    console.print(f"[green]{job} succeeded[/]: {detail} in {finished.duration_ms} ms (run {run_id})", soft_wrap=True)


@emit_app.command("ingest-candles")
def ingest_candles(
    symbols: str = typer.Option(..., help="Comma-separated tickers, e.g. AAPL,MSFT."),
    start: str = typer.Option(..., help="First date, YYYY-MM-DD."),
    end: str = typer.Option(..., help="Last date, YYYY-MM-DD (inclusive)."),
    provider: str = typer.Option("sim", help="sim | alpaca | yahoo."),
    wait: bool = typer.Option(False, "--wait", help="Show progress; exit non-zero if the run fails."),
    timeout: float = typer.Option(3600.0, help="With --wait, give up after this many seconds."),
) -> None:
    """Ingest daily candles (job ingest_candles, asset candles_daily)."""
    from contracts import IngestCandles

    symbol_list = _symbols(symbols)
    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
    if first > last:
        fail(f"--start {first} is after --end {last}", 2)
    _check_provider(provider)

    command = IngestCandles(symbols=symbol_list, start=first, end=last, provider=provider)
    emit_and_wait(command, len(symbol_list), wait, timeout)


@emit_app.command("checks")
def checks(
    asset: str | None = typer.Option(None, help="Asset key to check (default: every checked asset)."),
    symbols: str | None = typer.Option(None, help="Comma-separated tickers (default: all stored)."),
    wait: bool = typer.Option(False, "--wait", help="Show progress; exit non-zero if the run fails."),
    timeout: float = typer.Option(3600.0, help="With --wait, give up after this many seconds."),
) -> None:
    """Re-run the data-quality checks on stored data (job run_checks); results go to meta.asset_checks."""
    from contracts import RunChecks

    known = ("candles_daily",)
    if asset is not None and asset not in known:
        fail(f"no checks for asset {asset!r} in this build; checked assets: {', '.join(known)}", 2)
    symbol_list = _symbols(symbols) if symbols else None
    emit_and_wait(RunChecks(asset=asset, symbols=symbol_list), len(symbol_list or []), wait, timeout)


@emit_app.command("snapshot-options")
def snapshot_options(
    symbols: str = typer.Option(..., help="Comma-separated underlyings, e.g. AAPL,SPY."),
    as_of: str | None = typer.Option(None, "--as-of", help="One session, YYYY-MM-DD (default: the latest closed session)."),
    start: str | None = typer.Option(None, help="First session of a backfill range (with --end)."),
    end: str | None = typer.Option(None, help="Last session of a backfill range (with --start)."),
    provider: str = typer.Option("sim", help="sim | alpaca | yahoo."),
    wait: bool = typer.Option(False, "--wait", help="Show progress; exit non-zero if the run fails."),
    timeout: float = typer.Option(3600.0, help="With --wait, give up after this many seconds."),
) -> None:
    """Snapshot full option chains (job snapshot_options, asset options_snapshot_file), one per symbol and session."""
    from datetime import UTC, datetime

    from contracts import SnapshotOptions
    from oh import calendar

    symbol_list = _symbols(symbols)
    if as_of and (start or end):
        fail("give either --as-of or --start/--end, not both", 2)
    if bool(start) != bool(end):
        fail("a range needs both --start and --end", 2)
    if start and end:
        first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
        if first > last:
            fail(f"--start {first} is after --end {last}", 2)
    else:
        day = _parse_date(as_of, "--as-of") if as_of else calendar.last_closed_session(datetime.now(UTC))
        first = last = day
    _check_provider(provider)
    if not len(calendar.sessions(first, last)):
        fail(f"no NYSE session between {first} and {last}", 2)
    command = SnapshotOptions(symbols=symbol_list, start=first, end=last, provider=provider)
    emit_and_wait(command, len(symbol_list) * len(calendar.sessions(first, last)), wait, timeout)


@emit_app.command("compute-flow")
def compute_flow(
    symbols: str = typer.Option(..., help="Comma-separated underlyings with stored snapshots."),
    as_of: str = typer.Option(..., "--as-of", help="The session the window ends at, YYYY-MM-DD."),
    window: int = typer.Option(1, help="Number of consecutive snapshot pairs in the window."),
    wait: bool = typer.Option(False, "--wait", help="Show progress; exit non-zero if the run fails."),
    timeout: float = typer.Option(3600.0, help="With --wait, give up after this many seconds."),
) -> None:
    """Compute open-interest/volume flow (job compute_flow, asset options_flow), every grouping at once."""
    from contracts import ComputeFlow

    symbol_list = _symbols(symbols)
    if window < 1:
        fail(f"--window must be at least 1, got {window}", 2)
    command = ComputeFlow(symbols=symbol_list, as_of=_parse_date(as_of, "--as-of"), window=window)
    emit_and_wait(command, len(symbol_list), wait, timeout)


@emit_app.command("compute-derived")
def compute_derived(
    symbols: str = typer.Option(..., help="Comma-separated underlyings with stored snapshots."),
    as_of: str = typer.Option(..., "--as-of", help="The session, YYYY-MM-DD."),
    wait: bool = typer.Option(False, "--wait", help="Show progress; exit non-zero if the run fails."),
    timeout: float = typer.Option(3600.0, help="With --wait, give up after this many seconds."),
) -> None:
    """Compute derived metrics (job compute_derived, asset derived_metrics) from the session's chain."""
    from contracts import ComputeDerived

    symbol_list = _symbols(symbols)
    emit_and_wait(ComputeDerived(symbols=symbol_list, as_of=_parse_date(as_of, "--as-of")), len(symbol_list), wait, timeout)
