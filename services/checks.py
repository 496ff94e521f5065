"""The checks worker: data-quality checks after every committed asset, and on demand (`run_checks`).

It reacts to committed CandlesIngested events (the delivered rows are checked for duplicates,
order, missing or negative prices, OHLC, negative and zero volume, and the stored table for gaps in
the last 30 sessions) and to committed OptionBarsIngested (the same care per contract, plus
duplicate keys), ChainSnapshotted (parseable contract symbols, crossed, missing or negative quotes,
stale date, Greeks and IVs that cannot fit their quotes), FlowComputed (null keys, inconsistent
values) and DerivedComputed (duplicate keys). Every dataset is also checked for rows dated after
the last session closed when the event was made (`*_no_future_dates`). The results are linked to
the ingest run but never change its status. `oh emit checks` re-runs the checks on the stored data
as a run of its own (its future-date checks judge by the re-check's clock).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bus.arrow_ipc import from_ipc
from contracts import (
    AssetChecked,
    CandlesIngested,
    ChainSnapshotted,
    CheckRecord,
    DerivedComputed,
    FlowComputed,
    Message,
    OptionBarsIngested,
    RunChecks,
    utc_now,
)
from contracts.catalog import asset_of
from oh.domain import calendar
from oh.domain.chain_checks import chain_quote_checks
from oh.domain.checks import (
    GAP_WINDOW,
    CheckResult,
    candle_gap_check,
    candle_payload_checks,
    chain_snapshot_checks,
    derived_checks,
    flow_checks,
    future_dates_check,
    option_bars_checks,
    snapshot_date_check,
)
from oh.domain.flow import PERSISTED_KEY
from services.pipeline import Read
from services.runs import Bus, RunContext
from services.runtime import main

_ID_NAMESPACE = uuid.UUID("3c2d7a55-1f7e-4f0e-8a2b-6d9e4c1b0a33")


def _records(results: list[CheckResult]) -> list[CheckRecord]:
    return [CheckRecord(r.check_name, r.severity, r.status, r.message, r.metrics_json) for r in results]


def _gap_result(read: Read, symbol: str, until: date, delivered: pa.Array | pa.ChunkedArray | None = None) -> CheckResult:
    """`candles_gap_days_last_30` of `symbol`'s stored candles up to `until`.

    When the committed delivery being checked (`delivered`: its dates) holds every session of the window
    itself, the table has them all (its rows are stored: the event is committed), so the answer is known
    without reading the table: a daily's 400-day delivery of thousands of symbols costs no query here.
    """
    window = calendar.last_sessions(until, GAP_WINDOW)
    if delivered is not None and len(delivered) >= len(window):
        days = np.sort(np.asarray(pc.cast(delivered, pa.date32()).to_numpy(zero_copy_only=False), dtype="datetime64[D]"))
        found = days[np.minimum(np.searchsorted(days, window), days.size - 1)]
        if (found == window).all():  # every session of the window delivered (np.isin's answer, ~7x less CPU)
            return candle_gap_check(window, window)
    stored = read(
        "SELECT date FROM candles_daily WHERE symbol = ? AND date BETWEEN ? AND ? ORDER BY date",
        [symbol, window[0].astype(date), until],
    )
    first = read("SELECT min(date) FROM candles_daily WHERE symbol = ?", [symbol]).column(0)[0].as_py()
    present = stored.column(0).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    expected = window[window >= np.datetime64(first, "D")] if first else window[:0]
    return candle_gap_check(present, expected)


def _made_at(event: Message) -> datetime:
    """When the event's data was delivered (aware UTC): what its future-date check judges by."""
    return event.ts if event.ts.tzinfo else event.ts.replace(tzinfo=UTC)


def on_candles(event: CandlesIngested, bus: Bus) -> None:
    """Check one committed delivery of candles; the results' id derives from the event (idempotent)."""
    rows = from_ipc(event.rows)
    results = [*candle_payload_checks(rows), future_dates_check("candles_no_future_dates", rows.column("date"),
                                                                _made_at(event)),
               _gap_result(bus.query, event.symbol, event.last_date, rows.column("date"))]
    # a long delivery comes in chunks, each checked on its own: its first date tells the chunks apart
    _report(bus, event, event.symbol, results, scope=str(event.first_date))


def _report(bus: Bus, event: Message, partition: str, results: list[CheckResult], scope: str | None = None) -> None:
    """Send the results for a committed event; the id derives from the event, so a redelivery is dropped,
    and each result's row from (run, asset, partition, scope, check), so a redone run's new events
    replace their results instead of adding to them (services/ledger/bookkeeping.py, check_id)."""
    bus.send([
        AssetChecked(
            id=uuid.uuid5(_ID_NAMESPACE, event.id).hex, run_id=getattr(event, "run_id", None),
            asset_key=asset_of(type(event)), partition_key=partition, scope=scope, checked_at=utc_now(),
            results=_records(results),
        )
    ])


def on_chain(event: ChainSnapshotted, bus: Bus) -> None:
    """Check one committed option-chain snapshot (results linked to the snapshot run)."""
    chain = from_ipc(event.rows)
    results = [*chain_snapshot_checks(chain), snapshot_date_check(chain, event.snapshot_date),
               future_dates_check("snapshot_no_future_dates", chain.column("snapshot_date"), _made_at(event)),
               *chain_quote_checks(chain)]
    _report(bus, event, f"{event.symbol}|{event.snapshot_date}", results)


def on_option_bars(event: OptionBarsIngested, bus: Bus) -> None:
    """Check one committed day of option bars (results linked to the ingest run)."""
    rows = from_ipc(event.rows)
    results = [*option_bars_checks(rows, event.bar_date),
               future_dates_check("options_bars_no_future_dates", rows.column("date"), _made_at(event))]
    _report(bus, event, f"{event.symbol}|{event.bar_date}", results)


def on_flow(event: FlowComputed, bus: Bus) -> None:
    """Check one committed flow delivery."""
    rows = from_ipc(event.rows)
    results = [*flow_checks(rows, PERSISTED_KEY),
               future_dates_check("flow_no_future_dates", rows.column("to_date"), _made_at(event))]
    _report(bus, event, f"{event.symbol}|{event.as_of}", results)


def on_derived(event: DerivedComputed, bus: Bus) -> None:
    """Check one committed derived row."""
    rows = from_ipc(event.rows)
    results = [*derived_checks(rows),
               future_dates_check("derived_no_future_dates", rows.column("session_date"), _made_at(event))]
    _report(bus, event, f"{event.symbol}|{event.as_of}", results)


def _recheck_candles(read: Read, symbol: str) -> list[CheckResult]:
    rows: pa.Table = read(
        "SELECT symbol, date, open, high, low, close, volume FROM candles_daily WHERE symbol = ? ORDER BY date", [symbol]
    )
    results = [*candle_payload_checks(rows),
               future_dates_check("candles_no_future_dates", rows.column("date"), calendar.wall_clock())]
    if rows.num_rows:
        results.append(_gap_result(read, symbol, rows.column("date")[-1].as_py()))
    return results


def _recheck_option_bars(read: Read, symbol: str) -> list[CheckResult]:
    rows: pa.Table = read(
        "SELECT contract_symbol, underlying, date, open, high, low, close, volume, trade_count, vwap FROM options_bars "
        "WHERE underlying = ? ORDER BY contract_symbol, date", [symbol],
    )
    return [*option_bars_checks(rows),
            future_dates_check("options_bars_no_future_dates", rows.column("date"), calendar.wall_clock())]


# Stored data each asset can be re-checked on, per symbol, and the table its symbols come from.
RECHECKS = {
    "candles_daily": (_recheck_candles, "SELECT DISTINCT symbol FROM candles_daily ORDER BY 1"),
    "options_bars": (_recheck_option_bars, "SELECT DISTINCT underlying FROM options_bars ORDER BY 1"),
}
CHECKED_ASSETS = tuple(RECHECKS)


def run_checks(command: RunChecks, run: RunContext) -> None:
    """Re-check stored data for the chosen asset (all re-checkable assets by default) and symbols."""
    assets = [command.asset] if command.asset else list(CHECKED_ASSETS)
    unknown = [a for a in assets if a not in CHECKED_ASSETS]
    if unknown:
        raise ValueError(f"no checks for asset {unknown[0]!r} in this build; checked assets: {', '.join(CHECKED_ASSETS)}")
    for asset in assets:
        recheck, symbols_sql = RECHECKS[asset]
        for symbol in command.symbols or run.query(symbols_sql).column(0).to_pylist():
            run.check_stop()
            run.emit(
                AssetChecked(run_id=run.run_id, asset_key=asset, partition_key=symbol,
                             checked_at=utc_now(), results=_records(recheck(run.query, symbol)))
            )


HANDLERS = {RunChecks: run_checks}
REACTIONS = {
    CandlesIngested: on_candles, OptionBarsIngested: on_option_bars, ChainSnapshotted: on_chain,
    FlowComputed: on_flow, DerivedComputed: on_derived,
}

if __name__ == "__main__":
    calendar.all_sessions()
    main("checks", HANDLERS, REACTIONS)
