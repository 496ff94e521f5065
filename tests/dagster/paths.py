"""The two ways to fill a warehouse that the Dagster tests compare: Dagster's steps and the CLI, and what is compared.

The compared tables are every data table, with the columns a run does not stamp (no run ids, no
wall-clock times), the home's own path written as $OH_HOME.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from bus.home import Home
from services.pipeline import Step, follow_chain
from tests.integration.conftest import run_oh
from tests.scenarios.harness import BusHarness

DATA_TABLES = {  # table -> compared columns
    "candles_daily": "*",
    "options_bars": "*",
    "option_snapshots": "*",
    "options_flow": "*",
    "derived_daily": "*",
    "briefings": "as_of, markdown, symbols, path",
}
Read = Callable[[str, list[Any]], pa.Table]


def data_tables(read: Read, home: Home) -> dict[str, list[dict[str, Any]]]:
    """Every compared table, sorted, with the home's path written as $OH_HOME."""
    root = str(home.root)
    tables = {table: read(f"SELECT {columns} FROM {table} ORDER BY ALL", []).to_pylist()
              for table, columns in DATA_TABLES.items()}
    for rows in tables.values():
        for row in rows:
            row.update({k: v.replace(root, "$OH_HOME") for k, v in row.items() if isinstance(v, str)})
    return tables


def start_stack(home: Home) -> BusHarness:
    """The ledger and every worker on real sockets for `home`, the scheduler's own timer off."""
    (home.config / "scheduler.toml").write_text("[daily]\nenabled = false\n")
    return BusHarness(home)


@contextmanager
def stack_in(home: Home) -> Iterator[BusHarness]:
    """The ledger and every worker for `home`, with OH_HOME pointing at it (for `oh` and the step processes)."""
    saved = os.environ.get("OH_HOME")
    os.environ["OH_HOME"] = str(home.root)
    harness = start_stack(home)
    try:
        yield harness
    finally:
        harness.close()
        if saved is None:
            os.environ.pop("OH_HOME", None)
        else:
            os.environ["OH_HOME"] = saved


def cli_dailies(days: list[date], symbols: list[str]) -> None:
    """`oh emit daily --wait` for each session in turn, as a trader (or cron) would run them."""
    for day in days:
        done = run_oh("emit", "daily", "--symbols", ",".join(symbols), "--as-of", str(day), "--without-portfolio",
                      "--wait", timeout=600)
        assert done.returncode == 0, done.stderr + done.stdout


def cli_backfill(harness: BusHarness, days: list[date], symbols: list[str], candle_days: int = 400) -> None:
    """The CLI's backfill of a range: candles (with daily's look-back), option bars and chains with `oh emit ...
    --start --end --wait`; flow, derived and the briefing chain on by themselves, followed to their end."""
    first, last, listed = str(days[0]), str(days[-1]), ",".join(symbols)
    for argv in (("ingest-candles", "--start", str(days[0] - timedelta(days=candle_days))),
                 ("ingest-options-bars", "--start", first)):
        done = run_oh("emit", *argv, "--end", last, "--symbols", listed, "--wait", timeout=600)
        assert done.returncode == 0, done.stderr + done.stdout
    done = run_oh("emit", "snapshot-options", "--start", first, "--end", last, "--symbols", listed, "--wait", timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    run_id = re.search(r"\(run ([0-9a-f-]{36})\)", done.stdout)
    assert run_id, done.stdout
    outcomes = follow_chain(harness.query, Step("snapshot_options", run_id.group(1)), 300, 600)  # one ranged chain
    assert set(outcomes.values()) == {"success"}, outcomes


def other_home(tmp_path: Path, name: str) -> Home:
    """A second OH_HOME beside the test's own."""
    return Home(tmp_path / name / "oh_home").ensure()
