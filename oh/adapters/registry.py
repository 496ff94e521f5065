"""Which market data providers exist, and building one by name (with a fallback) for a job.

`alpaca` (alpaca-py) and `yahoo` (yfinance) are imported lazily, when first asked for; their
settings (keys, feeds, retries, a default fallback) are read by oh.adapters.settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oh.adapters.base import SERVED_BY_KEY, MarketDataProvider, ProviderError

if TYPE_CHECKING:
    import pyarrow as pa

PROVIDERS = ("sim", "alpaca", "yahoo")


def unavailable_reason(name: str) -> str | None:
    """None if `name` can be used here, else a one-line reason."""
    if name not in PROVIDERS:
        return f"unknown provider {name!r}: choose one of {', '.join(PROVIDERS)}"
    return None


def _build(name: str) -> MarketDataProvider:
    """A new provider called `name` (already known to be available), its package imported only now."""
    if name == "sim":
        from oh.adapters.sim.provider import SimProvider

        return SimProvider()
    from oh.adapters.settings import load_settings

    settings = load_settings()
    if name == "alpaca":
        from oh.adapters.alpaca.provider import AlpacaProvider

        return AlpacaProvider(settings)
    from oh.adapters.yahoo.provider import YahooProvider

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
        from oh.adapters.settings import load_settings

        configured = load_settings().default_fallback
        fallback = configured if configured != name else None
    if fallback is None:
        return _build(name)
    reason = unavailable_reason(fallback)
    if reason:
        raise ProviderError(f"fallback: {reason}")
    if fallback == name:
        raise ProviderError(f"the fallback {fallback} is the same as the provider")
    from oh.adapters.fallback import FallbackProvider

    return FallbackProvider(lambda: _build(name), name, lambda: _build(fallback), fallback)


def served_by(table: pa.Table, provider: MarketDataProvider) -> str:
    """The name of the provider that served `table`: a fallback marks it in the schema metadata."""
    metadata = table.schema.metadata or {}
    return metadata.get(SERVED_BY_KEY, provider.name.encode()).decode()
