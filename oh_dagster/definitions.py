"""The Dagster code location: `dagster dev -m oh_dagster.definitions` (with the oh stack running: `oh up`).

`defs` holds one asset per catalog job with an asset key (oh_dagster/assets.py), their `quality`
checks (oh_dagster/checks.py), two asset jobs (one per partitioning: Dagster runs one partitioning
per run), the daily schedule, the briefing's automation and the symbol sensor
(oh_dagster/automation.py), and the `oh` resource (oh_dagster/resources.py).

- `per_symbol`: candles_daily, options_bars, options_snapshot_file, options_flow, derived_metrics
  (partitions session x symbol) and their checks;
- `per_session`: briefing_markdown (partitions: sessions).

`per_symbol_job()` and `per_session_job()` return the resolved jobs for `dagster.reconstructable`,
which the multiprocess executor needs to start each step in a process of its own.
"""

from __future__ import annotations

import dagster as dg

from oh_dagster.assets import asset_for
from oh_dagster.automation import briefing_after_daily, daily_schedule, schedule_config, watchlist_symbols
from oh_dagster.checks import CHECKED_JOBS, check_for
from oh_dagster.graph import ASSET_JOBS, per_symbol
from oh_dagster.resources import RESOURCE_KEY, default_resource

PER_SYMBOL, PER_SESSION = "per_symbol", "per_session"

_resource = default_resource()
_schedule = schedule_config(_resource.oh_home())
_briefing = briefing_after_daily(_schedule)

ASSETS = [asset_for(job, None if per_symbol(job) else _briefing) for job in ASSET_JOBS]
CHECKS = [check_for(job) for job in CHECKED_JOBS]
_per_symbol_keys = [job.asset_key for job in ASSET_JOBS if per_symbol(job) and job.asset_key]
_per_session_keys = [job.asset_key for job in ASSET_JOBS if not per_symbol(job) and job.asset_key]

per_symbol_assets = dg.define_asset_job(
    PER_SYMBOL, selection=dg.AssetSelection.assets(*_per_symbol_keys),
    description="The assets with one partition per symbol and session, and their checks.",
)
per_session_assets = dg.define_asset_job(
    PER_SESSION, selection=dg.AssetSelection.assets(*_per_session_keys),
    description="The assets with one partition per session (the briefing).",
)

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[per_symbol_assets, per_session_assets],
    schedules=[daily_schedule(per_symbol_assets, _schedule)],
    sensors=[
        watchlist_symbols,
        dg.AutomationConditionSensorDefinition(
            "oh_automation", target=dg.AssetSelection.assets(*_per_session_keys),
            default_status=dg.DefaultSensorStatus.RUNNING,
        ),
    ],
    resources={RESOURCE_KEY: _resource},
)


def per_symbol_job() -> dg.JobDefinition:
    """The resolved `per_symbol` job (for `dagster.reconstructable`)."""
    return defs.resolve_job_def(PER_SYMBOL)


def per_session_job() -> dg.JobDefinition:
    """The resolved `per_session` job (for `dagster.reconstructable`)."""
    return defs.resolve_job_def(PER_SESSION)
