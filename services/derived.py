"""The derived worker: job `compute_derived` (asset `derived_metrics`), chained after every flow run of one-session
windows (a multi-session window chains nothing: services/pipeline.py, CHAINS_ON); in a daily's chain, only once
that daily's candles have ended too (it reads the session's close; the daily sends its snapshot beside the candles):
sent on the end of whichever is last (services/pipeline.py, `send_next_step`).

For each symbol and session it reads that session's chain, the closes up to it (candles_daily) and
the IV history of earlier sessions only (derived_daily, strictly before the day), and calls
`oh.domain.derived.derived_row`: recomputing an old day later gives the same numbers. A symbol without a
chain that day is `skipped`. A range is one run that reads in bulk and emits its rows EMIT_ROWS at a time
(issue #14.1; `compute_derived`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import date
from functools import partial
from typing import TypeVar

import numpy as np
import pyarrow as pa

from bus.arrow_ipc import to_ipc
from contracts import ComputeDerived, DerivedComputed, RunFinished, utc_now
from contracts.catalog import job_of
from oh.domain import derived
from services.pipeline import send_next_step
from services.runs import Bus, RunContext, raise_if_partitions_failed
from services.runtime import main
from services.snapshots import load_chains_many, read_plan, split_sorted

DERIVED = job_of(ComputeDerived)
CLOSES = 61  # closes up to a session that its realized vols use
ASSET = DERIVED.asset_key
EMIT_ROWS = 60  # rows emitted at once (after the chunk that reaches it): the ledger commits each batch in one
# transaction whose fixed cost dwarfs 60 small rows, and the last batch, committed after the computing ends, stays short
T = TypeVar("T")


def compute_derived(command: ComputeDerived, run: RunContext) -> None:
    """One derived row per symbol and session, oldest session first, each as a DerivedComputed event.

    The closes, the IV history and the chains are read in bulk, per `services.snapshots.read_plan`: a
    group of symbols at once for a short range (the daily: a few reads for thousands of symbols), one
    symbol with its chains a chunk of sessions at a time for a long one. Only the chain columns
    derived_row reads are read (`derived.CHAIN_INPUTS`), the next chunk while this one is computed
    (`_read_ahead`), and the rows are emitted EMIT_ROWS or so at once (one frame, so the ledger commits
    them together), each still its own DerivedComputed event and asset row; a session that fails records
    its partition failed and the others go on. A session's IV percentile and rank see the stored rows
    before it with the rows this run computed for earlier sessions in their place: exactly what one
    command per session, run in order, would see.
    """
    days = command.days()
    failures: list[tuple[str, BaseException]] = []
    rows: list[DerivedComputed] = []
    try:
        for group, chunks in read_plan(command.symbols, days):
            closes = _closes(run, group, days[0], days[-1])
            histories = _iv_history(run, group, days[0], days[-1])
            with closing(_read_ahead(partial(_chains, run, group), chunks)) as reads:  # closed: its thread is gone
                for chunk, stored in reads:
                    _derive_chunk(run, group, chunk, stored, closes, histories, rows, failures)
                    if len(rows) >= EMIT_ROWS:
                        run.emit_many(rows)
                        rows = []
    finally:  # what was computed is sent, whatever ends the run (a failed read, a stop)
        run.emit_many(rows)
    raise_if_partitions_failed(failures, len(command.symbols) * len(days), "partitions")


def _derive_chunk(run: RunContext, symbols: list[str], chunk: list[date], stored: dict[str, dict[date, pa.Table]],
                  closes: dict[str, Closes], histories: dict[str, dict[date, float]], rows: list[DerivedComputed],
                  failures: list[tuple[str, BaseException]]) -> None:
    """Every symbol's sessions of `chunk`, oldest first: the rows to emit go to `rows`, the failed partitions
    (already recorded) to `failures`."""
    for symbol in symbols:
        chains = stored.get(symbol, {})
        history = histories.setdefault(symbol, {})
        for day in chunk:
            run.check_stop()
            done = _derive_session(run, symbol, day, chains.get(day), closes.get(symbol, _NO_CLOSES), history)
            if isinstance(done, DerivedComputed):
                rows.append(done)
            elif done is not None:
                failures.append((f"{symbol}|{day}", done))


def _chains(run: RunContext, symbols: list[str], chunk: list[date]) -> dict[str, dict[date, pa.Table]]:
    """The chains of `symbols` over the sessions of `chunk`, only the columns derived_row reads."""
    return load_chains_many(run.query, symbols, chunk[0], chunk[-1], columns=derived.CHAIN_INPUTS)


def _read_ahead(read: Callable[[list[date]], T], chunks: list[list[date]]) -> Iterator[tuple[list[date], T]]:
    """Each chunk with what `read` gives for it, in order; the next chunk's read runs in a thread meanwhile, so
    the ledger serves it while this process computes the chunk before.

    Only the thread reads while the caller goes through a chunk (the caller emits, it does not query), and no
    read is in flight once the last chunk is yielded, so the run's query socket is never used by two threads.
    """
    if len(chunks) < 2:
        for chunk in chunks:
            yield chunk, read(chunk)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="derived-read-ahead") as pool:
        ahead = pool.submit(read, chunks[0])
        for i, chunk in enumerate(chunks):
            stored = ahead.result()
            if i + 1 < len(chunks):
                ahead = pool.submit(read, chunks[i + 1])
            yield chunk, stored


Closes = tuple[np.ndarray, np.ndarray]
_NO_CLOSES: Closes = (np.array([], dtype="datetime64[D]"), np.array([], dtype=float))


def _derive_session(run: RunContext, symbol: str, day: date, chain: pa.Table | None, closes: Closes,
                    history: dict[date, float]) -> DerivedComputed | BaseException | None:
    """One session's derived row as an event to emit, its IV added to `history`; or the error it failed with
    (recorded), or None (no chain: recorded skipped)."""
    started = utc_now()
    partition = f"{symbol}|{day}"
    if chain is None:
        run.asset_skipped(ASSET, partition, f"no option-chain snapshot of {symbol} on {day}", started)
        return None
    try:
        until = closes[0] <= np.datetime64(day, "D")
        prior = {d: iv for d, iv in history.items() if d < day}
        row = derived.derived_row(symbol, day, chain, closes[1][until][-CLOSES:],
                                  (list(prior), list(prior.values())))
        table = derived.derived_table([row])
    except Exception as exc:  # one partition's failure never stops the others
        run.asset_failed(ASSET, partition, exc, started)
        return exc
    history[day] = row["atm_iv_30d"]
    return DerivedComputed(
        run_id=run.run_id, symbol=symbol, as_of=day, row_count=table.num_rows,
        rows=to_ipc(table), started_at=started, ended_at=utc_now(),
    )


def _closes(run: RunContext, symbols: list[str], first: date, last: date) -> dict[str, Closes]:
    """Per symbol, (dates, closes) from the CLOSES-th close on or before `first` up to `last`, oldest first."""
    table = run.query(
        "WITH wanted AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS symbol), "
        "since AS (SELECT symbol, min(date) AS since FROM (SELECT c.symbol, c.date FROM candles_daily c "
        "SEMI JOIN wanted USING (symbol) WHERE c.date <= ? "
        "QUALIFY row_number() OVER (PARTITION BY c.symbol ORDER BY c.date DESC) <= ?) GROUP BY symbol) "
        "SELECT c.symbol, c.date, c.close FROM candles_daily c SEMI JOIN wanted USING (symbol) "
        "LEFT JOIN since s USING (symbol) WHERE c.date <= ? AND c.date >= coalesce(s.since, ?) "
        "ORDER BY c.symbol, c.date", [symbols, first, CLOSES, last, first],
    )
    return {
        symbol: (rows.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]"),
                 np.asarray(rows.column("close").to_numpy(zero_copy_only=False), dtype=float))
        for symbol, rows in split_sorted(table, "symbol").items()
    }


def _iv_history(run: RunContext, symbols: list[str], first: date, last: date) -> dict[str, dict[date, float]]:
    """Per symbol, the stored 30-day ATM IV by session, over every session a session in [first, last] ranks against."""
    table = run.query(
        "SELECT symbol, session_date, atm_iv_30d FROM derived_daily WHERE list_contains(?::VARCHAR[], symbol) "
        "AND session_date < ? AND session_date >= ? ORDER BY symbol, session_date",
        [symbols, last, derived.iv_history_window(first)[0]],
    )
    return {symbol: dict(zip(rows.column(1).to_pylist(), rows.column(2).to_pylist(), strict=True))
            for symbol, rows in split_sorted(table, "symbol").items()}


def after_flow(event: RunFinished, bus: Bus) -> None:
    """Chain: a finished flow run sends one ComputeDerived for the sessions it covered; in a daily's chain, once the
    daily's candles have ended too (the end of the candles sends it when flow ended first)."""
    send_next_step(bus, event, DERIVED)


HANDLERS = {ComputeDerived: compute_derived}
REACTIONS = {RunFinished: after_flow}

if __name__ == "__main__":
    main("derived", HANDLERS, REACTIONS)
