"""The catalog (contracts/catalog.py) is the one place that says which command starts which job, which
event it writes, under which asset key and table, on which worker; everything else derives from it."""

from __future__ import annotations

import msgspec

from bus.codec import decode_message
from contracts import MESSAGE_TYPES, Command, Event, RunFinished, utc_now
from contracts.catalog import JOB_BY_NAME, JOBS, TRACKED, asset_of, job_of, stage_after, writes_of
from services.stack import WORKERS


def test_every_job_command_has_exactly_one_job_and_one_worker_that_serves_it() -> None:
    """Each command type is started by one job, and that job's worker really has a handler for it."""
    commands = [cls for cls in MESSAGE_TYPES.values() if issubclass(cls, Command)]
    jobs = [cls for cls in commands if cls.__name__ not in ("StartLive", "StopLive")]  # streaming, not a job
    assert sorted(job.command.__name__ for job in JOBS) == sorted(cls.__name__ for cls in jobs)
    for job in JOBS:
        handlers, _ = WORKERS[job.worker]
        assert job.command in handlers, f"{job.worker} does not serve {job.name}"


def test_the_seed_names_are_kept() -> None:
    """Job names and asset keys are a contract with the seed notes."""
    assert [job.name for job in JOBS] == [
        "ingest_candles", "ingest_options_bars", "snapshot_options", "compute_flow", "compute_derived",
        "build_briefing", "run_checks", "daily",
    ]
    assert [job.asset_key for job in JOBS if job.asset_key] == [
        "candles_daily", "options_bars", "options_snapshot_file", "options_flow", "derived_metrics", "briefing_markdown",
    ]


def test_the_pipeline_is_one_chain_whose_stages_follow_a_job_that_stores_an_asset() -> None:
    assert [s.name for s in JOBS if s.after] == ["compute_flow", "compute_derived", "build_briefing"]
    chain, job = [], "snapshot_options"
    while (stage := stage_after(job)) is not None:
        assert JOB_BY_NAME[job].asset_key, f"{job} chains {stage.name} but stores nothing to chain on"
        chain.append(stage.name)
        job = stage.name
    assert chain == ["compute_flow", "compute_derived", "build_briefing"]


def test_every_event_of_a_job_writes_its_table_and_its_asset() -> None:
    """What the ledger batches by and the dashboard invalidates by: a job's event writes its table and asset rows."""
    for job in JOBS:
        if job.event and job.asset_key:
            assert writes_of(job.event) == (job.table, f"asset:{job.asset_key}")
            assert asset_of(job.event) == job.asset_key
    assert writes_of(RunFinished) == ("meta.ingestion_runs",)
    events = [cls for cls in MESSAGE_TYPES.values() if issubclass(cls, Event)]
    unwritten = sorted(cls.__name__ for cls in events if not writes_of(cls))
    assert unwritten == ["AssetFailed"]  # its asset key is in the event itself (the projection handles it)


def test_tracked_datasets_are_the_jobs_with_coverage() -> None:
    assert TRACKED["options_snapshot_file"] == ("option_snapshots", "underlying", "snapshot_date")
    assert set(TRACKED) == {j.asset_key for j in JOBS if j.coverage}
    assert job_of(JOB_BY_NAME["compute_flow"].command).name == "compute_flow"


class _RunFinishedV1(msgspec.Struct, tag="RunFinished", tag_field="type", kw_only=True):
    """RunFinished as journals before version 2 hold it: no job_name."""

    id: str
    ts: object
    v: int = 1
    run_id: str
    status: str
    ended_at: object
    duration_ms: int
    error_type: str | None = None
    error_message: str | None = None
    error_stack_hash: str | None = None


def test_a_version_1_run_finished_from_an_old_journal_still_decodes() -> None:
    """Old journals replay: a RunFinished without job_name decodes, with job_name None (chaining then queries)."""
    now = utc_now()
    old = msgspec.msgpack.encode(_RunFinishedV1(id="a" * 32, ts=now, run_id="r1", status="success", ended_at=now,
                                                duration_ms=5))
    decoded = decode_message(old)
    assert isinstance(decoded, RunFinished)
    assert (decoded.v, decoded.job_name, decoded.run_id) == (1, None, "r1")
    assert RunFinished(run_id="r2", job_name="x", status="success", ended_at=now, duration_ms=1).v == 2
