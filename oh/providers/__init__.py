"""Market data providers behind one interface. `sim` is offline and deterministic.

Every provider returns Arrow tables in our row schemas (contracts/rows.py); vendor payloads are
converted at the adapter's edge and nowhere else. `alpaca` and `yahoo` are known names; one that
is not available in this build fails with a clear message rather than a stub that returns nothing.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa  # not at run time: `oh emit` validates providers without loading pyarrow

KNOWN_PROVIDERS = ("sim", "alpaca", "yahoo")
AVAILABLE_PROVIDERS = ("sim",)
SERVED_BY_KEY = b"oh.provider"  # schema metadata: which provider served a table (set by a fallback)


class ProviderError(RuntimeError):
    """A provider could not serve a request; the message says why in a trader's words."""


class UnknownSymbol(ProviderError):
    """The provider does not know this symbol."""


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



def unavailable_reason(name: str) -> str | None:
    """None if `name` can be used here, else a one-line reason."""
    if name not in KNOWN_PROVIDERS:
        return f"unknown provider {name!r}: choose one of {', '.join(KNOWN_PROVIDERS)}"
    if name not in AVAILABLE_PROVIDERS:
        return f"provider {name!r} is not available in this build yet; use --provider sim"
    return None


def get_provider(name: str, fallback: str | None = None) -> MarketDataProvider:
    """Build the provider called `name` (trying `fallback` per request when it fails), or raise
    ProviderError saying why it cannot be used."""
    if fallback is not None:
        raise ProviderError("--fallback is not available in this build yet")
    reason = unavailable_reason(name)
    if reason:
        raise ProviderError(reason)
    from oh.providers.sim import SimProvider

    return SimProvider()


def served_by(table: pa.Table, provider: MarketDataProvider) -> str:
    """The name of the provider that served `table`: a fallback marks it in the schema metadata."""
    metadata = table.schema.metadata or {}
    return metadata.get(SERVED_BY_KEY, provider.name.encode()).decode()
