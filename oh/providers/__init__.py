"""Market data providers behind one interface. `sim` is offline and deterministic.

`alpaca` and `yahoo` are known names but not available in this build yet: asking for them
fails with a clear message rather than a stub that returns nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa  # not at run time: `oh emit` validates providers without loading pyarrow

KNOWN_PROVIDERS = ("sim", "alpaca", "yahoo")
AVAILABLE_PROVIDERS = ("sim",)


class ProviderError(RuntimeError):
    """A provider could not serve a request; the message says why in a trader's words."""


class UnknownSymbol(ProviderError):
    """The provider does not know this symbol."""


class CandleProvider(Protocol):
    """Market data as Arrow tables: daily candles over an inclusive range (contracts.rows.CANDLES) and the
    full option chain of one session (contracts.rows.CHAIN)."""

    name: str

    def daily_candles(self, symbol: str, start: object, end: object) -> pa.Table: ...

    def option_chain(self, symbol: str, day: object) -> pa.Table: ...


def unavailable_reason(name: str) -> str | None:
    """None if `name` can be used here, else a one-line reason."""
    if name not in KNOWN_PROVIDERS:
        return f"unknown provider {name!r}: choose one of {', '.join(KNOWN_PROVIDERS)}"
    if name not in AVAILABLE_PROVIDERS:
        return f"provider {name!r} is not available in this build yet; use --provider sim"
    return None


def get_provider(name: str) -> CandleProvider:
    """Build the provider called `name`, or raise ProviderError saying why it cannot be used."""
    reason = unavailable_reason(name)
    if reason:
        raise ProviderError(reason)
    from oh.providers.sim import SimProvider

    return SimProvider()
