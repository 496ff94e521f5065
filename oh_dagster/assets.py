"""One Dagster asset per catalog job that writes an asset; each step materializes its partitions through the ledger.

A step turns its partitions into the job's commands (oh_dagster/commands.py), runs them in the
resource's mode (oh_dagster/modes.py: `bus` or `inline`), then reads the run ledger for what they
did (oh_dagster/ledger.py). The materialization carries that record: rows, ledger run ids,
duration, provider, partition counts, mode. If a run did not succeed, the step fails with the
ledger's error, and `meta.*` shows the failed run exactly as for a CLI run.

The briefing (a session-only asset) covers the symbols whose upstream partition of that session is
stored or was skipped: the symbols the chain would send it (services/pipeline.py).

Every asset has `BackfillPolicy.single_run()`: a backfill is one run whose steps send range
commands, as `oh emit ... --start --end` would, instead of one run per partition.
"""

import dagster as dg

from contracts.catalog import JOB_BY_NAME, Job
from oh_dagster.commands import commands_for
from oh_dagster.graph import deps_of, partitions_of, per_symbol
from oh_dagster.ledger import step_record, upstream_symbols
from oh_dagster.modes import LedgerSession, StepFailed
from oh_dagster.partitions import split_keys
from oh_dagster.resources import OhResource


def materialize_step(context: dg.AssetExecutionContext, oh: OhResource, job: Job) -> dg.MaterializeResult:
    """Materialize the step's partitions of the job's asset; fail the step if a run did not succeed."""
    assert job.asset_key is not None
    partitions = split_keys(context.partition_keys, per_symbol(job))
    try:
        with LedgerSession(oh.oh_home(), oh.mode, oh.timeouts(), context.log) as ledger:
            if not per_symbol(job):
                upstream = JOB_BY_NAME[job.after].asset_key if job.after else None
                partitions = {day: upstream_symbols(ledger.query, upstream, day) if upstream else []
                              for day in partitions}
            commands = commands_for(job, partitions, context.run.run_id, oh.settings())
            steps = ledger.run(commands)
            record = step_record(ledger.query, [step.run_id for step in steps], job.asset_key)
    except StepFailed as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    metadata = record.metadata(oh.mode)
    if record.failed_runs:
        raise dg.Failure(description=record.failure(), metadata=metadata, allow_retries=False)
    return dg.MaterializeResult(metadata=metadata)


def asset_for(job: Job, automation_condition: dg.AutomationCondition | None = None) -> dg.AssetsDefinition:
    """The Dagster asset of one catalog job."""
    assert job.asset_key is not None, f"{job.name} writes no asset"

    @dg.asset(
        name=job.asset_key,
        partitions_def=partitions_of(job),
        deps=deps_of(job),
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="oh",
        kinds={"duckdb"},
        automation_condition=automation_condition,
        description=(f"Job `{job.name}` ({job.command.__name__}, `oh emit {job.cli}`) on the `{job.worker}` "
                     f"worker, projected into `{job.table}` by the ledger."),
        metadata={"job": job.name, "worker": job.worker, "table": job.table or ""},
    )
    def materialize(context: dg.AssetExecutionContext, oh: OhResource) -> dg.MaterializeResult:
        return materialize_step(context, oh, job)

    return materialize
