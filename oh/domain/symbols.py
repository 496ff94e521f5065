"""Validation of ticker symbols as a user types them (pure)."""

from __future__ import annotations

import re

_TICKER = re.compile(r"^[A-Z][A-Z0-9]{0,5}([.\-][A-Z0-9]{1,2})?$")


class BadSymbol(ValueError):
    """A symbol that cannot be a US equity ticker."""


def parse_symbols(text: str) -> list[str]:
    """Split a comma list into upper-case tickers, unique and in order; raise BadSymbol naming the culprit."""
    symbols: list[str] = []
    for raw in text.split(","):
        symbol = raw.strip().upper()
        if not symbol:
            continue
        if not _TICKER.match(symbol):
            raise BadSymbol(f"malformed symbol {raw.strip()!r}: expected a ticker such as AAPL or BRK.B")
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols:
        raise BadSymbol("no symbols given")
    return symbols
