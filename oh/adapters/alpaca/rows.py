"""Alpaca JSON payloads to our row tables (pure): the only place that knows Alpaca's field names.

Shapes, as alpaca-py hands them over with raw_data=True after following every next_page_token:

- bars (stocks and options): {SYMBOL: [{"t": RFC 3339 at midnight New York, "o", "h", "l", "c",
  "v", "n" (trades), "vw" (VWAP)}, ...]};
- option chain snapshots: {CONTRACT: {"latestQuote": {"t", "bp", "ap", ...}, "latestTrade":
  {"t", "p", ...}, "dailyBar": {bar}, "impliedVolatility": x, "greeks": {"delta", "gamma", "rho",
  "theta", "vega"}, ...}}, any part of which may be missing;
- option contracts (trading API): [{"symbol", "expiration_date", "type", "strike_price",
  "open_interest" (a string), "open_interest_date", ...}].

A chain's quotes, last trade and volume count only when they are from the snapshot session: a quote
or trade from days ago is not that session's market (see docs/providers.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pyarrow as pa

from oh.adapters import tables
from oh.domain import osi

Bars = Mapping[str, Sequence[Mapping[str, Any]]]


def _num(value: Any) -> float:
    """A float from a JSON number or numeric string; NaN for null, missing or junk."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return math.nan
    return result


def candles(symbol: str, bars: Bars, start: date, end: date) -> pa.Table:
    """rows.CANDLES from Alpaca daily stock bars of `symbol`."""
    mine = bars.get(symbol) or []
    days = [tables.ny_date(bar.get("t")) for bar in mine]
    return tables.candles(
        symbol, days, [[_num(bar.get(k)) for k in ("o", "h", "l", "c")] for bar in mine],
        [_num(bar.get("v")) for bar in mine], start, end,
    )


def option_bars(underlying: str, bars: Bars, start: date, end: date) -> pa.Table:
    """rows.OPTION_BARS from Alpaca daily option bars keyed by contract."""
    flat = [(contract, bar) for contract, series in bars.items() for bar in series or []]
    return tables.option_bars(
        underlying, [c for c, _ in flat], [tables.ny_date(bar.get("t")) for _, bar in flat],
        [[_num(bar.get(k)) for k in ("o", "h", "l", "c")] for _, bar in flat],
        [_num(bar.get("v")) for _, bar in flat], [_num(bar.get("n")) for _, bar in flat],
        [_num(bar.get("vw")) for _, bar in flat], start, end,
    )


def newest_quote_day(snapshots: Mapping[str, Mapping[str, Any]]) -> date | None:
    """The New York date of the newest quote in a chain: the session the snapshot describes."""
    days = [tables.ny_date((snap.get("latestQuote") or {}).get("t")) for snap in snapshots.values()]
    known = [d for d in days if d is not None]
    return max(known) if known else None


def _same_day(part: Mapping[str, Any] | None, day: date) -> bool:
    return bool(part) and tables.ny_date(part.get("t")) == day  # type: ignore[union-attr]


def chain(underlying: str, day: date, spot: float, snapshots: Mapping[str, Mapping[str, Any]],
          contracts: Sequence[Mapping[str, Any]], rate: float, dividend_yield: float) -> tuple[pa.Table, int]:
    """rows.CHAIN from chain snapshots plus the contract list (open interest); also how many snapshot
    keys were not OCC symbols and were skipped."""
    open_interest = {c.get("symbol"): _num(c.get("open_interest")) for c in contracts}
    names, expiry, right, strike = [], [], [], []
    bid, ask, last, volume, oi, iv = [], [], [], [], [], []
    greeks: dict[str, list[float]] = {name: [] for name in tables.GREEKS}
    skipped = 0
    for name, snap in snapshots.items():
        try:
            parsed = osi.from_provider(name, "alpaca")
        except osi.BadOptionSymbol:
            skipped += 1
            continue
        quote, trade, bar = snap.get("latestQuote"), snap.get("latestTrade"), snap.get("dailyBar")
        fresh_quote = _same_day(quote, day)
        names.append(parsed.compact)
        expiry.append(parsed.expiry)
        right.append(parsed.right)
        strike.append(float(parsed.strike))
        bid.append(_num(quote.get("bp")) if fresh_quote else 0.0)  # type: ignore[union-attr]
        ask.append(_num(quote.get("ap")) if fresh_quote else 0.0)  # type: ignore[union-attr]
        last.append(_num(trade.get("p")) if _same_day(trade, day) else 0.0)  # type: ignore[union-attr]
        volume.append(_num(bar.get("v")) if _same_day(bar, day) else 0.0)  # type: ignore[union-attr]
        oi.append(open_interest.get(name, 0.0))
        iv.append(_num(snap.get("impliedVolatility")))
        given = snap.get("greeks") or {}
        for greek in tables.GREEKS:
            greeks[greek].append(_num(given.get(greek)))
    table = tables.chain(underlying, day, spot, names, expiry, right, strike, bid, ask, last, volume, oi, iv,
                         greeks, rate, dividend_yield)
    return table, skipped


def contract_symbols(contracts: Sequence[Mapping[str, Any]], after: date, until: date) -> list[str]:
    """Compact OCC symbols of listed contracts expiring in (after, until], sorted, junk skipped."""
    found = set()
    for contract in contracts:
        try:
            parsed = osi.from_provider(str(contract.get("symbol")), "alpaca")
        except osi.BadOptionSymbol:
            continue
        if after < parsed.expiry <= until:
            found.add(parsed.compact)
    return sorted(found)
