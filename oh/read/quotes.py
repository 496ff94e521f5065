"""The latest stored quotes, read through a `read(sql, params) -> pa.Table` callable (no connection of its own).

`oh portfolio analyze` passes `oh.cli.data.reader` (the ledger, or the warehouse file read-only when it
is down), the briefing worker passes `Worker.query`, the dashboard its query client: one SQL text for
"the chain of the newest snapshot session on or before D", so they all value a portfolio the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import pyarrow as pa

Read = Callable[[str, list[Any]], pa.Table]

LATEST_CHAIN_SQL = """
SELECT contract_symbol, underlying, snapshot_date, expiry, put_call AS "right", strike, spot, bid, ask, last, mark,
       volume, open_interest, iv, delta, gamma, vega, theta, rho
FROM option_snapshots WHERE underlying = ? AND snapshot_date = (
    SELECT max(snapshot_date) FROM option_snapshots WHERE underlying = ? AND snapshot_date <= ?)
ORDER BY contract_symbol
"""

LATEST_CLOSE_SQL = "SELECT close FROM candles_daily WHERE symbol = ? AND date <= ? ORDER BY date DESC LIMIT 1"


def latest_chains(read: Read, symbols: Sequence[str], as_of: date) -> dict[str, pa.Table]:
    """Each symbol's chain of its newest snapshot session on or before `as_of`; absent when it has none."""
    out: dict[str, pa.Table] = {}
    for symbol in symbols:
        table = read(LATEST_CHAIN_SQL, [symbol, symbol, as_of])
        if table.num_rows:
            out[symbol] = table
    return out


def latest_closes(read: Read, symbols: Sequence[str], as_of: date) -> dict[str, float]:
    """Each symbol's last daily close on or before `as_of` (for stock without a chain); absent when none."""
    out: dict[str, float] = {}
    for symbol in symbols:
        table = read(LATEST_CLOSE_SQL, [symbol, as_of])
        if table.num_rows and table.column(0)[0].as_py() is not None:
            out[symbol] = float(table.column(0)[0].as_py())
    return out
