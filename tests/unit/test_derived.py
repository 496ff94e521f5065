"""Derived per-symbol metrics (oh.domain.derived): exact values on hand-made chains, point-in-time IV stats, thin chains."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from oh.adapters.sim.market import DEFAULT_SEED
from oh.adapters.sim.market import spot_path as _path
from oh.adapters.sim.options import CHAIN_SCHEMA, option_chain
from oh.domain import calendar, derived

D = date(2025, 6, 3)  # a Tuesday session
E1 = D + timedelta(days=3)  # front expiry (Friday)
E2 = D + timedelta(days=10)


def chain(rows: list[dict[str, Any]], spot: float = 100.0, day: date = D) -> pa.Table:
    """A CHAIN_SCHEMA table from short row dicts (expiry, right, strike, plus any field); defaults fill the rest."""
    full = []
    for i, r in enumerate(rows):
        row = {
            "contract_symbol": f"X{i}", "underlying": "X", "snapshot_date": day, "expiry": r.get("expiry", E1),
            "right": r["right"], "strike": float(r["strike"]), "spot": spot, "bid": 0.0, "ask": 0.0, "last": 0.0,
            "mark": r.get("mark", float("nan")), "volume": r.get("volume", 0), "open_interest": r.get("oi", 0),
            "iv": r.get("iv", float("nan")), "delta": r.get("delta", float("nan")), "gamma": r.get("gamma", 0.0),
            "vega": 0.0, "theta": 0.0, "rho": 0.0,
        }
        full.append(row)
    return pa.Table.from_pylist(full, schema=CHAIN_SCHEMA)


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Dict equality where NaN equals NaN."""
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


# ---------------------------------------------------------------- walls, gamma, GEX, ratios


def test_walls_sum_oi_over_expiries_and_respect_the_spot_side() -> None:
    """Call wall: the strike >= spot with the most call OI summed over expiries; put wall: strike <= spot, most put OI."""
    t = chain([
        {"right": "C", "strike": 95, "oi": 5000},  # below spot: never the call wall
        {"right": "C", "strike": 105, "oi": 200}, {"right": "C", "strike": 105, "oi": 200, "expiry": E2},
        {"right": "C", "strike": 110, "oi": 350},
        {"right": "P", "strike": 90, "oi": 500},
        {"right": "P", "strike": 95, "oi": 300}, {"right": "P", "strike": 95, "oi": 100, "expiry": E2},
        {"right": "P", "strike": 105, "oi": 1000},  # above spot: never the put wall
    ])
    m = derived.chain_metrics(t, D)
    assert m["call_wall"] == 105.0
    assert m["put_wall"] == 90.0


def test_gamma_peak_weights_gamma_by_oi_and_adds_calls_and_puts() -> None:
    """Gamma peak = argmax over strikes of sum(gamma x OI x 100 x S^2 x 0.01), calls and puts together."""
    t = chain([
        {"right": "C", "strike": 100, "gamma": 0.05, "oi": 100},  # 5
        {"right": "C", "strike": 110, "gamma": 0.01, "oi": 400},  # 4 (most OI, not most gamma)
        {"right": "P", "strike": 90, "gamma": 0.02, "oi": 200},  # 4 ...
        {"right": "C", "strike": 90, "gamma": 0.01, "oi": 200},  # ... + 2 = 6
    ])
    assert derived.chain_metrics(t, D)["gamma_peak_strike"] == 90.0


def test_net_gex_value_and_sign_convention() -> None:
    """Net GEX = (sum call gamma x OI - sum put gamma x OI) x 100 x S^2 x 0.01: dealers long calls, short puts."""
    rows = [
        {"right": "C", "strike": 100, "gamma": 0.04, "oi": 100},
        {"right": "P", "strike": 100, "gamma": 0.04, "oi": 300},
        {"right": "P", "strike": 95, "gamma": 0.02, "oi": 50, "expiry": E2},
    ]
    spot = 120.0
    m = derived.chain_metrics(chain(rows, spot=spot), D)
    expected = (0.04 * 100 - 0.04 * 300 - 0.02 * 50) * 100 * spot**2 * 0.01
    assert m["net_gex"] == pytest.approx(expected, rel=1e-12)
    assert m["net_gex"] < 0  # put-heavy: dealers short gamma
    call_heavy = derived.chain_metrics(chain([{"right": "C", "strike": 100, "gamma": 0.04, "oi": 10}]), D)
    assert call_heavy["net_gex"] == pytest.approx(0.04 * 10 * 100 * 100.0**2 * 0.01) and call_heavy["net_gex"] > 0


@pytest.mark.parametrize(
    "missing",
    [{"gamma": float("nan")}, {"oi": None}, {"gamma": float("nan"), "oi": None}],
    ids=["every-gamma", "every-oi", "both"],
)
def test_net_gex_is_unknown_when_its_inputs_are_missing(missing: dict[str, Any]) -> None:
    """Every gamma or every open interest missing: net_gex is NaN (NULL in derived_daily), like gamma_peak_strike
    on the same chain, never 0.0 (which would say "no dealer exposure")."""
    rows = [{"right": "C", "strike": 100, "gamma": 0.04, "oi": 100, **missing},
            {"right": "P", "strike": 95, "gamma": 0.02, "oi": 300, **missing}]
    m = derived.chain_metrics(chain(rows), D)
    assert math.isnan(m["net_gex"]) and math.isnan(m["gamma_peak_strike"])
    table = derived.derived_table([derived.derived_row("X", D, chain(rows), [], None)])
    assert math.isnan(table.column("net_gex")[0].as_py())


def test_net_gex_counts_the_contracts_that_have_both_inputs() -> None:
    """One contract without gamma and one without open interest leave the others' exposure; a real zero (no open
    interest at all, all known) stays 0.0."""
    rows = [{"right": "C", "strike": 100, "gamma": 0.04, "oi": 100},
            {"right": "P", "strike": 95, "gamma": float("nan"), "oi": 300},
            {"right": "P", "strike": 90, "gamma": 0.03, "oi": None}]
    assert derived.chain_metrics(chain(rows), D)["net_gex"] == pytest.approx(0.04 * 100 * 100 * 100.0**2 * 0.01)
    flat = derived.chain_metrics(chain([{"right": "C", "strike": 100, "gamma": 0.04, "oi": 0}]), D)
    assert flat["net_gex"] == 0.0


def test_put_call_ratios_over_all_live_expiries() -> None:
    """PCR(OI) and PCR(volume) sum every live expiry; a contract already expired before D is ignored."""
    t = chain([
        {"right": "C", "strike": 100, "oi": 200, "volume": 40},
        {"right": "C", "strike": 100, "oi": 200, "volume": 60, "expiry": E2},
        {"right": "P", "strike": 100, "oi": 300, "volume": 25},
        {"right": "P", "strike": 100, "oi": 99999, "volume": 99999, "expiry": D - timedelta(days=1)},
    ])
    m = derived.chain_metrics(t, D)
    assert m["pcr_oi"] == 300 / 400
    assert m["pcr_volume"] == 25 / 100


# ---------------------------------------------------------------- ATM, expected move, skew, term, 30d


def test_atm_needs_both_call_and_put_marks_and_front_needs_a_day_left() -> None:
    """ATM = strike nearest spot with both a call and a put mark; the 0-day expiry is skipped for the front."""
    t = chain([
        # an expiry on D itself: 0 days left, never the front
        {"right": "C", "strike": 100, "mark": 0.5, "iv": 0.9, "expiry": D},
        {"right": "P", "strike": 100, "mark": 0.5, "iv": 0.9, "expiry": D},
        # front: 100 is nearest to spot but its put has no mark
        {"right": "C", "strike": 100, "mark": 2.0, "iv": 0.50},
        {"right": "P", "strike": 100, "mark": float("nan"), "iv": 0.50},
        {"right": "C", "strike": 101, "mark": 1.5, "iv": 0.30},
        {"right": "P", "strike": 101, "mark": 1.9, "iv": 0.34},
        {"right": "C", "strike": 99, "mark": 2.6, "iv": 0.40},
        {"right": "P", "strike": 99, "mark": 1.1, "iv": 0.40},
    ], spot=100.4)
    m = derived.chain_metrics(t, D)
    assert m["front_expiry"] == E1
    assert m["atm_strike"] == 101.0
    assert m["atm_iv"] == pytest.approx(0.32, abs=1e-15)
    assert m["expected_move_pct"] == pytest.approx((1.5 + 1.9) / 100.4 * 100, rel=1e-14)


def test_skew_25d_picks_the_contracts_nearest_plus_minus_quarter_delta() -> None:
    """Skew = IV(put nearest -0.25 delta) - IV(call nearest +0.25 delta), in vol points, front expiry only."""
    t = chain([
        {"right": "C", "strike": 100, "delta": 0.50, "iv": 0.30},
        {"right": "C", "strike": 105, "delta": 0.27, "iv": 0.28},
        {"right": "C", "strike": 110, "delta": 0.20, "iv": 0.26},
        {"right": "P", "strike": 100, "delta": -0.50, "iv": 0.32},
        {"right": "P", "strike": 95, "delta": -0.24, "iv": 0.36},
        {"right": "P", "strike": 90, "delta": -0.10, "iv": 0.40},
        {"right": "P", "strike": 96, "delta": -0.25, "iv": 0.99, "expiry": E2},  # later expiry: ignored
    ])
    assert derived.chain_metrics(t, D)["skew_25d_pts"] == pytest.approx((0.36 - 0.28) * 100, abs=1e-12)


def test_term_slope_is_second_minus_first_atm_iv_in_points() -> None:
    """Term slope = ATM IV(second expiry) - ATM IV(front), in vol points."""
    t = chain([
        {"right": "C", "strike": 100, "mark": 2.0, "iv": 0.30},
        {"right": "P", "strike": 100, "mark": 2.0, "iv": 0.34},
        {"right": "C", "strike": 100, "mark": 3.0, "iv": 0.36, "expiry": E2},
        {"right": "P", "strike": 100, "mark": 3.0, "iv": 0.34, "expiry": E2},
    ])
    m = derived.chain_metrics(t, D)
    assert m["second_expiry"] == E2
    assert m["term_slope_pts"] == pytest.approx((0.35 - 0.32) * 100, abs=1e-12)


def test_constant_maturity_iv_is_linear_in_total_variance_and_flat_outside() -> None:
    """30-day IV: w = iv^2 T interpolated linearly between the bracketing expiries; flat beyond the ends."""
    # 10d at 40%, 40d at 30%: w*365 = 1.6 + (3.6 - 1.6) * 20/30 = 2.9333..., iv = sqrt(2.9333/30)
    expected = math.sqrt((1.6 + 2.0 * 20 / 30) / 30)
    assert derived.constant_maturity_iv([40, 10], [0.30, 0.40]) == pytest.approx(expected, rel=1e-13)
    assert derived.constant_maturity_iv([45, 60], [0.25, 0.20]) == 0.25  # all beyond 30 days: nearest
    assert derived.constant_maturity_iv([5, 12], [0.25, 0.20]) == 0.20  # all before: the last one
    assert derived.constant_maturity_iv([10, 30, 40], [0.4, 0.33, 0.3]) == 0.33  # exact hit
    assert math.isnan(derived.constant_maturity_iv([], []))
    # through a chain: expiries 10 and 40 days out
    t = chain([
        {"right": "C", "strike": 100, "mark": 1.0, "iv": 0.40, "expiry": D + timedelta(days=10)},
        {"right": "P", "strike": 100, "mark": 1.0, "iv": 0.40, "expiry": D + timedelta(days=10)},
        {"right": "C", "strike": 100, "mark": 2.0, "iv": 0.30, "expiry": D + timedelta(days=40)},
        {"right": "P", "strike": 100, "mark": 2.0, "iv": 0.30, "expiry": D + timedelta(days=40)},
    ])
    assert derived.chain_metrics(t, D)["atm_iv_30d"] == pytest.approx(expected, rel=1e-13)


def test_max_pain_minimizes_intrinsic_paid_on_the_front_expiry() -> None:
    """Max pain = listed strike minimizing sum OI x intrinsic at settlement, over the front expiry only."""
    # pain(90) = 20*100 + 10*50 = 2500, pain(100) = 10*100 + 10*100 = 2000, pain(110) = 20*100 + 10*100 = 3000
    rows = [
        {"right": "C", "strike": 90, "oi": 100}, {"right": "C", "strike": 100, "oi": 100},
        {"right": "P", "strike": 110, "oi": 100}, {"right": "P", "strike": 100, "oi": 50},
    ]
    assert derived.chain_metrics(chain(rows), D)["max_pain"] == 100.0
    later = [*rows, {"right": "P", "strike": 110, "oi": 10**6, "expiry": E2}]  # would move it to 110 if counted
    assert derived.chain_metrics(chain(later), D)["max_pain"] == 100.0
    assert math.isnan(derived.max_pain(np.array([90.0]), np.array([True]), np.array([0.0])))


# ---------------------------------------------------------------- realized vol


def test_realized_vol_matches_a_hand_computation() -> None:
    """RV = sample std (n-1) of the last `window` daily log returns x sqrt(252)."""
    closes = [100.0, 101.0, 99.0, 100.5, 102.0, 101.0]
    r = [math.log(closes[i + 1] / closes[i]) for i in (2, 3, 4)]  # the last 3 returns
    mean = sum(r) / 3
    hand = math.sqrt(sum((x - mean) ** 2 for x in r) / 2) * math.sqrt(252)
    assert derived.realized_vol(np.array(closes), 3) == pytest.approx(hand, rel=1e-13)
    assert math.isnan(derived.realized_vol(np.array(closes), 6))  # needs window + 1 closes
    assert math.isnan(derived.realized_vol(np.array([100.0, 0.0, 101.0, 102.0]), 3))  # a bad close


# ---------------------------------------------------------------- IV percentile / rank


def _history(until: date, count: int, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    days = calendar.last_sessions(until, count)
    vals = values if values is not None else 0.2 + 0.1 * np.sin(np.arange(days.size) / 7.0)
    return days, vals


def test_iv_percentile_and_rank_exact_values() -> None:
    """Percentile = 100 x share of prior values <= current; rank = 100 x (cur - min)/(max - min)."""
    prior = calendar.last_sessions(D - timedelta(days=1), 20)
    values = np.arange(10, 30) / 100.0  # 0.10 .. 0.29
    pct, rank = derived.iv_history_stats(prior, values, D, 0.20)
    assert pct == 100.0 * 11 / 20
    assert rank == pytest.approx(100.0 * 0.10 / 0.19, rel=1e-13)
    assert derived.iv_history_stats(prior, values, D, 0.50)[1] == 100.0  # clipped
    few = derived.iv_history_stats(prior[1:], values[1:], D, 0.20)  # 19 < IV_HISTORY_MIN
    assert math.isnan(few[0]) and math.isnan(few[1])


def test_iv_stats_are_point_in_time() -> None:
    """An old day's percentile/rank are identical whether or not later days (or D itself) are in the history."""
    old = date(2024, 3, 12)
    dates, vals = _history(date(2025, 6, 30), 600)
    before = np.array([d < np.datetime64(old) for d in dates])
    current = 0.23
    full = derived.iv_history_stats(dates, vals, old, current)
    cut = derived.iv_history_stats(dates[before], vals[before], old, current)
    assert all(np.isfinite(full)) and full == cut
    # change every value on or after `old` wildly: nothing moves
    changed = np.where(before, vals, 5.0)
    assert derived.iv_history_stats(dates, changed, old, current) == cut
    # shuffled input order, same answer
    perm = np.random.default_rng(0).permutation(dates.size)
    assert derived.iv_history_stats(dates[perm], vals[perm], old, current) == cut


def test_iv_history_window_is_the_252_sessions_before_d() -> None:
    """A value 252 sessions before D counts; one 253 sessions before does not; duplicate dates: last wins."""
    prior = calendar.last_sessions(D - timedelta(days=1), 253)  # oldest first
    vals = np.full(prior.size, 0.2)
    vals[1] = 0.9  # 252 sessions before D: in the window -> it is the max
    pct, rank = derived.iv_history_stats(prior, vals, D, 0.3)
    assert rank == pytest.approx(100 * 0.1 / 0.7)
    vals2 = vals.copy()
    vals2[0], vals2[1] = 5.0, 0.2  # only the 253rd-back value is extreme: ignored, range collapses
    assert math.isnan(derived.iv_history_stats(prior, vals2, D, 0.3)[1])
    dup_dates = np.concatenate([prior, prior[-1:]])
    dup_vals = np.concatenate([vals2, [0.1]])  # a recompute of the last day replaces its value
    pct, rank = derived.iv_history_stats(dup_dates, dup_vals, D, 0.15)
    assert rank == pytest.approx(50.0) and pct == pytest.approx(100 * 1 / 252)


# ---------------------------------------------------------------- thin chains and whole rows


def _all_nan_chain_metrics(m: dict[str, Any]) -> bool:
    return all((v is None) or (isinstance(v, float) and math.isnan(v)) for k, v in m.items() if k != "spot")


@pytest.mark.parametrize(
    "table",
    [
        None,
        CHAIN_SCHEMA.empty_table(),
        chain([{"right": "C", "strike": 100}]),  # one contract, no OI, no mark
        chain([{"right": "P", "strike": 100, "oi": 0, "mark": float("nan"), "iv": float("nan"), "expiry": D}]),
    ],
)
def test_thin_or_empty_chain_gives_nan_never_an_exception(table: pa.Table | None) -> None:
    """Thin or empty chains: every metric that cannot be computed is NaN (or None), and nothing raises."""
    row = derived.derived_row("X", D, table, np.array([]), None)
    assert row["formula_version"] == derived.FORMULA_VERSION
    for key in ("pcr_oi", "call_wall", "put_wall", "gamma_peak_strike", "atm_iv", "expected_move_pct",
                "skew_25d_pts", "term_slope_pts", "atm_iv_30d", "max_pain", "rv_20", "iv_rv_20",
                "iv_percentile", "iv_rank"):
        assert math.isnan(row[key]), key
    assert derived.derived_table([row]).num_rows == 1


def test_missing_spot_falls_back_to_the_last_close() -> None:
    """A chain without spot uses the close of D (the last of closes_until_as_of)."""
    t = chain([{"right": "C", "strike": 105, "oi": 10}], spot=float("nan"))
    row = derived.derived_row("X", D, t, np.array([99.0, 100.0]), None)
    assert row["spot"] == 100.0 and row["call_wall"] == 105.0


def _sim_row(symbol: str, day: date, history: Any = None) -> dict[str, Any]:
    closes = _path(symbol, DEFAULT_SEED)[3][: calendar.session_index(day) + 1]
    return derived.derived_row(symbol, day, option_chain(symbol, day), closes, history)


def test_sim_rows_are_deterministic_complete_and_sane() -> None:
    """Two computations of a sim symbol-day are identical; every metric is finite and internally consistent."""
    hist = _history(D - timedelta(days=1), 300)
    a, b = _sim_row("AAPL", D, hist), _sim_row("AAPL", D, hist)
    assert same(a, b)
    for key, value in a.items():
        if isinstance(value, float):
            assert math.isfinite(value), key
    assert a["put_wall"] <= a["spot"] <= a["call_wall"]
    assert a["front_expiry"] > D and a["second_expiry"] > a["front_expiry"]
    assert 0 < a["atm_iv"] < 2 and 0 < a["expected_move_pct"] < 50
    assert a["skew_25d_pts"] > 0  # the sim surface makes puts richer
    assert a["iv_history_count"] == 252
    table = derived.derived_table([a, b])
    assert table.schema == derived.DERIVED_SCHEMA and table.num_rows == 2
