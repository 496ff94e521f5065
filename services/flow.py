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
from services.settings import env_int
from services.snapshots import load_chains_many, read_plan

FLOW = job_of(ComputeFlow)
ASSET = FLOW.asset_key


def batch_partitions() -> int:
    """OH_FLOW_BATCH_PARTITIONS (64): partitions whose flow is computed together and sent in one frame (emit_many):
    fewer, smaller frames cost the ledger less memory per frame and more per event. Read when used, never at import;
    a bad value stops the worker at its start (below), with one line."""
    return env_int("OH_FLOW_BATCH_PARTITIONS", 64, 1)


def compute_flow(command: ComputeFlow, run: RunContext) -> None:
    """Flow of each symbol for each session (the window ending there), every grouping, one FlowComputed each.

    The chains are read per `services.snapshots.read_plan` (with the `window` sessions before each
    read): a daily over thousands of symbols costs a read per few hundred symbols, a long range a
    read per symbol and chunk of sessions. Within a read, session by session (oldest first), the
    symbols whose windows span the same sessions are computed together (`oh.domain.flow.flow_rows_many`,
    `batch_partitions()` at a time, the same rows as one by one) and their events sent in one frame; each
    symbol and session is still its own partition: one event, or one skipped or failed asset.
    """
    days = command.days()
    batch_size = batch_partitions()
    failures: list[tuple[str, BaseException]] = []
    for group, chunks in read_plan(command.symbols, days, command.window):
        for chunk in chunks:
            stored = load_chains_many(run.query, group, chunk[0], chunk[-1], before=command.window,
                                      columns=flow.CHAIN_INPUTS)  # the ledger sends 11 of the 19 columns
            for day in chunk:
                batches: dict[tuple[tuple[date, date], ...], list[str]] = {}
                for symbol in group:
                    pairs = _pairs(run, command, symbol, day, stored.get(symbol, {}))
                    if pairs is not None:
                        batches.setdefault(tuple(pairs), []).append(symbol)
                for pairs, symbols in batches.items():
                    for start in range(0, len(symbols), batch_size):
                        batch = symbols[start:start + batch_size]
                        failures += _flow_of_batch(run, command, day, list(pairs), {s: stored[s] for s in batch})
    raise_if_partitions_failed(failures, len(command.symbols) * len(days), "partitions")


def _pairs(run: RunContext, command: ComputeFlow, symbol: str, day: date,
           chains: dict[date, pa.Table]) -> list[tuple[date, date]] | None:
    """The session pairs of `symbol`'s window ending at `day`; None (the partition recorded skipped) without one."""
    window = [d for d in sorted(chains) if d <= day][-(command.window + 1):]
    if len(window) < 2 or window[-1] != day:
        run.asset_skipped(ASSET, f"{symbol}|{day}", f"flow needs a snapshot on {day} and one before it; "
                          f"stored up to then: {', '.join(map(str, window)) or 'none'}", utc_now())
        return None
    return flow.window_pairs(window, day, command.window)


def _flow_of_batch(run: RunContext, command: ComputeFlow, day: date, pairs: list[tuple[date, date]],
                   chains: dict[str, dict[date, pa.Table]]) -> list[tuple[str, BaseException]]:
    """Emit the flow of each symbol of `chains` on `day` over `pairs`, in one frame; the partitions that failed.

    Computed for the whole batch at once; if that raises, one symbol at a time, so the partitions that fail
    are recorded each with its own error and the others still land."""
    run.check_stop()
    started = utc_now()
    try:
        rows_of = flow.flow_rows_many(chains, pairs, command.window)
    except Exception:  # some symbol's chains are bad: find which, one by one
        rows_of = {}
    failures: list[tuple[str, BaseException]] = []
    events: list[FlowComputed] = []
    for symbol, symbol_chains in chains.items():
        rows = rows_of.get(symbol)
        if rows is None:
            run.check_stop()
            started = utc_now()
            try:
                rows = flow.flow_rows(symbol_chains, pairs, command.window)
            except Exception as exc:  # one partition's failure never stops the others
                run.asset_failed(ASSET, f"{symbol}|{day}", exc, started)
                failures.append((f"{symbol}|{day}", exc))
                continue
        events.append(FlowComputed(
            run_id=run.run_id, symbol=symbol, as_of=day, window=command.window,
            row_count=rows.num_rows, rows=to_ipc(rows), started_at=started, ended_at=utc_now(),
        ))
    run.emit_many(events)
    return failures


def after_snapshots(event: RunFinished, bus: Bus) -> None:
    """Chain: a finished snapshot run sends one ComputeFlow for the sessions it stored."""
    send_next_step(bus, event, FLOW)


HANDLERS = {ComputeFlow: compute_flow}
REACTIONS = {RunFinished: after_snapshots}

if __name__ == "__main__":
    batch_partitions()  # a bad OH_FLOW_BATCH_PARTITIONS stops the worker here, before it takes a command
    main("flow", HANDLERS, REACTIONS)
