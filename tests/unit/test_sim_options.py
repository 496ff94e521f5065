"""The sim market's option chains: deterministic, sane quotes, a real surface, continuous open interest."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from oh.adapters.base import UnknownSymbol
from oh.adapters.sim import options as so
from oh.adapters.sim.market import spot_path as _path
from oh.adapters.sim.options import (
    CHAIN_SCHEMA,
    RATE,
    dividend_yield,
    expiries,
    option_chain,
)
from oh.domain import calendar, pricing
from oh.domain.osi import parse_osi

DAY = date(2025, 6, 3)  # a Tuesday session
SYMBOLS = ("AAPL", "SPY", "TSLA")


def _cols(table: pa.Table, *names: str) -> list[np.ndarray]:
    return [table.column(n).to_numpy(zero_copy_only=False) for n in names]


def _years(table: pa.Table) -> np.ndarray:
    exp, snap = _cols(table, "expiry", "snapshot_date")
    return (exp - snap).astype("timedelta64[D]").astype(np.float64) / 365.0


@pytest.fixture(scope="module")
def chains() -> dict[str, pa.Table]:
    return {s: option_chain(s, DAY) for s in SYMBOLS}


def test_schema_and_size(chains: dict[str, pa.Table]) -> None:
    """Chains carry CHAIN_SCHEMA, the sim close as spot, and a realistic number of contracts."""
    for symbol, table in chains.items():
        assert table.schema == CHAIN_SCHEMA
        assert 300 <= table.num_rows <= 5000
        spot = _cols(table, "spot")[0]
        assert (spot == _path(symbol, so.DEFAULT_SEED)[3][calendar.session_index(DAY)]).all()
        assert set(_cols(table, "right")[0]) == {"C", "P"}
        for name in CHAIN_SCHEMA.names:
            assert table.column(name).null_count == 0, name
        numeric = [n for n in CHAIN_SCHEMA.names if pa.types.is_floating(CHAIN_SCHEMA.field(n).type)]
        for name in numeric:
            assert np.isfinite(_cols(table, name)[0]).all(), name


def test_deterministic_across_calls_and_order() -> None:
    """Same chain on repeated calls, after clearing caches, and whether or not D-1 was generated first."""
    d_prev = calendar.all_sessions()[calendar.session_index(DAY) - 1].astype(date)
    first = option_chain("MSFT", DAY)
    so._symbol_params.cache_clear()
    _path.cache_clear()
    alone = option_chain("MSFT", DAY)  # D without D-1
    option_chain("MSFT", d_prev)
    option_chain("MSFT", DAY + timedelta(days=1))
    after = option_chain("MSFT", DAY)  # D after D-1 and D+1
    assert first.equals(alone) and first.equals(after)
    assert not option_chain("MSFT", DAY, market_seed=7).equals(first)


def test_expiries_weekly_and_monthly_out_to_two_years() -> None:
    """Expiries: weeklies for ~8 weeks, third-Friday monthlies out to ~2 years, all sessions after the day."""
    for day in (DAY, date(2025, 12, 22), date(2026, 3, 27)):
        exps = expiries(day)
        sessions = set(calendar.sessions(day, day + timedelta(days=800)).astype(date).tolist())
        assert all(e > day for e in exps) and all(e in sessions for e in exps)
        assert exps == sorted(set(exps))
        near = [e for e in exps if (e - day).days <= 56]
        assert len(near) >= 7  # one a week (a holiday moves one to Thursday, never drops it)
        assert 690 <= (exps[-1] - day).days <= 730
        far = [e for e in exps if (e - day).days > 90]
        assert all(15 <= e.day <= 21 for e in far)  # monthlies are third Fridays (or the day before)
        assert len({(e.year, e.month) for e in far}) == len(far)
    # Good Friday 2026-04-03 is a holiday: that weekly expires on Thursday 2026-04-02
    assert date(2026, 4, 2) in expiries(date(2026, 3, 27))
    table = option_chain("AAPL", DAY)
    assert sorted(set(_cols(table, "expiry")[0].astype(date).tolist())) == expiries(DAY)


def test_contract_symbols_round_trip(chains: dict[str, pa.Table]) -> None:
    """Every contract symbol parses with oh.domain.osi into this row's root, expiry, right and strike, and back."""
    for symbol, table in chains.items():
        syms, exp, right, strike = _cols(table, "contract_symbol", "expiry", "right", "strike")
        assert len(set(syms)) == len(syms)
        for text, e, r, k in zip(syms, exp.astype(date), right, strike, strict=True):
            parsed = parse_osi(text, "compact")
            assert (parsed.root, parsed.expiry, parsed.right) == (symbol, e, r)
            assert parsed.strike == Decimal(str(k)).normalize() or float(parsed.strike) == k
            assert parsed.compact == text


def test_strikes_around_spot(chains: dict[str, pa.Table]) -> None:
    """Strikes bracket spot (about +-30% near term, wider long-dated) on a regular positive grid."""
    for table in chains.values():
        strike, spot = _cols(table, "strike", "spot")
        t = _years(table)
        near = t < 0.1
        assert strike.min() > 0
        assert strike[near].min() <= spot[0] * 0.75 and strike[near].max() >= spot[0] * 1.25
        assert strike[near].min() >= spot[0] * 0.65 and strike[near].max() <= spot[0] * 1.35
        far = t > 1.5
        assert (strike[far].max() - strike[far].min()) > (strike[near].max() - strike[near].min())


def test_bid_mark_ask_order_and_spread_shape(chains: dict[str, pa.Table]) -> None:
    """0 <= bid <= mark <= ask, last inside the quote, and relative spreads widen away from the money."""
    for table in chains.values():
        bid, ask, last, mark, strike, spot = _cols(table, "bid", "ask", "last", "mark", "strike", "spot")
        assert (bid >= 0).all() and (ask > 0).all()
        assert (bid <= mark).all() and (mark <= ask).all()
        assert (bid <= last).all() and (last <= ask).all()
        np.testing.assert_array_equal(mark, pricing.mark_price(bid, ask, last))
        right = _cols(table, "right")[0]
        t = _years(table)
        otm = np.where(right == "C", strike > spot, strike < spot)
        dist = np.abs(np.log(strike / spot)) / np.sqrt(t)
        pct = (ask - bid) / ((ask + bid) / 2)
        for lo, hi in ((0.02, 0.1), (0.1, 0.5), (0.5, 1.0), (1.0, 2.0)):
            in_t = otm & (t > lo) & (t <= hi)
            near = in_t & (dist < 0.1)
            far = in_t & (dist > 0.5)
            if near.sum() >= 2 and far.sum() >= 2:
                assert np.median(pct[far]) > np.median(pct[near])


def test_put_call_parity_on_mids(chains: dict[str, pa.Table]) -> None:
    """C_mid - P_mid = S e^-qT - K e^-rT within the two half-spreads, for every strike and expiry."""
    for symbol, table in chains.items():
        q = dividend_yield(symbol)
        rows = table.sort_by([("expiry", "ascending"), ("strike", "ascending"), ("right", "ascending")])
        bid, ask, strike, spot, right = _cols(rows, "bid", "ask", "strike", "spot", "right")
        t = _years(rows)
        call, put = right == "C", right == "P"
        assert (call[::2]).all() and (put[1::2]).all()  # each strike has its call and put, paired
        mid = (bid + ask) / 2
        half = (ask - bid) / 2
        lhs = mid[::2] - mid[1::2]
        rhs = spot[::2] * np.exp(-q * t[::2]) - strike[::2] * np.exp(-RATE * t[::2])
        assert (np.abs(lhs - rhs) <= half[::2] + half[1::2] + 1e-9).all()


def test_implied_vol_from_mark_recovers_surface(chains: dict[str, pa.Table]) -> None:
    """pricing.implied_vol on the mark gives back the surface's IV, within what the quote's rounding allows."""
    for symbol, table in chains.items():
        q = dividend_yield(symbol)
        mark, spot, strike, right, iv, vega, bid = _cols(table, "mark", "spot", "strike", "right", "iv", "vega", "bid")
        t = _years(table)
        usable = (bid > 0) & (vega > 0.01)
        assert usable.mean() > 0.4
        got = pricing.implied_vol(mark, spot, strike, t, RATE, q, right == "C")[usable]
        # the mid is within a tick of theory, so the IV is within ~ tick / vega (vega per vol point)
        tolerance = 0.01 / (vega[usable] / 0.01) + 1e-6
        ok = np.isfinite(got) & (np.abs(got - iv[usable]) <= tolerance)
        assert ok.mean() > 0.97
        atm = usable & (np.abs(np.log(strike / spot)) < 0.05) & (t > 0.05)
        got_atm = pricing.implied_vol(mark, spot, strike, t, RATE, q, right == "C")[atm]
        np.testing.assert_allclose(got_atm, iv[atm], atol=0.01)


def test_greeks_match_pricing(chains: dict[str, pa.Table]) -> None:
    """Greek columns are pricing.bsm_greeks at the surface IV (same units as oh/domain/pricing.py)."""
    symbol = "AAPL"
    table = chains[symbol]
    spot, strike, right, iv = _cols(table, "spot", "strike", "right", "iv")
    g = pricing.bsm_greeks(spot, strike, _years(table), iv, RATE, dividend_yield(symbol), right == "C")
    for name in ("delta", "gamma", "vega", "theta", "rho"):
        np.testing.assert_allclose(_cols(table, name)[0], getattr(g, name), rtol=1e-12, atol=1e-15)


def test_skew_and_term_structure(chains: dict[str, pa.Table]) -> None:
    """OTM puts carry more IV than OTM calls equally far out, and ATM IV differs across expiries."""
    for symbol, table in chains.items():
        strike, spot, iv, exp = _cols(table, "strike", "spot", "iv", "expiry")
        t = _years(table)
        k = np.log(strike / (spot * np.exp((RATE - dividend_yield(symbol)) * t)))
        checked = 0
        for e in np.unique(exp):
            at = exp == e
            puts = at & (k < -0.05) & (k > -0.2)
            calls = at & (k > 0.05) & (k < 0.2)
            if puts.any() and calls.any():
                m = 0.1
                put_iv = np.interp(-m, k[at & (k < 0)], iv[at & (k < 0)])
                call_iv = np.interp(m, k[at & (k > 0)], iv[at & (k > 0)])
                assert put_iv > call_iv
                checked += 1
        assert checked >= 10
        atm = so.surface_iv(symbol, DAY, spot[0], spot[0] * np.exp(RATE * np.array([0.02, 0.5, 2.0])),
                            np.array([0.02, 0.5, 2.0]))
        assert np.ptp(atm) > 0.005
        # and the surface drifts slowly from day to day
        later = date(2025, 9, 2)
        atm_later = so.surface_iv(symbol, later, spot[0], spot[0], 0.5)
        assert atm_later != pytest.approx(so.surface_iv(symbol, DAY, spot[0], spot[0], 0.5), rel=1e-3)


def test_open_interest_builds_and_unwinds() -> None:
    """OI is never negative and moves between sessions both up and down for most contracts; volume >= |dOI|."""
    days = calendar.sessions(date(2025, 5, 1), date(2025, 5, 30)).astype(date)
    tables = [option_chain("AAPL", d) for d in days]
    common = set(_cols(tables[0], "contract_symbol")[0])
    for table in tables[1:]:
        common &= set(_cols(table, "contract_symbol")[0])
    names = np.array(sorted(common))
    oi, vol = [], []
    for table in tables:
        syms, o, v = _cols(table, "contract_symbol", "open_interest", "volume")
        order = np.argsort(syms)
        pos = order[np.searchsorted(syms[order], names)]
        oi.append(o[pos])
        vol.append(v[pos])
        assert (o >= 0).all() and (v >= 0).all()
    oi_m, vol_m = np.array(oi), np.array(vol)
    assert oi_m.shape[1] > 300
    d = np.diff(oi_m, axis=0)
    both = (d > 0).any(axis=0) & (d < 0).any(axis=0)
    assert both.mean() > 0.6
    assert (d != 0).mean() > 0.5
    assert (vol_m[1:] >= np.abs(d)).all()  # a contract opened or closed is a contract traded
    assert np.corrcoef(np.abs(d).ravel(), vol_m[1:].ravel())[0, 1] > 0.5
    # continuity: day-to-day changes are modest relative to the level for liquid contracts
    liquid = oi_m.min(axis=0) > 200
    assert np.median(np.abs(d[:, liquid]) / oi_m[:-1, liquid]) < 0.25


def test_quote_contracts_matches_chain() -> None:
    """quote_contracts on the chain's own contracts reproduces option_chain row for row."""
    table = option_chain("TSLA", DAY)
    exp, right, strike = _cols(table, "expiry", "right", "strike")
    again = so.quote_contracts("TSLA", DAY, exp, right == "C", strike)
    assert again.equals(table)
    with pytest.raises(ValueError):
        so.quote_contracts("TSLA", DAY, [np.datetime64(DAY, "D")], [True], [100.0])


def test_errors() -> None:
    """Unknown symbols raise UnknownSymbol, non-session days ValueError, as the sim candles do."""
    with pytest.raises(UnknownSymbol):
        option_chain("ZZTOP", DAY)
    with pytest.raises(ValueError):
        option_chain("AAPL", date(2025, 6, 7))  # a Saturday


def test_listing_depth_named_full_numbered_in_tiers() -> None:
    """Named symbols keep the standard listing; each numbered name draws one tier, the same every time,
    and the tiers come out in about their shares (deterministic: the seed is the symbol), so 5,000
    numbered names list about the whole market's 1.4M contracts, not 10M."""
    assert all(so.listing_depth(s) == so.FULL_DEPTH for s in ("AAPL", "SPY", "TSLA", "S00123", "ZZTOP"))
    names = [f"S{i:04d}" for i in range(2000)]
    depths = [so.listing_depth(s) for s in names]
    assert depths == [so.listing_depth(s) for s in names]
    assert depths != [so.listing_depth(s, market_seed=so.DEFAULT_SEED + 1) for s in names]  # drawn, not fixed
    for share, depth in so.SYNTHETIC_TIERS:
        assert abs(depths.count(depth) / len(names) - share) < 0.03, depth


def test_numbered_chains_are_a_thinner_standard_listing() -> None:
    """A numbered name's chain is its tier's part of the standard listing: expiries among the standard
    ones (no later than its horizon), strikes inside its width on multiples of its step, and every
    contract quoted exactly as the standard model quotes it."""
    seen: set[so.Depth] = set()
    for symbol in (f"S{i:04d}" for i in range(40)):
        depth = so.listing_depth(symbol)
        seen.add(depth)
        table = option_chain(symbol, DAY)
        exp, right, strike, spot = _cols(table, "expiry", "right", "strike", "spot")
        listed = {np.datetime64(e, "D") for e in expiries(DAY, depth.weekly_weeks, depth.monthly_days)}
        assert set(exp.astype("datetime64[D]")) == listed
        assert listed <= {np.datetime64(e, "D") for e in expiries(DAY)}
        assert (np.abs(strike / spot - 1) <= 0.70 * depth.width + 1e-9).all()
        again = so.quote_contracts(symbol, DAY, exp, right == "C", strike)
        assert again.equals(table)
        if depth != so.FULL_DEPTH:
            assert table.num_rows < option_chain("AAPL", DAY).num_rows
    assert len(seen) >= 3  # the names cover several tiers
