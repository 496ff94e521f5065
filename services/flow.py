"""The flow worker: job `compute_flow` (asset `options_flow`), chained after every snapshot run.

When a `snapshot_options` run finishes, the worker sends one ComputeFlow command per snapshot
session it stored (through the ledger, so the step is journaled and replayable, with an id derived
from the upstream run: a redelivery is a duplicate). Each ComputeFlow loads the chains of the
window's sessions from `option_snapshots` (never a session after `as_of`) and calls
`oh.flow` for every grouping. A symbol with no earlier snapshot is `skipped`, not failed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from bus.arrow_ipc import to_ipc
from contracts import ComputeFlow, FlowComputed, RunFinished, utc_now
from oh import flow
from services.runtime import RunContext, RunFailed, Worker, main

JOB = "compute_flow"
ASSET = "options_flow"
_CHAIN_SQL = """
SELECT contract_symbol, underlying, snapshot_date, expiry, put_call AS "right", strike, spot, bid, ask, last, mark,
       volume, open_interest, iv, delta, gamma, vega, theta, rho
FROM option_snapshots WHERE underlying = ? AND snapshot_date IN (
    SELECT DISTINCT snapshot_date FROM option_snapshots WHERE underlying = ? AND snapshot_date <= ?
    ORDER BY snapshot_date DESC LIMIT ?)
"""
_ID_NAMESPACE = uuid.UUID("9d7c1a4e-2b6f-4c3d-8e5a-7f0b1c2d3e4f")


def compute_flow(command: ComputeFlow, run: RunContext) -> None:
    """Flow of each symbol over the window ending at as_of, every grouping, as one FlowComputed event."""
    failures: list[tuple[str, BaseException]] = []
    for symbol in command.symbols:
        run.check_stop()
        started = utc_now()
        partition = f"{symbol}|{command.as_of}"
        chains_table: pa.Table = run.worker.query(_CHAIN_SQL, [symbol, symbol, command.as_of, command.window + 1])
        days = sorted(set(chains_table.column("snapshot_date").to_pylist()))
        if len(days) < 2 or days[-1] != command.as_of:
            run.asset_skipped(ASSET, partition, f"flow needs a snapshot on {command.as_of} and one before it; "
                              f"stored up to then: {', '.join(map(str, days)) or 'none'}", started)
            continue
        try:
            chains = {d: chains_table.filter(pc.equal(chains_table["snapshot_date"], d)) for d in days}
            rows = pa.concat_tables(
                [flow.compute_flow(chains, command.as_of, command.window, g) for g in flow.GROUP_BYS]
            )
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
    if failures:
        names = ", ".join(f"{p} ({type(e).__name__}: {e})" for p, e in failures[:5])
        raise RunFailed(f"{len(failures)} of {len(command.symbols)} symbols failed: {names}", failures[0][1])


def after_snapshots(event: RunFinished, worker: Worker) -> None:
    """Chain: a finished snapshot run sends one ComputeFlow per session it stored."""
    stored = worker.query(
        "SELECT a.partition_key FROM meta.ingestion_run_assets a JOIN meta.ingestion_runs r USING (run_id) "
        "WHERE a.run_id = ? AND r.job_name = 'snapshot_options' AND a.asset_key = 'options_snapshot_file' "
        "AND a.status = 'success' ORDER BY 1",
        [event.run_id],
    )
    by_day: dict[date, list[str]] = defaultdict(list)
    for key in stored.column(0).to_pylist():
        symbol, day = key.split("|")
        by_day[date.fromisoformat(day)].append(symbol)
    commands = [
        ComputeFlow(
            id=uuid.uuid5(_ID_NAMESPACE, f"{event.run_id}:{day}").hex, symbols=sorted(symbols), as_of=day,
            parent_run_id=event.run_id, triggered_by="pipeline",
        )
        for day, symbols in sorted(by_day.items())
    ]
    if commands:
        worker.producer.send_many(commands)
        worker.producer.flush()


HANDLERS = {ComputeFlow: (JOB, compute_flow)}
EVENT_HANDLERS = {RunFinished: after_snapshots}

if __name__ == "__main__":
    main("flow", HANDLERS, EVENT_HANDLERS)
