"""The rules every real adapter shares when it builds our tables (oh.adapters.tables, pure)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest

from contracts import rows
from oh.adapters import tables
from oh.adapters.base import SessionNotClosed
from oh.domain import pricing

NAN = math.nan


def test_ny_date_reads_vendor_timestamps() -> None:
    """Alpaca's nanosecond RFC 3339, its midnight-New-York bar stamps, Yahoo's epoch seconds: all to the
    New York date (an evening UTC time before midnight UTC is still that New York day)."""
    assert tables.ny_date("2025-06-06T19:59:59.871829452Z") == date(2025, 6, 6)
    assert tables.ny_date("2025-06-02T04:00:00Z") == date(2025, 6, 2)
    assert tables.ny_date("2025-06-06T22:30:00.123456789-06:00") == date(2025, 6, 7)  # the offset is kept
    assert tables.ny_date("2025-06-07T01:30:00.5+02:00") == date(2025, 6, 6)
    assert tables.ny_date("2025-06-07T03:30:00Z") == date(2025, 6, 6)
    assert tables.ny_date(1749240001) == date(2025, 6, 6)
    assert tables.ny_date(datetime(2025, 6, 7, 1, 0, tzinfo=UTC)) == date(2025, 6, 6)
    assert tables.ny_date(None) is None


def test_a_session_still_trading_is_refused_naming_the_last_closed_one() -> None:
    """Before Friday's close a range reaching Friday is refused (SessionNotClosed names Friday and Thursday, the
    last closed session); after the close, or for a range ending earlier, or on the weekend after, it is fine."""
    friday = date(2025, 6, 6)
    with pytest.raises(SessionNotClosed, match=r"2025-06-06.*last closed session is 2025-06-05"):
        tables.require_closed("alpaca", "AAPL", date(2025, 6, 2), friday, datetime(2025, 6, 6, 15, 0, tzinfo=UTC))
    tables.require_closed("alpaca", "AAPL", date(2025, 6, 2), friday, datetime(2025, 6, 6, 20, 30, tzinfo=UTC))
    tables.require_closed("alpaca", "AAPL", date(2025, 6, 2), date(2025, 6, 5), datetime(2025, 6, 6, 15, 0, tzinfo=UTC))
    tables.require_closed("yahoo", "AAPL", date(2025, 6, 2), date(2025, 6, 8), datetime(2025, 6, 7, 12, 0, tzinfo=UTC))
    with pytest.raises(SessionNotClosed, match="yahoo: AAPL on 2025-06-09"):
        tables.require_closed("yahoo", "AAPL", date(2025, 6, 2), date(2025, 6, 30), datetime(2025, 6, 7, 12, 0, tzinfo=UTC))


def test_candles_keep_sessions_in_range_once_in_order_with_prices() -> None:
    """Out-of-range days, a Saturday, a duplicate day and a row with a null price are dropped; the rest is
    sorted by date; a missing volume is 0."""
    days = [date(2025, 6, 4), date(2025, 6, 3), date(2025, 6, 7), date(2025, 6, 3), date(2025, 6, 5),
            date(2025, 6, 9), date(2025, 6, 6)]
    ohlc = [[3, 3, 3, 3], [2, 2, 2, 2], [9, 9, 9, 9], [7, 7, 7, 7], [4, 4, 4, NAN], [8, 8, 8, 8], [5, 5, 5, 5]]
    volume = [30, 20, 90, 70, 40, 80, None]
    table = tables.candles("X", days, ohlc, volume, date(2025, 6, 3), date(2025, 6, 6))
    assert table.schema == rows.CANDLES
    assert [d.isoformat() for d in table.column("date").to_pylist()] == ["2025-06-03", "2025-06-04", "2025-06-06"]
    assert table.column("close").to_pylist() == [2.0, 3.0, 5.0]
    assert table.column("volume").to_pylist() == [20, 30, 0]


def test_option_bars_per_contract_and_unknown_counts() -> None:
    """Bars group by contract then date; a null-price day is no bar; unknown trade count is 0, VWAP NaN."""
    day = date(2025, 6, 6)
    table = tables.option_bars(
        "X", ["B", "A", "A"], [day, day, date(2025, 6, 5)], [[1, 2, 1, 2], [1, 1, 1, 1], [None, None, None, None]],
        [5, 6, 7], [NAN, 3, 4], [NAN, 1.5, 1.0], date(2025, 6, 5), day,
    )
    assert table.schema == rows.OPTION_BARS
    assert table.column("contract_symbol").to_pylist() == ["A", "B"]
    assert table.column("trade_count").to_pylist() == [3, 0]
    assert table.column("vwap").to_pylist()[0] == 1.5 and math.isnan(table.column("vwap").to_pylist()[1])


def _chain(**over: object):  # type: ignore[no-untyped-def]
    day = date(2025, 6, 6)
    args: dict[str, object] = {
        "underlying": "X", "day": day, "spot": 100.0,
        "contracts": ["X250613P00100000", "X250613C00100000", "X250606C00100000", "X250613C00100000"],
        "expiry": [date(2025, 6, 13), date(2025, 6, 13), day, date(2025, 6, 13)], "right": ["P", "C", "C", "C"],
        "strike": [100.0] * 4, "bid": [1.0, 1.1, 0.5, 9.0], "ask": [1.2, 1.3, 0.6, 9.0], "last": [0.0] * 4,
        "volume": [1, None, 3, 4], "open_interest": [5, 6, 7, 8], "source_iv": [NAN, 0.3, 0.2, 0.2],
        "source_greeks": {"delta": [NAN, 0.55, 0.1, 0.1]}, "rate": 0.04, "dividend_yield": 0.0,
    }
    args.update(over)
    return tables.chain(**args)  # type: ignore[arg-type]


def test_chain_drops_expired_and_duplicate_contracts_and_orders_calls_first() -> None:
    """A contract expiring on the snapshot session is gone at its close; a repeated contract keeps its first
    row; rows come by expiry, calls before puts, strike."""
    table = _chain()
    assert table.schema == rows.CHAIN
    assert table.column("contract_symbol").to_pylist() == ["X250613C00100000", "X250613P00100000"]
    assert table.column("bid").to_pylist() == [1.1, 1.0]
    assert table.column("volume").to_pylist() == [0, 1]


def test_chain_uses_the_sources_iv_and_greeks_and_computes_what_is_missing() -> None:
    """Given values are kept as sent; a missing IV is solved from the mark (so it reprices the mark) and
    missing Greeks come from BSM at that IV."""
    call, put = _chain().to_pylist()
    assert (call["iv"], call["delta"]) == (0.3, 0.55)
    expected = pricing.bsm_greeks(100.0, 100.0, 7 / 365, 0.3, 0.04, 0.0, True)
    assert call["gamma"] == pytest.approx(float(expected.gamma))
    assert put["mark"] == pytest.approx(1.1)
    assert float(pricing.bsm_price(100.0, 100.0, 7 / 365, put["iv"], 0.04, 0.0, False)) == pytest.approx(1.1)
    assert put["delta"] == pytest.approx(float(pricing.bsm_greeks(100.0, 100.0, 7 / 365, put["iv"], 0.04, 0.0,
                                                                   False).delta))


def test_chain_with_no_price_at_all_keeps_the_row_with_nan() -> None:
    """No bid, ask or last: mark, IV and Greeks are NaN (unknown), never a made-up number, and quotes are 0."""
    table = _chain(contracts=["X250613C00100000"], expiry=[date(2025, 6, 13)], right=["C"], strike=[100.0],
                   bid=[None], ask=[-1.0], last=[0.0], volume=[0], open_interest=[0], source_iv=[NAN],
                   source_greeks={})
    row = table.to_pylist()[0]
    assert (row["bid"], row["ask"]) == (0.0, 0.0)
    assert np.isnan([row[k] for k in ("mark", "iv", "delta", "gamma", "vega", "theta", "rho")]).all()


def test_empty_inputs_give_empty_tables_in_schema() -> None:
    """A vendor with nothing to say yields empty tables of the right schema, not errors."""
    day = date(2025, 6, 6)
    assert tables.candles("X", [], [], [], day, day).schema == rows.CANDLES
    assert tables.option_bars("X", [], [], [], [], [], [], day, day).schema == rows.OPTION_BARS
    assert _chain(contracts=[], expiry=[], right=[], strike=[], bid=[], ask=[], last=[], volume=[],
                  open_interest=[], source_iv=[], source_greeks={}).num_rows == 0
