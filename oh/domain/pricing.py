"""Black-Scholes-Merton prices, Greeks and implied volatility for whole option chains (pure).

Every function takes numpy arrays (or scalars) that broadcast together, one element per
contract, and returns float64 arrays of the broadcast shape. Nothing raises on bad data:
an element whose inputs the model cannot price comes back as NaN, so one bad quote never
sinks a chain and never turns into a plausible-looking wrong number.

Units (see docs/pricing.md): time in years, vol/r/q as annual decimals (0.20 = 20%), prices
in the underlying's currency. Vega is per 1 vol point (0.01), theta per calendar day, rho
per 1 rate point (0.01), gamma per 1 unit of spot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

FloatArray = npt.NDArray[np.float64]

DAYS_PER_YEAR = 365.0  # theta is per calendar day: positions decay over weekends too
VOL_POINT = 0.01  # vega is the price change for a 1-point (0.01) move in vol
RATE_POINT = 0.01  # rho is the price change for a 1-point (0.01) move in the rate
VOL_MIN = 1e-4  # implied vols are searched in [VOL_MIN, VOL_MAX]; outside it -> NaN
VOL_MAX = 5.0
# Time value below this fraction of max(S*e^-qT, K*e^-rT) is rounding noise of the price
# itself, so it cannot identify a volatility: implied_vol returns NaN there.
TIME_VALUE_FLOOR = 1e-12
_REL_TOL = 1e-13  # solver stops when a step moves sigma by less than this fraction
_LOG_PRICE_TOL = 1e-15  # ... or when the price is matched to ~4 ulps (relative)
_MAX_ITER = 100  # bracketed Newton needs 6-12, at most ~20; the cap only guards against a bug
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities of each contract's price, in trader units (see module docstring)."""

    delta: FloatArray  # d price / d spot
    gamma: FloatArray  # d delta / d spot, per 1 unit of spot
    vega: FloatArray  # price change per 0.01 of vol
    theta: FloatArray  # price change per calendar day that passes (usually negative)
    rho: FloatArray  # price change per 0.01 of the risk-free rate


def _f64(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _pdf(x: FloatArray) -> FloatArray:
    return np.asarray(_INV_SQRT_2PI * np.exp(-0.5 * x * x), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Chain:
    """Broadcast inputs plus the shared intermediate terms of every BSM formula."""

    spot: FloatArray
    strike: FloatArray
    t: FloatArray
    vol: FloatArray
    r: FloatArray
    q: FloatArray
    w: FloatArray  # +1 for a call, -1 for a put: one formula serves both
    d1: FloatArray
    d2: FloatArray
    ok: npt.NDArray[np.bool_]  # inputs the model can price


def _chain(
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    t: npt.ArrayLike,
    vol: npt.ArrayLike,
    r: npt.ArrayLike,
    q: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> _Chain:
    s, k, tt, v, rr, qq, c = np.broadcast_arrays(
        _f64(spot), _f64(strike), _f64(t), _f64(vol), _f64(r), _f64(q), np.asarray(is_call, dtype=bool)
    )
    ok = (s > 0) & (k > 0) & (tt > 0) & (v > 0) & np.isfinite(s + k + tt + v + rr + qq)
    with np.errstate(all="ignore"):
        sig_sqrt_t = v * np.sqrt(tt)
        d1 = (np.log(s / k) + (rr - qq + 0.5 * v * v) * tt) / sig_sqrt_t
    return _Chain(s, k, tt, v, rr, qq, np.where(c, 1.0, -1.0), d1, d1 - sig_sqrt_t, ok)


def bsm_price(
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    t: npt.ArrayLike,
    vol: npt.ArrayLike,
    r: npt.ArrayLike,
    q: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> FloatArray:
    """European option value under Black-Scholes-Merton with continuous dividend yield q.

    call = S e^-qT N(d1) - K e^-rT N(d2);  put = K e^-rT N(-d2) - S e^-qT N(-d1).
    NaN where the model is undefined (t <= 0, vol <= 0, non-positive spot or strike, or
    any non-finite input): at expiry the caller knows the payoff better than a formula.
    """
    c = _chain(spot, strike, t, vol, r, q, is_call)
    with np.errstate(all="ignore"):
        sd, kd = c.spot * np.exp(-c.q * c.t), c.strike * np.exp(-c.r * c.t)
        price = c.w * (sd * ndtr(c.w * c.d1) - kd * ndtr(c.w * c.d2))
    return np.where(c.ok, price, np.nan)


def bsm_greeks(
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    t: npt.ArrayLike,
    vol: npt.ArrayLike,
    r: npt.ArrayLike,
    q: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> Greeks:
    """Delta, gamma, vega, theta and rho of each contract, NaN where bsm_price is NaN.

    Units: gamma per 1 unit of spot, vega per 0.01 vol, theta per calendar day (-dV/dT / 365),
    rho per 0.01 rate; these are what a trader reads off a chain and what a P&L explain sums.
    """
    c = _chain(spot, strike, t, vol, r, q, is_call)
    w = c.w

    def masked(x: FloatArray) -> FloatArray:
        return np.where(c.ok, x, np.nan)

    with np.errstate(all="ignore"):
        sqrt_t = np.sqrt(c.t)
        disc_q, disc_r = np.exp(-c.q * c.t), np.exp(-c.r * c.t)
        sd, kd = c.spot * disc_q, c.strike * disc_r
        n_d1, n_wd1, n_wd2 = _pdf(c.d1), ndtr(w * c.d1), ndtr(w * c.d2)
        theta_year = -sd * n_d1 * c.vol / (2.0 * sqrt_t) - w * c.r * kd * n_wd2 + w * c.q * sd * n_wd1
        return Greeks(
            delta=masked(w * disc_q * n_wd1),
            gamma=masked(disc_q * n_d1 / (c.spot * c.vol * sqrt_t)),
            vega=masked(sd * n_d1 * sqrt_t * VOL_POINT),
            theta=masked(theta_year / DAYS_PER_YEAR),
            rho=masked(w * kd * c.t * n_wd2 * RATE_POINT),
        )


def _otm_price_and_vega(
    sigma: FloatArray, sd: FloatArray, kd: FloatArray, sqrt_t: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Price of the forward-out-of-the-money option and its raw vega (d price / d sigma).

    The OTM form never subtracts two numbers near S, so tiny time values keep their digits.
    """
    sst = sigma * sqrt_t
    d1 = np.log(sd / kd) / sst + 0.5 * sst
    price = w * (sd * ndtr(w * d1) - kd * ndtr(w * (d1 - sst)))
    return price, sd * _pdf(d1) * sqrt_t


def implied_vol(
    price: npt.ArrayLike,
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    q: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> FloatArray:
    """The BSM volatility in [VOL_MIN, VOL_MAX] that reproduces each price, or NaN.

    NaN (never an exception, never a guess) when no volatility fits: price at or below the
    discounted intrinsic max(w(S e^-qT - K e^-rT), 0) (or within TIME_VALUE_FLOOR of it,
    where the price carries no vol information), at or above the upper bound (S e^-qT for a
    call, K e^-rT for a put), outside the prices of VOL_MIN..VOL_MAX, t <= 0, or NaN inputs.

    Why this method: put-call parity turns every price into the time value of the
    forward-OTM option, whose log-price is smooth, increasing and concave in sigma. A
    safeguarded Newton iteration on that log-price, kept inside a shrinking bracket that
    starts at [VOL_MIN, VOL_MAX] and falling back to geometric bisection whenever a step
    would leave it, always converges (the bracket guarantees it) and converges fast
    (Newton), for deep ITM/OTM strikes and one-day expiries alike, on the whole chain at once.
    """
    otm = _forward_otm(price, spot, strike, t, r, q, is_call)
    if otm.idx.size:
        with np.errstate(all="ignore"):
            otm.out.ravel()[otm.idx] = _solve(otm.tv, otm.sd, otm.kd, otm.sqrt_t, otm.w)
    return otm.out


def implied_vol_vs(
    price: npt.ArrayLike,
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    q: npt.ArrayLike,
    is_call: npt.ArrayLike,
    vol: npt.ArrayLike,
) -> FloatArray:
    """sign(implied_vol(price, ...) - vol) without solving: +1 where the price's implied vol is above `vol`, -1 below,
    0 equal, NaN where implied_vol is NaN.

    The forward-OTM price is increasing in sigma, so the implied vol is above `vol` exactly when the price's time value
    is above that option's price at `vol` (clipped to [VOL_MIN, VOL_MAX], the range implied_vol searches): three
    prices per contract instead of a solve's six to twelve. Agrees with comparing implied_vol's answer except within
    its tolerance (~1e-13 relative) of `vol`.
    """
    otm = _forward_otm(price, spot, strike, t, r, q, is_call)
    if otm.idx.size == 0:
        return otm.out
    target = np.broadcast_to(_f64(vol), otm.out.shape).ravel()[otm.idx]
    with np.errstate(all="ignore"):
        p_lo, _ = _otm_price_and_vega(np.full(otm.tv.shape, VOL_MIN), otm.sd, otm.kd, otm.sqrt_t, otm.w)
        p_hi, _ = _otm_price_and_vega(np.full(otm.tv.shape, VOL_MAX), otm.sd, otm.kd, otm.sqrt_t, otm.w)
        at, _ = _otm_price_and_vega(np.clip(target, VOL_MIN, VOL_MAX), otm.sd, otm.kd, otm.sqrt_t, otm.w)
    solvable = (p_lo <= otm.tv) & (otm.tv <= p_hi)  # where implied_vol answers (VOL_MIN, VOL_MAX at the ends)
    sign = np.where(target < VOL_MIN, 1.0, np.where(target > VOL_MAX, -1.0, np.sign(otm.tv - at)))
    otm.out.ravel()[otm.idx] = np.where(solvable, sign, np.nan)
    return otm.out


@dataclass(frozen=True)
class _ForwardOTM:
    """The prices implied_vol can invert, as forward-OTM time values (`tv`, at rows `idx` of the flattened input),
    with their discounted spot and strike, sqrt(t) and the OTM side's sign; `out` is NaN-filled, input-shaped."""

    out: FloatArray
    idx: npt.NDArray[np.intp]
    tv: FloatArray
    sd: FloatArray
    kd: FloatArray
    sqrt_t: FloatArray
    w: FloatArray


def _forward_otm(
    price: npt.ArrayLike,
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    t: npt.ArrayLike,
    r: npt.ArrayLike,
    q: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> _ForwardOTM:
    p, s, k, tt, rr, qq, c = np.broadcast_arrays(
        _f64(price), _f64(spot), _f64(strike), _f64(t), _f64(r), _f64(q), np.asarray(is_call, dtype=bool)
    )
    out = np.full(p.shape, np.nan)
    with np.errstate(all="ignore"):
        sd, kd = s * np.exp(-qq * tt), k * np.exp(-rr * tt)
        w = np.where(c, 1.0, -1.0)
        time_value = p - np.maximum(w * (sd - kd), 0.0)  # = price of the forward-OTM option
        ok = (s > 0) & (k > 0) & (tt > 0) & np.isfinite(p + s + k + tt + rr + qq)
        ok &= (time_value > TIME_VALUE_FLOOR * np.maximum(sd, kd)) & (time_value < np.minimum(sd, kd))
        idx = np.flatnonzero(ok)
        sd, kd, tv = sd.ravel()[idx], kd.ravel()[idx], time_value.ravel()[idx]
        sqrt_t = np.sqrt(tt.ravel()[idx])
    return _ForwardOTM(out, idx, tv, sd, kd, sqrt_t, np.where(sd > kd, -1.0, 1.0))


def _solve(tv: FloatArray, sd: FloatArray, kd: FloatArray, sqrt_t: FloatArray, w: FloatArray) -> FloatArray:
    """Bracketed Newton on log(otm_price(sigma)) - log(tv); NaN where tv is outside the vol range."""
    lo, hi = np.full(tv.shape, VOL_MIN), np.full(tv.shape, VOL_MAX)
    p_lo, _ = _otm_price_and_vega(lo, sd, kd, sqrt_t, w)
    p_hi, _ = _otm_price_and_vega(hi, sd, kd, sqrt_t, w)
    result = np.full(tv.shape, np.nan)
    result[tv == p_lo] = VOL_MIN
    result[tv == p_hi] = VOL_MAX
    active = np.flatnonzero((p_lo < tv) & (tv < p_hi))
    log_tv = np.log(tv)
    # Start at the larger of the ATM (Brenner-Subrahmanyam) guess and the inflection point
    # sqrt(2|ln F/K|)/sqrt(T): from there Newton on a concave curve barely overshoots.
    guess = np.maximum(tv * np.sqrt(2.0 * np.pi / (sd * kd)), np.sqrt(2.0 * np.abs(np.log(sd / kd)))) / sqrt_t
    sigma = np.clip(guess, VOL_MIN, VOL_MAX)
    for _ in range(_MAX_ITER):
        if active.size == 0:
            break
        a_sd, a_kd, a_st, a_w, a_sig = sd[active], kd[active], sqrt_t[active], w[active], sigma[active]
        price, vega = _otm_price_and_vega(a_sig, a_sd, a_kd, a_st, a_w)
        # A price that underflows or cancels to <= 0 is far below tv (> 1e-12 of scale, while
        # rounding is ~1e-16 of it), so sigma is too low: h = -inf raises the bracket's floor.
        h = np.where(price > 0, np.log(np.maximum(price, np.finfo(np.float64).tiny)) - log_tv[active], -np.inf)
        a_lo = np.where(h < 0, a_sig, lo[active])
        a_hi = np.where(h > 0, a_sig, hi[active])
        nxt = a_sig - h * price / vega  # d log(price) / d sigma = vega / price
        outside = ~np.isfinite(nxt) | (nxt <= a_lo) | (nxt >= a_hi)
        nxt = np.where(outside, np.sqrt(a_lo * a_hi), nxt)
        matched = np.abs(h) <= _LOG_PRICE_TOL  # reprices to float precision: stay here
        nxt = np.where(matched, a_sig, nxt)
        done = matched | (np.abs(nxt - a_sig) <= _REL_TOL * a_sig) | (a_hi - a_lo <= _REL_TOL * a_sig)
        lo[active], hi[active], sigma[active] = a_lo, a_hi, nxt
        result[active[done]] = nxt[done]
        active = active[~done]
    return result  # anything still active after _MAX_ITER stays NaN: unconverged is not an answer


def mark_price(bid: npt.ArrayLike, ask: npt.ArrayLike, last: npt.ArrayLike) -> FloatArray:
    """The price to value a contract at: mid if both sides quote, else last, else ask, else bid.

    Exactly: (bid + ask) / 2 when bid > 0 and ask > 0; otherwise last if last > 0; otherwise
    ask if ask > 0; otherwise bid if bid > 0; otherwise NaN. A non-positive or NaN field counts
    as absent, because providers send 0 (or nothing) for "no quote", never a real price of 0.
    """
    b, a, lst = np.broadcast_arrays(_f64(bid), _f64(ask), _f64(last))
    both = (b > 0) & (a > 0)
    conditions = [both, lst > 0, a > 0, b > 0]
    return np.asarray(np.select(conditions, [(b + a) / 2.0, lst, a, b], default=np.nan), dtype=np.float64)


def spread_pct(bid: npt.ArrayLike, ask: npt.ArrayLike) -> FloatArray:
    """Quoted spread as a fraction of mid: (ask - bid) / ((bid + ask) / 2); NaN unless both sides > 0.

    A crossed quote (bid > ask) gives a negative number on purpose, so quality checks can see it.
    """
    b, a = np.broadcast_arrays(_f64(bid), _f64(ask))
    both = (b > 0) & (a > 0)
    with np.errstate(all="ignore"):
        pct = (a - b) / ((a + b) / 2.0)
    return np.where(both, pct, np.nan)
