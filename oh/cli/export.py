"""`oh export`: tables (or a range of sessions) as hive-partitioned Parquet with a manifest, through the ledger.

The ledger reads every table in one read-only snapshot and sends it page by page
(services/ledger/export.py); this process writes the files (oh/adapters/parquet_export.py), so
the ledger's DuckDB never gets the right to write a file. Bad arguments, a target that is not new
or empty, and an unknown table are one line and exit 2; a ledger that does not answer or a failed
export, exit 1, and nothing is left in the target.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from bus.home import Home
from oh.cli.common import console, fail


def _date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not a date in YYYY-MM-DD form", 2)


def _tables(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        fail(f"--tables {text!r}: give table names separated by commas, e.g. candles_daily,meta.ingestion_runs", 2)
    return names


def export(
    to: Path = typer.Option(..., "--to", help="A new (or empty) directory for the Parquet files and manifest.json.",
                            show_default=False),
    tables: str = typer.Option(None, "--tables", help="Comma-separated tables (default: every table), e.g. "
                               "candles_daily,options_flow,meta.ingestion_runs."),
    since: str = typer.Option(None, "--since", help="First session, YYYY-MM-DD (tables with a session column)."),
    until: str = typer.Option(None, "--until", help="Last session, YYYY-MM-DD (inclusive)."),
    timeout: float = typer.Option(60.0, help="Seconds to wait for the ledger per page."),
) -> None:
    """Export tables as hive-partitioned Parquet (by session) with a manifest, consistent at one journal seq."""
    from bus.control_client import ControlClient, LedgerUnavailable, QueryError
    from oh.adapters.parquet_export import ExportWriteError, TargetError, check_target, write_export

    first, last = _date(since, "--since"), _date(until, "--until")
    if first and last and first > last:
        fail(f"--since {first} is after --until {last}", 2)
    names = _tables(tables)
    target = to.expanduser().resolve()
    try:
        check_target(target)
    except TargetError as exc:
        fail(str(exc), 2)
    if not timeout > 0:
        fail("--timeout must be a positive number of seconds", 2)
    home = Home.from_env()
    client = ControlClient(home, timeout=timeout)
    export_id: str | None = None
    try:
        opened = client.export_open(names, first, last)
        export_id = opened.export_id
        with console.status(f"exporting at journal seq {opened.seq} ..."):
            manifest = write_export(opened, lambda: client.export_fetch(opened.export_id), target, first, last)
        export_id = None  # the ledger closed it with the last page
    except LedgerUnavailable:
        fail(f"the ledger is not answering at {home.endpoint('control')}: start it (`oh up`); nothing was written")
    except QueryError as exc:
        fail(str(exc), 2 if exc.kind == "malformed" else 1)
    except TargetError as exc:
        fail(str(exc), 2)
    except (ExportWriteError, OSError) as exc:
        fail(f"the export failed and nothing was written to {target}: {exc}")
    finally:
        if export_id is not None:
            try:
                client.export_close(export_id)
            except (LedgerUnavailable, QueryError):
                pass
        client.close()
    _report(manifest, target)
    _exit_before_finalization()


def _exit_before_finalization() -> None:
    """End the process now, skipping interpreter finalization: after `write_dataset` returns, pyarrow's
    scanner can still hold tasks on its thread pool, and finalizing under them aborts the process now and
    then (exit -6, "terminate called without an active exception"; apache/arrow#36389 and #36980, open).
    Every file and the manifest are written and closed by now; only the output streams need flushing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _report(manifest: dict, target: Path) -> None:  # type: ignore[type-arg]
    from oh.domain.units import count

    table = Table(title=f"exported to {target} (consistent at journal seq {manifest['seq']})")
    for column, justify in (("table", "left"), ("rows", "right"), ("partitions", "right"), ("files", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    whole = []
    for item in manifest["tables"]:
        partitions = f"{len(item['partitions'])} by {item['partition_by']}" if item["partition_by"] else "-"
        table.add_row(item["name"], count(item["rows"]), partitions, str(len(item["files"])))
        if (manifest["since"] or manifest["until"]) and not item["range_applied"]:
            whole.append(item["name"])
    console.print(table)
    if whole:
        console.print(f"no session column, exported whole: {escape(', '.join(whole))}", highlight=False)
    console.print(f"manifest: {escape(str(target / 'manifest.json'))}", highlight=False)
