"""Reading stored option chains back through the ledger, in the wire's shape (contracts.rows.CHAIN)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from contracts import Command, RunFinished
from services.runtime import Worker

_CHAINS_SQL = """
SELECT contract_symbol, underlying, snapshot_date, expiry, put_call AS "right", strike, spot, bid, ask, last, mark,
       volume, open_interest, iv, delta, gamma, vega, theta, rho
FROM option_snapshots WHERE underlying = ? AND snapshot_date IN (
    SELECT DISTINCT snapshot_date FROM option_snapshots WHERE underlying = ? AND snapshot_date <= ?
    ORDER BY snapshot_date DESC LIMIT ?)
"""


def load_chains(worker: Worker, symbol: str, as_of: date, sessions: int) -> dict[date, pa.Table]:
    """The chains of the newest `sessions` snapshot sessions on or before `as_of` (never after), by session."""
    table: pa.Table = worker.query(_CHAINS_SQL, [symbol, symbol, as_of, sessions])
    days = sorted(set(table.column("snapshot_date").to_pylist()))
    return {day: table.filter(pc.equal(table["snapshot_date"], day)) for day in days}


def chained_partitions(worker: Worker, run_id: str, job_name: str, asset_key: str) -> dict[date, list[str]]:
    """Symbols by session that an upstream run stored (or skipped), to chain the next step on."""
    stored = worker.query(
        "SELECT a.partition_key FROM meta.ingestion_run_assets a JOIN meta.ingestion_runs r USING (run_id) "
        "WHERE a.run_id = ? AND r.job_name = ? AND a.asset_key = ? AND a.status IN ('success', 'skipped') "
        "ORDER BY 1",
        [run_id, job_name, asset_key],
    )
    by_day: dict[date, list[str]] = {}
    for key in stored.column(0).to_pylist():
        symbol, day = key.split("|")
        by_day.setdefault(date.fromisoformat(day), []).append(symbol)
    return by_day


def send_next_step(
    worker: Worker,
    upstream: RunFinished,
    job_name: str,
    asset_key: str,
    namespace: uuid.UUID,
    make: Callable[..., Command],
) -> None:
    """Chain the next step: one command per session the upstream run covered, sent through the ledger.

    Ids derive from the upstream run and the session, so a redelivered RunFinished sends duplicates
    the ledger drops; the commands carry `parent_run_id` and `triggered_by = pipeline`.
    """
    commands = [
        make(
            id=uuid.uuid5(namespace, f"{upstream.run_id}:{day}").hex, symbols=sorted(symbols), as_of=day,
            parent_run_id=upstream.run_id, triggered_by="pipeline",
        )
        for day, symbols in sorted(chained_partitions(worker, upstream.run_id, job_name, asset_key).items())
    ]
    if commands:
        worker.producer.send_many(commands)
        worker.producer.flush()
