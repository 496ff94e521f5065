"""What an incremental candles fetch asks for and what counts as a changed history (oh/domain/candle_window.py),
and that IngestCandles commands journaled before `incremental` existed still decode, as full fetches."""

from __future__ import annotations

from datetime import date

import msgspec
import pyarrow as pa
import pytest

from bus.codec import decode_message
from contracts import IngestCandles
from oh.adapters.sim.provider import SimProvider
from oh.domain import calendar
from oh.domain.candle_window import (
    PRICE_TOLERANCE,
    Stored,
    fetch_from,
    overlap_difference,
    span_days,
    stored_by_symbol,
)

START, END = date(2025, 3, 3), date(2025, 6, 4)
OVERLAP = 5


def as_stored(table: pa.Table, provider: str = "sim") -> pa.Table:
    """`table` (CANDLES) as the bulk read returns it: the provider beside, the sessions count after."""
    return table.append_column("provider", pa.array([provider] * table.num_rows))


def stored_of(symbol: str, start: date, last: date, sessions: int | None = None) -> Stored:
    rows = as_stored(SimProvider().daily_candles(symbol, start, last))
    return Stored.of(rows.num_rows if sessions is None else sessions, rows.slice(max(rows.num_rows - OVERLAP, 0)))


def test_a_version_1_command_decodes_as_a_full_fetch() -> None:
    """A journal written before `incremental`: the command decodes, with v 1 and incremental False."""
    old = {"type": "IngestCandles", "id": "ab" * 16, "ts": "2025-06-30T20:15:01Z", "v": 1, "symbols": ["AAPL"],
           "start": "2025-01-02", "end": "2025-06-30", "provider": "sim", "fallback": None, "parent_run_id": None,
           "triggered_by": "cli", "orchestrator_run_id": None}
    command = decode_message(msgspec.msgpack.encode(old))
    assert isinstance(command, IngestCandles)
    assert (command.v, command.incremental) == (1, False)
    assert (IngestCandles(symbols=["A"], start=START, end=END).v, IngestCandles(symbols=["A"], start=START, end=END).incremental) == (2, False)


def test_fetch_from_a_full_history_is_the_overlap_before_the_newest_stored_session() -> None:
    last = date(2025, 6, 3)
    assert fetch_from(stored_of("AAPL", START, last), START, END, OVERLAP) == (
        calendar.last_sessions(last, OVERLAP)[0].astype(date), None)


def test_fetch_from_asks_for_the_whole_window_when_nothing_or_too_little_is_stored() -> None:
    assert fetch_from(None, START, END, OVERLAP) == (START, "new")
    gap = stored_of("AAPL", START, date(2025, 6, 3))
    holed = Stored(gap.sessions - 1, gap.days, gap.prices, gap.volume, gap.providers)  # one session missing
    assert fetch_from(holed, START, END, OVERLAP) == (START, "hole")
    later = stored_of("AAPL", date(2025, 4, 1), date(2025, 6, 3))  # stored from after the window's start
    assert fetch_from(later, START, END, OVERLAP) == (START, "hole")


def test_fetch_from_never_reaches_before_the_window() -> None:
    short = stored_of("AAPL", date(2025, 6, 2), date(2025, 6, 3))
    assert fetch_from(short, date(2025, 6, 2), END, OVERLAP) == (date(2025, 6, 2), None)


def fetched_and_stored() -> tuple[pa.Table, Stored]:
    provider = SimProvider()
    stored = stored_of("MSFT", START, date(2025, 6, 3))
    return provider.daily_candles("MSFT", stored.days[0].astype(date), END), stored


def with_column(table: pa.Table, name: str, at: int, value: object) -> pa.Table:
    values = table.column(name).to_pylist()
    values[at] = value
    return table.set_column(table.schema.get_field_index(name), table.schema.field(name), pa.array(values, table.schema.field(name).type))


def test_the_same_rows_do_not_differ_and_float_noise_is_forgiven() -> None:
    fetched, stored = fetched_and_stored()
    assert overlap_difference(fetched, "sim", stored) is None
    close = fetched.column("close")[2].as_py()
    assert overlap_difference(with_column(fetched, "close", 2, close * (1 + PRICE_TOLERANCE / 10)), "sim", stored) is None


@pytest.mark.parametrize(("change", "said"), [
    (lambda t: with_column(t, "close", 1, t.column("close")[1].as_py() * (1 + PRICE_TOLERANCE * 10)), "close on"),
    (lambda t: with_column(t, "open", 0, t.column("open")[0].as_py() / 2), "open on"),  # a 2:1 split
    (lambda t: with_column(t, "volume", 3, t.column("volume")[3].as_py() + 1), "volume on"),
    (lambda t: with_column(t, "low", 4, float("nan")), "low on"),
    (lambda t: t.slice(1), "sessions differ"),  # the provider lacks a stored session
], ids=["price-revised", "split", "volume", "nan", "session-missing"])
def test_any_change_in_the_overlap_differs(change: object, said: str) -> None:
    fetched, stored = fetched_and_stored()
    assert said in (overlap_difference(change(fetched), "sim", stored) or "")  # type: ignore[operator]


def test_another_provider_differs() -> None:
    fetched, stored = fetched_and_stored()
    assert "served by yahoo" in (overlap_difference(fetched, "yahoo", stored) or "")


def test_the_bulk_read_groups_by_symbol() -> None:
    a = as_stored(SimProvider().daily_candles("AAPL", date(2025, 5, 27), date(2025, 6, 3)))
    b = as_stored(SimProvider().daily_candles("SPY", date(2025, 6, 2), date(2025, 6, 3)))
    table = pa.concat_tables([a, b]).append_column("sessions", pa.array([40] * a.num_rows + [2] * b.num_rows, pa.int64()))
    grouped = stored_by_symbol(table)
    assert sorted(grouped) == ["AAPL", "SPY"]
    assert (grouped["AAPL"].sessions, len(grouped["AAPL"].days), grouped["SPY"].sessions) == (40, a.num_rows, 2)
    spy = grouped["SPY"]
    assert spy.days.astype(date).tolist() == [date(2025, 6, 2), date(2025, 6, 3)]
    assert spy.prices.tolist() == [[r[c] for c in ("open", "high", "low", "close")] for r in b.to_pylist()]
    assert (spy.volume.tolist(), spy.providers) == (b.column("volume").to_pylist(), frozenset({"sim"}))
    assert stored_by_symbol(table.slice(0, 0)) == {}
    assert span_days(30) >= 42 and span_days(1) == 0
