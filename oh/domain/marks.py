"""Live marks of a portfolio from the newest quotes (pure): mark, PnL, DTE, spread, quote age, warnings.

The dashboard's live page calls `mark_portfolio` with the portfolio, the newest quote per symbol
(from the tick channel: `contracts.live.Quote`, or anything with the same attributes) and the
clock, and shows the result; nothing here knows about sockets or threads. A caller that marks the
same portfolio many times a second builds its `MarkBook` once (`book`: provider symbols, quantities,
costs and contract terms per position) and calls `mark_book`, which gives the same result.

Conventions (premiums per share of one contract, as in oh.domain.portfolio):

- the mark is oh.domain.pricing.mark_price: mid when both sides > 0, else last, else ask, else bid;
- stock: value = mark x shares, PnL = (mark - cost_basis) x shares;
- option: value = mark x contracts x 100, PnL = (mark - cost_basis) x contracts x 100;
- structure: net mark = sum(leg mark x signed contracts) per share, value = net mark x 100,
  PnL = (net mark - net_debit) x 100; legs carry their own PnL against their own cost;
- PnL % = PnL / |cost paid| (None when nothing was paid);
- quote age = `now` - the quote's feed time (its receive time when the feed gave none), so a
  feed that stalls completely ages every quote and turns it stale: age is measured against the
  clock, never against the newest event;
- DTE in calendar days from `today` (default: `now`'s date in New York).

Warnings (words, per leg and gathered per position): "no quote", "stale quote (45s old)",
"wide spread (32%)", "crossed quote", "expired", "missing leg quote: SYMBOL" (a structure
whose net mark cannot be computed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from oh.domain.live_plan import option_symbol, stock_symbol
from oh.domain.osi import CONTRACT_MULTIPLIER
from oh.domain.portfolio import (
    OptionPosition,
    Portfolio,
    StockPosition,
    Structure,
)
from oh.domain.pricing import mark_price, spread_pct

DEFAULT_STALE_AFTER = 30.0  # seconds
DEFAULT_WIDE_SPREAD = 0.25  # (ask - bid) / mid
NEW_YORK = ZoneInfo("America/New_York")


class QuoteLike(Protocol):
    """What a quote needs for marking: contracts.live.Quote has it."""

    bid: float
    ask: float
    last: float
    ts_feed: float
    ts_recv: float


@dataclass(frozen=True, slots=True)
class LegMark:
    """One priced line: a stock position, a single option, or one leg of a structure.

    `symbol` is the provider's symbol (the key of the quotes map); `quantity` is signed shares or
    contracts; `cost` is per share (stock) or the premium per share of one contract (option).
    Price fields are None when the quote is missing or has no usable side.
    """

    position_id: str
    symbol: str
    underlying: str
    kind: str
    quantity: float
    multiplier: int
    cost: float
    expiry: date | None
    right: str | None
    strike: float | None
    bid: float | None
    ask: float | None
    last: float | None
    mark: float | None
    spread_pct: float | None
    age: float | None
    stale: bool
    dte: int | None
    value: float | None
    pnl: float | None
    pnl_pct: float | None
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PositionMark:
    """One position: its mark per share (stock price, option premium, structure net mark), its value
    and PnL in currency, the nearest DTE, the widest spread and the oldest quote of its legs."""

    position_id: str
    type: str  # stock | option | structure
    symbol: str  # the underlying
    structure_kind: str | None
    quantity: float  # shares, contracts, or 1 for a structure (its legs carry the quantities)
    mark: float | None
    cost: float  # cost basis per share, premium paid, or the structure's net debit (negative = credit)
    cost_value: float  # what was paid in currency (negative = credit received)
    value: float | None
    pnl: float | None
    pnl_pct: float | None
    dte: int | None
    spread_pct: float | None
    age: float | None
    stale: bool
    underlying_price: float | None
    legs: tuple[LegMark, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class PortfolioMarks:
    """Every position marked at `now`, with totals over the positions that have a mark."""

    now: float
    positions: tuple[PositionMark, ...]
    value: float
    pnl: float
    marked: int
    missing: int
    stale: int

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per position (no legs), for a table widget."""
        return [{k: v for k, v in asdict(p).items() if k != "legs"} | {"warnings": "; ".join(p.warnings)}
                for p in self.positions]

    def leg_rows(self) -> list[dict[str, Any]]:
        """One flat dict per leg of every position."""
        return [asdict(leg) | {"warnings": "; ".join(leg.warnings)} for p in self.positions for leg in p.legs]


def _positive(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) and value > 0 else None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _today(now: float) -> date:
    return datetime.fromtimestamp(now, UTC).astimezone(NEW_YORK).date()


@dataclass(frozen=True, slots=True)
class _Line:
    position_id: str
    symbol: str
    underlying: str
    kind: str
    quantity: float
    multiplier: int
    cost: float
    expiry: date | None = None
    right: str | None = None
    strike: float | None = None


def _lines(portfolio: Portfolio, provider: str) -> list[tuple[Any, list[_Line]]]:
    out: list[tuple[Any, list[_Line]]] = []
    for p in portfolio.positions:
        if isinstance(p, StockPosition):
            out.append((p, [_Line(p.id, stock_symbol(p.symbol, provider), p.symbol, "stock", p.quantity, 1,
                                  p.cost_basis)]))
        elif isinstance(p, OptionPosition):
            out.append((p, [_Line(p.id, option_symbol(p.occ, provider), p.symbol, "option", p.quantity,
                                  CONTRACT_MULTIPLIER, p.cost_basis, p.expiry, p.right, p.strike)]))
        elif isinstance(p, Structure):
            out.append((p, [_Line(p.id, option_symbol(sym, provider), p.symbol, "option", leg.quantity,
                                  CONTRACT_MULTIPLIER, leg.cost, leg.expiry, leg.right, leg.strike)
                            for sym, leg in zip(p.leg_symbols(), p.legs, strict=True)]))
    return out


def _mark_lines(lines: list[_Line], quotes: Mapping[str, QuoteLike], now: float, today: date,
                stale_after: float, wide_spread: float) -> list[LegMark]:
    found = [quotes.get(line.symbol) for line in lines]
    bid = np.array([q.bid if q is not None else np.nan for q in found], dtype=np.float64)
    ask = np.array([q.ask if q is not None else np.nan for q in found], dtype=np.float64)
    last = np.array([q.last if q is not None else np.nan for q in found], dtype=np.float64)
    marks = mark_price(bid, ask, last).tolist()  # Python floats: indexing numpy scalars one by one is slow
    spreads = spread_pct(bid, ask).tolist()
    legs: list[LegMark] = []
    for i, (line, quote) in enumerate(zip(lines, found, strict=True)):
        warnings: list[str] = []
        dte = (line.expiry - today).days if line.expiry is not None else None
        if dte is not None and dte < 0:
            warnings.append("expired")
        age: float | None = None
        stale = False
        mark = _finite(marks[i])
        spread = _finite(spreads[i])
        if quote is None:
            warnings.append("no quote")
        else:
            stamp = quote.ts_feed if quote.ts_feed > 0 else quote.ts_recv
            age = max(now - stamp, 0.0) if stamp > 0 else None
            stale = age is None or age > stale_after
            if stale:
                warnings.append(f"stale quote ({age:.0f}s old)" if age is not None else "stale quote (no time)")
            if mark is None:
                warnings.append("no price in the quote")
            if spread is not None and spread < 0:
                warnings.append("crossed quote")
            elif spread is not None and spread > wide_spread:
                warnings.append(f"wide spread ({spread:.0%})")
        size = line.quantity * line.multiplier
        value = mark * size if mark is not None else None
        pnl = (mark - line.cost) * size if mark is not None else None
        paid = abs(line.cost * size)
        legs.append(LegMark(
            position_id=line.position_id, symbol=line.symbol, underlying=line.underlying, kind=line.kind,
            quantity=line.quantity, multiplier=line.multiplier, cost=line.cost, expiry=line.expiry,
            right=line.right, strike=line.strike,
            bid=_positive(quote.bid) if quote else None, ask=_positive(quote.ask) if quote else None,
            last=_positive(quote.last) if quote else None, mark=mark, spread_pct=spread, age=age, stale=stale,
            dte=dte, value=value, pnl=pnl, pnl_pct=(pnl / paid if pnl is not None and paid > 0 else None),
            warnings=tuple(warnings),
        ))
    return legs


def _position(position: Any, legs: list[LegMark], underlying_price: float | None) -> PositionMark:
    ages = [leg.age for leg in legs if leg.age is not None]
    spreads = [leg.spread_pct for leg in legs if leg.spread_pct is not None]
    dtes = [leg.dte for leg in legs if leg.dte is not None]
    stale = any(leg.stale for leg in legs)
    if isinstance(position, Structure):
        missing = [leg.symbol for leg in legs if leg.mark is None]
        net = None if missing else sum(leg.mark * leg.quantity for leg in legs)  # type: ignore[operator]
        cost, quantity = position.net_debit, 1.0
        cost_value = cost * CONTRACT_MULTIPLIER
        value = net * CONTRACT_MULTIPLIER if net is not None else None
        pnl = (net - cost) * CONTRACT_MULTIPLIER if net is not None else None
        warnings = [f"missing leg quote: {s}" for s in missing]
        warnings += [f"{leg.symbol}: {w}" for leg in legs for w in leg.warnings if w != "no quote"]
        mark, kind = net, position.kind
    else:
        leg = legs[0]
        mark, cost, quantity, kind = leg.mark, leg.cost, leg.quantity, None
        cost_value = cost * quantity * leg.multiplier
        value, pnl = leg.value, leg.pnl
        warnings = list(leg.warnings)
    paid = abs(cost_value)
    return PositionMark(
        position_id=position.id, type=type(position).__name__.replace("Position", "").lower(),
        symbol=position.symbol, structure_kind=kind, quantity=quantity, mark=mark, cost=cost,
        cost_value=cost_value, value=value, pnl=pnl, pnl_pct=(pnl / paid if pnl is not None and paid > 0 else None),
        dte=min(dtes) if dtes else None, spread_pct=max(spreads) if spreads else None,
        age=max(ages) if ages else None, stale=stale, underlying_price=underlying_price, legs=tuple(legs),
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class MarkBook:
    """What marking needs from a portfolio, worked out once: each position's lines (provider symbols,
    quantities, costs, contract terms) and the quote symbol of its underlying.

    A portfolio is immutable, so a caller that marks the same portfolio many times a second (the
    dashboard's live marker) builds the book once per portfolio and provider (`book`) and calls
    `mark_book`; `mark_portfolio` does both."""

    provider: str
    positions: tuple[Any, ...]
    lines: tuple[_Line, ...]  # every line of every position, in order
    sizes: tuple[int, ...]  # how many of `lines` belong to each position
    spots: tuple[str, ...]  # the quote symbol of each position's underlying
    symbols: frozenset[str]  # every quote symbol the book reads


def book(portfolio: Portfolio, provider: str = "sim") -> MarkBook:
    """The MarkBook of `portfolio` with `provider`'s symbol spelling (see oh.domain.live_plan)."""
    grouped = _lines(portfolio, provider)
    lines = tuple(line for _, group in grouped for line in group)
    spots = tuple(stock_symbol(position.symbol, provider) for position, _ in grouped)
    return MarkBook(provider=provider, positions=tuple(position for position, _ in grouped), lines=lines,
                    sizes=tuple(len(group) for _, group in grouped), spots=spots,
                    symbols=frozenset(line.symbol for line in lines) | frozenset(spots))


def mark_portfolio(
    portfolio: Portfolio,
    quotes: Mapping[str, QuoteLike],
    *,
    now: float,
    provider: str = "sim",
    stale_after: float = DEFAULT_STALE_AFTER,
    wide_spread: float = DEFAULT_WIDE_SPREAD,
    today: date | None = None,
) -> PortfolioMarks:
    """Mark every position of `portfolio` with `quotes` (provider symbol -> newest quote) at clock `now`.

    `now` is seconds since the epoch (time.time()); `provider` decides the symbol spelling (see
    oh.domain.live_plan); a quote older than `stale_after` seconds is stale; a spread above `wide_spread`
    of mid is wide. Totals add the positions that have a mark.
    """
    return mark_book(book(portfolio, provider), quotes, now=now, stale_after=stale_after, wide_spread=wide_spread,
                     today=today)


def mark_book(
    marks_book: MarkBook,
    quotes: Mapping[str, QuoteLike],
    *,
    now: float,
    stale_after: float = DEFAULT_STALE_AFTER,
    wide_spread: float = DEFAULT_WIDE_SPREAD,
    today: date | None = None,
) -> PortfolioMarks:
    """`mark_portfolio` for a portfolio whose MarkBook is already built (same result)."""
    day = today or _today(now)
    flat = list(marks_book.lines)
    legs = _mark_lines(flat, quotes, now, day, stale_after, wide_spread) if flat else []
    distinct = sorted(set(marks_book.spots))
    found = [quotes.get(symbol) for symbol in distinct]
    spot_marks = mark_price(np.array([q.bid if q is not None else np.nan for q in found], dtype=np.float64),
                            np.array([q.ask if q is not None else np.nan for q in found], dtype=np.float64),
                            np.array([q.last if q is not None else np.nan for q in found], dtype=np.float64))
    spot_of = {symbol: _finite(float(value)) for symbol, value, q in zip(distinct, spot_marks, found, strict=True)
               if q is not None}
    positions: list[PositionMark] = []
    at = 0
    for position, size, spot_symbol in zip(marks_book.positions, marks_book.sizes, marks_book.spots, strict=True):
        positions.append(_position(position, legs[at: at + size], spot_of.get(spot_symbol)))
        at += size
    valued = [p for p in positions if p.value is not None]
    return PortfolioMarks(
        now=now, positions=tuple(positions), value=sum(p.value for p in valued),  # type: ignore[misc]
        pnl=sum(p.pnl for p in valued if p.pnl is not None), marked=len(valued),
        missing=len(positions) - len(valued), stale=sum(1 for p in positions if p.stale),
    )
