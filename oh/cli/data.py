"""`oh query`, `oh db init`: reading the warehouse (`oh replay` is in oh/cli/replay.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

from bus.home import Home
from oh.cli.common import console, fail

if TYPE_CHECKING:
    import pyarrow as pa

db_app = typer.Typer(help="The warehouse: create it, inspect it.", no_args_is_help=True)


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@contextmanager
def reader(home: Home) -> Iterator[Callable[[str, list[Any] | None], pa.Table]]:
    """Yield `read(sql, params)`: through the ledger when it runs, else on the file opened read-only.

    Either way each query runs sandboxed, within the time budget (OH_QUERY_BUDGET_SECONDS) and the
    row cap (OH_QUERY_MAX_ROWS), and errors end the command with a one-line message (exit 2 when the
    statement is refused, else 1).
    """
    from bus.control_client import ControlClient, LedgerUnavailable, QueryError
    from services.ledger.offline import OfflineError, query_budget

    try:
        budget = query_budget()
    except OfflineError as exc:
        fail(str(exc), 2)
    client = ControlClient(home, timeout=budget)
    if not client.answers(timeout=0.3):
        client.close()
        with _file_reader(home) as read:
            yield read
        return

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
        fail(str(exc))


def query(
    sql: str = typer.Argument(..., help="One read-only statement (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN)."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table | csv | json."),
    limit: int = typer.Option(200, help="With --format table, show at most this many rows."),
) -> None:
    """Query the warehouse (read-only)."""
    with reader(Home.from_env()) as read:
        table = read(sql, None)
    if format is Format.csv:
        import pyarrow.csv as pacsv

        pacsv.write_csv(_nested_as_json(table), sys.stdout.buffer)
    elif format is Format.json:
        sys.stdout.write(json.dumps(table.to_pylist(), default=str, indent=1) + "\n")
    else:
        from rich.table import Table

        view = Table(show_lines=False)
        for name in table.column_names:
            view.add_column(name)
        for row in table.slice(0, limit).to_pylist():
            view.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(view)
        if table.num_rows > limit:
            console.print(f"({table.num_rows} rows, {limit} shown; use --limit or --format csv)")


def _nested_as_json(table: pa.Table) -> pa.Table:
    """CSV cells are flat: list, struct and map columns become JSON text, as `--format json` writes them.

    Arrow's CSV writer refuses nested types and has no cast from them to text, so those columns (only
    those) go through Python's json, cell by cell.
    """
    import pyarrow as pa
    import pyarrow.types as patypes

    columns = [
        pa.array([None if v is None else json.dumps(v, default=str) for v in column.to_pylist()], pa.string())
        if patypes.is_nested(column.type) else column
        for column in table.columns
    ]
    return pa.table(columns, names=table.column_names)


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
