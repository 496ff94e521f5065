"""The flow worker: job `compute_flow` (asset `options_flow`), chained after every snapshot run.

When a `snapshot_options` run finishes, the worker sends one ComputeFlow command covering every
snapshot session it stored (through the ledger, so the step is journaled and replayable, with an id
derived from the upstream run: a redelivery is a duplicate). For each symbol and session (one
partition each) ComputeFlow reads the chains of the window's sessions from `option_snapshots`
(never a session after it) and calls `oh.domain.flow` for every grouping. A partition with no
earlier snapshot is `skipped`, not failed.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from bus.arrow_ipc import to_ipc
from contracts import ComputeFlow, FlowComputed, RunFinished, utc_now
from contracts.catalog import job_of
from oh.domain import flow
from services.pipeline import send_next_step
from services.runs import Bus, RunContext, raise_if_partitions_failed
from services.runtime import main
from services.snapshots import load_chains_many, read_plan

FLOW = job_of(ComputeFlow)
ASSET = FLOW.asset_key


def compute_flow(command: ComputeFlow, run: RunContext) -> None:
    """Flow of each symbol for each session (the window ending there), every grouping, one FlowComputed each.

    The chains are read per `services.snapshots.read_plan` (with the `window` sessions before each
    read): a daily over thousands of symbols costs a read per few hundred symbols, a long range a
    read per symbol and chunk of sessions. Partitions go symbol by symbol, oldest session first.
    """
    days = command.days()
    failures: list[tuple[str, BaseException]] = []
    for group, chunks in read_plan(command.symbols, days, command.window):
        for chunk in chunks:
            stored = load_chains_many(run.query, group, chunk[0], chunk[-1], before=command.window)
            for symbol in group:
                chains = stored.get(symbol, {})
                for day in chunk:
                    run.check_stop()
                    error = _flow_of_session(run, command, symbol, day, chains)
                    if error is not None:
                        failures.append((f"{symbol}|{day}", error))
    raise_if_partitions_failed(failures, len(command.symbols) * len(days), "partitions")


def _flow_of_session(run: RunContext, command: ComputeFlow, symbol: str, day: date,
                     chains: dict[date, pa.Table]) -> BaseException | None:
    """Emit one session's flow (or record it skipped); the error if it failed."""
    started = utc_now()
    partition = f"{symbol}|{day}"
    window = [d for d in sorted(chains) if d <= day][-(command.window + 1):]
    if len(window) < 2 or window[-1] != day:
        run.asset_skipped(ASSET, partition, f"flow needs a snapshot on {day} and one before it; "
                          f"stored up to then: {', '.join(map(str, window)) or 'none'}", started)
        return None
    try:
        pairs = flow.window_pairs(window, day, command.window)  # the contract join once, every grouping
        contracts = pa.concat_tables([flow.contract_flow(chains[a], chains[b]) for a, b in pairs])
        rows = pa.concat_tables([flow.group_flow(contracts, g, command.window) for g in flow.GROUP_BYS])
    except Exception as exc:  # one partition's failure never stops the others
        run.asset_failed(ASSET, partition, exc, started)
        return exc
    run.emit(
        FlowComputed(
            run_id=run.run_id, symbol=symbol, as_of=day, window=command.window,
            row_count=rows.num_rows, rows=to_ipc(rows), started_at=started, ended_at=utc_now(),
        )
    )
    return None


def after_snapshots(event: RunFinished, bus: Bus) -> None:
    """Chain: a finished snapshot run sends one ComputeFlow for the sessions it stored."""
    send_next_step(bus, event, FLOW)


HANDLERS = {ComputeFlow: compute_flow}
REACTIONS = {RunFinished: after_snapshots}

if __name__ == "__main__":
    main("flow", HANDLERS, REACTIONS)
