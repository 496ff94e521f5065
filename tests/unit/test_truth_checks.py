"""Each check catches what it names: one bad row per fault (NaN, high below low, negative sizes, future dates,
impossible Greeks, an IV the quote cannot give), and clean sim data passes every check."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest

from oh.adapters.sim.options import option_chain
from oh.adapters.sim.provider import SimProvider
from oh.domain import flow
from oh.domain.chain_checks import chain_quote_checks, greeks_check, iv_quote_check
from oh.domain.checks import (
    candle_payload_checks,
    chain_snapshot_checks,
    flow_checks,
    future_dates_check,
    option_bars_checks,
)

DAY = date(2025, 6, 3)
SIM = SimProvider()


def _by_name(results: list[Any]) -> dict[str, Any]:
    return {r.check_name: r for r in results}


def _failed(results: list[Any]) -> set[str]:
    return {r.check_name for r in results if r.status == "fail"}


def _with(table: pa.Table, row: int, **values: Any) -> pa.Table:
    data = table.to_pydict()
    for column, value in values.items():
        data[column][row] = value
    return pa.Table.from_pydict(data, schema=table.schema)


# -- candles ---------------------------------------------------------------------------------------
CANDLES = SIM.daily_candles("AAPL", date(2025, 5, 1), date(2025, 5, 30))


def test_clean_candles_pass_every_check() -> None:
    assert _failed(candle_payload_checks(CANDLES)) == set()


def test_the_attackers_row_fails_each_check_it_breaks() -> None:
    """One row with a NaN open, its high below its low and a negative volume fails the missing-price, OHLC and
    negative-volume checks (the NaN no longer hides the high below the low) and nothing else."""
    low = CANDLES.column("low")[5].as_py()
    bad = _with(CANDLES, 5, open=math.nan, high=low - 1.0, volume=-100)
    assert _failed(candle_payload_checks(bad)) == {
        "candles_no_missing_prices", "candles_ohlc_consistent", "candles_no_negative_volume"}
    results = _by_name(candle_payload_checks(bad))
    assert results["candles_no_missing_prices"].metrics["missing"] == 1
    assert results["candles_no_negative_volume"].severity == "error"


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"close": math.nan}, "candles_no_missing_prices"),
        ({"high": math.inf}, "candles_no_missing_prices"),
        ({"volume": -1}, "candles_no_negative_volume"),
        ({"open": -1.0}, "candles_no_negative_prices"),
    ],
    ids=["nan-close", "inf-high", "negative-volume", "negative-open"],
)
def test_each_candle_fault_alone(change: dict[str, Any], check: str) -> None:
    assert check in _failed(candle_payload_checks(_with(CANDLES, 3, **change)))


def test_high_below_low_alone_fails_even_when_open_and_close_sit_between() -> None:
    """high < low cannot be a candle, even if open and close are NaN (nothing to bracket)."""
    bad = _with(CANDLES, 2, open=math.nan, close=math.nan, high=10.0, low=11.0)
    assert "candles_ohlc_consistent" in _failed(candle_payload_checks(bad))


# -- option bars -----------------------------------------------------------------------------------
def _bars() -> pa.Table:
    contracts = SIM.option_contracts("AAPL", DAY, 30)[:40]
    return SIM.option_bars("AAPL", contracts, DAY, DAY)


def test_clean_bars_pass_and_an_unknown_vwap_is_not_missing() -> None:
    """Sim bars pass; a NaN VWAP is "unknown" (Yahoo sends none), not a missing price."""
    bars = _bars()
    assert bars.num_rows > 5
    assert _failed(option_bars_checks(bars, DAY)) == set()
    assert _failed(option_bars_checks(_with(bars, 0, vwap=math.nan), DAY)) == set()


def test_bad_bars_fail_each_check_they_break() -> None:
    bars = _bars()
    low = bars.column("low")[1].as_py()
    bad = _with(_with(bars, 1, open=math.nan, high=low / 2), 2, volume=-3)
    bad = _with(bad, 3, trade_count=-1)
    assert _failed(option_bars_checks(bad, DAY)) == {
        "options_bars_no_missing_prices", "options_bars_ohlc_consistent", "options_bars_no_negative_volume"}
    assert _by_name(option_bars_checks(bad, DAY))["options_bars_no_negative_volume"].metrics["negative_volume"] == 2


# -- snapshots -------------------------------------------------------------------------------------
CHAIN = option_chain("AAPL", DAY)


def _row(chain: pa.Table, **match: Any) -> int:
    rows = chain.to_pylist()
    return next(i for i, r in enumerate(rows) if all(r[k] == v for k, v in match.items()))


def _near_the_money(chain: pa.Table, right: str) -> int:
    """A put or call a few percent out of the money, expiring in 2-8 weeks: the kind the IV check judges."""
    rows = chain.to_pylist()
    for i, r in enumerate(rows):
        days = (r["expiry"] - DAY).days
        ratio = r["strike"] / r["spot"]
        if r["right"] == right and 14 <= days <= 60 and (1.0 < ratio < 1.05 if right == "C" else 0.95 < ratio < 1.0):
            return i
    raise AssertionError("no near-the-money contract")


def test_a_clean_chain_passes_every_snapshot_check() -> None:
    assert _failed([*chain_snapshot_checks(CHAIN), *chain_quote_checks(CHAIN)]) == set()
    assert iv_quote_check(CHAIN).metrics["judged"] > 100


def test_missing_quotes_and_negative_sizes_are_caught() -> None:
    bad = _with(_with(CHAIN, 4, bid=math.nan), 5, open_interest=-7)
    assert _failed(chain_snapshot_checks(bad)) == {"snapshot_no_missing_prices", "snapshot_no_negative_volume"}


def test_a_contract_with_no_price_at_all_is_not_missing_data() -> None:
    """bid = ask = last = 0 with a NaN mark is how a real provider's unquoted, untraded contract is stored (the
    Yahoo fixture has one): it is "no price", documented, and fails nothing."""
    unpriced = _with(CHAIN, 6, bid=0.0, ask=0.0, last=0.0, mark=math.nan, iv=math.nan, delta=math.nan)
    assert _failed([*chain_snapshot_checks(unpriced), *chain_quote_checks(unpriced)]) == set()


def test_the_recorded_yahoo_chain_passes_the_data_checks() -> None:
    """Yahoo's recorded chain (stale rows, missing fields, a placeholder IV), as the adapter stores it, has no
    missing or negative data and no impossible Greek."""
    import json
    from pathlib import Path

    import pandas as pd

    from oh.adapters.yahoo import rows as yahoo_rows

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "http" / "yahoo"
    frames = []
    for name in ("v7_options_AAPL_2025-06-13.json", "v7_options_AAPL_2025-06-20.json", "v7_options_AAPL_2025-07-18.json"):
        options = json.loads((folder / name).read_text())["optionChain"]["result"][0]["options"][0]
        for side in ("calls", "puts"):
            frame = pd.DataFrame(options[side])
            frame["lastTradeDate"] = pd.to_datetime(frame["lastTradeDate"], unit="s", utc=True)
            frames.append(frame)
    table, _ = yahoo_rows.chain("AAPL", date(2025, 6, 6), 203.92, frames, 0.04, 0.0)
    results = {r.check_name: r.status for r in [*chain_snapshot_checks(table), greeks_check(table)]}
    assert {k: v for k, v in results.items() if v != "pass"} == {}


def test_a_put_with_a_positive_delta_is_flagged() -> None:
    """alpaca-py's own test payload has a put with delta +0.674: no put can have it."""
    put = _near_the_money(CHAIN, "P")
    result = greeks_check(_with(CHAIN, put, delta=0.674))
    assert (result.status, result.severity, result.metrics["puts"]) == ("fail", "error", 1)
    assert result.metrics["example"] == CHAIN.column("contract_symbol")[put].as_py()


@pytest.mark.parametrize(("right", "change"), [("C", {"delta": -0.2}), ("C", {"delta": 1.3}), ("P", {"delta": -1.5}),
                                               ("C", {"gamma": -0.01}), ("P", {"vega": -0.1})],
                         ids=["call-negative", "call-above-one", "put-below-minus-one", "negative-gamma", "negative-vega"])
def test_other_impossible_greeks_are_flagged(right: str, change: dict[str, float]) -> None:
    assert greeks_check(_with(CHAIN, _near_the_money(CHAIN, right), **change)).status == "fail"


def test_missing_greeks_are_not_judged() -> None:
    assert greeks_check(_with(CHAIN, 0, delta=math.nan, gamma=math.nan)).status == "pass"


@pytest.mark.parametrize("factor", [3.0, 0.3])
def test_an_iv_the_quote_cannot_give_is_flagged(factor: float) -> None:
    """An IV three times (or a third of) what the contract's bid and ask imply is flagged, naming the contract."""
    call = _near_the_money(CHAIN, "C")
    iv = CHAIN.column("iv")[call].as_py()
    result = iv_quote_check(_with(CHAIN, call, iv=iv * factor))
    assert (result.status, result.severity, result.metrics["outside"]) == ("fail", "warn", 1)
    assert CHAIN.column("contract_symbol")[call].as_py() in result.message


def test_an_iv_within_its_quote_passes_and_unjudgeable_rows_are_left_alone() -> None:
    """A small move of the IV inside the quote's bracket passes; a deep in-the-money or one-sided contract is not
    judged, whatever its IV."""
    call = _near_the_money(CHAIN, "C")
    assert iv_quote_check(_with(CHAIN, call, iv=CHAIN.column("iv")[call].as_py() * 1.01)).status == "pass"
    one_sided = _with(CHAIN, call, bid=0.0, iv=4.0)
    assert iv_quote_check(one_sided).status == "pass"
    deep = _row(CHAIN, right="C", expiry=CHAIN.column("expiry")[call].as_py(),
                strike=min(s for s, r, e in zip(CHAIN.column("strike").to_pylist(), CHAIN.column("right").to_pylist(),
                                                  CHAIN.column("expiry").to_pylist(), strict=True)
                           if r == "C" and e == CHAIN.column("expiry")[call].as_py()))
    assert iv_quote_check(_with(CHAIN, deep, iv=4.0)).status == "pass"


def test_alpaca_rows_keep_a_vendor_greek_as_sent_and_the_check_flags_it() -> None:
    """A put whose snapshot carries delta +0.674 is stored as Alpaca sent it (we do not overrule a vendor), and
    snapshot_greeks_consistent fails on the resulting chain."""
    from oh.adapters.alpaca import rows as alpaca_rows

    quote = {"t": "2025-06-06T19:59:59.871829452Z", "bp": 1.36, "ap": 1.40, "bs": 10, "as": 12}
    snapshots = {
        "AAPL250613P00200000": {"latestQuote": quote, "latestTrade": {"t": quote["t"], "p": 1.37},
                                "impliedVolatility": 0.2699,
                                "greeks": {"delta": 0.674, "gamma": 0.05, "rho": -0.01, "theta": -0.2, "vega": 0.08}},
        "AAPL250613C00205000": {"latestQuote": {**quote, "bp": 2.47, "ap": 2.53}, "impliedVolatility": 0.2687,
                                "greeks": {"delta": 0.38, "gamma": 0.05, "rho": 0.01, "theta": -0.3, "vega": 0.09}},
    }
    table, skipped = alpaca_rows.chain("AAPL", date(2025, 6, 6), 203.92, snapshots, [], 0.04, 0.0)
    assert skipped == 0
    by = {r["contract_symbol"]: r for r in table.to_pylist()}
    assert by["AAPL250613P00200000"]["delta"] == 0.674
    result = greeks_check(table)
    assert (result.status, result.metrics["puts"], result.metrics["example"]) == ("fail", 1, "AAPL250613P00200000")


# -- flow ------------------------------------------------------------------------------------------
FLOW_ROWS = flow.group_flow(flow.contract_flow(option_chain("AAPL", date(2025, 6, 2)), CHAIN), "contract", 1)


def test_flow_values_consistent() -> None:
    """Clean flow passes; a negative volume or a contract whose dOI is not oi_today - oi_before fails."""
    assert _failed(flow_checks(FLOW_ROWS, flow.PERSISTED_KEY)) == set()
    index = next(i for i, v in enumerate(FLOW_ROWS.column("d_oi").to_pylist()) if v is not None)
    wrong = _with(FLOW_ROWS, index, d_oi=FLOW_ROWS.column("d_oi")[index].as_py() + 5)
    assert _by_name(flow_checks(wrong, flow.PERSISTED_KEY))["flow_values_consistent"].metrics["wrong_d_oi"] == 1
    negative = _with(FLOW_ROWS, 0, volume=-1)
    assert _failed(flow_checks(negative, flow.PERSISTED_KEY)) == {"flow_values_consistent"}


# -- future dates ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "status"),
    [(datetime(2025, 5, 30, 15, 0, tzinfo=UTC), "fail"),  # Friday 11:00 New York: Friday has not closed
     (datetime(2025, 5, 30, 20, 30, tzinfo=UTC), "pass"),  # after the close
     (datetime(2025, 5, 20, 12, 0, tzinfo=UTC), "fail")],  # ten days of candles from the future
    ids=["same-day-before-close", "after-close", "days-ahead"],
)
def test_rows_dated_after_the_last_closed_session_fail(now: datetime, status: str) -> None:
    result = future_dates_check("candles_no_future_dates", CANDLES.column("date"), now)
    assert (result.status, result.severity) == (status, "error")
    if status == "fail":
        assert result.metrics["future_rows"] >= 1 and result.metrics["first_future"] is not None
