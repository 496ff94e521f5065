"""The market data provider interface and its errors. `sim` is offline and deterministic.

Every provider returns Arrow tables in our row schemas (contracts/rows.py); vendor payloads are
converted at the adapter's edge and nowhere else. Which providers exist and how one is built:
oh.adapters.registry. See docs/providers.md.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa  # not at run time: `oh emit` validates providers without loading pyarrow

SERVED_BY_KEY = b"oh.provider"  # schema metadata: which provider served a table (set by a fallback)


class ProviderError(RuntimeError):
    """A provider could not serve a request; the message says why in a trader's words."""


class UnknownSymbol(ProviderError):
    """The provider does not know this symbol."""


class SessionNotClosed(ProviderError):
    """A request reaches a session whose close has not passed: no provider has its data (and none invents it)."""


class MarketDataProvider(Protocol):
    """Market data as Arrow tables in our row schemas (contracts.rows)."""

    name: str

    def daily_candles(self, symbol: str, start: date, end: date) -> pa.Table:
        """Daily candles of `symbol` on each session in [start, end] (rows.CANDLES)."""
        ...

    def option_chain(self, symbol: str, day: date) -> pa.Table:
        """The full option chain of `symbol` on session `day`, with IV and Greeks (rows.CHAIN)."""
        ...

    def option_contracts(self, symbol: str, day: date, max_dte: int) -> list[str]:
        """OCC compact symbols of `symbol`'s contracts listed on `day` expiring within `max_dte` days."""
        ...

    def option_bars(self, symbol: str, contracts: list[str], start: date, end: date) -> pa.Table:
        """Daily bars of `contracts` (all on underlying `symbol`) over [start, end] (rows.OPTION_BARS)."""
        ...
