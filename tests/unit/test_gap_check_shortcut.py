"""The candle gap check answers from the delivery itself when the delivery covers its whole window.

`services.checks._gap_result` reads the stored candles of the last 30 sessions (two queries through
the ledger per delivery: thousands per wide daily). When the committed delivery being checked holds
every one of those sessions, its rows are in the table, so the answer is known without a read. This
protects that the shortcut gives exactly the result the read gives, and that any delivery that does
not cover the window (short, holed, or older than the window) still reads the table.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from oh.domain import calendar
from oh.domain.checks import GAP_WINDOW
from services.checks import _gap_result

UNTIL = date(2025, 6, 4)
SESSIONS = [d.astype(date) for d in calendar.last_sessions(UNTIL, 60)]


class StoredCandles:
    """A read of candles_daily that answers from a list of stored dates and counts its queries."""

    def __init__(self, stored: list[date]) -> None:
        self.stored, self.queries = sorted(stored), 0

    def __call__(self, sql: str, params: list[Any]) -> pa.Table:
        self.queries += 1
        if "min(date)" in sql:
            return pa.table({"min": pa.array([self.stored[0] if self.stored else None], pa.date32())})
        _, low, high = params
        return pa.table({"date": pa.array([d for d in self.stored if low <= d <= high], pa.date32())})


@pytest.mark.parametrize("delivered", [
    SESSIONS,  # 60 sessions: covers the window
    SESSIONS[-GAP_WINDOW:],  # exactly the window
    [*SESSIONS, date(2025, 5, 31)],  # plus a weekend row (the other checks flag it; the gap answer is the same)
])
def test_a_delivery_covering_the_window_answers_as_the_read_does_without_reading(delivered: list[date]) -> None:
    read = StoredCandles(delivered)
    expected = _gap_result(StoredCandles(delivered), "S0001", UNTIL)
    assert _gap_result(read, "S0001", UNTIL, pa.array(delivered, pa.date32())) == expected
    assert read.queries == 0
    assert _gap_result(read, "S0001", UNTIL, pa.chunked_array([pa.array(delivered, pa.date32()).cast(pa.timestamp("us"))])) == expected
    assert read.queries == 0


@pytest.mark.parametrize("delivered", [
    SESSIONS[-GAP_WINDOW + 1:],  # one session short
    [d for d in SESSIONS if d != SESSIONS[-5]],  # a hole inside the window
    SESSIONS[:-1],  # ends the session before `until`
    [],
])
def test_a_delivery_short_of_the_window_reads_the_table(delivered: list[date]) -> None:
    stored = [*SESSIONS[:10], *delivered]  # the table may hold more than this delivery
    read = StoredCandles(stored)
    got = _gap_result(read, "S0001", UNTIL, pa.array(delivered, pa.date32()))
    assert read.queries == 2
    assert got == _gap_result(StoredCandles(stored), "S0001", UNTIL)
    missing = np.setdiff1d(np.array(SESSIONS[-GAP_WINDOW:], "datetime64[D]"), np.array(stored, "datetime64[D]"))
    assert got.status == ("fail" if len(missing) else "pass")
