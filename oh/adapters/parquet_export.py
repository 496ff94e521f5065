"""Write an export the ledger serves (services/ledger/export.py) as hive-partitioned Parquet, with a manifest.

Contract:
- Everything goes to a staging directory next to the target (`.NAME.partial-XXXX`, same file system)
  and becomes the target by one rename once every table is written and checked and the manifest is
  in place: the target either holds a whole export or does not exist; a failed or interrupted export
  leaves nothing behind. The target must not exist, or be an empty directory.
- One directory per table, named as the table is in SQL (`candles_daily`, `meta.ingestion_runs`). A
  table with a session column is written with `pyarrow.dataset.write_dataset` and hive partitioning
  on it (`candles_daily/date=2025-06-03/part-0.parquet`); the ledger sends its rows ordered by that
  column, so each partition is one file. Other tables are one `part-0.parquet` (an empty table too,
  so its schema is readable). Parquet with zstd compression: DuckDB, Polars, Spark and pyarrow read it
  (`read_parquet('DIR/candles_daily/**/*.parquet', hive_partitioning = true)`).
- The rows written are counted from the files' own metadata, per partition, and must equal the
  counts the ledger read in the export's snapshot; any difference fails the export.
- `manifest.json`: the journal seq the export is consistent at, the range, and per table its
  directory, partition column, columns (name and Arrow type, in table order), rows in all and per
  partition, and files. Written last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from contracts.control import ExportOpened, ExportPage, ExportTable

MANIFEST = "manifest.json"
FORMAT = "oh-export"
FORMAT_VERSION = 1
MAX_OPEN_FILES = 256  # the rows come ordered by partition, so a closed file is never reopened
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")  # what becomes a directory name here


class ExportWriteError(RuntimeError):
    """The export could not be written, or what was written does not match what the ledger read."""


class TargetError(ValueError):
    """The target directory cannot take an export (it holds files, or is not a directory)."""


def check_target(target: Path) -> None:
    """Refuse a target that is a file or a directory with something in it (nothing is ever overwritten)."""
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise TargetError(f"{target} exists and is not a directory: choose a new directory for the export")
        if any(target.iterdir()):
            raise TargetError(f"{target} is not empty: choose a new (or empty) directory for the export")


@dataclass
class _Written:
    rows: int = 0
    files: list[str] = field(default_factory=list)
    partitions: dict[str, int] = field(default_factory=dict)


class _Pages:
    """The export's pages as one stream of (table, batch), read on demand; tables arrive in the order opened."""

    def __init__(self, fetch: Callable[[], tuple[ExportPage, pa.RecordBatchReader | None]]) -> None:
        self._fetch = fetch
        self._table: str | None = None
        self._batches: Iterator[pa.RecordBatch] = iter(())
        self.done = False

    def _next_page(self) -> bool:
        if self.done:
            return False
        page, reader = self._fetch()
        self.done = page.done
        self._table = page.table if reader is not None else None
        self._batches = iter(reader) if reader is not None else iter(())
        return True

    def batches_of(self, table: str) -> Iterator[pa.RecordBatch]:
        """Every batch of `table` (the stream stops at the first page of another table)."""
        while True:
            if self._table == table:
                yield from self._batches
                self._table = None
            if self._table is not None or not self._next_page():
                return
            if self._table is not None and self._table != table:
                return

    def finish(self) -> None:
        """Read to the ledger's last page (it closes the export); rows of a table not asked for are an error."""
        while self._table is None and self._next_page():
            pass
        if self._table is not None:
            raise ExportWriteError(f"the ledger sent rows of {self._table!r} after the tables asked for")


def _write_table(root: Path, table: ExportTable, batches: Iterator[pa.RecordBatch]) -> _Written:
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not _TABLE_NAME.match(table.name) or (table.partition_by and not _TABLE_NAME.match(table.partition_by)):
        raise ExportWriteError(f"the ledger named a table {table.name!r}: not a plain table name, nothing written")
    schema = pa.ipc.read_schema(pa.py_buffer(table.schema))
    target = root / table.name
    target.mkdir()
    written = _Written()

    def visit(file: Any) -> None:
        rows = file.metadata.num_rows
        relative = Path(file.path).relative_to(target)
        written.files.append(str(relative))
        written.rows += rows
        if table.partition_by:
            key = relative.parts[0].partition("=")[2]
            written.partitions[key] = written.partitions.get(key, 0) + rows

    partitioning = (
        ds.partitioning(pa.schema([schema.field(table.partition_by)]), flavor="hive") if table.partition_by else None
    )
    ds.write_dataset(
        batches, base_dir=str(target), schema=schema, format="parquet", partitioning=partitioning,
        basename_template="part-{i}.parquet", existing_data_behavior="error",
        file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
        max_partitions=max(len(table.partitions), 1) + 1024, max_open_files=MAX_OPEN_FILES,
        file_visitor=visit,
    )
    if not table.partition_by and not written.files:  # an empty table: still a file with its schema
        import pyarrow.parquet as pq

        pq.write_table(schema.empty_table(), target / "part-0.parquet", compression="zstd")
        written.files.append("part-0.parquet")
    if written.rows != table.rows or (table.partition_by and written.partitions != table.partitions):
        raise ExportWriteError(
            f"{table.name}: wrote {written.rows} rows but the ledger's snapshot holds {table.rows}"
            + ("" if written.rows != table.rows else " (the rows per partition differ)")
        )
    return written


def _columns(table: ExportTable) -> list[dict[str, str]]:
    import pyarrow as pa

    schema = pa.ipc.read_schema(pa.py_buffer(table.schema))
    return [{"name": f.name, "type": str(f.type)} for f in schema]


def write_export(
    opened: ExportOpened,
    fetch: Callable[[], tuple[ExportPage, pa.RecordBatchReader | None]],
    target: Path,
    since: date | None = None,
    until: date | None = None,
    on_table: Callable[[ExportTable, int], None] | None = None,
) -> dict[str, Any]:
    """Write the export to `target` (see the module doc) and return its manifest; nothing is left on failure."""
    check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        pages = _Pages(fetch)
        tables = []
        for table in opened.tables:
            written = _write_table(staging, table, pages.batches_of(table.name))
            if on_table is not None:
                on_table(table, len(written.files))
            tables.append({
                "name": table.name,
                "path": table.name,
                "partition_by": table.partition_by,
                "partitioning": "hive" if table.partition_by else None,
                "range_applied": table.ranged,
                "rows": written.rows,
                "partitions": dict(sorted(written.partitions.items())),
                "files": sorted(written.files),
                "columns": _columns(table),
            })
        pages.finish()
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "seq": opened.seq,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "tables": tables,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        check_target(target)
        if target.is_dir():
            target.rmdir()
        os.rename(staging, target)
        return manifest
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
