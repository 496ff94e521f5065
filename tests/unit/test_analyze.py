"""oh.domain.analyze: marks, PnL, Greeks with the right signs for a single leg, a vertical and an iron condor; the
stress grid against an independent Black-Scholes repricing; missing data becomes a warning, never a crash."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pytest

from contracts.rows import CHAIN
from oh.domain import pricing
from oh.domain.analyze import WIDE_SPREAD, StressSpec, analyze_portfolio, to_jsonable
from oh.domain.portfolio import RiskProfile, from_data

AS_OF = date(2025, 6, 3)
EXPIRY = AS_OF + timedelta(days=45)
SPOT = 100.0
RATE = 0.04


def bsm(spot: float, strike: float, t: float, vol: float, call: bool, rate: float = RATE) -> float:
    """Textbook Black-Scholes (no dividend), written out with math.erf: independent of oh.domain.pricing."""
    if t <= 0:
        return max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
    n = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    if call:
        return spot * n(d1) - strike * math.exp(-rate * t) * n(d2)
    return strike * math.exp(-rate * t) * n(-d2) - spot * n(-d1)


def iv_of(strike: float) -> float:
    """A skewed smile: lower strikes carry more vol (so legs differ, as in a real chain)."""
    return 0.25 + 0.002 * (100.0 - strike)


def chain(rows: list[tuple[str, float, float, float, float]] | None = None, spot: float = SPOT,
          expiry: date = EXPIRY) -> pa.Table:
    """A CHAIN-shaped snapshot. Default: strikes 80..120 step 5, both rights, quoted +-1% around BSM.

    `rows` = (right, strike, bid, ask, last) to set quotes by hand; Greeks come from oh.domain.pricing at iv_of(strike).
    """
    if rows is None:
        rows = []
        for right in ("C", "P"):
            for strike in range(80, 125, 5):
                fair = bsm(spot, strike, (expiry - AS_OF).days / 365, iv_of(strike), right == "C")
                rows.append((right, float(strike), round(fair * 0.99, 2), round(fair * 1.01, 2), round(fair, 2)))
    t = (expiry - AS_OF).days / 365
    out: dict[str, list[Any]] = {name: [] for name in CHAIN.names}
    for right, strike, bid, ask, last in rows:
        g = pricing.bsm_greeks(spot, strike, t, iv_of(strike), RATE, 0.0, right == "C")
        values = {
            "contract_symbol": f"SPY{expiry:%y%m%d}{right}{round(strike * 1000):08d}", "underlying": "SPY",
            "snapshot_date": AS_OF, "expiry": expiry, "right": right, "strike": strike, "spot": spot, "bid": bid,
            "ask": ask, "last": last, "mark": float(pricing.mark_price(bid, ask, last)), "volume": 10,
            "open_interest": 100, "iv": iv_of(strike), "delta": float(g.delta), "gamma": float(g.gamma),
            "vega": float(g.vega), "theta": float(g.theta), "rho": float(g.rho),
        }
        for name in CHAIN.names:
            out[name].append(values[name])
    return pa.table(out, schema=CHAIN)


def leg(right: str, strike: float, quantity: int, cost: float, expiry: date = EXPIRY) -> dict[str, Any]:
    return {"expiry": str(expiry), "right": right, "strike": strike, "quantity": quantity, "cost": cost}


def book(*positions: dict[str, Any], cash: float = 0.0) -> Any:
    return from_data({"cash": cash, "positions": list(positions)})


LONG_CALL = {"type": "option", "id": "call", "symbol": "SPY", "expiry": str(EXPIRY), "right": "call", "strike": 100,
             "quantity": 2, "cost_basis": 3.0}
BULL_PUT = {"type": "structure", "id": "bps", "symbol": "SPY", "kind": "vertical", "net_debit": -1.5,
            "legs": [leg("put", 95, -1, 2.5), leg("put", 90, 1, 1.0)]}
CONDOR = {"type": "structure", "id": "ic", "symbol": "SPY", "kind": "iron_condor", "net_debit": -2.0,
          "legs": [leg("put", 85, 1, 0.5), leg("put", 90, -1, 1.2), leg("call", 110, -1, 1.6), leg("call", 115, 1, 0.3)]}


def one(position: dict[str, Any], table: pa.Table | None = None) -> Any:
    analysis = analyze_portfolio(book(position), {"SPY": chain() if table is None else table}, AS_OF, rate=RATE)
    return analysis.positions[0]


def test_single_long_call_has_textbook_signs_and_pnl() -> None:
    """A long call gains with spot and vol and loses with time; PnL is quantity x 100 x (mark - cost); a written
    call flips every sign (protects the signed-quantity convention)."""
    p = one(LONG_CALL)
    mid = (round(bsm(SPOT, 100, 45 / 365, iv_of(100), True) * 0.99, 2) + round(bsm(SPOT, 100, 45 / 365, iv_of(100), True) * 1.01, 2)) / 2
    assert p.mark == pytest.approx(mid)
    assert p.market_value == pytest.approx(2 * 100 * mid) and p.cost_basis == pytest.approx(600.0)
    assert p.pnl == pytest.approx(200 * (mid - 3.0)) and p.pnl_pct == pytest.approx(p.pnl / 600 * 100)
    e = p.exposure
    assert e.delta_shares > 0 and e.gamma_shares > 0 and e.vega_dollars > 0 and e.theta_dollars < 0
    assert e.delta_dollars == pytest.approx(e.delta_shares * SPOT)
    assert e.gamma_dollars == pytest.approx(e.gamma_shares * SPOT * SPOT * 0.01)
    assert p.dte == 45 and p.complete and p.warnings == ()
    short = one({**LONG_CALL, "quantity": -2})
    assert short.exposure.delta_shares == pytest.approx(-e.delta_shares)
    assert short.exposure.theta_dollars > 0 and short.exposure.vega_dollars < 0
    assert short.market_value == pytest.approx(-p.market_value) and short.cost_basis == pytest.approx(-600.0)


def test_bull_put_vertical_is_a_credit_with_positive_delta_and_theta() -> None:
    """Short the 95 put, long the 90 put: long delta, short vega, long theta; the credit is a negative cost basis,
    and PnL = market value - cost basis (structures are valued leg by leg, never a special case)."""
    p = one(BULL_PUT)
    assert p.type == "structure" and p.kind == "vertical" and p.quantity == 1
    assert p.exposure.delta_shares > 0 and p.exposure.theta_dollars > 0 and p.exposure.vega_dollars < 0
    assert p.cost_basis == pytest.approx(-150.0)
    marks = {leg.strike: leg.mark for leg in p.legs}
    assert p.market_value == pytest.approx(100 * (-marks[95] + marks[90]))
    assert p.mark == pytest.approx(-marks[95] + marks[90]) and p.mark < 0  # a net credit to close
    assert p.pnl == pytest.approx(p.market_value + 150.0)
    assert [leg.quantity for leg in p.legs] == [-1, 1] and {leg.status for leg in p.legs} == {"ok"}


def test_iron_condor_is_short_vol_long_theta_and_nearly_flat() -> None:
    """A short iron condor around spot: short gamma and vega, long theta, delta small next to its legs'."""
    p = one(CONDOR)
    e = p.exposure
    assert e.vega_dollars < 0 and e.theta_dollars > 0 and e.gamma_shares < 0
    biggest_leg = max(abs(leg.delta) * 100 for leg in p.legs)
    assert abs(e.delta_shares) < biggest_leg
    assert len(p.legs) == 4 and p.cost_basis == pytest.approx(-200.0)
    assert p.pnl == pytest.approx(sum(100 * leg.quantity * leg.mark for leg in p.legs) + 200.0)


def test_stress_grid_matches_an_independent_bsm_repricing() -> None:
    """Every scenario's PnL, per position and in total, equals sum(q x 100 x (BSM(S', K, T - d, iv + dv) -
    BSM(S, K, T, iv))) computed here with math.erf; stock moves with spot only; (0, 0, 0) is exactly 0."""
    stock = {"type": "stock", "id": "shares", "symbol": "SPY", "quantity": -30, "cost_basis": 98.0}
    portfolio = book(LONG_CALL, BULL_PUT, CONDOR, stock)
    spec = StressSpec((-10.0, 5.0), (-3.0, 4.0), 9)
    analysis = analyze_portfolio(portfolio, {"SPY": chain()}, AS_OF, spec, rate=RATE)
    assert len(analysis.stress) == 3 * 3 * 2
    legs = {"call": [("call", 100, 2)], "bps": [("put", 95, -1), ("put", 90, 1)],
            "ic": [("put", 85, 1), ("put", 90, -1), ("call", 110, -1), ("call", 115, 1)]}
    t = 45 / 365
    for result in analysis.stress:
        s, v, d = result.scenario.spot_pct, result.scenario.vol_pts, result.scenario.days
        expected = {pid: sum(q * 100 * (bsm(SPOT * (1 + s / 100), k, t - d / 365, max(iv_of(k) + v / 100, 0.01),
                                            right == "call") - bsm(SPOT, k, t, iv_of(k), right == "call"))
                             for right, k, q in spec_legs) for pid, spec_legs in legs.items()}
        expected["shares"] = -30 * SPOT * s / 100
        assert result.by_position == pytest.approx(expected, abs=1e-6)
        assert result.pnl == pytest.approx(sum(expected.values()), abs=1e-6)
    zero = next(r for r in analysis.stress if (r.scenario.spot_pct, r.scenario.vol_pts, r.scenario.days) == (0, 0, 0))
    assert zero.pnl == 0.0


def test_stress_spec_defaults_come_from_the_risk_profile() -> None:
    """The default grid is +-5% spot, +-5 vol points, 7 days; a risk profile changes it; 0 is always on each axis."""
    assert StressSpec() == StressSpec.from_risk_profile(RiskProfile())
    spec = StressSpec.from_risk_profile(RiskProfile(stress_spot_pct=3, stress_vol_points=2, stress_days=0))
    assert spec.spot_axis() == (-3.0, 0.0, 3.0) and spec.vol_axis() == (-2.0, 0.0, 2.0) and spec.day_axis() == (0,)
    scenarios = StressSpec().scenarios()
    assert (scenarios[0].days, scenarios[-1].days) == (0, 7) and len(scenarios) == 18


def test_a_missing_leg_is_a_warning_and_the_position_is_left_out_of_totals() -> None:
    """A structure whose leg is not in the snapshot is not valued (NaN, complete False), names the leg in a
    warning, stresses to NaN, and the totals say how many positions they cover; nothing raises."""
    broken = {**BULL_PUT, "id": "broken", "legs": [leg("put", 95, -1, 2.5), leg("put", 92.5, 1, 1.0)]}
    analysis = analyze_portfolio(book(LONG_CALL, broken), {"SPY": chain()}, AS_OF, rate=RATE)
    call, p = analysis.positions
    assert not p.complete and math.isnan(p.market_value) and math.isnan(p.pnl) and math.isnan(p.exposure.delta_dollars)
    assert [leg.status for leg in p.legs] == ["ok", "missing"]
    assert any("legs[1] SPY250718P00092500" in w and "not in the 2025-06-03 snapshot" in w for w in p.warnings)
    assert analysis.totals.valued == 1 and analysis.totals.positions == 2
    assert analysis.totals.market_value == pytest.approx(call.market_value)
    assert any("totals cover 1 of 2 positions" in w for w in analysis.warnings)
    for result in analysis.stress:
        assert math.isnan(result.by_position["broken"])
        assert result.pnl == pytest.approx(result.by_position["call"])
    json.dumps(to_jsonable(analysis), allow_nan=False)  # NaN becomes null: the JSON stays valid


def test_no_chain_for_an_underlying_is_a_warning() -> None:
    """Positions on an underlying without any snapshot are reported, not crashed on; a stock can be priced by a
    close passed in `spots`."""
    qqq = {**CONDOR, "symbol": "QQQ", "id": "qqq-ic"}
    stock = {"type": "stock", "id": "msft", "symbol": "MSFT", "quantity": 10, "cost_basis": 400.0}
    analysis = analyze_portfolio(book(qqq, stock), {}, AS_OF, spots={"MSFT": 410.0})
    ic, shares = analysis.positions
    assert not ic.complete and {leg.status for leg in ic.legs} == {"missing"}
    assert "QQQ: no option-chain snapshot on or before 2025-06-03" in analysis.warnings
    assert shares.complete and shares.pnl == pytest.approx(100.0) and shares.exposure.delta_shares == 10


@pytest.mark.parametrize(
    ("bid", "ask", "last", "mark", "spread"),
    [
        (1.0, 1.2, 5.0, 1.1, 0.2 / 1.1 * 100),  # both sides: mid, whatever the last
        (0.0, 1.2, 0.9, 0.9, math.nan),  # one side: last
        (0.0, 1.2, 0.0, 1.2, math.nan),  # no last: ask
        (1.0, 0.0, 0.0, 1.0, math.nan),  # ... else bid
        (0.0, 0.0, 0.0, math.nan, math.nan),  # nothing: missing
    ],
)
def test_mark_and_spread_rules(bid: float, ask: float, last: float, mark: float, spread: float) -> None:
    """mark = mid when bid > 0 and ask > 0, else last, else ask, else bid, else missing; spread % = (ask - bid) / mid
    only with both sides; an unpriced contract warns and leaves the position unvalued."""
    p = one(LONG_CALL, chain([("C", 100.0, bid, ask, last)]))
    (only,) = p.legs
    assert only.mark == pytest.approx(mark, nan_ok=True)
    assert only.spread_pct == pytest.approx(spread, nan_ok=True)
    assert p.complete is not math.isnan(mark)
    if math.isnan(mark):
        assert only.status == "no_quote" and any("no bid, ask or last" in w for w in p.warnings)


def test_wide_spreads_and_expired_legs_warn() -> None:
    """A leg quoted wider than WIDE_SPREAD % of mid warns; an expired leg is valued at intrinsic with a warning."""
    wide = one(LONG_CALL, chain([("C", 100.0, 1.0, 2.0, 1.5)]))
    assert wide.legs[0].spread_pct > WIDE_SPREAD and any("wide spread, 67% of mid" in w for w in wide.warnings)
    past = AS_OF - timedelta(days=3)
    expired = one({**LONG_CALL, "expiry": str(past), "strike": 90}, chain(spot=95.0))
    assert expired.legs[0].status == "expired" and expired.dte == -3
    assert expired.mark == pytest.approx(5.0) and expired.exposure.delta_shares == 0
    assert any("expired on 2025-05-31; valued at intrinsic 5.00" in w for w in expired.warnings)


def test_a_structure_is_valued_as_listed_with_its_net_debit_for_the_whole() -> None:
    """Two lots of a vertical (legs -2/+2): net_debit covers the structure as listed (sum of quantity x cost, as
    oh.domain.portfolio's default and oh.domain.marks read it), so cost basis = net_debit x 100 and mark doubles."""
    two = {**BULL_PUT, "net_debit": -3.0, "legs": [leg("put", 95, -2, 2.5), leg("put", 90, 2, 1.0)]}
    single, double = one(BULL_PUT), one(two)
    assert double.quantity == 1 and double.cost_basis == pytest.approx(-300.0)
    assert double.mark == pytest.approx(2 * single.mark) and double.pnl == pytest.approx(2 * single.pnl)
    assert double.exposure.vega_dollars == pytest.approx(2 * single.exposure.vega_dollars)


def test_totals_sum_dollar_greeks_and_keep_share_greeks_per_underlying() -> None:
    """Dollar Greeks add across underlyings; share deltas only within one (NaN in the total otherwise)."""
    aapl = {**LONG_CALL, "symbol": "AAPL", "id": "aapl"}
    aapl_chain = chain().set_column(1, "underlying", pa.array(["AAPL"] * chain().num_rows))
    aapl_chain = aapl_chain.set_column(0, "contract_symbol", pa.array(
        [s.replace("SPY", "AAPL") for s in aapl_chain.column("contract_symbol").to_pylist()]))
    analysis = analyze_portfolio(book(LONG_CALL, aapl, cash=1000.0), {"SPY": chain(), "AAPL": aapl_chain}, AS_OF)
    spy, apl = analysis.positions
    assert analysis.totals.exposure.delta_dollars == pytest.approx(spy.exposure.delta_dollars + apl.exposure.delta_dollars)
    assert math.isnan(analysis.totals.exposure.delta_shares)
    assert [u.symbol for u in analysis.underlyings] == ["AAPL", "SPY"]
    assert analysis.totals.net_liq == pytest.approx(1000.0 + spy.market_value + apl.market_value)
    data = to_jsonable(analysis)
    assert data["as_of"] == "2025-06-03" and data["totals"]["exposure"]["delta_shares"] is None
