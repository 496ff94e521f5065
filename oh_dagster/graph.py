"""The asset graph, derived from the catalog (contracts/catalog.py): no job or asset name is written here.

Every job with an asset key is an asset under that key. Its partitions: session x symbol when the
catalog tracks it by symbol and session (`coverage`), else session only (the briefing). Its
dependencies: the asset of the stage it runs after and the assets it `reads`, same session; and the
earlier sessions of the assets it `reads_earlier` (flow reads the previous session's chain, derived
its own history), as a time-window mapping one session back. So a backfill runs a session's flow
after the chain before it, and a session's derived metrics after the session before: the order the
daily CLI path has, which is what makes the tables come out the same.
"""

from __future__ import annotations

import dagster as dg

from contracts.catalog import JOB_BY_NAME, JOBS, Job
from oh_dagster.partitions import SESSION, SESSION_SYMBOL, SESSIONS, SYMBOL

ASSET_JOBS: tuple[Job, ...] = tuple(job for job in JOBS if job.asset_key)
JOB_OF_ASSET: dict[str, Job] = {job.asset_key: job for job in ASSET_JOBS if job.asset_key}


def per_symbol(job: Job) -> bool:
    """Whether the job's asset has one partition per symbol and session (else one per session)."""
    return job.coverage is not None


def partitions_of(job: Job) -> dg.PartitionsDefinition:
    """The job's asset's partitions."""
    return SESSION_SYMBOL if per_symbol(job) else SESSIONS


def upstream_of(job: Job) -> dict[str, tuple[bool, bool]]:
    """Asset keys the job's asset depends on -> (reads the same session, reads earlier sessions)."""
    same = [JOB_BY_NAME[job.after].asset_key] if job.after else []
    same += list(job.reads)
    deps: dict[str, tuple[bool, bool]] = {}
    for key in dict.fromkeys([*same, *job.reads_earlier]):
        assert key is not None and key in JOB_OF_ASSET, f"{job.name} reads {key}, which no job writes"
        deps[key] = (key in same, key in job.reads_earlier)
    return deps


def _sessions_back(same: bool, earlier: bool) -> dg.TimeWindowPartitionMapping:
    """The session itself, the one before, or both."""
    return dg.TimeWindowPartitionMapping(start_offset=-1 if earlier else 0, end_offset=0 if same else -1)


def mapping(downstream: Job, upstream: Job, same: bool, earlier: bool) -> dg.PartitionMapping | None:
    """How a partition of `downstream` maps to the partitions of `upstream` it reads (None: the same key)."""
    if per_symbol(downstream) and per_symbol(upstream):
        if not earlier:
            return None
        return dg.MultiPartitionMapping({
            SESSION: dg.DimensionPartitionMapping(SESSION, _sessions_back(same, earlier)),
            SYMBOL: dg.DimensionPartitionMapping(SYMBOL, dg.IdentityPartitionMapping()),
        })
    if not per_symbol(downstream) and per_symbol(upstream) and not earlier:
        return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=SESSION)  # every symbol's
    if not per_symbol(downstream) and not per_symbol(upstream):
        return None if not earlier else _sessions_back(same, earlier)
    raise ValueError(f"{downstream.name} reading {upstream.name} this way has no partition mapping here")


def deps_of(job: Job) -> list[dg.AssetDep]:
    """The job's asset's dependencies with their partition mappings."""
    return [
        dg.AssetDep(key, partition_mapping=mapping(job, JOB_OF_ASSET[key], same, earlier))
        for key, (same, earlier) in upstream_of(job).items()
    ]
