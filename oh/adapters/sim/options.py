"""The simulated market's option chains: deterministic, vectorized, any day on its own (pure).

`option_chain(symbol, day)` lists every contract of the sim market for `symbol` on session `day`
(weekly and monthly expiries out to about two years, strikes on a grid around spot; the numbered
names list less, as smaller underlyings do: `listing_depth`), prices it
with Black-Scholes-Merton on a volatility surface with skew, term structure and a slow daily
drift, quotes a bid/ask that widens away from the money and for cheap options, and gives each
contract an open interest and a volume. See docs/sim_market.md for the model.

Determinism: every random number is either a symbol-level draw (a numpy PCG64 seeded from
`oh.adapters.sim.market.symbol_seed`) or a splitmix64 hash of (symbol seed, contract, session number, salt) computed
in wrapping uint64 arithmetic. Nothing depends on the order in which days are requested or on
earlier calls, so a day's chain is the same on every machine and whether or not the day before
was generated. Open interest is a closed form of the session number (smooth cycles plus a
truncated AR(1) of hashed daily shocks), so it is continuous from one session to the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.special import ndtri

from contracts import rows
from oh.adapters.sim.market import (
    DEFAULT_SEED,
    close_path,
    mix,
    require_listed,
    symbol_seed,
    uniform,
)
from oh.adapters.sim.universe import is_synthetic
from oh.domain import calendar, pricing
from oh.domain.osi import OptionSymbol

RATE = 0.04  # the sim market's continuously compounded risk-free rate (annual decimal)
WEEKLY_WEEKS = 8  # weekly Friday expiries this many weeks ahead
MONTHLY_DAYS = 730  # monthly (third-Friday) expiries out to this many calendar days
TICK = 0.01  # quote increment
OI_AR_PHI = 0.7  # persistence of the daily open-interest shocks
OI_AR_LAGS = 12  # the AR(1) is truncated here (0.7**12 < 0.014): enough for continuity, cheap
OI_SHOCK_SD = 0.08  # log-OI shock per session
OI_SPOT_WINDOW = 40  # open interest clusters around the mean close of this many sessions

CHAIN_SCHEMA = rows.CHAIN  # the wire schema of a chain snapshot (contracts/rows.py)

_STEPS = [500 * 10**e * m for e in range(0, 5) for m in (1, 2, 5)]  # mills: 0.5, 1, 2.5, 5, 10, 25, ...
_U64 = np.uint64
_EPOCH = np.datetime64("1970-01-01", "D")
# salts that separate the independent hash streams of one contract
_S_BASE, _S_PERIOD, _S_PHASE, _S_SHOCK, _S_CHURN, _S_LAST = (_U64(i * 0x1000193 + 7) for i in range(1, 7))


# ---------------------------------------------------------------- hashing (wrapping uint64)


def _normal(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    return np.asarray(ndtri(uniform(h)), dtype=np.float64)


def _contract_keys(
    sym_seed: int, expiry_days: npt.NDArray[np.int64], is_call: npt.NDArray[np.bool_], mills: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint64]:
    """One 64-bit key per contract (symbol, expiry, right, strike), independent of the listing."""
    x = mix(np.full(mills.shape, sym_seed, dtype=np.uint64) ^ expiry_days.astype(np.uint64))
    x = mix(x ^ mills.astype(np.uint64))
    return mix(x ^ is_call.astype(np.uint64))


def _stream(keys: npt.NDArray[np.uint64], salt: np.uint64, session: int | None = None) -> npt.NDArray[np.uint64]:
    x = mix(keys ^ salt)
    return x if session is None else _in_session(x, session)


def _in_session(stream: npt.NDArray[np.uint64], session: int) -> npt.NDArray[np.uint64]:
    """A per-contract stream (`_stream` without a session) drawn again for `session`."""
    return mix(stream ^ _U64(session & 0xFFFFFFFFFFFFFFFF))


def _day_number(day: date) -> int:
    """Days from the epoch to `day` (how expiries are held here)."""
    return int((np.datetime64(day, "D") - _EPOCH).astype(np.int64))


# ---------------------------------------------------------------- per-symbol parameters


@lru_cache(maxsize=512)
def _symbol_params(symbol: str, market_seed: int) -> dict[str, float]:
    """Surface and dividend parameters of a symbol: stable draws plus its path's realized vol."""
    close = close_path(symbol, market_seed)
    realized = float(np.std(np.diff(np.log(close))) * np.sqrt(252.0))
    rng = np.random.Generator(np.random.PCG64(symbol_seed(f"options:{symbol}", market_seed)))
    u = rng.uniform(size=12)
    return {
        "base_vol": realized * (1.0 + 0.15 * u[0]),  # implied trades at a premium to realized
        "dividend": 0.025 * u[1],
        "skew": 0.25 + 0.25 * u[2],  # IV slope per unit of ln(K/F)/sqrt(T), puts richer
        "curvature": 0.10 + 0.20 * u[3],  # smile
        "level_amp": 0.10 + 0.08 * u[4],  # slow drift of the whole surface (log amplitude)
        "p1": 60 + 80 * u[5], "ph1": 2 * np.pi * u[6],
        "p2": 150 + 250 * u[7], "ph2": 2 * np.pi * u[8],
        "ts_mean": 0.02 + 0.08 * u[9],  # short end over long end (negative = contango)
        "p3": 90 + 200 * u[10], "ph3": 2 * np.pi * u[11],
    }


def _seed_of(symbol: str, market_seed: int) -> int:
    return symbol_seed(f"chain:{symbol}", market_seed)


def dividend_yield(symbol: str, market_seed: int = DEFAULT_SEED) -> float:
    """The continuous dividend yield q the sim market prices `symbol`'s options with."""
    return float(_symbol_params(symbol, market_seed)["dividend"])


def surface_iv(
    symbol: str, day: date, spot: float, strike: npt.ArrayLike, t: npt.ArrayLike, market_seed: int = DEFAULT_SEED
) -> npt.NDArray[np.float64]:
    """The sim surface's implied vol for strikes and times (years) on session `day`.

    atm(T) = base * level(day) * (1 + ts(day) * exp(-T / 0.3)), and with x = ln(K/F) / sqrt(T)
    (clipped to +-1.5): iv = atm(T) * (1 - skew * x + curvature * x^2), floored at 5%.
    """
    p = _symbol_params(symbol, market_seed)
    s = calendar.session_index(day)
    k, tt = np.broadcast_arrays(np.asarray(strike, dtype=np.float64), np.asarray(t, dtype=np.float64))
    level = np.exp(p["level_amp"] * (np.sin(2 * np.pi * s / p["p1"] + p["ph1"])
                                     + np.sin(2 * np.pi * s / p["p2"] + p["ph2"])) / np.sqrt(2.0))
    ts = p["ts_mean"] + 0.12 * np.sin(2 * np.pi * s / p["p3"] + p["ph3"])
    atm = p["base_vol"] * level * (1.0 + ts * np.exp(-tt / 0.3))
    forward = spot * np.exp((RATE - p["dividend"]) * tt)
    x = np.clip(np.log(k / forward) / np.sqrt(np.maximum(tt, 1e-6)), -1.5, 1.5)
    return np.asarray(np.maximum(atm * (1.0 - p["skew"] * x + p["curvature"] * x * x), 0.05), dtype=np.float64)


# ---------------------------------------------------------------- listing


@dataclass(frozen=True)
class Depth:
    """How much of the standard listing a symbol has: weekly expiries, monthly horizon, strike range and step."""

    weekly_weeks: int  # weekly Friday expiries this many weeks ahead
    monthly_days: int  # monthly (third-Friday) expiries out to this many calendar days
    width: float  # x the standard strike half-width around spot
    step: int  # x the standard strike step


FULL_DEPTH = Depth(WEEKLY_WEEKS, MONTHLY_DAYS, 1.0, 1)  # every named symbol: ~1,000-3,000 contracts
# The numbered names are the market's long tail: most list a few monthlies on a coarse grid, a few are as
# deep as the named ones. (share of names, depth); ~285 contracts on average, so 5,000 names list ~1.4M
# contracts a session, about what the whole US options market lists (docs/sim_market.md).
SYNTHETIC_TIERS: tuple[tuple[float, Depth], ...] = (
    (0.50, Depth(0, 95, 0.5, 2)),  # thin: ~3 monthlies, +-15%, double step (~60 contracts)
    (0.30, Depth(2, 185, 0.7, 2)),  # small: 2 weeklies, ~6 monthlies (~200)
    (0.15, Depth(4, 280, 0.8, 1)),  # mid: 4 weeklies, ~9 monthlies (~700)
    (0.05, FULL_DEPTH),  # deep: the named symbols' listing (~1,900)
)


def listing_depth(symbol: str, market_seed: int = DEFAULT_SEED) -> Depth:
    """The listing depth of `symbol`: FULL_DEPTH for a named symbol; a tier of SYNTHETIC_TIERS drawn once
    from the symbol's seed for a numbered one (the same every session, so its listing is stable)."""
    if not is_synthetic(symbol):
        return FULL_DEPTH
    u = float(uniform(np.array([symbol_seed(f"depth:{symbol}", market_seed)], dtype=np.uint64))[0])
    share = 0.0
    for tier_share, depth in SYNTHETIC_TIERS:
        share += tier_share
        if u < share:
            return depth
    return SYNTHETIC_TIERS[-1][1]


def expiries(day: date, weekly_weeks: int = WEEKLY_WEEKS, monthly_days: int = MONTHLY_DAYS) -> list[date]:
    """Listed expiries after `day`: weekly Fridays for `weekly_weeks` weeks, third Fridays to `monthly_days`
    (the standard listing by default; a symbol's own: `expiries(day, depth.weekly_weeks, depth.monthly_days)`).

    A Friday that is not an NYSE session (a holiday) expires on the session before it.
    """
    return list(_expiries(day, weekly_weeks, monthly_days))


@lru_cache(maxsize=256)
def _expiries(day: date, weekly_weeks: int, monthly_days: int) -> tuple[date, ...]:
    """`expiries`, once per (day, depth): every symbol of a listing tier has the same (a wide day asks ~10,000 times)."""
    fridays: set[date] = set()
    first_friday = day + timedelta(days=(4 - day.weekday()) % 7 or 7)
    fridays.update(first_friday + timedelta(weeks=i) for i in range(weekly_weeks))
    horizon = day + timedelta(days=monthly_days)
    year, month = day.year, day.month
    while True:
        first = date(year, month, 1)
        third = first + timedelta(days=(4 - first.weekday()) % 7 + 14)
        if third > horizon:
            break
        fridays.add(third)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    days = calendar.all_sessions()
    last = days[-1].astype(date)
    wanted = np.array(sorted(f for f in fridays if f <= last), dtype="datetime64[D]")
    adjusted = days[np.searchsorted(days, wanted, side="right") - 1]  # the Friday, or the session before
    return tuple(d for d in np.unique(adjusted).astype(date).tolist() if d > day)


def _strike_step_mills(spot: float, t: float) -> int:
    """Strike increment in 1/1000s by price level, x2 beyond 3 months, x4 beyond a year.

    The near-term step is the first of 0.5, 1, 2.5, 5, 10, 25, 50, 100, ... at or above 1% of
    spot (1 under $100, 2.5 under $250, 5 under $500, 10 under $1000, ...).
    """
    base = next((step for step in _STEPS if step * 100 >= spot * 1000), _STEPS[-1])
    return base * (1 if t <= 0.25 else 2 if t <= 1.0 else 4)


def _listing(
    day: date, spot: float, depth: Depth = FULL_DEPTH,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """(expiry as days since epoch, is_call, strike in mills) of every listed contract, sorted."""
    exp_parts, mill_parts = [], []
    for expiry in expiries(day, depth.weekly_weeks, depth.monthly_days):  # one iteration per expiry, never per contract
        t = (expiry - day).days / 365.0
        half_width = min(0.30 * max(1.0, np.sqrt(t / 0.25)), 0.70) * depth.width
        step = _strike_step_mills(spot, t) * depth.step
        lo = max(int(np.ceil(spot * (1 - half_width) * 1000 / step)), 1)
        hi = int(np.floor(spot * (1 + half_width) * 1000 / step))
        mills = np.arange(lo, hi + 1, dtype=np.int64) * step
        mill_parts.append(mills)
        exp_parts.append(np.full(mills.size, (np.datetime64(expiry, "D") - _EPOCH).astype(np.int64)))
    exp = np.concatenate(exp_parts)
    mills = np.concatenate(mill_parts)
    n = exp.size
    # calls then puts within each expiry, strikes ascending
    exp2 = np.concatenate([exp, exp])
    call2 = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    mills2 = np.concatenate([mills, mills])
    order = np.lexsort((mills2, ~call2, exp2))
    return exp2[order], call2[order], mills2[order]


# ---------------------------------------------------------------- open interest and volume


def _open_interest(
    keys: npt.NDArray[np.uint64], strike: npt.NDArray[np.float64], expiry_days: npt.NDArray[np.int64],
    is_call: npt.NDArray[np.bool_], session: int, closes: npt.NDArray[np.float64], base_vol: float,
) -> npt.NDArray[np.float64]:
    """Open interest (float, before flooring) of each contract as of `session`: a closed form of it.

    base (per contract) x interest around the recent average spot x life cycle x
    exp(slow cycle + AR(1) of shocks). Interest is centred on the mean close of the last
    OI_SPOT_WINDOW sessions, not on today's close: positions are sticky, a 2% move does not
    close them.
    """
    return _open_interests(keys, strike, expiry_days, is_call, (session,), closes, base_vol)[0]


def _open_interests(
    keys: npt.NDArray[np.uint64], strike: npt.NDArray[np.float64], expiry_days: npt.NDArray[np.int64],
    is_call: npt.NDArray[np.bool_], sessions: tuple[int, ...], closes: npt.NDArray[np.float64], base_vol: float,
) -> list[npt.NDArray[np.float64]]:
    """`_open_interest` as of each of `sessions`, the same numbers, with the per-contract draws that do not
    depend on the session (base, period, phase) and each session's hashed shock made once, not per session
    (a quote needs today's and yesterday's open interest: their AR(1) sums share 11 of their 12 shocks)."""
    base = np.exp(7.0 + 0.8 * _normal(_stream(keys, _S_BASE)))
    round_strike = np.where(np.round(strike * 1000).astype(np.int64) % 5000 == 0, 1.5, 1.0)
    period = 20.0 + 70.0 * uniform(_stream(keys, _S_PERIOD))
    phase = 2 * np.pi * uniform(_stream(keys, _S_PHASE))
    shocked = _stream(keys, _S_SHOCK)
    shocks: dict[int, npt.NDArray[np.float64]] = {}
    out = []
    for session in sessions:
        ref = float(np.mean(closes[max(session - OI_SPOT_WINDOW + 1, 0) : session + 1]))
        day = calendar.all_sessions()[session]
        tau = (expiry_days - (day - _EPOCH).astype(np.int64)).astype(np.float64)  # calendar days left
        t = np.maximum(tau, 1.0) / 365.0
        m = np.log(strike / ref) / (base_vol * np.sqrt(np.maximum(t, 30 / 365)))
        otm = np.where(is_call, m > 0, m < 0)
        interest = np.exp(-0.5 * (m / 2.0) ** 2) * np.where(otm, 1.3, 0.8)
        life = (1.0 - np.exp(-np.maximum(MONTHLY_DAYS + 30 - tau, 0.0) / 120.0)) * (0.4 + 0.6 * (1 - np.exp(-tau / 4.0)))
        term = 1.0 / (1.0 + 1.5 * t)
        cycle = 0.45 * np.sin(2 * np.pi * session / period + phase)  # building and unwinding periods
        ar = np.zeros(keys.shape)
        for lag in range(OI_AR_LAGS):  # a loop over lags, each a whole-chain vector op
            s = session - lag
            if s not in shocks:
                shocks[s] = _normal(_in_session(shocked, s))  # = _stream(keys, _S_SHOCK, s)
            ar += OI_AR_PHI**lag * shocks[s]
        out.append(base * interest * round_strike * life * term * np.exp(cycle + OI_SHOCK_SD * ar))
    return out


# ---------------------------------------------------------------- quotes


def _spot(symbol: str, day: date, market_seed: int) -> tuple[int, float]:
    require_listed(symbol)
    s = calendar.session_index(day)
    days = calendar.all_sessions()
    if s >= len(days) or days[s] != np.datetime64(day, "D"):
        raise ValueError(f"{day} is not an NYSE session: the sim market has no chain that day")
    return s, float(close_path(symbol, market_seed)[s])


def _contracts(
    day: date, expiry: npt.ArrayLike, is_call: npt.ArrayLike, strike: npt.ArrayLike,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """(expiry as days since epoch, is_call, strike in mills) of arbitrary contracts; every expiry after `day`."""
    exp_days = (np.asarray(expiry, dtype="datetime64[D]") - _EPOCH).astype(np.int64)
    call = np.asarray(is_call, dtype=bool)
    mills = np.round(np.asarray(strike, dtype=np.float64) * 1000).astype(np.int64)
    exp_days, call, mills = (np.ascontiguousarray(a) for a in np.broadcast_arrays(exp_days, call, mills))
    day_num = _day_number(day)
    if (exp_days <= day_num).any():
        raise ValueError("every expiry must be after the snapshot day")
    return exp_days, call, mills


def quote_contracts(
    symbol: str, day: date, expiry: npt.ArrayLike, is_call: npt.ArrayLike, strike: npt.ArrayLike,
    market_seed: int = DEFAULT_SEED,
) -> pa.Table:
    """Quote arbitrary contracts of `symbol` on session `day` (schema CHAIN_SCHEMA, input order).

    `expiry` is datetime64[D]-convertible (dates after `day`), `strike` in currency with at most
    3 decimals. option_chain calls this on the listed contracts; it also serves other listings.
    """
    session, spot = _spot(symbol, day, market_seed)
    exp_days, call, mills = _contracts(day, expiry, is_call, strike)
    return _quote(symbol, day, session, spot, exp_days, call, mills, market_seed)


def quote_prices(
    symbol: str, day: date, expiry: npt.ArrayLike, is_call: npt.ArrayLike, strike: npt.ArrayLike,
    market_seed: int = DEFAULT_SEED, with_volume: bool = True,
) -> dict[str, npt.NDArray[Any]]:
    """The columns `bid`, `ask`, `last` (and `volume` unless `with_volume` is False) of `quote_contracts`,
    the same numbers, without the greeks, marks, contract symbols and (without volume) open interest it
    also computes: what a daily bar is made of (oh.adapters.sim.bars)."""
    session, spot = _spot(symbol, day, market_seed)
    exp_days, call, mills = _contracts(day, expiry, is_call, strike)
    prices = _prices(symbol, day, session, spot, exp_days, call, mills, market_seed)
    out: dict[str, npt.NDArray[Any]] = {"bid": prices.bid, "ask": prices.ask, "last": prices.last}
    if with_volume:
        out["volume"] = _volume_oi(symbol, session, prices, exp_days, call, market_seed)[0]
    return out


@dataclass(frozen=True)
class _Prices:
    """A session's model prices of some contracts: what a quote, a bar and a contract list are made of."""

    strike: npt.NDArray[np.float64]
    t: npt.NDArray[np.float64]  # years to expiry
    iv: npt.NDArray[np.float64]
    theo: npt.NDArray[np.float64]
    bid: npt.NDArray[np.float64]
    ask: npt.NDArray[np.float64]
    last: npt.NDArray[np.float64]
    keys: npt.NDArray[np.uint64]  # _contract_keys


def _prices(
    symbol: str, day: date, session: int, spot: float, exp_days: npt.NDArray[np.int64],
    call: npt.NDArray[np.bool_], mills: npt.NDArray[np.int64], market_seed: int,
) -> _Prices:
    """Theoretical value, bid, ask and last trade of each contract on `day` (no greeks, no open interest)."""
    q = _symbol_params(symbol, market_seed)["dividend"]
    strike = mills / 1000.0
    day_num = _day_number(day)
    t = (exp_days - day_num) / 365.0
    iv = surface_iv(symbol, day, spot, strike, t, market_seed)
    theo = pricing.bsm_price(spot, strike, t, iv, RATE, q, call)

    # Quotes: a half-spread that grows with distance from the money (in standard deviations),
    # with maturity, and has an absolute floor that makes cheap options relatively wide.
    atm = surface_iv(symbol, day, spot, spot * np.exp((RATE - q) * t), t, market_seed)
    dist = np.abs(np.log(strike / spot)) / (atm * np.sqrt(t))
    half = 0.5 * np.maximum(theo * (0.015 + 0.02 * dist), 0.01 + 0.01 * dist) * (1.0 + 0.3 * t)
    bid = np.maximum(np.floor((theo - half) / TICK + 1e-9), 0.0) * TICK
    ask = np.maximum(np.ceil((theo + half) / TICK - 1e-9), 1.0) * TICK
    bid, ask = np.round(bid, 2), np.round(ask, 2)

    keys = _contract_keys(_seed_of(symbol, market_seed), exp_days, call, mills)
    u_last = uniform(_stream(keys, _S_LAST, session))
    last = np.round(np.clip(theo + (u_last - 0.5) * (ask - bid), np.maximum(bid, TICK), ask), 2)
    return _Prices(strike, t, iv, theo, bid, ask, last, keys)


def _volume_oi(
    symbol: str, session: int, prices: _Prices, exp_days: npt.NDArray[np.int64], call: npt.NDArray[np.bool_],
    market_seed: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(volume, open interest) of each contract on `session`."""
    closes = close_path(symbol, market_seed)
    keys = prices.keys
    oi_now, oi_prev = _open_interests(keys, prices.strike, exp_days, call, (session, max(session - 1, 0)), closes,
                                      _symbol_params(symbol, market_seed)["base_vol"])
    oi = np.floor(oi_now).astype(np.int64)
    d_oi = np.abs(oi - np.floor(oi_prev).astype(np.int64))
    churn = np.floor(0.04 * oi_now * np.exp(0.7 * _normal(_stream(keys, _S_CHURN, session)) - 0.245))
    volume = d_oi + churn.astype(np.int64)  # every opened or closed contract traded: volume >= |dOI|
    return volume, oi


def _contract_symbols(symbol: str, exp_days: npt.NDArray[np.int64], call: npt.NDArray[np.bool_],
                      mills: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """OCC compact symbols via oh.domain.osi: one OptionSymbol per (expiry, right) for the prefix, then the
    8 strike digits, so the text is exactly OptionSymbol(...).compact without a per-contract loop."""
    pairs, inverse = np.unique(exp_days * 2 + call, return_inverse=True)
    prefixes = np.array([
        OptionSymbol(symbol, date(1970, 1, 1) + timedelta(days=int(v // 2)), "C" if v % 2 else "P", 1).compact[:-8]
        for v in pairs
    ])
    return np.char.add(prefixes[inverse.reshape(-1)], np.char.zfill(mills.astype(str), 8))


def _quote(
    symbol: str, day: date, session: int, spot: float, exp_days: npt.NDArray[np.int64],
    call: npt.NDArray[np.bool_], mills: npt.NDArray[np.int64], market_seed: int,
) -> pa.Table:
    q = _symbol_params(symbol, market_seed)["dividend"]
    n = mills.size
    prices = _prices(symbol, day, session, spot, exp_days, call, mills, market_seed)
    strike, iv, bid, ask, last = prices.strike, prices.iv, prices.bid, prices.ask, prices.last
    greeks = pricing.bsm_greeks(spot, strike, prices.t, iv, RATE, q, call)
    mark = pricing.mark_price(bid, ask, last)
    volume, oi = _volume_oi(symbol, session, prices, exp_days, call, market_seed)
    contract = _contract_symbols(symbol, exp_days, call, mills)

    expiry_col = (exp_days.astype("datetime64[D]"))
    columns = [
        pa.array(contract.astype(object), pa.string()),
        pa.array(np.full(n, symbol, dtype=object), pa.string()),
        pa.array(np.full(n, np.datetime64(day, "D")), pa.date32()),
        pa.array(expiry_col, pa.date32()),
        pa.array(np.where(call, "C", "P").astype(object), pa.string()),
        strike, np.full(n, spot), bid, ask, last, mark, volume, oi, iv,
        greeks.delta, greeks.gamma, greeks.vega, greeks.theta, greeks.rho,
    ]
    return pa.table(columns, schema=CHAIN_SCHEMA)


def option_chain(symbol: str, day: date, market_seed: int = DEFAULT_SEED) -> pa.Table:
    """Every listed contract of `symbol` on NYSE session `day`, one row each (schema CHAIN_SCHEMA).

    The listing is `listing_depth(symbol)` of the standard one. Raises UnknownSymbol for symbols the sim
    market does not list, ValueError for a non-session day. Rows are ordered by expiry, then calls before puts, then strike.
    """
    session, spot = _spot(symbol, day, market_seed)
    exp_days, call, mills = _listing(day, spot, listing_depth(symbol, market_seed))
    return _quote(symbol, day, session, spot, exp_days, call, mills, market_seed)


def listing_within(
    symbol: str, day: date, max_dte: int, market_seed: int = DEFAULT_SEED,
) -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """The `contract_symbol`s of `option_chain(symbol, day)` expiring within `max_dte` calendar days, in the
    chain's order, from the listing alone (no contract is priced); and, for the same contracts, (expiry as days
    since epoch, is_call, strike in mills): what their symbols say, without parsing them back (oh.adapters.sim.bars)."""
    _, spot = _spot(symbol, day, market_seed)
    exp_days, call, mills = _listing(day, spot, listing_depth(symbol, market_seed))
    within = exp_days <= _day_number(day + timedelta(days=max_dte))
    if not within.any():
        return [], exp_days[:0], call[:0], mills[:0]
    exp_days, call, mills = exp_days[within], call[within], mills[within]
    return _contract_symbols(symbol, exp_days, call, mills).tolist(), exp_days, call, mills
