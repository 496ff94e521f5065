"""The briefing reads only the flow rows its highlights can show (services/briefing.py, FLOW_SQL, issue #14.4).

Protects: the briefing worker reading every building/unwinding row of a wide day (~700,000 at 5,000 symbols,
held as dicts: its memory grew with the width), and, since it no longer does, highlights that differ from
those of every row: the largest changes across reads (ties broken by symbol then contract at the cut), held
contracts whatever their label, and NaN, infinite or missing notionals, which are never highlighted.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from oh.domain import briefing
from services import briefing as worker
from services.ledger import schema
from services.ledger.warehouse import connect

DAY = date(2025, 6, 3)
# what the worker read before: every building/unwinding row and every held contract, of all symbols at once
EVERY_ROW = """
SELECT symbol, row_key, put_call, expiry, strike, d_oi, d_oi_notional, volume, label FROM options_flow
WHERE list_contains(?::VARCHAR[], symbol) AND to_date = ? AND window_sessions = 1 AND group_by = 'contract'
  AND (label IN ('building', 'unwinding') OR list_contains(?::VARCHAR[], row_key))
ORDER BY symbol, row_key
"""


def _flow(tmp_path: Path, seed: int) -> tuple[Any, list[str], list[str]]:
    """A warehouse with one day of contract flow for 40 symbols: labels of every kind, repeated notionals (ties
    at any cut), NaN, infinite and missing ones, rows of other days, windows and groupings; and 12 held contracts."""
    con = connect(tmp_path / f"w{seed}.duckdb")
    schema.create_schema(con)
    rng = random.Random(seed)
    symbols = [f"S{i:04d}" for i in range(40)]
    rows, contracts = [], []
    for symbol in symbols:
        for k in range(rng.randint(0, 30)):
            contract = f"{symbol}250620C{k:08d}"
            contracts.append(contract)
            notional = rng.choice([rng.uniform(-5e6, 5e6), 1e6, -1e6, 2.5e5, float("nan"), float("inf"), None])
            label = rng.choice(["building", "unwinding", "churn", "quiet", None])
            for to_date, window, group in ((DAY, 1, "contract"), (date(2025, 6, 2), 1, "contract"),
                                           (DAY, 5, "contract"), (DAY, 1, "strike")):
                rows.append((symbol, date(2025, 6, 2), to_date, window, group, contract, "C", date(2025, 6, 20),
                             float(k), 10, 20, 10, notional, 5, 1.0, 0.5, 1.0, 1, label))
    names = [c[0] for c in con.execute("SELECT * FROM options_flow LIMIT 0").description]
    table = pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows])
    con.register("_rows", table)
    con.execute("INSERT INTO options_flow SELECT * FROM _rows")
    con.unregister("_rows")
    return con, symbols, sorted(rng.sample(contracts, 12))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("per_read", [1, 7, 500])
def test_the_highlights_of_the_rows_read_are_those_of_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               seed: int, per_read: int) -> None:
    """Read in parts of 1, 7 or 500 symbols, the few rows read give exactly the highlights of every row."""
    con, symbols, held = _flow(tmp_path, seed)
    monkeypatch.setattr(worker, "SYMBOLS_PER_READ", per_read)

    def read(sql: str, params: list[Any]) -> Any:
        return con.sql(sql, params=params).to_arrow_table()

    every = read(EVERY_ROW, [symbols, DAY, held]).to_pylist()
    read_now = worker.flow_candidates(read, symbols, DAY, held)
    assert briefing.flow_highlights(read_now, set(held)) == briefing.flow_highlights(every, set(held))
    notable, mine = briefing.flow_highlights(every, set(held))
    assert len(notable) == briefing.FLOW_ROWS and mine  # the comparison is of something
    assert len(read_now) <= briefing.FLOW_ROWS * -(-len(symbols) // per_read) + len(held)  # bounded by the reads
