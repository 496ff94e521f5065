"""`oh query`, `oh db init`: reading the warehouse (`oh replay` is in oh/cli/replay.py; output formats in formats.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from bus.home import Home
from oh.cli.common import console, fail
from oh.domain.units import plural

if TYPE_CHECKING:
    import pyarrow as pa

db_app = typer.Typer(help="The warehouse: create it, inspect it.", no_args_is_help=True)


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


@contextmanager
def reader(home: Home) -> Iterator[Callable[[str, list[Any] | None], pa.Table]]:
    """Yield `read(sql, params)`: through the ledger when it runs, else on the file opened read-only.

    Either way each query runs sandboxed, within the time budget (OH_QUERY_BUDGET_SECONDS) and the
    row cap (OH_QUERY_MAX_ROWS), and errors end the command with a one-line message (exit 2 when the
    statement is refused, else 1).
    """
    from bus.control_client import ControlClient, LedgerUnavailable, QueryError
    from bus.query_limits import QueryLimits

    try:
        budget = QueryLimits.from_env().budget
    except ValueError as exc:
        fail(str(exc), 2)
    client = ControlClient(home, timeout=budget)
    if not client.answers(timeout=0.3):
        try:
            with _file_reader(home) as read:
                client.close()
                yield read
            return
        except _LedgerHoldsTheFile:
            pass  # a ledger holds the file, so one runs and answered late (a busy machine): ask it, with the budget

    def read_via_ledger(sql: str, params: list[Any] | None = None) -> pa.Table:
        try:
            return client.query(sql, params)
        except QueryError as exc:
            fail(str(exc), 2 if exc.kind == "refused" else 1)
        except LedgerUnavailable as exc:
            fail(f"{exc}; see `oh status`")

    try:
        yield read_via_ledger
    finally:
        client.close()


@contextmanager
def _file_reader(home: Home) -> Iterator[Callable[[str, list[Any] | None], pa.Table]]:
    from services.ledger.offline import OfflineError, reader

    try:
        with reader(home) as read:

            def read_file(sql: str, params: list[Any] | None = None) -> pa.Table:
                try:
                    return read(sql, params)
                except OfflineError as exc:
                    fail(str(exc), 2 if exc.refused else 1)

            yield read_file
    except OfflineError as exc:
        if exc.locked:
            raise _LedgerHoldsTheFile from None
        fail(str(exc))


class _LedgerHoldsTheFile(Exception):
    """The warehouse file is locked by another process: a ledger runs, even if it did not answer the first ping."""


def query(
    sql: str = typer.Argument(..., help="One read-only statement (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN)."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table (for people) | csv | json | parquet."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    limit: int = typer.Option(200, help="With --format table, show at most this many rows."),
) -> None:
    """Query the warehouse (read-only): a table in trader units, or csv, json (one object per row) or parquet."""
    if format is Format.parquet and output is None and sys.stdout.isatty():
        fail("parquet is binary: give --output FILE or redirect stdout to a file", 2)
    if limit < 1:
        fail(f"--limit must be at least 1, got {limit}", 2)
    with reader(Home.from_env()) as read:
        table = read(sql, None)
    if format is Format.table:
        _print_table(table, limit)
        return
    from oh.cli import formats

    write = {Format.csv: formats.write_csv, Format.json: formats.write_json, Format.parquet: formats.write_parquet}[format]
    if output is None:
        write(table, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    try:
        with output.open("wb") as sink:
            write(table, sink)
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror or exc}")
    console.print(f"wrote {plural(table.num_rows, 'row')} to {output} ({format.value})", soft_wrap=True, highlight=False)


def _print_table(table: pa.Table, limit: int) -> None:
    """Rows for people: numbers in trader units (oh.cli.formats.cell), right-aligned and never cut, headers whole.

    Piped output is as wide as the table needs; on a terminal narrower than the table, rich narrows the text
    columns and says the table is wider than the terminal.
    """
    from rich.console import Console
    from rich.table import Table

    from oh.cli.formats import cell, is_numeric

    names = table.column_names
    rows = [[cell(name, row[name]) for name in names] for row in table.slice(0, limit).to_pylist()]
    widths = [max([len(name), *(len(r[i]) for r in rows)]) for i, name in enumerate(names)]
    needed = sum(widths) + 3 * len(names) + 1
    out = console if console.is_terminal else Console(width=max(console.width, needed))
    view = Table(show_lines=False)
    for field, width in zip(table.schema, widths, strict=True):
        numeric = is_numeric(field.type)
        view.add_column(field.name, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold",
                        min_width=width if numeric else len(field.name))
    for row in rows:
        view.add_row(*row)
    out.print(view)
    if table.num_rows > limit:
        out.print(f"({plural(table.num_rows, 'row')}, {limit:,} shown; use --limit or --format csv)")
    if needed > out.width:
        out.print(f"({plural(len(names), 'column')}, wider than the terminal: `-f csv`, or pipe to `less -S`)")


@db_app.command("init")
def db_init() -> None:
    """Create the data directory and the warehouse tables (safe to run again)."""
    from bus.control_client import ControlClient

    home = Home.from_env().ensure()
    client = ControlClient(home)
    try:
        if client.answers():
            console.print(f"the ledger is running; {home.warehouse} is initialized")
            return
    finally:
        client.close()
    from services.ledger.offline import init

    init(home)
    console.print(f"initialized {home.root} (warehouse {home.warehouse})")
