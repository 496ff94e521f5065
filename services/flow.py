"""The flow worker: job `compute_flow` (asset `options_flow`), chained after every snapshot run.

When a `snapshot_options` run finishes, the worker sends one ComputeFlow command per snapshot
session it stored (through the ledger, so the step is journaled and replayable, with an id derived
from the upstream run: a redelivery is a duplicate). Each ComputeFlow loads the chains of the
window's sessions from `option_snapshots` (never a session after `as_of`) and calls
`oh.domain.flow` for every grouping. A symbol with no earlier snapshot is `skipped`, not failed.
"""

from __future__ import annotations

import pyarrow as pa

from bus.arrow_ipc import to_ipc
from contracts import ComputeFlow, FlowComputed, RunFinished, utc_now
from contracts.catalog import job_of
from oh.domain import flow
from services.pipeline import send_next_step
from services.runs import Bus, RunContext, raise_if_partitions_failed
from services.runtime import main
from services.snapshots import load_chains

FLOW = job_of(ComputeFlow)
ASSET = FLOW.asset_key


def compute_flow(command: ComputeFlow, run: RunContext) -> None:
    """Flow of each symbol over the window ending at as_of, every grouping, as one FlowComputed event."""
    failures: list[tuple[str, BaseException]] = []
    for symbol in command.symbols:
        run.check_stop()
        started = utc_now()
        partition = f"{symbol}|{command.as_of}"
        chains = load_chains(run.query, symbol, command.as_of, command.window + 1)
        days = sorted(chains)
        if len(days) < 2 or days[-1] != command.as_of:
            run.asset_skipped(ASSET, partition, f"flow needs a snapshot on {command.as_of} and one before it; "
                              f"stored up to then: {', '.join(map(str, days)) or 'none'}", started)
            continue
        try:
            pairs = flow.window_pairs(days, command.as_of, command.window)  # the contract join once, every grouping
            contracts = pa.concat_tables([flow.contract_flow(chains[a], chains[b]) for a, b in pairs])
            rows = pa.concat_tables([flow.group_flow(contracts, g, command.window) for g in flow.GROUP_BYS])
        except Exception as exc:  # one symbol's failure never stops the others
            run.asset_failed(ASSET, partition, exc, started)
            failures.append((partition, exc))
            continue
        run.emit(
            FlowComputed(
                run_id=run.run_id, symbol=symbol, as_of=command.as_of, window=command.window,
                row_count=rows.num_rows, rows=to_ipc(rows), started_at=started, ended_at=utc_now(),
            )
        )
    raise_if_partitions_failed(failures, len(command.symbols), "symbols")


def after_snapshots(event: RunFinished, bus: Bus) -> None:
    """Chain: a finished snapshot run sends one ComputeFlow per session it stored."""
    send_next_step(bus, event, FLOW)


HANDLERS = {ComputeFlow: compute_flow}
REACTIONS = {RunFinished: after_snapshots}

if __name__ == "__main__":
    main("flow", HANDLERS, REACTIONS)
