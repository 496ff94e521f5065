"""The derived worker: job `compute_derived` (asset `derived_metrics`), chained after every flow run.

For each symbol and session it reads that session's chain, the closes up to it (candles_daily) and
the IV history of earlier sessions only (derived_daily, strictly before the day), and calls
`oh.domain.derived.derived_row`: recomputing an old day later gives the same numbers. A symbol without a
chain that day is `skipped`.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from bus.arrow_ipc import to_ipc
from contracts import ComputeDerived, DerivedComputed, RunFinished, utc_now
from contracts.catalog import job_of
from oh.domain import derived
from services.pipeline import send_next_step
from services.runs import Bus, RunContext, raise_if_partitions_failed
from services.runtime import main
from services.snapshots import in_chunks, load_chains

DERIVED = job_of(ComputeDerived)
CHUNK_SESSIONS = 20  # sessions of chains read at once
CLOSES = 61  # closes up to a session that its realized vols use
ASSET = DERIVED.asset_key


def compute_derived(command: ComputeDerived, run: RunContext) -> None:
    """One derived row per symbol and session, oldest session first, each as a DerivedComputed event.

    Per symbol, the closes, the IV history and the chains are read in bulk (the chains a chunk of
    sessions at a time). A session's IV percentile and rank see the stored rows before it with the
    rows this run computed for earlier sessions in their place: exactly what one command per
    session, run in order, would see.
    """
    days = command.days()
    failures: list[tuple[str, BaseException]] = []
    for symbol in command.symbols:
        closes = _closes(run, symbol, days[0], days[-1])
        history = _iv_history(run, symbol, days[0], days[-1])
        for chunk in in_chunks(days, CHUNK_SESSIONS):
            chains = load_chains(run.query, symbol, chunk[0], chunk[-1])
            for day in chunk:
                run.check_stop()
                started = utc_now()
                partition = f"{symbol}|{day}"
                chain = chains.get(day)
                if chain is None:
                    run.asset_skipped(ASSET, partition, f"no option-chain snapshot of {symbol} on {day}", started)
                    continue
                try:
                    until = closes[0] <= np.datetime64(day, "D")
                    prior = {d: iv for d, iv in history.items() if d < day}
                    row = derived.derived_row(symbol, day, chain, closes[1][until][-CLOSES:],
                                              (list(prior), list(prior.values())))
                    table = derived.derived_table([row])
                except Exception as exc:  # one partition's failure never stops the others
                    run.asset_failed(ASSET, partition, exc, started)
                    failures.append((partition, exc))
                    continue
                history[day] = row["atm_iv_30d"]
                run.emit(
                    DerivedComputed(
                        run_id=run.run_id, symbol=symbol, as_of=day, row_count=table.num_rows,
                        rows=to_ipc(table), started_at=started, ended_at=utc_now(),
                    )
                )
    raise_if_partitions_failed(failures, len(command.symbols) * len(days), "partitions")


def _closes(run: RunContext, symbol: str, first: date, last: date) -> tuple[np.ndarray, np.ndarray]:
    """(dates, closes) of `symbol` from the CLOSES-th close on or before `first` up to `last`, oldest first."""
    table = run.query(
        "SELECT date, close FROM candles_daily WHERE symbol = ? AND date <= ? AND date >= coalesce(("
        "SELECT min(date) FROM (SELECT date FROM candles_daily WHERE symbol = ? AND date <= ? "
        "ORDER BY date DESC LIMIT ?)), ?) ORDER BY date", [symbol, last, symbol, first, CLOSES, first],
    )
    dates = table.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    return dates, np.asarray(table.column("close").to_numpy(zero_copy_only=False), dtype=float)


def _iv_history(run: RunContext, symbol: str, first: date, last: date) -> dict[date, float]:
    """The stored 30-day ATM IV of `symbol` by session, over every session a session in [first, last] ranks against."""
    table = run.query(
        "SELECT session_date, atm_iv_30d FROM derived_daily WHERE symbol = ? AND session_date < ? "
        "AND session_date >= ? ORDER BY session_date", [symbol, last, derived.iv_history_window(first)[0]],
    )
    return dict(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))


def after_flow(event: RunFinished, bus: Bus) -> None:
    """Chain: a finished flow run sends one ComputeDerived for the sessions it covered."""
    send_next_step(bus, event, DERIVED)


HANDLERS = {ComputeDerived: compute_derived}
REACTIONS = {RunFinished: after_flow}

if __name__ == "__main__":
    main("derived", HANDLERS, REACTIONS)
