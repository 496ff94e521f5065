"""Stored option chains read back through the ledger, for the jobs that compute on them (flow, derived)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from services.pipeline import Read

_CHAINS_SQL = """
SELECT contract_symbol, underlying, snapshot_date, expiry, put_call AS "right", strike, spot, bid, ask, last, mark,
       volume, open_interest, iv, delta, gamma, vega, theta, rho
FROM option_snapshots WHERE underlying = ? AND snapshot_date IN (
    SELECT DISTINCT snapshot_date FROM option_snapshots WHERE underlying = ? AND snapshot_date <= ?
    ORDER BY snapshot_date DESC LIMIT ?)
"""


def load_chains(read: Read, symbol: str, as_of: date, sessions: int) -> dict[date, pa.Table]:
    """The chains of the newest `sessions` snapshot sessions on or before `as_of` (never after), by session."""
    table: pa.Table = read(_CHAINS_SQL, [symbol, symbol, as_of, sessions])
    days = sorted(set(table.column("snapshot_date").to_pylist()))
    return {day: table.filter(pc.equal(table["snapshot_date"], day)) for day in days}
