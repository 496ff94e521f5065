"""The sim provider: daily candles, option chains, contract lists and option bars of the simulated market.

Candles come from each symbol's path (oh.adapters.sim.market), chains from oh.adapters.sim.options,
contract lists and bars from oh.adapters.sim.bars; all on NYSE sessions only. It behaves like a real
market where a real market would refuse: a symbol outside its universe (oh.adapters.sim.universe) is
UnknownSymbol, and a session whose close has not passed on its clock (default: the wall clock) is
SessionNotClosed, naming the last closed session. It never invents either.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from contracts import rows
from oh.adapters.sim.market import DEFAULT_SEED, require_listed, spot_path
from oh.adapters.tables import require_closed
from oh.domain import calendar


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
        """Candles for `symbol` on each NYSE session in [start, end] (schema contracts.rows.CANDLES)."""
        self._require(symbol, start, end)
        days = calendar.sessions(start, end)
        lo = calendar.session_index(start)
        hi = lo + len(days)
        open_, high, low, close, volume = (column[lo:hi] for column in spot_path(symbol, self.market_seed))
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
