"""The checks worker: data-quality checks after every committed asset, and on demand (`run_checks`).

It reacts to committed CandlesIngested events (the delivered rows are checked for duplicates,
order, prices and volume, and the stored table for gaps in the last 30 sessions) and to committed
OptionBarsIngested (order per contract, negative prices, duplicate keys), ChainSnapshotted
(parseable contract symbols, crossed quotes, negative prices, stale date),
FlowComputed (no null keys) and DerivedComputed (no duplicate keys). The results are
linked to the ingest run but never change its status. `oh emit checks` re-runs the checks on the
stored data as a run of its own.
"""

from __future__ import annotations

import uuid
from datetime import date

import numpy as np
import pyarrow as pa

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
from oh.domain import calendar
from oh.domain.checks import (
    CheckResult,
    candle_gap_check,
    candle_payload_checks,
    chain_snapshot_checks,
    derived_checks,
    flow_checks,
    option_bars_checks,
    snapshot_date_check,
)
from oh.domain.flow import PERSISTED_KEY
from services.runtime import RunContext, Worker, main

JOB = "run_checks"
GAP_WINDOW = 30
_ID_NAMESPACE = uuid.UUID("3c2d7a55-1f7e-4f0e-8a2b-6d9e4c1b0a33")


def _records(results: list[CheckResult]) -> list[CheckRecord]:
    return [CheckRecord(r.check_name, r.severity, r.status, r.message, r.metrics_json) for r in results]


def _gap_result(worker: Worker, symbol: str, until: date) -> CheckResult:
    window = calendar.last_sessions(until, GAP_WINDOW)
    stored = worker.query(
        "SELECT date FROM candles_daily WHERE symbol = ? AND date BETWEEN ? AND ? ORDER BY date",
        [symbol, window[0].astype(date), until],
    )
    first = worker.query("SELECT min(date) FROM candles_daily WHERE symbol = ?", [symbol]).column(0)[0].as_py()
    present = stored.column(0).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    expected = window[window >= np.datetime64(first, "D")] if first else window[:0]
    return candle_gap_check(present, expected)


def on_candles(event: CandlesIngested, worker: Worker) -> None:
    """Check one committed delivery of candles; the results' id derives from the event (idempotent)."""
    rows = from_ipc(event.rows)
    results = [*candle_payload_checks(rows), _gap_result(worker, event.symbol, event.last_date)]
    # a long delivery comes in chunks, each checked on its own: its first date tells the chunks apart
    _report(worker, event, "candles_daily", event.symbol, results, scope=str(event.first_date))


def _report(worker: Worker, event: Message, asset_key: str, partition: str, results: list[CheckResult],
            scope: str | None = None) -> None:
    """Send the results for a committed event; the id derives from the event, so a redelivery is dropped,
    and each result's row from (run, asset, partition, scope, check), so a redone run's new events
    replace their results instead of adding to them (services/ledger/projections.py)."""
    worker.producer.send(
        AssetChecked(
            id=uuid.uuid5(_ID_NAMESPACE, event.id).hex, run_id=getattr(event, "run_id", None), asset_key=asset_key,
            partition_key=partition, scope=scope, checked_at=utc_now(), results=_records(results),
        )
    )


def on_chain(event: ChainSnapshotted, worker: Worker) -> None:
    """Check one committed option-chain snapshot (results linked to the snapshot run)."""
    chain = from_ipc(event.rows)
    results = [*chain_snapshot_checks(chain), snapshot_date_check(chain, event.snapshot_date)]
    _report(worker, event, "options_snapshot_file", f"{event.symbol}|{event.snapshot_date}", results)


def on_option_bars(event: OptionBarsIngested, worker: Worker) -> None:
    """Check one committed day of option bars (results linked to the ingest run)."""
    results = option_bars_checks(from_ipc(event.rows), event.bar_date)
    _report(worker, event, "options_bars", f"{event.symbol}|{event.bar_date}", results)


def on_flow(event: FlowComputed, worker: Worker) -> None:
    """Check one committed flow delivery."""
    _report(worker, event, "options_flow", f"{event.symbol}|{event.as_of}", flow_checks(from_ipc(event.rows), PERSISTED_KEY))


def on_derived(event: DerivedComputed, worker: Worker) -> None:
    """Check one committed derived row."""
    _report(worker, event, "derived_metrics", f"{event.symbol}|{event.as_of}", derived_checks(from_ipc(event.rows)))


def _recheck_candles(worker: Worker, symbol: str) -> list[CheckResult]:
    rows: pa.Table = worker.query(
        "SELECT symbol, date, open, high, low, close, volume FROM candles_daily WHERE symbol = ? ORDER BY date", [symbol]
    )
    results = candle_payload_checks(rows)
    if rows.num_rows:
        results.append(_gap_result(worker, symbol, rows.column("date")[-1].as_py()))
    return results


def _recheck_option_bars(worker: Worker, symbol: str) -> list[CheckResult]:
    rows: pa.Table = worker.query(
        "SELECT contract_symbol, underlying, date, open, high, low, close, volume, trade_count, vwap FROM options_bars "
        "WHERE underlying = ? ORDER BY contract_symbol, date", [symbol],
    )
    return option_bars_checks(rows)


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
    worker = run.worker
    for asset in assets:
        recheck, symbols_sql = RECHECKS[asset]
        for symbol in command.symbols or worker.query(symbols_sql).column(0).to_pylist():
            run.check_stop()
            run.emit(
                AssetChecked(run_id=run.run_id, asset_key=asset, partition_key=symbol,
                             checked_at=utc_now(), results=_records(recheck(worker, symbol)))
            )


HANDLERS = {RunChecks: (JOB, run_checks)}
EVENT_HANDLERS = {
    CandlesIngested: on_candles, OptionBarsIngested: on_option_bars, ChainSnapshotted: on_chain,
    FlowComputed: on_flow, DerivedComputed: on_derived,
}

if __name__ == "__main__":
    calendar.all_sessions()
    main("checks", HANDLERS, EVENT_HANDLERS)
