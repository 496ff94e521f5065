"""yfinance DataFrames to our row tables (pure): the only place that knows yfinance's column names.

Yahoo's known quirks, handled here:

- history: `Close` is split-adjusted but not dividend-adjusted (what Alpaca's split adjustment gives);
  `Adj Close`, `Dividends` and `Stock Splits` are not candles and are dropped; days with null prices
  (Yahoo's placeholder rows, a contract that did not trade) are dropped;
- option chains: fields Yahoo has no value for are missing (volume, openInterest, bid, ask) and
  count as 0; bid = ask = 0 means no quote; `lastPrice` and `volume` count only if lastTradeDate is in
  the snapshot session, since Yahoo keeps showing a last trade from weeks ago with that day's volume
  (so a stale volume is 0, as Alpaca's rows give it: volume is the session's); `impliedVolatility` is
  used only when both sides are quoted and it is not Yahoo's 1e-5 placeholder, else ours is
  computed from the mark; Yahoo gives no Greeks, so oh.domain.pricing computes them all; mini contracts
  (contractSize other than REGULAR) are left out;
- option bars: Yahoo has neither trade counts nor VWAPs: they are 0 and NaN (unknown).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa

from oh.adapters import tables
from oh.domain import osi

PRICE_COLUMNS = ("Open", "High", "Low", "Close")
TRUSTED_IV = (0.01, 5.0)  # Yahoo's IV outside this range is a placeholder, not a volatility


def _days(frame: Any) -> list[date]:
    """The session date of each row of a yfinance history frame (its index is in the exchange's zone)."""
    return [stamp.date() for stamp in frame.index]


def _num(value: Any) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return math.nan
    return result


def candles(symbol: str, frame: Any, start: date, end: date) -> pa.Table:
    """rows.CANDLES from `Ticker.history(auto_adjust=False)` of `symbol`."""
    if frame is None or len(frame) == 0:
        return tables.candles(symbol, [], [], [], start, end)
    return tables.candles(symbol, _days(frame), frame[list(PRICE_COLUMNS)].to_numpy(dtype=float).tolist(),
                          frame["Volume"].to_numpy(dtype=float).tolist(), start, end)


def option_bars(underlying: str, frames: Mapping[str, Any], start: date, end: date) -> pa.Table:
    """rows.OPTION_BARS from one `Ticker(contract).history()` frame per contract."""
    contracts, days, ohlc, volume = [], [], [], []
    for contract, frame in frames.items():
        if frame is None or len(frame) == 0:
            continue
        contracts += [contract] * len(frame)
        days += _days(frame)
        ohlc += frame[list(PRICE_COLUMNS)].to_numpy(dtype=float).tolist()
        volume += frame["Volume"].to_numpy(dtype=float).tolist()
    unknown = [math.nan] * len(contracts)
    return tables.option_bars(underlying, contracts, days, ohlc, volume, unknown, unknown, start, end)


def _quote(value: Any) -> float:
    """A bid or ask: 0 when Yahoo left it out, sent null, or sent a non-positive number."""
    number = _num(value)
    return number if math.isfinite(number) and number > 0 else 0.0


def _trusted_iv(iv: float, bid: float, ask: float) -> float:
    low, high = TRUSTED_IV
    return iv if bid > 0 and ask > 0 and low <= iv <= high else math.nan


def chain(underlying: str, day: date, spot: float, frames: Sequence[Any], rate: float,
          dividend_yield: float) -> tuple[pa.Table, int]:
    """rows.CHAIN from the calls and puts frames of `Ticker.option_chain(expiry)` for each expiry; also
    how many rows were skipped (unreadable symbols or mini contracts)."""
    names, expiry, right, strike = [], [], [], []
    bid, ask, last, volume, oi, iv = [], [], [], [], [], []
    skipped = 0
    for frame in frames:
        if frame is None:
            continue
        for row in frame.to_dict("records"):
            size = row.get("contractSize")
            try:
                parsed = osi.from_provider(str(row.get("contractSymbol")), "yahoo")
            except osi.BadOptionSymbol:
                skipped += 1
                continue
            if isinstance(size, str) and size != "REGULAR":
                skipped += 1
                continue
            b, a = _quote(row.get("bid")), _quote(row.get("ask"))
            traded = row.get("lastTradeDate")
            fresh = not pd.isna(traded) and tables.ny_date(traded.to_pydatetime()) == day
            names.append(parsed.compact)
            expiry.append(parsed.expiry)
            right.append(parsed.right)
            strike.append(float(parsed.strike))
            bid.append(b)
            ask.append(a)
            last.append(_num(row.get("lastPrice")) if fresh else 0.0)
            volume.append(_num(row.get("volume")) if fresh else 0.0)  # Yahoo keeps the last trade day's volume
            oi.append(_num(row.get("openInterest")))
            iv.append(_trusted_iv(_num(row.get("impliedVolatility")), b, a))
    table = tables.chain(underlying, day, spot, names, expiry, right, strike, bid, ask, last, volume, oi, iv, {},
                         rate, dividend_yield)
    return table, skipped

