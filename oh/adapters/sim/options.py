"""The simulated market's option chains: deterministic, vectorized, any day on its own (pure).

`option_chain(symbol, day)` lists every contract of the sim market for `symbol` on session `day`
(weekly and monthly expiries out to about two years, strikes on a grid around spot; the numbered
names list less, as smaller underlyings do: `listing_depth`), prices it
with Black-Scholes-Merton on a volatility surface with skew, term structure and a slow daily
drift, quotes a bid/ask that widens away from the money and for cheap options, and gives each
contract an open interest and a volume (oh.adapters.sim.interest). See docs/sim_market.md for the model.

Determinism: every random number is either a symbol-level draw (a numpy PCG64 seeded from
`oh.adapters.sim.market.symbol_seed`) or a splitmix64 hash of (symbol seed, contract, session number, salt) computed
in wrapping uint64 arithmetic. Nothing depends on the order in which days are requested or on
earlier calls, so a day's chain is the same on every machine and whether or not the day before
was generated. Open interest is a closed form of the session number (smooth cycles plus a
truncated AR(1) of hashed daily shocks), so it is continuous from one session to the next.

Cost (issue #14.4: 5,000 chains a day in one worker): a symbol's constants (surface, dividend, chain seed,
listing depth) are drawn once per process (`_symbol_params`, bounded); a listing is built without a per-expiry
loop; the prices of several sessions of the same contracts (a bar needs today's and yesterday's) are the rows
of one array; contract symbols are written as bytes into one Arrow buffer. Each number is still computed by
the same operations in the same order as before, so every chain is the same, bit for bit (tests/unit/test_sim_digest.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache, partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from contracts import rows
from oh.adapters.sim.interest import MONTHLY_DAYS, S_LAST, contract_keys, in_sessions, streams, volume_and_interest
from oh.adapters.sim.market import DEFAULT_SEED, close_path, closes, require_listed, symbol_seed, uniform
from oh.adapters.sim.universe import is_synthetic
from oh.domain import calendar, pricing
from oh.domain.osi import OptionSymbol

RATE = 0.04  # the sim market's continuously compounded risk-free rate (annual decimal)
WEEKLY_WEEKS = 8  # weekly Friday expiries this many weeks ahead
TICK = 0.01  # quote increment
# MONTHLY_DAYS (oh.adapters.sim.interest): monthly (third-Friday) expiries out to this many calendar days

CHAIN_SCHEMA = rows.CHAIN  # the wire schema of a chain snapshot (contracts/rows.py)

# Per-symbol constants kept per process (~0.5 KB each): every symbol of a 5,000-name day, for the next day too.
SYMBOLS_CACHED = 8192
_STEPS = [500 * 10**e * m for e in range(0, 5) for m in (1, 2, 5)]  # mills: 0.5, 1, 2.5, 5, 10, 25, ...
_EPOCH = np.datetime64("1970-01-01", "D")
_LAST = np.array([S_LAST], dtype=np.uint64)


# ---------------------------------------------------------------- per-symbol parameters


class _Params(NamedTuple):
    """A symbol's surface and dividend parameters (stable draws plus its path's realized vol) and its chain seed."""

    base_vol: float  # implied trades at a premium to realized
    dividend: float
    skew: float  # IV slope per unit of ln(K/F)/sqrt(T), puts richer
    curvature: float  # smile
    level_amp: float  # slow drift of the whole surface (log amplitude)
    p1: float
    ph1: float
    p2: float
    ph2: float
    ts_mean: float  # short end over long end (negative = contango)
    p3: float
    ph3: float
    chain_seed: int  # the contracts' keys start from it (oh.adapters.sim.interest.contract_keys)


@lru_cache(maxsize=SYMBOLS_CACHED)
def _symbol_params(symbol: str, market_seed: int) -> _Params:
    """Surface and dividend parameters of a symbol: stable draws plus its path's realized vol."""
    close = close_path(symbol, market_seed)
    realized = float(np.std(np.diff(np.log(close))) * np.sqrt(252.0))
    rng = np.random.Generator(np.random.PCG64(symbol_seed(f"options:{symbol}", market_seed)))
    u = rng.uniform(size=12)
    return _Params(
        base_vol=realized * (1.0 + 0.15 * u[0]), dividend=0.025 * u[1], skew=0.25 + 0.25 * u[2],
        curvature=0.10 + 0.20 * u[3], level_amp=0.10 + 0.08 * u[4],
        p1=60 + 80 * u[5], ph1=2 * np.pi * u[6], p2=150 + 250 * u[7], ph2=2 * np.pi * u[8],
        ts_mean=0.02 + 0.08 * u[9], p3=90 + 200 * u[10], ph3=2 * np.pi * u[11],
        chain_seed=_seed_of(symbol, market_seed),
    )


def _seed_of(symbol: str, market_seed: int) -> int:
    return symbol_seed(f"chain:{symbol}", market_seed)


def dividend_yield(symbol: str, market_seed: int = DEFAULT_SEED) -> float:
    """The continuous dividend yield q the sim market prices `symbol`'s options with."""
    return float(_symbol_params(symbol, market_seed).dividend)


def _level(p: _Params, s: int) -> tuple[float, float]:
    """(level, term-structure slope) of the surface on session number `s` (scalars)."""
    level = np.exp(p.level_amp * (np.sin(2 * np.pi * s / p.p1 + p.ph1)
                                  + np.sin(2 * np.pi * s / p.p2 + p.ph2)) / np.sqrt(2.0))
    ts = p.ts_mean + 0.12 * np.sin(2 * np.pi * s / p.p3 + p.ph3)
    return level, ts


def _atm(p: _Params, level: Any, ts: Any, tt: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """atm(T) before the 5% floor: what the smile scales (and, floored, the ATM vol of the quotes)."""
    return p.base_vol * level * (1.0 + ts * np.exp(-tt / 0.3))  # type: ignore[no-any-return]


def _smile(p: _Params, atm: npt.NDArray[np.float64], forward: npt.NDArray[np.float64], k: npt.NDArray[np.float64],
           tt: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    x = np.clip(np.log(k / forward) / np.sqrt(np.maximum(tt, 1e-6)), -1.5, 1.5)
    return np.asarray(np.maximum(atm * (1.0 - p.skew * x + p.curvature * x * x), 0.05), dtype=np.float64)


def surface_iv(
    symbol: str, day: date, spot: float, strike: npt.ArrayLike, t: npt.ArrayLike, market_seed: int = DEFAULT_SEED
) -> npt.NDArray[np.float64]:
    """The sim surface's implied vol for strikes and times (years) on session `day`.

    atm(T) = base * level(day) * (1 + ts(day) * exp(-T / 0.3)), and with x = ln(K/F) / sqrt(T)
    (clipped to +-1.5): iv = atm(T) * (1 - skew * x + curvature * x^2), floored at 5%.
    """
    p = _symbol_params(symbol, market_seed)
    k, tt = np.broadcast_arrays(np.asarray(strike, dtype=np.float64), np.asarray(t, dtype=np.float64))
    level, ts = _level(p, calendar.session_index(day))
    return _smile(p, _atm(p, level, ts, tt), spot * np.exp((RATE - p.dividend) * tt), k, tt)


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


@lru_cache(maxsize=SYMBOLS_CACHED)
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
    return _base_step_mills(spot) * _step_factor(t)


def _base_step_mills(spot: float) -> int:
    return next((step for step in _STEPS if step * 100 >= spot * 1000), _STEPS[-1])


def _step_factor(t: float) -> int:
    return 1 if t <= 0.25 else 2 if t <= 1.0 else 4


@lru_cache(maxsize=256)
def _expiry_grid(day: date, depth: Depth) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """What the listing of `day` at `depth` takes from each expiry, whatever the spot: (expiry as days since
    epoch, strike half-width as a fraction of spot, strike step in mills per mill of the base step)."""
    exps = _expiries(day, depth.weekly_weeks, depth.monthly_days)
    if not exps:
        raise ValueError(f"no listed expiry after {day}: the calendar ends {calendar.all_sessions()[-1]}")
    exp_days, widths, factors = [], [], []
    for expiry in exps:
        t = (expiry - day).days / 365.0
        exp_days.append(int((np.datetime64(expiry, "D") - _EPOCH).astype(np.int64)))
        widths.append(min(0.30 * max(1.0, np.sqrt(t / 0.25)), 0.70) * depth.width)
        factors.append(_step_factor(t) * depth.step)
    return np.array(exp_days, dtype=np.int64), np.array(widths, dtype=np.float64), np.array(factors, dtype=np.int64)


def _listing(
    day: date, spot: float, depth: Depth = FULL_DEPTH,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """(expiry as days since epoch, is_call, strike in mills) of every listed contract: by expiry, calls before
    puts, strikes ascending. Each expiry's strikes are the multiples of its step in spot x (1 +- half-width)."""
    exp_days, half_width, factor = _expiry_grid(day, depth)
    step = _base_step_mills(spot) * factor
    lo = np.maximum(np.ceil(spot * (1 - half_width) * 1000 / step).astype(np.int64), 1)
    hi = np.floor(spot * (1 + half_width) * 1000 / step).astype(np.int64)
    count = np.maximum(hi - lo + 1, 0)  # strikes of each expiry; each is listed as a call and a put
    block = 2 * count
    at = np.arange(int(block.sum())) - np.repeat(np.cumsum(block) - block, block)  # place in its expiry's block
    of_calls = np.repeat(count, block)
    call = at < of_calls
    mills = (np.repeat(lo, block) + np.where(call, at, at - of_calls)) * np.repeat(step, block)
    return np.repeat(exp_days, block), call, mills


# ---------------------------------------------------------------- contract symbols

_DIGITS = 10 ** np.arange(7, -1, -1, dtype=np.int64)  # the 8 strike digits of a compact OCC symbol, in mills


@lru_cache(maxsize=4096)
def _date_and_right(expiry_day: int, is_call: bool) -> str:
    """The expiry and right of a compact OCC symbol (`yymmddC`), via oh.domain.osi (which refuses a date outside
    2000-2099): what follows the root."""
    text = OptionSymbol("X", date(1970, 1, 1) + timedelta(days=expiry_day), "C" if is_call else "P", 1).compact
    return text[1:-8]


def _contract_symbols(symbol: str, exp_days: npt.NDArray[np.int64], call: npt.NDArray[np.bool_],
                      mills: npt.NDArray[np.int64]) -> pa.StringArray:
    """OCC compact symbols, exactly OptionSymbol(symbol, expiry, right, strike).compact: the root validated by
    oh.domain.osi, the date and right once per (expiry, right), then the 8 strike digits; written as bytes into
    one Arrow buffer (a strike of 100,000 or more, never listed, takes the slower text path)."""
    n = mills.size
    if n == 0:
        return pa.array([], pa.string())
    pairs, inverse = np.unique(exp_days * 2 + call, return_inverse=True)
    OptionSymbol(symbol, date(1970, 1, 1) + timedelta(days=int(pairs[0] // 2)), "C", 1)  # a bad root raises here
    heads = [symbol + _date_and_right(v // 2, bool(v % 2)) for v in pairs.tolist()]
    inverse = inverse.reshape(-1)
    if not (int(mills.min()) >= 0 and int(mills.max()) < 10**8):
        text = np.char.add(np.array(heads)[inverse], np.char.zfill(mills.astype(str), 8))
        return pa.array(text.astype(object), pa.string())
    head = len(heads[0])
    width = head + 8
    out = np.empty((n, width), dtype=np.uint8)
    out[:, :head] = np.frombuffer("".join(heads).encode("ascii"), dtype=np.uint8).reshape(-1, head)[inverse]
    out[:, head:] = mills[:, None] // _DIGITS % 10 + ord("0")
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))


def _rights(call: npt.NDArray[np.bool_]) -> pa.StringArray:
    """The `right` column: "C" or "P" per contract (one byte each in one Arrow buffer)."""
    data = np.where(call, ord("C"), ord("P")).astype(np.uint8)
    return pa.StringArray.from_buffers(call.size, pa.py_buffer(np.arange(call.size + 1, dtype=np.int32)),
                                       pa.py_buffer(data))


# ---------------------------------------------------------------- quotes


def _spot(symbol: str, day: date, market_seed: int) -> tuple[int, float]:
    require_listed(symbol)
    s = calendar.session_index(day)
    days = calendar.all_sessions()
    if s >= len(days) or days[s] != np.datetime64(day, "D"):
        raise ValueError(f"{day} is not an NYSE session: the sim market has no chain that day")
    return s, float(closes(symbol, market_seed, s, s + 1)[0])


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


def _day_number(day: date) -> int:
    """Days from the epoch to `day` (how expiries are held here)."""
    return day.toordinal() - 719163  # date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class _Prices:
    """Model prices of some contracts on one or more sessions (a row per session): what a quote, a bar and a
    contract list are made of."""

    strike: npt.NDArray[np.float64]  # per contract
    keys: npt.NDArray[np.uint64]  # per contract: oh.adapters.sim.interest.contract_keys
    t: npt.NDArray[np.float64]  # years to expiry
    iv: npt.NDArray[np.float64]
    theo: npt.NDArray[np.float64]
    bid: npt.NDArray[np.float64]
    ask: npt.NDArray[np.float64]
    last: npt.NDArray[np.float64]


def _prices(
    p: _Params, sessions: tuple[int, ...], spots: tuple[float, ...], exp_days: npt.NDArray[np.int64],
    call: npt.NDArray[np.bool_], mills: npt.NDArray[np.int64],
) -> _Prices:
    """Theoretical value, bid, ask and last trade of each contract on each of `sessions` (spot `spots`); no
    greeks, no open interest. The sessions are the rows of one array: each element is what one session alone gives."""
    q = p.dividend
    strike = mills / 1000.0
    column = np.empty((len(sessions), 1))
    spot, level, ts, day_num = column.copy(), column.copy(), column.copy(), np.empty((len(sessions), 1), np.int64)
    for row, session in enumerate(sessions):
        spot[row], (level[row], ts[row]) = spots[row], _level(p, session)
        day_num[row] = calendar.all_sessions()[session].astype(np.int64)
    t = (exp_days - day_num) / 365.0
    atm = _atm(p, level, ts, t)
    iv = _smile(p, atm, spot * np.exp((RATE - q) * t), strike, t)
    theo = pricing.bsm_price(spot, strike, t, iv, RATE, q, call)

    # Quotes: a half-spread that grows with distance from the money (in standard deviations),
    # with maturity, and has an absolute floor that makes cheap options relatively wide. The ATM vol is the
    # surface at the forward, where the smile is 1: max(atm, 5%).
    dist = np.abs(np.log(strike / spot)) / (np.maximum(atm, 0.05) * np.sqrt(t))
    half = 0.5 * np.maximum(theo * (0.015 + 0.02 * dist), 0.01 + 0.01 * dist) * (1.0 + 0.3 * t)
    bid = np.maximum(np.floor((theo - half) / TICK + 1e-9), 0.0) * TICK
    ask = np.maximum(np.ceil((theo + half) / TICK - 1e-9), 1.0) * TICK
    bid, ask = np.round(bid, 2), np.round(ask, 2)

    keys = contract_keys(p.chain_seed, exp_days, call, mills)
    u_last = uniform(in_sessions(streams(keys, _LAST)[0], sessions))
    last = np.round(np.clip(theo + (u_last - 0.5) * (ask - bid), np.maximum(bid, TICK), ask), 2)
    return _Prices(strike, keys, t, iv, theo, bid, ask, last)


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
    market_seed: int = DEFAULT_SEED, with_volume: bool = True, with_open: bool = False,
) -> dict[str, npt.NDArray[Any]]:
    """The columns `bid`, `ask`, `last` (and `volume` unless `with_volume` is False) of `quote_contracts`,
    the same numbers, without the greeks, marks, contract symbols and (without volume) open interest it
    also computes: what a daily bar is made of (oh.adapters.sim.bars). With `with_open`, also `open`: the same
    contracts' `last` on the session before (`last` of `day` itself on the calendar's first session), priced
    in the same array as `day`."""
    session, spot = _spot(symbol, day, market_seed)
    exp_days, call, mills = _contracts(day, expiry, is_call, strike)
    p = _symbol_params(symbol, market_seed)
    sessions, spots = (session,), (spot,)
    if with_open and session > 0:
        before = calendar.all_sessions()[session - 1].astype(date)
        sessions, spots = (session, session - 1), (spot, _spot(symbol, before, market_seed)[1])
    prices = _prices(p, sessions, spots, exp_days, call, mills)
    out: dict[str, npt.NDArray[Any]] = {"bid": prices.bid[0], "ask": prices.ask[0], "last": prices.last[0]}
    if with_volume:
        out["volume"] = volume_and_interest(prices.keys, prices.strike, exp_days, call, session,
                                            partial(closes, symbol, market_seed), p.base_vol)[0]
    if with_open:
        out["open"] = prices.last[-1]
    return out


def _quote(
    symbol: str, day: date, session: int, spot: float, exp_days: npt.NDArray[np.int64],
    call: npt.NDArray[np.bool_], mills: npt.NDArray[np.int64], market_seed: int,
) -> pa.Table:
    p = _symbol_params(symbol, market_seed)
    n = mills.size
    if n == 0:  # a spot at the price floor lists no strike
        raise ValueError(f"no contract of {symbol} to quote on {day} (spot {spot})")
    prices = _prices(p, (session,), (spot,), exp_days, call, mills)
    strike, t, iv, bid, ask, last = prices.strike, prices.t[0], prices.iv[0], prices.bid[0], prices.ask[0], prices.last[0]
    greeks = pricing.bsm_greeks(spot, strike, t, iv, RATE, p.dividend, call)
    mark = pricing.mark_price(bid, ask, last)
    volume, oi = volume_and_interest(prices.keys, strike, exp_days, call, session, partial(closes, symbol, market_seed),
                                     p.base_vol)
    columns = [
        _contract_symbols(symbol, exp_days, call, mills),
        pa.repeat(pa.scalar(symbol, pa.string()), n),
        pa.array(np.full(n, np.datetime64(day, "D")), pa.date32()),
        pa.array(exp_days.astype("datetime64[D]"), pa.date32()),
        _rights(call),
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
    return _contract_symbols(symbol, exp_days, call, mills).to_pylist(), exp_days, call, mills
