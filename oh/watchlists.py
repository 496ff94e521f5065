"""Watchlists: named symbol sets. The default one is what `oh demo` backfills."""

from __future__ import annotations

DEFAULT_WATCHLIST = ("SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA")
