"""Asset checks: the checks worker's results in `meta.asset_checks`, shown in Dagster (no second copy of the rules).

Each asset whose deliveries the checks worker checks (services/checks.py's reactions) gets one
Dagster check, `quality`, per partition: it finds the newest run that wrote the partition in the
run ledger, waits (up to the resource's `checks_timeout`) for the checks worker's results of that
delivery, and passes when none failed; a failed check of severity `error` makes it an ERROR,
only warnings a WARN. Each individual check (name, status, severity, message) is in its metadata.

A check step that covers several partitions (a single-run backfill) records one evaluation per
partition and returns their summary.
"""

import dagster as dg

from contracts.catalog import Job, asset_of
from oh_dagster.graph import JOB_OF_ASSET, partitions_of, per_symbol
from oh_dagster.ledger import CheckOutcome, check_outcome
from oh_dagster.modes import LedgerSession, StepFailed
from oh_dagster.partitions import ledger_keys
from oh_dagster.resources import OhResource
from services import checks as checks_worker

CHECK_NAME = "quality"
CHECKED_JOBS: tuple[Job, ...] = tuple(
    JOB_OF_ASSET[key] for key in dict.fromkeys(asset_of(event) for event in checks_worker.REACTIONS) if key
)


def _severity(outcome: CheckOutcome) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if outcome.severe else dg.AssetCheckSeverity.WARN


def check_for(job: Job) -> dg.AssetChecksDefinition:
    """The `quality` check of one job's asset."""
    assert job.asset_key is not None
    asset_key = job.asset_key

    @dg.asset_check(asset=asset_key, name=CHECK_NAME, partitions_def=partitions_of(job), blocking=False,
                    description=f"The checks worker's results for each {asset_key} delivery (meta.asset_checks).")
    def quality(context: dg.AssetCheckExecutionContext, oh: OhResource) -> dg.AssetCheckResult:
        keys = list(context.partition_keys)
        try:
            with LedgerSession(oh.oh_home(), "bus", oh.timeouts(), context.log) as ledger:
                outcomes = {key: check_outcome(ledger.query, asset_key, ledger_keys(key, per_symbol(job)),
                                               oh.checks_timeout) for key in keys}
        except StepFailed as exc:
            raise dg.Failure(description=str(exc)) from None
        if len(keys) == 1:
            outcome = outcomes[keys[0]]
            return dg.AssetCheckResult(passed=outcome.passed, severity=_severity(outcome),
                                       description=outcome.description, metadata=outcome.metadata)
        for key, outcome in outcomes.items():
            context.op_execution_context.log_event(dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(asset_key), check_name=CHECK_NAME, passed=outcome.passed, partition=key,
                severity=_severity(outcome), description=outcome.description, metadata=outcome.metadata,
            ))
        failed = sorted(key for key, outcome in outcomes.items() if not outcome.passed)
        severe = any(outcomes[key].severe for key in failed)
        return dg.AssetCheckResult(
            passed=not failed, severity=dg.AssetCheckSeverity.ERROR if severe else dg.AssetCheckSeverity.WARN,
            description=f"{len(keys) - len(failed)} of {len(keys)} partitions passed"
                        + (f"; failed: {', '.join(failed[:10])}" if failed else ""),
            metadata={"partitions": len(keys), "failed": len(failed)},
        )

    return quality
