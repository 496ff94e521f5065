"""The last step of every real adapter: plain columns in, Arrow tables in our row schemas out (pure).

Vendor parsing stops before this module; what it receives is already in our units (dates as
sessions in New York, prices in currency, 0 for "no quote"). It applies the rules every provider
shares, so alpaca and yahoo rows mean the same thing:

- candles and bars: only NYSE sessions inside the asked range, one row per day (the first wins),
  in date order; rows whose prices are missing or not positive are dropped (a vendor's empty day
  is not a candle); a request reaching a session that has not closed is refused before anything is
  asked (`require_closed`, SessionNotClosed naming the last closed session): its bar would be a
  partial day stored as if it were the day, and a later session has no data at all;
- chains: contracts that expire on or before the snapshot session are left out (they are gone at
  that close); mark follows oh.domain.pricing.mark_price; IV and Greeks are the source's where it gave a
  finite value, else computed with oh.domain.pricing (BSM, time to expiry in calendar days / 365, rate
  and dividend yield from the provider settings); rows come ordered by expiry, calls first, strike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from contracts import rows
from oh.adapters.base import SessionNotClosed
from oh.domain import calendar, pricing

NEW_YORK = ZoneInfo("America/New_York")
GREEKS = ("delta", "gamma", "vega", "theta", "rho")


def ny_date(moment: str | float | datetime | None) -> date | None:
    """The New York calendar date of an RFC 3339 text (nanoseconds allowed), epoch seconds or datetime."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        stamp = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    elif isinstance(moment, (int, float)):
        stamp = datetime.fromtimestamp(float(moment), tz=UTC)
    else:
        text = moment.strip().replace("Z", "+00:00")
        head, dot, tail = text.partition(".")
        if dot:  # Python reads at most 6 fractional digits; vendors send up to 9
            digits = len(tail) - len(tail.lstrip("0123456789"))
            text = f"{head}.{tail[:min(digits, 6)]}{tail[digits:]}"
        stamp = datetime.fromisoformat(text)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(NEW_YORK).date()


def require_closed(provider: str, symbol: str, start: date, end: date, now: datetime | None = None) -> None:
    """Raise SessionNotClosed unless every session in [start, end] has closed by `now` (default: the wall clock).

    The message names the first session that has not closed and the last one that has, so the trader
    sees both what was asked and what can be asked.
    """
    clock = now or calendar.wall_clock()
    unclosed = calendar.unclosed_sessions(start, end, clock)
    if len(unclosed):
        last = calendar.last_closed_session(clock)
        raise SessionNotClosed(
            f"{provider}: {symbol} on {unclosed[0].astype(date)}: that session has not closed yet; the last closed "
            f"session is {last} (a session has data once it has closed)"
        )


def _floats(values: Sequence[float] | npt.ArrayLike, n: int) -> npt.NDArray[np.float64]:
    """A float64 array of `n` values; None becomes NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64).reshape(n)


def _keep(days: Sequence[date], prices: npt.NDArray[np.float64], start: date, end: date) -> list[int]:
    """Indices of rows to keep: sessions in [start, end] with positive finite prices, the first per day, by date."""
    sessions = set(calendar.sessions(start, end).astype(object))
    seen: set[date] = set()
    keep = []
    for i in sorted(range(len(days)), key=lambda j: days[j]):
        day = days[i]
        if day in sessions and day not in seen and bool(np.all(np.isfinite(prices[i])) and np.all(prices[i] > 0)):
            seen.add(day)
            keep.append(i)
    return keep


def candles(symbol: str, days: Sequence[date], ohlc: Sequence[Sequence[float]], volume: Sequence[float],
            start: date, end: date) -> pa.Table:
    """rows.CANDLES for `symbol` from per-day open/high/low/close and volume (missing volume -> 0)."""
    n_in = len(days)
    prices = _floats([x for row in ohlc for x in row], n_in * 4).reshape(n_in, 4)
    keep = _keep(days, prices, start, end)
    vol = np.nan_to_num(_floats(volume, n_in))[keep]
    return pa.table(
        [pa.array([symbol] * len(keep), pa.string()), pa.array([days[i] for i in keep], pa.date32()),
         *(prices[keep, j] for j in range(4)), np.round(vol).astype(np.int64)],
        schema=rows.CANDLES,
    )


def option_bars(underlying: str, contracts: Sequence[str], days: Sequence[date], ohlc: Sequence[Sequence[float]],
                volume: Sequence[float], trade_count: Sequence[float], vwap: Sequence[float],
                start: date, end: date) -> pa.Table:
    """rows.OPTION_BARS from one row per (contract, day), by contract then date; an unknown trade count
    is 0 and an unknown VWAP NaN (Yahoo has neither)."""
    n_in = len(contracts)
    prices = _floats([x for row in ohlc for x in row], n_in * 4).reshape(n_in, 4)
    keep: list[int] = []
    for contract in sorted(set(contracts)):
        mine = [i for i in range(n_in) if contracts[i] == contract]
        keep.extend(mine[k] for k in _keep([days[i] for i in mine], prices[mine], start, end))
    count, avg = _floats(trade_count, n_in)[keep], _floats(vwap, n_in)[keep]
    return pa.table(
        [pa.array([contracts[i] for i in keep], pa.string()), pa.array([underlying] * len(keep), pa.string()),
         pa.array([days[i] for i in keep], pa.date32()), *(prices[keep, j] for j in range(4)),
         np.round(np.nan_to_num(_floats(volume, n_in)[keep])).astype(np.int64),
         np.round(np.nan_to_num(count)).astype(np.int64), np.where(np.isfinite(avg), avg, np.nan)],
        schema=rows.OPTION_BARS,
    )


def chain(
    underlying: str, day: date, spot: float, contracts: Sequence[str], expiry: Sequence[date], right: Sequence[str],
    strike: Sequence[float], bid: Sequence[float], ask: Sequence[float], last: Sequence[float],
    volume: Sequence[float], open_interest: Sequence[float], source_iv: Sequence[float],
    source_greeks: Mapping[str, Sequence[float]], rate: float, dividend_yield: float,
) -> pa.Table:
    """rows.CHAIN for one underlying and session from one entry per contract (the first of duplicates
    wins). NaN in source_iv or source_greeks means "not given: compute it"; non-positive quotes are 0."""
    n_in = len(contracts)
    today = np.datetime64(day, "D")
    exp_in = np.array(expiry, dtype="datetime64[D]").reshape(n_in)
    seen: set[str] = set()
    sel = []
    for i, name in enumerate(contracts):
        if exp_in[i] > today and name not in seen:
            seen.add(name)
            sel.append(i)
    call = np.array([r == "C" for r in right], dtype=bool).reshape(n_in)[sel]
    exp, k = exp_in[sel], _floats(strike, n_in)[sel]
    order = np.lexsort((k, ~call, exp))
    idx = np.array(sel, dtype=np.intp)[order]
    call, exp, k = call[order], exp[order], k[order]

    def take(values: Sequence[float]) -> npt.NDArray[np.float64]:
        return _floats(values, n_in)[idx]

    bid_, ask_, last_ = (np.where(take(v) > 0, take(v), 0.0) for v in (bid, ask, last))
    mark = pricing.mark_price(bid_, ask_, last_)
    t = (exp - today).astype(np.int64) / pricing.DAYS_PER_YEAR
    iv_src = take(source_iv)
    iv = np.where(np.isfinite(iv_src) & (iv_src > 0), iv_src,
                  pricing.implied_vol(mark, spot, k, t, rate, dividend_yield, call))
    computed = pricing.bsm_greeks(spot, k, t, iv, rate, dividend_yield, call)
    nan = [np.nan] * n_in
    greeks = [np.where(np.isfinite(g := take(source_greeks.get(name, nan))), g, getattr(computed, name))
              for name in GREEKS]
    n = len(idx)
    return pa.table(
        [pa.array([contracts[i] for i in idx], pa.string()), pa.array([underlying] * n, pa.string()),
         pa.array([day] * n, pa.date32()), pa.array(exp, pa.date32()),
         pa.array(["C" if c else "P" for c in call], pa.string()), k, np.full(n, float(spot)),
         bid_, ask_, last_, mark, np.round(np.nan_to_num(take(volume))).astype(np.int64),
         np.round(np.nan_to_num(take(open_interest))).astype(np.int64), iv, *greeks],
        schema=rows.CHAIN,
    )
