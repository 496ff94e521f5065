"""BSM pricing, Greeks, implied volatility and quote helpers: textbook values, identities, round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oh.domain.pricing import (
    VOL_MAX,
    VOL_MIN,
    bsm_greeks,
    bsm_price,
    implied_vol,
    implied_vol_vs,
    mark_price,
    spread_pct,
)

CALL_PUT = np.array([True, False])


def _grid() -> tuple[np.ndarray, ...]:
    """A whole-chain grid: moneyness K/S 0.5..2.0, one day to two years, vols 5%..200%, r and q on/off."""
    strikes = 100.0 * np.linspace(0.5, 2.0, 31)
    times = np.array([1 / 365, 2 / 365, 7 / 365, 30 / 365, 0.25, 1.0, 2.0])
    vols = np.array([0.05, 0.1, 0.2, 0.4, 0.8, 1.2, 2.0])
    return np.meshgrid(strikes, times, vols, [0.0, 0.05], [0.0, 0.03], CALL_PUT, indexing="ij")


def test_hull_textbook_call_and_put() -> None:
    """Hull's worked example (S=42, K=40, r=10%, sigma=20%, T=0.5) prices the call at 4.76 and the put at 0.81."""
    call, put = bsm_price(42.0, 40.0, 0.5, 0.20, 0.10, 0.0, CALL_PUT)
    assert call == pytest.approx(4.76, abs=0.005)
    assert put == pytest.approx(0.81, abs=0.005)


def test_hull_index_option_with_dividend_yield() -> None:
    """Hull's index example (S=930, K=900, r=8%, q=3%, sigma=20%, T=2 months) gives 51.83: q enters correctly."""
    assert bsm_price(930.0, 900.0, 2 / 12, 0.20, 0.08, 0.03, True) == pytest.approx(51.83, abs=0.005)


def test_hull_greeks_in_trader_units() -> None:
    """Hull's Greeks example (S=49, K=50, r=5%, sigma=20%, T=20 weeks) in our units pins every unit convention.

    Hull quotes delta 0.522, gamma 0.066, vega 12.1 per 1.00 of vol, theta -4.31 per year and rho 8.91 per
    1.00 of rate; ours are vega per 0.01 vol, theta per calendar day and rho per 0.01 rate.
    """
    g = bsm_greeks(49.0, 50.0, 20 / 52, 0.20, 0.05, 0.0, True)
    assert g.delta == pytest.approx(0.522, abs=5e-4)
    assert g.gamma == pytest.approx(0.066, abs=5e-4)
    assert g.vega == pytest.approx(0.121, abs=5e-4)
    assert g.theta == pytest.approx(-4.31 / 365, abs=1e-4)
    assert g.rho == pytest.approx(0.0891, abs=5e-4)


def test_put_call_parity_over_a_grid_with_dividends() -> None:
    """C - P = S e^-qT - K e^-rT holds to rounding across strikes, expiries, vols, rates and yields."""
    k, t, v, r, q, _ = _grid()
    s = 100.0
    call = bsm_price(s, k, t, v, r, q, True)
    put = bsm_price(s, k, t, v, r, q, False)
    forward_gap = s * np.exp(-q * t) - k * np.exp(-r * t)
    np.testing.assert_allclose(call - put, forward_gap, atol=1e-10)


def test_prices_respect_no_arbitrage_bounds() -> None:
    """Every price lies between the discounted intrinsic value and the upper bound (S e^-qT or K e^-rT)."""
    k, t, v, r, q, c = _grid()
    s = 100.0
    p = bsm_price(s, k, t, v, r, q, c)
    sd, kd = s * np.exp(-q * t), k * np.exp(-r * t)
    lower = np.maximum(np.where(c, sd - kd, kd - sd), 0.0)
    upper = np.where(c, sd, kd)
    assert np.all(p >= lower - 1e-10) and np.all(p <= upper + 1e-10)


def test_price_broadcasts_one_spot_over_a_chain() -> None:
    """A scalar spot/time/vol broadcast against arrays of strikes and rights returns one price per contract."""
    strikes = np.array([[90.0], [100.0], [110.0]])
    p = bsm_price(100.0, strikes, 0.25, 0.3, 0.04, 0.01, CALL_PUT)
    assert p.shape == (3, 2)
    assert p[0, 0] > p[1, 0] > p[2, 0] and p[0, 1] < p[1, 1] < p[2, 1]


@pytest.mark.parametrize(
    ("spot", "strike", "t", "vol"),
    [(100.0, 100.0, 0.0, 0.2), (100.0, 100.0, -0.1, 0.2), (100.0, 100.0, 0.5, 0.0), (0.0, 100.0, 0.5, 0.2),
     (100.0, -5.0, 0.5, 0.2), (np.nan, 100.0, 0.5, 0.2), (100.0, 100.0, np.inf, 0.2)],
)
def test_unpriceable_inputs_give_nan_price_and_greeks(spot: float, strike: float, t: float, vol: float) -> None:
    """Inputs the model cannot price come back NaN in every output instead of raising or inventing a number."""
    assert np.isnan(bsm_price(spot, strike, t, vol, 0.05, 0.0, True))
    g = bsm_greeks(spot, strike, t, vol, 0.05, 0.0, True)
    assert all(np.isnan(x) for x in (g.delta, g.gamma, g.vega, g.theta, g.rho))


def test_greeks_match_finite_differences_of_the_price() -> None:
    """Each Greek equals the matching central difference of bsm_price, in the documented units."""
    k = np.array([60.0, 90.0, 100.0, 110.0, 150.0])[:, None]
    s, t, v, r, q, c = 100.0, 0.4, 0.3, 0.05, 0.02, CALL_PUT
    g = bsm_greeks(s, k, t, v, r, q, c)

    def price(**kw: float) -> np.ndarray:
        args = {"spot": s, "strike": k, "t": t, "vol": v, "r": r, "q": q, "is_call": c} | kw
        return bsm_price(**args)

    hs, hv, ht, hr = 1e-3, 1e-5, 1e-6, 1e-6
    delta = (price(spot=s + hs) - price(spot=s - hs)) / (2 * hs)
    gamma = (price(spot=s + hs) - 2 * price() + price(spot=s - hs)) / hs**2
    vega = (price(vol=v + hv) - price(vol=v - hv)) / (2 * hv) * 0.01
    theta = -(price(t=t + ht) - price(t=t - ht)) / (2 * ht) / 365
    rho = (price(r=r + hr) - price(r=r - hr)) / (2 * hr) * 0.01
    np.testing.assert_allclose(g.delta, delta, atol=1e-8)
    np.testing.assert_allclose(g.gamma, gamma, atol=1e-5)
    np.testing.assert_allclose(g.vega, vega, atol=1e-8)
    np.testing.assert_allclose(g.theta, theta, atol=1e-8)
    np.testing.assert_allclose(g.rho, rho, atol=1e-8)


def test_implied_vol_round_trips_over_a_wide_grid() -> None:
    """price -> IV -> vol over deep ITM/OTM, 5%..200% vols and one-day expiries.

    IV recovers the vol wherever a 1-point vol move changes the price by more than 1e-9 of spot;
    it is NaN only where the time value is below 1e-12 of the scale (rounding noise, no vol
    information); and wherever it answers, the answer reprices the input.
    """
    k, t, v, r, q, c = _grid()
    s = 100.0
    p = bsm_price(s, k, t, v, r, q, c)
    iv = implied_vol(p, s, k, t, r, q, c)
    sd, kd = s * np.exp(-q * t), k * np.exp(-r * t)
    time_value = p - np.maximum(np.where(c, sd - kd, kd - sd), 0.0)
    scale = np.maximum(sd, kd)
    informative = bsm_greeks(s, k, t, v, r, q, c).vega > 1e-9 * s

    assert informative.sum() > 0.6 * informative.size  # the grid really exercises the solver
    assert not np.any(np.isnan(iv) & informative)
    np.testing.assert_allclose(iv[informative], v[informative], rtol=1e-6)
    assert np.all(time_value[np.isnan(iv)] <= 1e-12 * scale[np.isnan(iv)])
    answered = ~np.isnan(iv)
    np.testing.assert_allclose(bsm_price(s, k, t, iv, r, q, c)[answered], p[answered], rtol=0, atol=1e-9)
    one_day_atm = (t == 1 / 365) & (np.abs(k - 100.0) < 3.0)
    np.testing.assert_allclose(iv[one_day_atm], v[one_day_atm], rtol=1e-9)


@pytest.mark.parametrize(
    ("price", "spot", "strike", "t", "is_call", "why"),
    [
        (4.0, 100.0, 95.0, 0.5, True, "below intrinsic"),
        (5.0, 100.0, 95.0, 0.5, True, "exactly intrinsic: no time value"),
        (-1.0, 100.0, 120.0, 0.5, True, "negative price"),
        (0.0, 100.0, 120.0, 0.5, False, "zero price below put intrinsic"),
        (0.0, 100.0, 120.0, 0.5, True, "zero price for an OTM call"),
        (100.0, 100.0, 95.0, 0.5, True, "call at its upper bound S"),
        (150.0, 100.0, 95.0, 0.5, False, "put above its upper bound K"),
        (3.0, 100.0, 100.0, 0.0, True, "expired"),
        (3.0, 100.0, 100.0, -0.2, True, "negative time"),
        (np.nan, 100.0, 100.0, 0.5, True, "NaN price"),
        (3.0, np.nan, 100.0, 0.5, True, "NaN spot"),
        (3.0, 100.0, 100.0, np.nan, True, "NaN time"),
        (3.0, 0.0, 100.0, 0.5, True, "zero spot"),
        (99.9, 100.0, 1.0, 0.5, True, "deep ITM with no time value left"),
    ],
)
def test_implied_vol_is_nan_when_no_vol_fits(
    price: float, spot: float, strike: float, t: float, is_call: bool, why: str
) -> None:
    """Prices no volatility can produce give NaN, never an exception and never a number."""
    assert np.isnan(implied_vol(price, spot, strike, t, 0.0, 0.0, is_call)), why


def test_implied_vol_nan_outside_the_searched_range() -> None:
    """A price that needs a vol above VOL_MAX or below VOL_MIN is NaN rather than clipped to the edge."""
    s, k, t = 100.0, 100.0, 1.0
    too_high = bsm_price(s, k, t, VOL_MAX * 1.5, 0.0, 0.0, True)
    too_low = bsm_price(s, k, t, VOL_MIN / 10, 0.0, 0.0, True)
    assert np.isnan(implied_vol(too_high, s, k, t, 0.0, 0.0, True))
    assert np.isnan(implied_vol(too_low, s, k, t, 0.0, 0.0, True))
    edge = implied_vol(bsm_price(s, k, t, VOL_MAX * 0.999, 0.0, 0.0, True), s, k, t, 0.0, 0.0, True)
    assert edge == pytest.approx(VOL_MAX * 0.999, rel=1e-9)


def test_implied_vol_keeps_good_rows_next_to_bad_ones() -> None:
    """One junk quote in a chain yields NaN in its own row only."""
    prices = np.array([4.76, np.nan, 0.81, -3.0])
    iv = implied_vol(prices, 42.0, 40.0, 0.5, 0.10, 0.0, np.array([True, True, False, False]))
    assert np.isnan(iv[1]) and np.isnan(iv[3])
    assert iv[0] == pytest.approx(0.20, abs=2e-3) and iv[2] == pytest.approx(0.20, abs=2e-3)


@settings(max_examples=300, deadline=None)
@given(
    spot=st.floats(1.0, 5000.0),
    moneyness=st.floats(0.5, 2.0),
    days=st.integers(1, 1000),
    vol=st.floats(0.05, 2.0),
    r=st.floats(0.0, 0.1),
    q=st.floats(0.0, 0.08),
    is_call=st.booleans(),
)
def test_implied_vol_recovers_vol_property(
    spot: float, moneyness: float, days: int, vol: float, r: float, q: float, is_call: bool
) -> None:
    """For random contracts, IV recovers the vol when vega is material, else it is NaN or reprices the price."""
    strike, t = spot * moneyness, days / 365
    price = bsm_price(spot, strike, t, vol, r, q, is_call)
    iv = implied_vol(price, spot, strike, t, r, q, is_call)
    if bsm_greeks(spot, strike, t, vol, r, q, is_call).vega > 1e-9 * spot:
        assert iv == pytest.approx(vol, rel=1e-6)
    elif not np.isnan(iv):
        assert bsm_price(spot, strike, t, iv, r, q, is_call) == pytest.approx(price, rel=0, abs=1e-9 * spot)


@settings(max_examples=200, deadline=None)
@given(
    spot=st.floats(1.0, 5000.0),
    moneyness=st.floats(0.3, 3.0),
    t=st.floats(1 / 365, 5.0),
    vol=st.floats(0.01, 3.0),
    r=st.floats(-0.01, 0.1),
    q=st.floats(0.0, 0.1),
)
def test_parity_and_delta_identities_property(
    spot: float, moneyness: float, t: float, vol: float, r: float, q: float
) -> None:
    """Parity holds, call delta - put delta = e^-qT, and gamma/vega agree between call and put."""
    strike = spot * moneyness
    call, put = bsm_price(spot, strike, t, vol, r, q, CALL_PUT)
    assert call - put == pytest.approx(spot * np.exp(-q * t) - strike * np.exp(-r * t), abs=1e-9 * spot)
    g = bsm_greeks(spot, strike, t, vol, r, q, CALL_PUT)
    assert g.delta[0] - g.delta[1] == pytest.approx(np.exp(-q * t), abs=1e-12)
    assert g.gamma[0] == pytest.approx(g.gamma[1]) and g.vega[0] == pytest.approx(g.vega[1])


@pytest.mark.parametrize(
    ("bid", "ask", "last", "expected", "rule"),
    [
        (1.00, 1.20, 5.0, 1.10, "both sides: mid, last ignored"),
        (0.0, 1.20, 1.05, 1.05, "no bid: last"),
        (1.00, 0.0, 1.05, 1.05, "no ask: last"),
        (0.0, 1.20, 0.0, 1.20, "no bid, no last: ask"),
        (np.nan, 1.20, np.nan, 1.20, "NaN counts as absent: ask"),
        (1.00, 0.0, 0.0, 1.00, "only a bid: bid"),
        (1.00, -1.0, -2.0, 1.00, "negative fields count as absent: bid"),
        (0.0, 0.0, 0.0, np.nan, "nothing: NaN"),
        (np.nan, np.nan, np.nan, np.nan, "all NaN: NaN"),
        (1.30, 1.20, 9.0, 1.25, "crossed quote: still mid, exactly as specified"),
    ],
)
def test_mark_price_rules(bid: float, ask: float, last: float, expected: float, rule: str) -> None:
    """mark = mid if bid>0 and ask>0, else last>0, else ask>0, else bid>0, else NaN."""
    got = mark_price(bid, ask, last)
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected), rule


def test_mark_price_vectorized_matches_row_rules() -> None:
    """On arrays, each row follows the same rule as when priced alone."""
    bid = np.array([1.0, 0.0, 0.0, 2.0, 0.0])
    ask = np.array([1.2, 1.2, 1.2, 0.0, 0.0])
    last = np.array([9.0, 1.1, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(mark_price(bid, ask, last), [1.1, 1.1, 1.2, 2.0, np.nan])


@pytest.mark.parametrize(
    ("bid", "ask", "expected"),
    [(1.0, 1.2, 0.2 / 1.1), (2.0, 2.0, 0.0), (1.2, 1.0, -0.2 / 1.1), (0.0, 1.2, np.nan), (1.0, 0.0, np.nan),
     (np.nan, 1.2, np.nan), (-1.0, 1.2, np.nan)],
)
def test_spread_pct_rules(bid: float, ask: float, expected: float) -> None:
    """spread_pct = (ask - bid) / mid when both sides are positive (negative when crossed), else NaN."""
    got = spread_pct(bid, ask)
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)


@given(bid=st.floats(0.01, 1000.0), width=st.floats(0.0, 100.0), last=st.floats(-10.0, 1000.0))
def test_mark_lies_inside_a_two_sided_quote(bid: float, width: float, last: float) -> None:
    """With both sides quoted the mark is between bid and ask whatever the last trade was."""
    ask = bid + width
    assert bid <= mark_price(bid, ask, last) <= ask
    assert spread_pct(bid, ask) >= 0


def test_implied_vol_vs_is_the_sign_of_implied_vol_minus_the_vol_on_a_chain_grid() -> None:
    """implied_vol_vs(price, vol) says what comparing implied_vol(price) with vol says, without solving: on a whole
    grid of contracts (quotes below intrinsic, beyond any vol and in between) against vols below, inside, at the ends
    of and above the searched range; NaN exactly where implied_vol is NaN."""
    k, t, v, r, q, c = (a.ravel() for a in _grid())
    rng = np.random.default_rng(3)
    price = bsm_price(100.0, k, t, v, r, q, c) * rng.choice([0.0, 0.5, 1.0, 1.02, 3.0], k.size) - rng.choice([0, 1e-3], k.size)
    solved = implied_vol(price, 100.0, k, t, r, q, c)
    for vol in (np.full(k.size, VOL_MIN / 2), np.full(k.size, VOL_MIN), rng.uniform(0.01, 3.0, k.size),
                np.full(k.size, VOL_MAX), np.full(k.size, VOL_MAX * 2), np.full(k.size, -0.5)):
        got = implied_vol_vs(price, 100.0, k, t, r, q, c, vol)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(solved))
        clear = np.isfinite(solved) & (np.abs(solved - vol) > 1e-9 * np.maximum(vol, 1e-3))  # away from the tolerance
        assert clear.sum() > 100
        np.testing.assert_array_equal(got[clear], np.sign(solved - vol)[clear])


def test_implied_vol_vs_counts_an_equal_vol_as_neither_above_nor_below() -> None:
    """A price made at a vol compares with that same vol as 0 or within one rounding step of it, never as far off."""
    price = bsm_price(42.0, 40.0, 0.5, 0.2, 0.1, 0.0, CALL_PUT)
    near = implied_vol_vs(price, 42.0, 40.0, 0.5, 0.1, 0.0, CALL_PUT, np.array([0.2, 0.2]))
    assert set(near.tolist()) <= {-1.0, 0.0, 1.0}
    assert (implied_vol_vs(price, 42.0, 40.0, 0.5, 0.1, 0.0, CALL_PUT, np.array([0.2 * (1 + 1e-9)] * 2)) == -1).all()
    assert (implied_vol_vs(price, 42.0, 40.0, 0.5, 0.1, 0.0, CALL_PUT, np.array([0.2 * (1 - 1e-9)] * 2)) == 1).all()
