"""The sim provider: daily candles, option chains, contract lists and option bars of the simulated market.

Candles come from each symbol's path (oh.adapters.sim.market), chains from oh.adapters.sim.options,
contract lists and bars from oh.adapters.sim.bars; all on NYSE sessions only. It behaves like a real
market where a real market would refuse: a symbol outside its universe (oh.adapters.sim.universe) is
UnknownSymbol, and a session whose close has not passed on its clock (default: the wall clock) is
SessionNotClosed, naming the last closed session. It never invents either.

A symbol's candles depend on the session only, never on the range asked for, so an incremental fetch meets
the stored rows exactly; `OH_SIM_SPLITS` (unset: no splits) gives symbols splits, after which the whole
history is served split-adjusted, as a real provider serves it: what tests of a changed history need.
"""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache

import numpy as np
import pyarrow as pa

from contracts import rows
from oh.adapters.sim.market import DEFAULT_SEED, candles, require_listed
from oh.adapters.tables import require_closed
from oh.domain import calendar

# Splits the sim market has had (none unless set; for tests of what a changed history does): a comma-separated
# list of SYMBOL@YYYY-MM-DD:RATIO, each the symbol's first session at the new price and shares per old share.
SPLITS_ENV = "OH_SIM_SPLITS"


@lru_cache(maxsize=8)
def _splits(spec: str) -> tuple[tuple[str, date, float], ...]:
    """(symbol, first session after the split, ratio) of each split of SPLITS_ENV's value."""
    out = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        symbol, _, rest = item.partition("@")
        day, _, ratio = rest.partition(":")
        out.append((symbol, date.fromisoformat(day), float(ratio)))
    return tuple(out)


def split_factor(symbol: str, as_of: date) -> float:
    """How many shares of `as_of` one share of `symbol`'s path is (1.0 without a split by then): a provider
    serving on the evening of `as_of` divides every price of the history by it and multiplies the volumes."""
    factor = 1.0
    for name, day, ratio in _splits(os.environ.get(SPLITS_ENV, "")):
        if name == symbol and day <= as_of:
            factor *= ratio
    return factor


class SimProvider:
    """Offline, deterministic market data: the default for the demo, the tests and the benchmarks."""

    name = "sim"

    def __init__(self, market_seed: int = DEFAULT_SEED, clock: calendar.Clock = calendar.wall_clock) -> None:
        self.market_seed = market_seed
        self.clock = clock

    def _require(self, symbol: str, start: date, end: date) -> None:
        """Refuse what a real market would: a symbol it does not list, a session that has not closed."""
        require_listed(symbol)
        require_closed(self.name, symbol, start, end, self.clock())

    def daily_candles(self, symbol: str, start: date, end: date) -> pa.Table:
        """Candles for `symbol` on each NYSE session in [start, end] (schema contracts.rows.CANDLES); a function of
        the symbol and the session, whatever the range, but split-adjusted as of `end` under OH_SIM_SPLITS."""
        self._require(symbol, start, end)
        days = calendar.sessions(start, end)
        lo = calendar.session_index(start)
        hi = lo + len(days)
        open_, high, low, close, volume = candles(symbol, self.market_seed, lo, hi)
        factor = split_factor(symbol, end)
        if factor != 1.0:  # split-adjusted as of `end`, as a provider serves the history the evening of `end`
            open_, high, low, close = (np.round(column / factor, 4) for column in (open_, high, low, close))
            volume = np.round(volume * factor).astype(np.int64)
        return pa.table(
            [pa.array(np.full(len(days), symbol, dtype=object), pa.string()), pa.array(days, pa.date32()),
             open_, high, low, close, volume],
            schema=rows.CANDLES,
        )

    def option_chain(self, symbol: str, day: date) -> pa.Table:
        """The full option chain of `symbol` on session `day` (schema contracts.rows.CHAIN)."""
        from oh.adapters.sim.options import option_chain

        self._require(symbol, day, day)
        return option_chain(symbol, day, self.market_seed)

    def option_contracts(self, symbol: str, day: date, max_dte: int) -> list[str]:
        """Contracts of `symbol` listed on session `day` that expire within `max_dte` calendar days."""
        from oh.adapters.sim.bars import option_contracts

        self._require(symbol, day, day)
        return option_contracts(symbol, day, max_dte, self.market_seed)

    def option_bars(self, symbol: str, contracts: list[str], start: date, end: date) -> pa.Table:
        """Daily bars of `contracts` on each session in [start, end] (schema contracts.rows.OPTION_BARS)."""
        from oh.adapters.sim.bars import option_bars

        self._require(symbol, start, end)
        return option_bars(symbol, contracts, start, end, self.market_seed)
