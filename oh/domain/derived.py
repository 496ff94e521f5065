"""Per-symbol, per-session derived metrics from one option chain and the daily closes (pure).

Arrow/numpy in, a plain dict (one row, upserted on (symbol, session_date)) out: no files, no
sockets (invariant 8). Every formula, unit and tie-break is in docs/derived.md; FORMULA_VERSION
changes whenever one of them does, so a stored row says which definitions produced it.

A thin or empty chain gives NaN for what cannot be computed; nothing here raises on bad data.
Everything is vectorized over contracts (the only Python loops are over a handful of metrics).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from contracts import rows
from oh.domain import calendar
from oh.domain.osi import CONTRACT_MULTIPLIER

FORMULA_VERSION = 2  # 2: net_gex is NaN (not 0) when no contract has both a gamma and an open interest

MOVE_1PCT = 0.01  # gamma exposure is per 1% move of spot
TRADING_DAYS = 252.0  # annualizes realized vol
DAYS_PER_YEAR = 365.0  # time to expiry in calendar days / 365, as in oh.domain.pricing
CONSTANT_MATURITY_DAYS = 30  # the constant-maturity ATM IV's horizon (calendar days)
MIN_DAYS_LEFT = 1  # the "front" expiry is the nearest one at least this many calendar days away
SKEW_DELTA = 0.25  # 25-delta skew
IV_HISTORY_SESSIONS = 252  # IV percentile / rank look back this many sessions (all before D)
IV_HISTORY_MIN = 20  # ... and need at least this many prior values, else NaN
VOL_POINTS = 100.0  # 0.01 of annual vol = 1 vol point

FloatArray = npt.NDArray[np.float64]
NAN = float("nan")

CHAIN_METRICS = (
    "spot", "pcr_oi", "pcr_volume", "call_wall", "put_wall", "gamma_peak_strike",
    "front_expiry", "second_expiry", "atm_strike", "atm_iv", "expected_move_pct", "skew_25d_pts",
    "term_slope_pts", "atm_iv_30d", "max_pain", "net_gex",
)

# The columns of a chain that chain_metrics reads (any other is ignored): a job needs to read only these.
CHAIN_INPUTS = ("expiry", "right", "strike", "spot", "mark", "volume", "open_interest", "iv", "delta", "gamma")

DERIVED_SCHEMA = rows.DERIVED  # the wire schema of a derived row (contracts/rows.py)


# ---------------------------------------------------------------- reading a chain


def _num(chain: pa.Table, name: str) -> FloatArray:
    """A column as float64 with NaN for nulls (and an all-NaN column when it is missing)."""
    if name not in chain.column_names:
        return np.full(chain.num_rows, np.nan)
    col = chain.column(name)
    if pa.types.is_date(col.type):
        col = col.cast(pa.date32()).cast(pa.int32())
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _rights(chain: pa.Table) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    if "right" not in chain.column_names:
        none = np.zeros(chain.num_rows, dtype=bool)
        return none, none
    right = pc.utf8_upper(chain.column("right").cast(pa.string()))
    is_call = np.asarray(pc.fill_null(pc.equal(right, "C"), False).to_numpy(zero_copy_only=False), dtype=bool)
    is_put = np.asarray(pc.fill_null(pc.equal(right, "P"), False).to_numpy(zero_copy_only=False), dtype=bool)
    return is_call, is_put


def _day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _as_date(day_number: float) -> date | None:
    return None if not math.isfinite(day_number) else date.fromordinal(date(1970, 1, 1).toordinal() + int(day_number))


def _safe_ratio(num: float, den: float) -> float:
    return num / den if math.isfinite(num) and math.isfinite(den) and den > 0 else NAN


def _by_strike_argmax(strike: FloatArray, weight: FloatArray, prefer_high: bool) -> float:
    """The strike with the largest total weight (summed over rows); ties to the nearer-spot side.

    NaN when no row has a positive total. `prefer_high` breaks ties toward the higher strike.
    """
    if strike.size == 0:
        return NAN
    levels, inverse = np.unique(strike, return_inverse=True)
    totals = np.bincount(inverse.reshape(-1), weights=weight, minlength=levels.size)
    if not (totals.max(initial=0.0) > 0):
        return NAN
    if prefer_high:
        return float(levels[levels.size - 1 - int(np.argmax(totals[::-1]))])
    return float(levels[int(np.argmax(totals))])


# ---------------------------------------------------------------- per-expiry ATM


def _atm_by_expiry(
    exp: FloatArray, strike: FloatArray, is_call: npt.NDArray[np.bool_], is_put: npt.NDArray[np.bool_],
    mark: FloatArray, iv: FloatArray, spot: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(expiry, ATM strike, ATM IV, straddle mark) for every expiry that has an ATM strike.

    The ATM strike of an expiry is the strike closest to spot that has both a call and a put with
    a positive finite mark (ties to the lower strike). ATM IV is the mean of the finite IVs of
    that call and put. Fully vectorized: one sort, no loop per expiry.
    """
    empty = np.empty(0)
    ok = np.isfinite(exp) & np.isfinite(strike) & np.isfinite(mark) & (mark > 0)
    c, p = ok & is_call, ok & is_put
    if not c.any() or not p.any() or not math.isfinite(spot):
        return empty, empty, empty, empty
    # one (expiry, strike) key per row; the first call / put row of a key represents it
    keys_c = np.rec.fromarrays([exp[c], strike[c]], names="e,k")
    keys_p = np.rec.fromarrays([exp[p], strike[p]], names="e,k")
    uc, ic = np.unique(keys_c, return_index=True)
    up, ip = np.unique(keys_p, return_index=True)
    _, jc, jp = np.intersect1d(uc, up, assume_unique=True, return_indices=True)
    if jc.size == 0:
        return empty, empty, empty, empty
    rc = np.flatnonzero(c)[ic[jc]]
    rp = np.flatnonzero(p)[ip[jp]]
    e, k = exp[rc], strike[rc]
    order = np.lexsort((k, np.abs(k - spot), e))  # per expiry: nearest to spot, then lower strike
    first = order[np.unique(e[order], return_index=True)[1]]
    rc, rp = rc[first], rp[first]
    ivs = np.stack([iv[rc], iv[rp]])
    n_iv = np.isfinite(ivs).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        atm_iv = np.where(n_iv > 0, np.nansum(ivs, axis=0) / np.maximum(n_iv, 1), np.nan)
    return exp[rc], strike[rc], atm_iv, mark[rc] + mark[rp]


def constant_maturity_iv(days: npt.ArrayLike, atm_iv: npt.ArrayLike, target_days: float = CONSTANT_MATURITY_DAYS) -> float:
    """ATM IV at a constant maturity: linear in total variance between the bracketing expiries.

    With T in years (days/365) and w = iv^2 T, for T1 <= T* <= T2 the nearest expiries around
    T*: w* = w1 + (w2 - w1)(T* - T1)/(T2 - T1), iv* = sqrt(w*/T*). Outside the listed range the
    nearest expiry's IV is used flat. Expiries with a non-finite or non-positive IV or T are ignored.
    """
    d = np.asarray(days, dtype=np.float64)
    v = np.asarray(atm_iv, dtype=np.float64)
    ok = np.isfinite(d) & np.isfinite(v) & (d > 0) & (v > 0)
    d, v = d[ok], v[ok]
    if d.size == 0:
        return NAN
    order = np.argsort(d, kind="stable")
    d, v = d[order], v[order]
    if target_days <= d[0]:
        return float(v[0])
    if target_days >= d[-1]:
        return float(v[-1])
    hi = int(np.searchsorted(d, target_days, side="left"))
    if d[hi] == target_days:
        return float(v[hi])
    lo = hi - 1
    t1, t2, t = d[lo] / DAYS_PER_YEAR, d[hi] / DAYS_PER_YEAR, target_days / DAYS_PER_YEAR
    w1, w2 = v[lo] ** 2 * t1, v[hi] ** 2 * t2
    w = w1 + (w2 - w1) * (t - t1) / (t2 - t1)
    return float(np.sqrt(w / t)) if w > 0 else NAN


def max_pain(strike: FloatArray, is_call: npt.NDArray[np.bool_], oi: FloatArray) -> float:
    """The listed strike P minimizing the intrinsic value paid to holders if the underlying settles at P.

    pain(P) = sum_calls OI max(P - K, 0) + sum_puts OI max(K - P, 0), over the rows given (the
    caller passes one expiry). Candidates are the listed strikes; ties go to the lower strike.
    NaN when no row has positive open interest.
    """
    ok = np.isfinite(strike) & np.isfinite(oi) & (oi > 0)
    if not ok.any():
        return NAN
    k, call, w = strike[ok], is_call[ok], oi[ok]
    candidates = np.unique(strike[np.isfinite(strike)])
    diff = candidates[:, None] - k[None, :]  # P - K, one row per candidate
    pain = (np.where(call, np.maximum(diff, 0.0), np.maximum(-diff, 0.0)) * w).sum(axis=1)
    return float(candidates[int(np.argmin(pain))])


# ---------------------------------------------------------------- chain metrics


def chain_metrics(chain: pa.Table | None, as_of: date, spot: float | None = None) -> dict[str, Any]:
    """Every metric computable from one chain snapshot on session `as_of` (see docs/derived.md).

    `spot` overrides the chain's spot column (used when the chain carries none). Contracts that
    expired before `as_of` are ignored. Missing values are NaN (dates: None); never raises on a
    thin or empty chain.
    """
    out: dict[str, Any] = {name: NAN for name in CHAIN_METRICS}
    out["front_expiry"] = out["second_expiry"] = None
    if chain is None or chain.num_rows == 0:
        if spot is not None and math.isfinite(spot) and spot > 0:
            out["spot"] = float(spot)
        return out
    today = _day_number(as_of)
    exp = _num(chain, "expiry")
    live = np.isfinite(exp) & (exp >= today)
    chain_spot = _num(chain, "spot")
    good_spot = chain_spot[np.isfinite(chain_spot) & (chain_spot > 0)]
    s = float(spot) if spot is not None and math.isfinite(spot) and spot > 0 else (
        float(good_spot[0]) if good_spot.size else NAN)
    out["spot"] = s

    is_call, is_put = _rights(chain)
    is_call, is_put = is_call & live, is_put & live
    exp = np.where(live, exp, np.nan)
    strike = _num(chain, "strike")
    raw_oi = _num(chain, "open_interest")
    known_oi = np.isfinite(raw_oi)
    oi = np.maximum(np.nan_to_num(raw_oi, nan=0.0), 0.0)
    volume = np.maximum(np.nan_to_num(_num(chain, "volume"), nan=0.0), 0.0)
    mark, iv, delta = _num(chain, "mark"), _num(chain, "iv"), _num(chain, "delta")
    gamma = _num(chain, "gamma")

    # put/call ratios over every live expiry
    out["pcr_oi"] = _safe_ratio(float(oi[is_put].sum()), float(oi[is_call].sum()))
    out["pcr_volume"] = _safe_ratio(float(volume[is_put].sum()), float(volume[is_call].sum()))

    has_strike = np.isfinite(strike)
    if math.isfinite(s):
        # walls: OI summed per strike over every live expiry
        cw = is_call & has_strike & (strike >= s)
        pw = is_put & has_strike & (strike <= s)
        out["call_wall"] = _by_strike_argmax(strike[cw], oi[cw], prefer_high=False)
        out["put_wall"] = _by_strike_argmax(strike[pw], oi[pw], prefer_high=True)

        # gamma exposure (currency per 1% move) of each contract, unsigned
        g = np.where(np.isfinite(gamma) & (gamma > 0), gamma, 0.0)
        gex = g * oi * CONTRACT_MULTIPLIER * s * s * MOVE_1PCT
        either = (is_call | is_put) & has_strike
        out["gamma_peak_strike"] = _by_strike_argmax(strike[either], gex[either], prefer_high=False)
        # only contracts with a known gamma and open interest say anything; none of them: unknown, not 0
        known = either & np.isfinite(gamma) & known_oi
        if known.any():
            out["net_gex"] = float(gex[is_call & known].sum() - gex[is_put & known].sum())

    # expiries at least MIN_DAYS_LEFT calendar days away
    days_left = exp - today
    eligible = np.unique(exp[np.isfinite(exp) & (days_left >= MIN_DAYS_LEFT) & (is_call | is_put)])
    if eligible.size == 0:
        return out
    front = float(eligible[0])
    out["front_expiry"] = _as_date(front)
    second = float(eligible[1]) if eligible.size > 1 else NAN
    out["second_expiry"] = _as_date(second)

    in_front = exp == front
    out["max_pain"] = max_pain(strike[in_front & has_strike], is_call[in_front & has_strike], oi[in_front & has_strike])

    # 25-delta skew on the front expiry
    cd = in_front & is_call & np.isfinite(delta) & np.isfinite(iv)
    pd = in_front & is_put & np.isfinite(delta) & np.isfinite(iv)
    if cd.any() and pd.any():
        # nearest delta, ties to the lower strike (independent of row order)
        call_iv = iv[cd][np.lexsort((strike[cd], np.abs(delta[cd] - SKEW_DELTA)))[0]]
        put_iv = iv[pd][np.lexsort((strike[pd], np.abs(delta[pd] + SKEW_DELTA)))[0]]
        out["skew_25d_pts"] = float((put_iv - call_iv) * VOL_POINTS)

    sel = np.isfinite(exp) & (days_left >= MIN_DAYS_LEFT)
    a_exp, a_strike, a_iv, a_straddle = _atm_by_expiry(
        exp[sel], strike[sel], is_call[sel], is_put[sel], mark[sel], iv[sel], s)
    at_front = np.flatnonzero(a_exp == front)
    if at_front.size:
        i = int(at_front[0])
        out["atm_strike"] = float(a_strike[i])
        out["atm_iv"] = float(a_iv[i])
        out["expected_move_pct"] = _safe_ratio(float(a_straddle[i]), s) * 100.0
    at_second = np.flatnonzero(a_exp == second)
    if at_front.size and at_second.size:
        out["term_slope_pts"] = float((a_iv[int(at_second[0])] - a_iv[int(at_front[0])]) * VOL_POINTS)
    out["atm_iv_30d"] = constant_maturity_iv(a_exp - today, a_iv)
    return out


# ---------------------------------------------------------------- closes and history


def realized_vol(closes: npt.ArrayLike, window: int) -> float:
    """Annualized realized vol of the last `window` daily log returns (needs window + 1 closes).

    sqrt(252) x the sample standard deviation (ddof = 1) of ln(C_t / C_t-1) over the last
    `window` returns. NaN when there are too few closes or any close in the window is not a
    positive finite number (or window < 2).
    """
    c = np.asarray(closes, dtype=np.float64).reshape(-1)
    if window < 2 or c.size < window + 1:
        return NAN
    tail = c[-(window + 1):]
    if not (np.isfinite(tail).all() and (tail > 0).all()):
        return NAN
    returns = np.diff(np.log(tail))
    return float(np.std(returns, ddof=1) * np.sqrt(TRADING_DAYS))


def _to_day_numbers(dates: Any) -> npt.NDArray[np.int64]:
    if isinstance(dates, (pa.Array, pa.ChunkedArray)):
        dates = dates.to_numpy(zero_copy_only=False)
    arr = np.asarray(dates)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    return arr.astype("datetime64[D]").astype(np.int64)


def iv_history_window(as_of: date) -> tuple[date, date]:
    """[first, last] dates of the trailing window: the IV_HISTORY_SESSIONS sessions before `as_of`."""
    days = calendar.all_sessions()
    i = calendar.session_index(as_of)  # sessions strictly before as_of
    lo = max(i - IV_HISTORY_SESSIONS, 0)
    if i == 0:
        return as_of, as_of  # nothing before the calendar's first session
    return days[lo].astype(date), days[i - 1].astype(date)


def prior_ivs(history_dates: Any, history_atm_iv: Any, as_of: date) -> FloatArray:
    """The finite IVs dated in the IV_HISTORY_SESSIONS sessions strictly before `as_of`, one per date.

    When a date appears more than once, the last occurrence in input order wins.
    """
    days = _to_day_numbers(history_dates)
    ivs = np.asarray(history_atm_iv, dtype=np.float64).reshape(-1)
    if days.size != ivs.size:
        raise ValueError("history_dates and history_atm_iv must have the same length")
    first, last = iv_history_window(as_of)
    in_window = (days >= _day_number(first)) & (days <= _day_number(last)) & (days < _day_number(as_of))
    days, ivs = days[in_window], ivs[in_window]
    rev_unique = np.unique(days[::-1], return_index=True)[1]
    ivs = ivs[::-1][rev_unique]
    return ivs[np.isfinite(ivs)]


def iv_history_stats(history_dates: Any, history_atm_iv: Any, as_of: date, current_iv: float) -> tuple[float, float]:
    """(IV percentile, IV rank) of `current_iv` against history strictly before `as_of`.

    Only observations dated in the IV_HISTORY_SESSIONS NYSE sessions before `as_of` count (one per
    date: the last one given wins); `as_of` itself and anything later are ignored, so the answer
    for an old day never depends on what ran after it. With n finite prior values x_i:
    percentile = 100 x #{x_i <= current} / n; rank = 100 x (current - min) / (max - min), clipped
    to [0, 100]. Both NaN when n < IV_HISTORY_MIN or current is not finite; rank NaN when max == min.
    """
    ivs = prior_ivs(history_dates, history_atm_iv, as_of)
    n = int(ivs.size)
    if n < IV_HISTORY_MIN or current_iv is None or not math.isfinite(current_iv):
        return NAN, NAN
    percentile = 100.0 * float(np.count_nonzero(ivs <= current_iv)) / n
    lo, hi = float(ivs.min()), float(ivs.max())
    rank = NAN if hi <= lo else float(np.clip(100.0 * (current_iv - lo) / (hi - lo), 0.0, 100.0))
    return percentile, rank


# ---------------------------------------------------------------- the row


def derived_row(
    symbol: str, as_of: date, chain: pa.Table | None, closes_until_as_of: npt.ArrayLike,
    iv_history: tuple[Any, Any] | pa.Table | None = None,
) -> dict[str, Any]:
    """One derived row for (symbol, as_of): chain metrics, realized vols, IV/RV, IV percentile/rank.

    `closes_until_as_of`: daily closes, oldest first, the last one being the close of `as_of`.
    `iv_history`: (dates, atm_iv_30d values) of earlier rows, or a table with columns
    session_date and atm_iv_30d; anything dated on or after `as_of` is ignored. The IV ranked is
    the 30-day constant-maturity ATM IV. Missing values are NaN (dates: None).
    """
    closes = np.asarray(closes_until_as_of if closes_until_as_of is not None else [], dtype=np.float64).reshape(-1)
    fallback_spot = float(closes[-1]) if closes.size and np.isfinite(closes[-1]) and closes[-1] > 0 else None
    metrics = chain_metrics(chain, as_of)
    if not math.isfinite(metrics["spot"]) and fallback_spot is not None:
        metrics = chain_metrics(chain, as_of, spot=fallback_spot)
    rv20, rv60 = realized_vol(closes, 20), realized_vol(closes, 60)
    iv30 = metrics["atm_iv_30d"]
    if isinstance(iv_history, pa.Table):
        h_dates, h_iv = iv_history.column("session_date"), _num(iv_history, "atm_iv_30d")
    elif iv_history is None:
        h_dates, h_iv = [], []
    else:
        h_dates, h_iv = iv_history
    percentile, rank = iv_history_stats(h_dates, h_iv, as_of, iv30)
    count = int(prior_ivs(h_dates, h_iv, as_of).size)
    return {
        "symbol": symbol,
        "session_date": as_of,
        "formula_version": FORMULA_VERSION,
        **metrics,
        "rv_20": rv20,
        "rv_60": rv60,
        "iv_rv_20": _safe_ratio(iv30, rv20),
        "iv_rv_60": _safe_ratio(iv30, rv60),
        "iv_percentile": percentile,
        "iv_rank": rank,
        "iv_history_count": count,
    }


def derived_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows from derived_row as an Arrow table (schema DERIVED_SCHEMA); NaN floats stay NaN."""
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in DERIVED_SCHEMA} for r in rows], schema=DERIVED_SCHEMA)
