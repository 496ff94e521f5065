"""What Dagster shows is read from the run ledger (`meta.*`), the single source of truth for health.

- `step_record`: the runs one step made and the partitions they wrote (rows, duration, provider,
  status), from `meta.ingestion_runs` and `meta.ingestion_run_assets`: the step's materialization
  metadata, and the reason when it fails.
- `upstream_symbols`: the symbols whose upstream partition a session-only step builds on (the
  symbols the briefing covers), exactly as the chain picks them (services/pipeline.py).
- `check_outcome`: the checks worker's results for one partition, from `meta.asset_checks`: what a
  Dagster asset check reports. No check logic is repeated here.

Every function takes `read(sql, params) -> pyarrow.Table` (the ledger's query endpoint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

Read = Callable[[str, list[Any]], pa.Table]

RUNS_SQL = """
SELECT run_id, job_name, status, duration_ms, provider, triggered_by, error_type, error_message
FROM meta.ingestion_runs WHERE list_contains(?::VARCHAR[], run_id) ORDER BY started_at
"""
ASSETS_SQL = """
SELECT run_id, partition_key, status, coalesce(rows_inserted, 0) + coalesce(rows_updated, 0) AS rows
FROM meta.ingestion_run_assets WHERE list_contains(?::VARCHAR[], run_id) AND asset_key = ? ORDER BY partition_key
"""
UPSTREAM_SQL = """
SELECT DISTINCT split_part(partition_key, '|', 1) AS symbol FROM meta.ingestion_run_assets
WHERE asset_key = ? AND split_part(partition_key, '|', 2) = ? AND status IN ('success', 'skipped') ORDER BY 1
"""
LATEST_WRITE_SQL = """
SELECT run_id, partition_key, status FROM meta.ingestion_run_assets
WHERE asset_key = ? AND list_contains(?::VARCHAR[], partition_key) ORDER BY ended_at DESC NULLS LAST LIMIT 1
"""
CHECKS_SQL = """
SELECT check_name, severity, status, message, metrics_json FROM meta.asset_checks
WHERE run_id = ? AND asset_key = ? AND partition_key = ? ORDER BY check_name, checked_at
"""


@dataclass(frozen=True)
class StepRecord:
    """The ledger's account of one step: its runs and the partitions they wrote of its asset."""

    runs: list[dict[str, Any]]
    partitions: list[dict[str, Any]]

    @property
    def failed_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["status"] != "success"]

    def metadata(self, mode: str) -> dict[str, Any]:
        """Materialization metadata: rows, ledger run ids, duration, provider, partition counts, mode."""
        statuses: dict[str, int] = {}
        for p in self.partitions:
            statuses[p["status"]] = statuses.get(p["status"], 0) + 1
        providers = sorted({r["provider"] for r in self.runs if r["provider"]})
        return {
            "rows": sum(int(p["rows"]) for p in self.partitions if p["status"] == "success"),
            "ledger_run_ids": ", ".join(r["run_id"] for r in self.runs),
            "runs": len(self.runs),
            "duration_ms": sum(int(r["duration_ms"] or 0) for r in self.runs),
            "provider": ", ".join(providers) or "none",
            "partitions": json.dumps(statuses, sort_keys=True),
            "mode": mode,
        }

    def failure(self) -> str:
        """One line per run that did not succeed: job, run id, status, error."""
        return "; ".join(f"{r['job_name']} run {r['run_id']} {r['status']}: {r['error_message'] or r['error_type']}"
                         for r in self.failed_runs)


def step_record(read: Read, run_ids: Sequence[str], asset_key: str) -> StepRecord:
    """The runs `run_ids` and the partitions of `asset_key` they wrote."""
    ids = list(run_ids)
    return StepRecord(read(RUNS_SQL, [ids]).to_pylist(), read(ASSETS_SQL, [ids, asset_key]).to_pylist())


def upstream_symbols(read: Read, asset_key: str, day: date) -> list[str]:
    """Symbols whose `asset_key` partition of `day` is stored (or was skipped): what the next stage covers."""
    return read(UPSTREAM_SQL, [asset_key, day.isoformat()]).column(0).to_pylist()


@dataclass
class CheckOutcome:
    """The checks worker's verdict on one partition, in Dagster's terms."""

    passed: bool
    severe: bool  # a failed check of severity `error` (else only warnings failed)
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def check_outcome(read: Read, asset_key: str, keys: Sequence[str], timeout: float,
                  poll: float = 0.25) -> CheckOutcome:
    """The results of the checks worker for the newest delivery of one partition (`keys`: its ledger spellings).

    The checks worker reacts to committed deliveries, so the results of a fresh one may lag: wait up
    to `timeout` seconds for them. A partition the ledger never wrote, or whose newest run skipped or
    failed it, has nothing to check.
    """
    latest = read(LATEST_WRITE_SQL, [asset_key, list(keys)]).to_pylist()
    if not latest:
        return CheckOutcome(False, False, f"the run ledger has no {asset_key} partition {keys[0]}: nothing to check")
    run_id, partition, status = latest[0]["run_id"], latest[0]["partition_key"], latest[0]["status"]
    base = {"ledger_run_id": run_id, "ledger_partition": partition}
    if status != "success":
        return CheckOutcome(status == "skipped", False, f"the newest run {status} this partition: nothing to check", base)
    deadline = time.monotonic() + timeout
    rows = read(CHECKS_SQL, [run_id, asset_key, partition]).to_pylist()
    while not rows and time.monotonic() < deadline:
        time.sleep(poll)
        rows = read(CHECKS_SQL, [run_id, asset_key, partition]).to_pylist()
    if not rows:
        return CheckOutcome(False, False, f"no result from the checks worker within {timeout:g}s for run {run_id}: "
                            "is it running? (`oh status`)", base)
    failed = [r for r in rows if r["status"] == "fail"]
    metadata = {**base, **{r["check_name"]: f"{r['status']} ({r['severity']}): {r['message']}" for r in rows}}
    if not failed:
        return CheckOutcome(True, False, f"{len(rows)} checks passed", metadata)
    names = ", ".join(sorted({r["check_name"] for r in failed}))
    return CheckOutcome(False, any(r["severity"] == "error" for r in failed), f"failed: {names}", metadata)
