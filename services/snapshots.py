"""Stored option chains read back through the ledger, for the jobs that compute on them (flow, derived)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from services.pipeline import Read

_CHAINS_SQL = """
SELECT contract_symbol, underlying, snapshot_date, expiry, put_call AS "right", strike, spot, bid, ask, last, mark,
       volume, open_interest, iv, delta, gamma, vega, theta, rho
FROM option_snapshots WHERE underlying = ? AND snapshot_date <= ? AND snapshot_date >= coalesce((
    SELECT min(snapshot_date) FROM (
        SELECT DISTINCT snapshot_date FROM option_snapshots WHERE underlying = ? AND snapshot_date < ?
        ORDER BY snapshot_date DESC LIMIT ?)), ?)
ORDER BY snapshot_date, contract_symbol
"""


def load_chains(read: Read, symbol: str, first: date, last: date, before: int = 0) -> dict[date, pa.Table]:
    """The stored chains of `symbol` on the sessions in [first, last] and on the `before` sessions before
    `first` (never after `last`), by session, in one read."""
    table: pa.Table = read(_CHAINS_SQL, [symbol, last, symbol, first, before, first])
    if not table.num_rows:
        return {}
    dates = table.column("snapshot_date").to_numpy(zero_copy_only=False)  # sorted: a slice per session
    starts = [0, *(np.flatnonzero(dates[1:] != dates[:-1]) + 1).tolist()]
    ends = [*starts[1:], len(dates)]
    return {dates[s].astype(date): table.slice(s, e - s) for s, e in zip(starts, ends, strict=True)}


def in_chunks(days: list[date], size: int) -> list[list[date]]:
    """`days` (oldest first) in consecutive chunks of at most `size`, so a long range is read a piece at a time."""
    return [days[i:i + size] for i in range(0, len(days), size)]
