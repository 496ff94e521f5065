"""Two providers as one: every request goes to the first, and to the second when the first fails.

The fallback is per request, so per symbol (and per session for chains and bars): one symbol the
primary cannot serve does not move the others. Each table served is marked in its schema metadata
(SERVED_BY_KEY) with the provider that served it; the jobs record that name on the asset row
(oh.adapters.registry.served_by). When both fail, the error names both reasons; UnknownSymbol only when
neither provider knows the symbol.

A primary that cannot even be built (no Alpaca keys, say) is not fatal here: every request goes
straight to the fallback, and the reason is logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, TypeVar

from oh.adapters.base import (
    SERVED_BY_KEY,
    MarketDataProvider,
    ProviderError,
    UnknownSymbol,
)

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)
T = TypeVar("T")


def mark_served(table: pa.Table, name: str) -> pa.Table:
    """`table` with SERVED_BY_KEY set to `name` in its schema metadata (other metadata kept)."""
    metadata = dict(table.schema.metadata or {})
    metadata[SERVED_BY_KEY] = name.encode()
    return table.replace_schema_metadata(metadata)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class FallbackProvider:
    """`primary`, then `fallback` per request; tables say which one served them."""

    def __init__(self, primary: Callable[[], MarketDataProvider], primary_name: str,
                 fallback: Callable[[], MarketDataProvider], fallback_name: str) -> None:
        self.name = primary_name
        self.fallback_name = fallback_name
        self._build = {primary_name: primary, fallback_name: fallback}
        self._built: dict[str, MarketDataProvider] = {}
        self._broken: dict[str, ProviderError] = {}

    def _provider(self, name: str) -> MarketDataProvider:
        """The provider called `name`, built on first use; its construction error is kept and re-raised."""
        if name in self._broken:
            raise self._broken[name]
        if name not in self._built:
            try:
                self._built[name] = self._build[name]()
            except ProviderError as exc:
                self._broken[name] = exc
                log.warning("provider %s cannot be used (%s); every request goes to the other", name, _one_line(exc))
                raise
        return self._built[name]

    def _serve(self, what: str, call: Callable[[MarketDataProvider], T]) -> tuple[T, str]:
        """Run `call` on the primary, else on the fallback; the result and who served it."""
        try:
            return call(self._provider(self.name)), self.name
        except Exception as first:  # any failure of the primary is a reason to ask the other
            if self.name not in self._broken:
                log.warning("%s failed on %s (%s: %s); trying %s", self.name, what, type(first).__name__,
                            _one_line(first), self.fallback_name)
            try:
                return call(self._provider(self.fallback_name)), self.fallback_name
            except Exception as second:
                both = f"{self.name}: {_one_line(first)}; {self.fallback_name} (fallback): {_one_line(second)}"
                unknown = isinstance(first, UnknownSymbol) and isinstance(second, UnknownSymbol)
                raise (UnknownSymbol if unknown else ProviderError)(both) from None

    def daily_candles(self, symbol: str, start: date, end: date) -> pa.Table:
        """Candles from the first provider that serves them, marked with its name."""
        table, name = self._serve(f"daily candles of {symbol}", lambda p: p.daily_candles(symbol, start, end))
        return mark_served(table, name)

    def option_chain(self, symbol: str, day: date) -> pa.Table:
        """The chain from the first provider that serves it, marked with its name."""
        table, name = self._serve(f"the {day} option chain of {symbol}", lambda p: p.option_chain(symbol, day))
        return mark_served(table, name)

    def option_contracts(self, symbol: str, day: date, max_dte: int) -> list[str]:
        """The contract list from the first provider that serves it."""
        contracts, _ = self._serve(f"the {day} contracts of {symbol}",
                                   lambda p: p.option_contracts(symbol, day, max_dte))
        return contracts

    def option_bars(self, symbol: str, contracts: list[str], start: date, end: date) -> pa.Table:
        """Bars from the first provider that serves them, marked with its name."""
        table, name = self._serve(f"option bars of {symbol}", lambda p: p.option_bars(symbol, contracts, start, end))
        return mark_served(table, name)
