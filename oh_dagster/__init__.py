"""`oh[dagster]`: optional Dagster orchestration of the pipeline's assets. The core never imports it.

The CLI stays the canonical interface and the run ledger (`meta.*` in DuckDB) the single source of
truth for health: every step sends its job's commands through the ledger (mode `bus`: the
supervisord workers run them) or runs the job's handler in the step's own process and sends the
events to the ledger (mode `inline`). Either way the runs are recorded like CLI runs, with
`triggered_by = dagster` and the Dagster run id in `args_json`.

Modules: `definitions` (the code location: `dagster dev -m oh_dagster.definitions`), `graph` (the
asset graph from contracts/catalog.py), `partitions` (NYSE sessions x watchlist symbols),
`commands` (a step's partitions -> commands), `modes` (bus | inline), `ledger` (reading `meta.*`
back), `assets`, `checks`, `automation` (schedule, briefing automation, symbol sensor), `resources`,
`materialize` (the Python API: a range of sessions x symbols, as tests and benchmarks run it).
See docs/dagster.md.
"""

import warnings

# The beta and preview Dagster features used on purpose (docs/dagster.md says which and why): say so
# once in the docs, not on every import and every step.
warnings.filterwarnings(
    "ignore", message=r".*(MultiPartitionMapping|MultiToSingleDimensionPartitionMapping|Parameter `backfill_policy`"
                      r"|partitions_def on an AssetCheckSpec).*(beta|preview).*")
