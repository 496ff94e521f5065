"""The derived worker: job `compute_derived` (asset `derived_metrics`), chained after every flow run.

For each symbol and session it reads that session's chain, the closes up to it (candles_daily) and
the IV history of earlier sessions only (derived_daily, strictly before the day), and calls
`oh.domain.derived.derived_row`: recomputing an old day later gives the same numbers. A symbol without a
chain that day is `skipped`.
"""

from __future__ import annotations

import numpy as np

from bus.arrow_ipc import to_ipc
from contracts import ComputeDerived, DerivedComputed, RunFinished, utc_now
from contracts.catalog import job_of
from oh.domain import derived
from services.pipeline import send_next_step
from services.runs import Bus, RunContext, raise_if_partitions_failed
from services.runtime import main
from services.snapshots import load_chains

DERIVED = job_of(ComputeDerived)
ASSET = DERIVED.asset_key


def compute_derived(command: ComputeDerived, run: RunContext) -> None:
    """One derived row per symbol for the session, as a DerivedComputed event."""
    failures: list[tuple[str, BaseException]] = []
    for symbol in command.symbols:
        run.check_stop()
        started = utc_now()
        partition = f"{symbol}|{command.as_of}"
        chain = load_chains(run.query, symbol, command.as_of, 1).get(command.as_of)
        if chain is None:
            run.asset_skipped(ASSET, partition, f"no option-chain snapshot of {symbol} on {command.as_of}", started)
            continue
        try:
            closes = run.query(
                "SELECT close FROM (SELECT date, close FROM candles_daily WHERE symbol = ? AND date <= ? "
                "ORDER BY date DESC LIMIT 61) ORDER BY date", [symbol, command.as_of],
            ).column(0).to_numpy()
            history = run.query(
                "SELECT session_date, atm_iv_30d FROM derived_daily WHERE symbol = ? AND session_date < ? "
                "ORDER BY session_date DESC LIMIT 300", [symbol, command.as_of],
            )
            row = derived.derived_row(symbol, command.as_of, chain, np.asarray(closes, dtype=float), history)
            table = derived.derived_table([row])
        except Exception as exc:  # one symbol's failure never stops the others
            run.asset_failed(ASSET, partition, exc, started)
            failures.append((partition, exc))
            continue
        run.emit(
            DerivedComputed(
                run_id=run.run_id, symbol=symbol, as_of=command.as_of, row_count=table.num_rows,
                rows=to_ipc(table), started_at=started, ended_at=utc_now(),
            )
        )
    raise_if_partitions_failed(failures, len(command.symbols), "symbols")


def after_flow(event: RunFinished, bus: Bus) -> None:
    """Chain: a finished flow run sends one ComputeDerived per session it covered."""
    send_next_step(bus, event, DERIVED)


HANDLERS = {ComputeDerived: compute_derived}
REACTIONS = {RunFinished: after_flow}

if __name__ == "__main__":
    main("derived", HANDLERS, REACTIONS)
