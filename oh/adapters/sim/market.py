"""The simulated market's foundations, shared by its candles, chains, bars and live feed (pure).

- Seeds: each symbol has its own (a hash of the symbol and the market seed), so a day's data is the
  same whatever range is requested and on whatever machine.
- Spot paths: prices follow geometric Brownian motion with a per-symbol drift and volatility from
  the calendar's first session; open, high and low are drawn around the close so that
  low <= min(open, close) and high >= max(open, close); volume is log-normal and rises on large moves.
  `spot_path` is the whole path (cached for a few symbols), `path_between` a range of it (every draw made,
  prices for the range only), `close_path` its closes alone.
- Windows: `closes` and `candles` serve a range of a symbol's closes or candles from a few months of them
  kept per symbol (bounded: oh.adapters.sim.windows), so a worker that meets 5,000 symbols a day does not
  draw a symbol's path again for its next day.
- Hashing: splitmix64 in wrapping uint64 arithmetic, for per-contract random streams that do not
  depend on the order of requests.
- Listing: only the symbols of oh.adapters.sim.universe exist; `require_listed` answers any other
  with UnknownSymbol, as a real market would (the path helpers themselves generate any name).
"""

from __future__ import annotations

import hashlib
from datetime import date
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from oh.adapters.base import UnknownSymbol
from oh.adapters.sim.universe import SYNTHETIC_ENV, is_listed
from oh.adapters.sim.windows import Windows
from oh.domain import calendar

_U64 = np.uint64

DEFAULT_SEED = 20250101
ANCHOR = date(2025, 1, 2)  # each symbol's path passes through its start price on this session


def require_listed(symbol: str) -> None:
    """Raise UnknownSymbol unless the sim market lists `symbol` (oh.adapters.sim.universe)."""
    if not is_listed(symbol):
        raise UnknownSymbol(
            f"the sim market has no symbol {symbol} (`oh symbols list --provider sim` lists its symbols; "
            f"{SYNTHETIC_ENV} adds numbered ones)"
        )


def symbol_seed(symbol: str, market_seed: int = DEFAULT_SEED) -> int:
    """A stable 64-bit seed for a symbol (no Python `hash`, which changes per process)."""
    digest = hashlib.sha256(f"{market_seed}:{symbol}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


# A path is 5 columns of ~11,600 sessions (~460 KB): a worker going through thousands of symbols keeps this many.
PATHS_CACHED = 64
CLOSES_CACHED = 512  # a close path is one column (~93 KB)
_FLOOR = 0.01  # a long decline must not round a price to zero; raising all four keeps their order


def _start(rng: np.random.Generator) -> tuple[float, float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The first draws of a symbol's path, in order: (daily vol, base volume, log returns, close before
    rounding). `spot_path` goes on drawing from `rng` after them; `close_path` stops here."""
    n = len(calendar.all_sessions())
    start_price = float(rng.uniform(20, 400))
    annual_vol = float(rng.uniform(0.15, 0.55))
    annual_drift = float(rng.uniform(-0.02, 0.12))
    base_volume = float(rng.uniform(5e5, 3e7))
    daily_vol = annual_vol / np.sqrt(252)
    shocks = rng.standard_normal(n)
    log_returns = (annual_drift / 252 - 0.5 * daily_vol**2) + daily_vol * shocks
    cumulative = np.cumsum(log_returns)
    anchor = calendar.session_index(ANCHOR)  # the price is start_price here, so decades of drift never
    close = start_price * np.exp(cumulative - cumulative[anchor])  # push today's prices to absurd levels
    return daily_vol, base_volume, log_returns, close


def _rng(symbol: str, market_seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(symbol_seed(symbol, market_seed)))


@lru_cache(maxsize=PATHS_CACHED)
def spot_path(symbol: str, market_seed: int) -> tuple[np.ndarray, ...]:
    """(open, high, low, close, volume) of `symbol` on every session of the calendar."""
    return path_between(symbol, market_seed, 0, len(calendar.all_sessions()))


def path_between(symbol: str, market_seed: int, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    """`spot_path(symbol, market_seed)` on sessions [lo, hi) only, the same numbers: every draw of the path is
    made (they come one after the other from one generator), but the prices are computed for the sessions
    asked for only (what a candle fetch of a few weeks costs: about half of the whole path)."""
    rng = _rng(symbol, market_seed)
    daily_vol, base_volume, log_returns, close = _start(rng)
    n = close.size
    gap = rng.standard_normal(n)[lo:hi] * daily_vol * 0.3
    if lo == 0:
        previous = np.concatenate(([close[0] * np.exp(-log_returns[0])], close[: max(hi - 1, 0)]))[:hi]
    else:
        previous = close[lo - 1 : hi - 1]
    close = close[lo:hi]
    open_ = previous * np.exp(gap)
    wick_high = np.abs(rng.standard_normal(n)[lo:hi]) * daily_vol * 0.5
    wick_low = np.abs(rng.standard_normal(n)[lo:hi]) * daily_vol * 0.5
    high = np.maximum(open_, close) * np.exp(wick_high)
    low = np.minimum(open_, close) * np.exp(-wick_low)
    volume = base_volume * np.exp(0.35 * rng.standard_normal(hi)[lo:]) * (1 + 8 * np.abs(log_returns[lo:hi]))
    return (
        np.maximum(np.round(open_, 4), _FLOOR), np.maximum(np.round(high, 4), _FLOOR),
        np.maximum(np.round(low, 4), _FLOOR), np.maximum(np.round(close, 4), _FLOOR),
        volume.astype(np.int64),
    )


@lru_cache(maxsize=CLOSES_CACHED)
def close_path(symbol: str, market_seed: int) -> npt.NDArray[np.float64]:
    """`spot_path(symbol, market_seed)[3]`, the same numbers, without drawing and computing the other four
    columns (a fifth of the work): what the option chains and bars price from."""
    close = _start(_rng(symbol, market_seed))[3]
    return np.maximum(np.round(close, 4), _FLOOR)


# A few months of each symbol's closes and candles around the sessions last asked for, kept per process: a chain
# or a bar needs ~40 closes, a daily's candle fetch ~31 sessions, and a worker meets each of 5,000 symbols once a
# day (too many for the caches of whole paths above), so the next day's fetch of a symbol is served from here
# without drawing its path again (oh.adapters.sim.windows).
WINDOWS_CACHED = 8192  # symbols
_close_windows = Windows(128, WINDOWS_CACHED)  # ~1.2 KB a symbol, ~10 MB at most
_candle_windows = Windows(64, WINDOWS_CACHED)  # 5 columns: ~2.7 KB a symbol, ~22 MB at most


def closes(symbol: str, market_seed: int, lo: int, hi: int) -> npt.NDArray[np.float64]:
    """`close_path(symbol, market_seed)[lo:hi]`, from the symbol's kept window when it holds those sessions."""
    def compute(first: int, end: int) -> tuple[np.ndarray, ...]:
        return (close_path(symbol, market_seed)[first:end],)

    return _close_windows.between((symbol, market_seed), lo, hi, len(calendar.all_sessions()), compute)[0]


def candles(symbol: str, market_seed: int, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    """`path_between(symbol, market_seed, lo, hi)`, from the symbol's kept window when it holds those sessions."""
    def compute(first: int, end: int) -> tuple[np.ndarray, ...]:
        return path_between(symbol, market_seed, first, end)

    return _candle_windows.between((symbol, market_seed), lo, hi, len(calendar.all_sessions()), compute)


_GAMMA, _M1, _M2 = _U64(0x9E3779B97F4A7C15), _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
_30, _27, _31 = _U64(30), _U64(27), _U64(31)


def mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finalizer: a bijective, well-mixed uint64 -> uint64 (same bits on every machine).

    In place on one new array: integer arrays wrap silently (only numpy's scalar arithmetic warns of an
    overflow, so a 0-d input goes through errstate)."""
    if np.ndim(x) == 0:
        with np.errstate(over="ignore"):
            return mix(np.reshape(x, 1))[0]
    x = x + _GAMMA
    x ^= x >> _30
    x *= _M1
    x ^= x >> _27
    x *= _M2
    x ^= x >> _31
    return x


def uniform(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    """(0, 1) from the top 53 bits of a hash; never exactly 0 or 1."""
    return ((h >> _U64(11)).astype(np.float64) + 0.5) * 2.0**-53


