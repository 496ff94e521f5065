"""Market data providers behind one interface. `sim` is offline and deterministic.

Every provider returns Arrow tables in our row schemas (contracts/rows.py); vendor payloads are
converted at the adapter's edge and nowhere else. `alpaca` (alpaca-py) and `yahoo` (yfinance) are
imported lazily, when first asked for; their settings (keys, feeds, retries, a default fallback) are
read by oh.providers.config. See docs/providers.md.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa  # not at run time: `oh emit` validates providers without loading pyarrow

KNOWN_PROVIDERS = ("sim", "alpaca", "yahoo")
AVAILABLE_PROVIDERS = ("sim", "alpaca", "yahoo")
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


def _build(name: str) -> MarketDataProvider:
    """A new provider called `name` (already known to be available), its package imported only now."""
    if name == "sim":
        from oh.providers.sim import SimProvider

        return SimProvider()
    from oh.providers.config import load_settings

    settings = load_settings()
    if name == "alpaca":
        from oh.providers.alpaca import AlpacaProvider

        return AlpacaProvider(settings)
    from oh.providers.yahoo import YahooProvider

    return YahooProvider(settings)


def get_provider(name: str, fallback: str | None = None) -> MarketDataProvider:
    """Build the provider called `name` (trying `fallback` per request when it fails), or raise
    ProviderError saying why it cannot be used.

    Without an explicit `fallback`, a real provider (alpaca, yahoo) takes the configured default
    (OH_PROVIDER_FALLBACK or `default_fallback` in $OH_HOME/config/providers.toml) unless that is
    itself; the offline `sim` never falls back to the network unless asked to.
    """
    reason = unavailable_reason(name)
    if reason:
        raise ProviderError(reason)
    if fallback is None and name != "sim":
        from oh.providers.config import load_settings

        configured = load_settings().default_fallback
        fallback = configured if configured != name else None
    if fallback is None:
        return _build(name)
    reason = unavailable_reason(fallback)
    if reason:
        raise ProviderError(f"fallback: {reason}")
    if fallback == name:
        raise ProviderError(f"the fallback {fallback} is the same as the provider")
    from oh.providers.fallback import FallbackProvider

    return FallbackProvider(lambda: _build(name), name, lambda: _build(fallback), fallback)


def served_by(table: pa.Table, provider: MarketDataProvider) -> str:
    """The name of the provider that served `table`: a fallback marks it in the schema metadata."""
    metadata = table.schema.metadata or {}
    return metadata.get(SERVED_BY_KEY, provider.name.encode()).decode()
