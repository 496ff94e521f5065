"""Materialize the asset graph for a range of sessions x symbols through Dagster's Python API.

What a backfill of every asset launched from the UI does (the assets' single-run backfill policy:
one run per partitioning), without the daemon: one run of the `per_symbol` job over the range
(sessions `first`..`last` x `symbols`), then, if it succeeded, one run of `per_session` over the
sessions. Each run is `dagster.execute_job` on the reconstructable job, so with `processes` the
multiprocess executor starts each step in a process of its own, `processes` at a time (None: the
in-process executor, one process for every step). Tests and bench/dagster_backfill.py run it.

The symbols must be adjacent in the `symbols` partitions (a range of a dynamic dimension is the
keys between its two ends, in the order they were added); missing ones are added at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import dagster as dg

from oh.domain import calendar
from oh_dagster.definitions import per_session_job, per_symbol_job
from oh_dagster.partitions import SYMBOLS, session_symbol_key
from oh_dagster.resources import RESOURCE_KEY

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


# What a step process imported for itself, each time, before the forkserver preloaded it (py-spy over a 2 x 8 inline
# backfill, 13 step processes: imports were 43% of their CPU): the instance's storage classes (sqlalchemy, alembic,
# Dagster's SQLite storages: ~1 CPU-s a step) and, on a step's first rows, pandas (pyarrow's NumPy conversions load it),
# pyarrow's acero (our group-bys) and upath (Dagster's paths).
STEP_IMPORTS = ("pandas", "pyarrow.acero", "upath")


def run_config(mode: str, processes: int | None, resource: dict[str, Any] | None = None,
               log_level: str = "INFO", preload: Sequence[str] = ()) -> dict[str, Any]:
    """One run's config: the executor (multiprocess with `processes`, else in-process), the `oh` resource, the log level.

    The multiprocess executor forks each step from a forkserver that has imported the definitions and `preload`
    (`step_preload`), once per run instead of once per step."""
    executor = {"multiprocess": {"max_concurrent": processes, "start_method": {"forkserver": {
        "preload_modules": ["oh_dagster.definitions", *preload]}}}} if processes else {"in_process": {}}
    return {"execution": {"config": executor}, "loggers": {"console": {"config": {"log_level": log_level}}},
            "resources": {RESOURCE_KEY: {"config": {"mode": mode, **(resource or {})}}}}


def step_preload(instance: dg.DagsterInstance) -> list[str]:
    """What a step process of `instance` would import at its start: the modules of the instance's own storage
    classes (SQLite by default, Postgres if its dagster.yaml says so), then STEP_IMPORTS. The forkserver skips a
    module that is not there, silently (tests/dagster/test_definitions.py holds every name to one that imports)."""
    ref = instance.get_ref()
    data = (ref.storage_data, ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data)
    return list(dict.fromkeys([*(d.module_name for d in data if d is not None), *STEP_IMPORTS]))


def symbol_range(instance: dg.DagsterInstance, symbols: Sequence[str]) -> tuple[str, str]:
    """The first and last of `symbols` in the partitions' order; adds missing ones; ValueError if not adjacent."""
    known = instance.get_dynamic_partitions(SYMBOLS.name)
    missing = [s for s in dict.fromkeys(symbols) if s not in known]
    if missing:
        instance.add_dynamic_partitions(SYMBOLS.name, missing)
        known = instance.get_dynamic_partitions(SYMBOLS.name)
    positions = sorted(known.index(s) for s in set(symbols))
    if positions[-1] - positions[0] + 1 != len(positions):
        between = [known[i] for i in range(positions[0], positions[-1] + 1) if known[i] not in symbols]
        raise ValueError(f"{', '.join(symbols)} are not adjacent in the symbol partitions: a range would also take "
                         f"{', '.join(between)}")
    return known[positions[0]], known[positions[-1]]


def materialize_range(
    first: date, last: date, symbols: Sequence[str], instance: dg.DagsterInstance, *, mode: str = "bus",
    processes: int | None = None, resource: dict[str, Any] | None = None, log_level: str = "INFO",
) -> list[dg.ExecuteJobResult]:
    """Run `per_symbol` over sessions first..last x symbols, then `per_session` over the sessions; the results."""
    for day in (first, last):
        if not calendar.is_session(day):
            raise ValueError(f"{day} is not an NYSE session")
    if not symbols:
        raise ValueError("no symbols")
    low, high = symbol_range(instance, symbols)
    config = run_config(mode, processes, resource, log_level, step_preload(instance) if processes else ())
    symbol_run = dg.execute_job(
        dg.reconstructable(per_symbol_job), instance=instance, run_config=config,
        tags={RANGE_START: str(session_symbol_key(first, low)), RANGE_END: str(session_symbol_key(last, high))},
    )
    if not symbol_run.success:
        return [symbol_run]
    session_run = dg.execute_job(
        dg.reconstructable(per_session_job), instance=instance, run_config=config,
        tags={RANGE_START: first.isoformat(), RANGE_END: last.isoformat()},
    )
    return [symbol_run, session_run]
