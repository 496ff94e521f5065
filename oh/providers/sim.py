"""The simulated market: deterministic daily candles per symbol, on NYSE sessions only.

Each symbol has its own seed (a hash of the symbol and the market seed), and its path starts at
the calendar's first session, so a day's candle is the same whatever range is requested and on
whatever machine. Prices follow geometric Brownian motion with a per-symbol drift and volatility;
open, high and low are drawn around the close so that low <= min(open, close) and
high >= max(open, close); volume is log-normal and rises on large moves.
"""

from __future__ import annotations

import hashlib
from datetime import date
from functools import lru_cache

import numpy as np
import pyarrow as pa

from contracts import rows
from oh import calendar
from oh.providers import UnknownSymbol

DEFAULT_SEED = 20250101
ANCHOR = date(2025, 1, 2)  # each symbol's path passes through its start price on this session
UNKNOWN_PREFIX = "ZZ"  # symbols starting with ZZ do not exist in the sim market (for error tests)


def symbol_seed(symbol: str, market_seed: int = DEFAULT_SEED) -> int:
    """A stable 64-bit seed for a symbol (no Python `hash`, which changes per process)."""
    digest = hashlib.sha256(f"{market_seed}:{symbol}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@lru_cache(maxsize=512)
def _path(symbol: str, market_seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.Generator(np.random.PCG64(symbol_seed(symbol, market_seed)))
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
    gap = rng.standard_normal(n) * daily_vol * 0.3
    previous = np.concatenate(([close[0] * np.exp(-log_returns[0])], close[:-1]))
    open_ = previous * np.exp(gap)
    wick_high = np.abs(rng.standard_normal(n)) * daily_vol * 0.5
    wick_low = np.abs(rng.standard_normal(n)) * daily_vol * 0.5
    high = np.maximum(open_, close) * np.exp(wick_high)
    low = np.minimum(open_, close) * np.exp(-wick_low)
    volume = base_volume * np.exp(0.35 * rng.standard_normal(n)) * (1 + 8 * np.abs(log_returns))
    floor = 0.01  # a long decline must not round a price to zero; raising all four keeps their order
    return (
        np.maximum(np.round(open_, 4), floor), np.maximum(np.round(high, 4), floor),
        np.maximum(np.round(low, 4), floor), np.maximum(np.round(close, 4), floor),
        volume.astype(np.int64),
    )


class SimProvider:
    """Offline, deterministic market data: the default for the demo, the tests and the benchmarks."""

    name = "sim"

    def __init__(self, market_seed: int = DEFAULT_SEED) -> None:
        self.market_seed = market_seed

    def daily_candles(self, symbol: str, start: date, end: date) -> pa.Table:
        """Candles for `symbol` on each NYSE session in [start, end] (schema contracts.rows.CANDLES)."""
        if symbol.startswith(UNKNOWN_PREFIX):
            raise UnknownSymbol(f"the sim market has no symbol {symbol}")
        days = calendar.sessions(start, end)
        lo = calendar.session_index(start)
        hi = lo + len(days)
        open_, high, low, close, volume = (column[lo:hi] for column in _path(symbol, self.market_seed))
        return pa.table(
            [pa.array(np.full(len(days), symbol, dtype=object), pa.string()), pa.array(days, pa.date32()),
             open_, high, low, close, volume],
            schema=rows.CANDLES,
        )

    def option_chain(self, symbol: str, day: date) -> pa.Table:
        """The full option chain of `symbol` on session `day` (schema contracts.rows.CHAIN)."""
        from oh.providers.sim_options import option_chain

        return option_chain(symbol, day, self.market_seed)

    def option_contracts(self, symbol: str, day: date, max_dte: int) -> list[str]:
        """Contracts of `symbol` listed on session `day` that expire within `max_dte` calendar days."""
        from oh.providers.sim_bars import option_contracts

        return option_contracts(symbol, day, max_dte, self.market_seed)

    def option_bars(self, symbol: str, contracts: list[str], start: date, end: date) -> pa.Table:
        """Daily bars of `contracts` on each session in [start, end] (schema contracts.rows.OPTION_BARS)."""
        from oh.providers.sim_bars import option_bars

        return option_bars(symbol, contracts, start, end, self.market_seed)
