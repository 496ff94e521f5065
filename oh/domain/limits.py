"""Risk-profile limits judged against a valued book (pure): which limits are breached, in words.

One rule for every place that flags limits: the dashboard's Portfolio and Live pages, the daily
briefing and `oh portfolio analyze` all call

    breaches(book, risk_profile, *, cash=None) -> list[Breach]

where `book` is either a `PortfolioAnalysis` (oh.domain.analyze: snapshot valuation, carries cash
and dollar Greeks) or a `PortfolioMarks` (oh.domain.marks: live marks; pass `cash=portfolio.cash`,
since marks carry no cash, and no Greeks, so the delta limit is not judged on them).

The limits (oh.domain.portfolio.RiskProfile, in percent of the net liquidation value, `net liq` =
cash + the market value of every valued position):

- `max_position_pct`: each position's |market value| (a short's value is what closing it costs)
  at most this share of net liq;
- `max_portfolio_delta_pct`: the portfolio's |net delta dollars| (delta in share-equivalents x
  spot, summed over underlyings) at most this share of net liq.

A limit is breached when the value is strictly above it. Positions without a value (no quote) are
not judged; when net liq is not positive no percentage of it means anything, so one `Breach` with
limit `net_liq` says so instead (an empty book with no cash gives none). Breaches come sorted by how far over their limit
they are (largest first). Each carries its `text`, one line a trader reads as it is, e.g.
`spy-vertical is 14.2% of net liq ($3,520.00 of $24,800.00); the limit is 10.0% (max_position_pct)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from oh.domain import units
from oh.domain.portfolio import RiskProfile

if TYPE_CHECKING:
    from oh.domain.analyze import PortfolioAnalysis
    from oh.domain.marks import PortfolioMarks

__all__ = ["LIMIT_LABELS", "Breach", "breaches"]

LIMIT_LABELS = {
    "max_position_pct": "Position size",
    "max_portfolio_delta_pct": "Net delta",
    "net_liq": "Net liquidation value",
}


@dataclass(frozen=True)
class Breach:
    """One limit exceeded: what (`limit`, the risk profile's field), by whom (`subject`: a position id,
    or `portfolio`), the value and the limit in percent of net liq, the amount in currency, the line."""

    limit: str
    subject: str
    value_pct: float
    limit_pct: float
    amount: float
    net_liq: float
    text: str

    @property
    def label(self) -> str:
        """The limit in words (`Position size`, `Net delta`)."""
        return LIMIT_LABELS.get(self.limit, units.label(self.limit))

    @property
    def excess(self) -> float:
        """How many percentage points over the limit."""
        return self.value_pct - self.limit_pct


@dataclass(frozen=True)
class _Holding:
    id: str
    value: float | None


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _book(book: PortfolioAnalysis | PortfolioMarks, cash: float | None) -> tuple[list[_Holding], float | None,
                                                                                   float | None]:
    """(holdings, net liq, net delta dollars or None) of either kind of book."""
    if hasattr(book, "totals"):  # PortfolioAnalysis
        analysis = book
        holdings = [_Holding(p.id, _finite(p.market_value) if p.complete else None)
                    for p in analysis.positions]  # type: ignore[union-attr]
        totals = analysis.totals  # type: ignore[union-attr]
        net_liq = _finite(totals.net_liq if cash is None else cash + totals.market_value)
        return holdings, net_liq, _finite(totals.exposure.delta_dollars)
    if cash is None:
        raise TypeError("live marks carry no cash: call breaches(marks, profile, cash=portfolio.cash)")
    marks = book
    holdings = [_Holding(p.position_id, _finite(p.value)) for p in marks.positions]  # type: ignore[union-attr]
    return holdings, _finite(cash + marks.value), None  # type: ignore[union-attr]


def breaches(book: PortfolioAnalysis | PortfolioMarks, profile: RiskProfile, *, cash: float | None = None,
             currency: str = "USD") -> list[Breach]:
    """Every limit of `profile` that `book` exceeds, largest excess first (see the module docstring)."""
    holdings, net_liq, delta = _book(book, cash)
    if net_liq is None or (net_liq <= 0 and all(h.value is None for h in holdings)):
        return []  # nothing valued (or no cash figure): nothing to judge
    if net_liq <= 0:
        return [Breach("net_liq", "portfolio", math.nan, math.nan, net_liq, net_liq,
                       f"Net liquidation value is {units.money(net_liq, currency)}, not positive: the risk limits "
                       "(in % of it) cannot be judged")]
    found: list[Breach] = []
    limit = profile.max_position_pct
    for holding in holdings:
        if holding.value is None:
            continue
        share = 100.0 * abs(holding.value) / net_liq
        if share > limit:
            found.append(Breach(
                "max_position_pct", holding.id, share, limit, holding.value, net_liq,
                f"{holding.id} is {units.pct_points(share)} of net liq ({units.money(abs(holding.value), currency)} "
                f"of {units.money(net_liq, currency)}); the limit is {units.pct_points(limit)} (max_position_pct)"))
    if delta is not None:
        limit = profile.max_portfolio_delta_pct
        share = 100.0 * abs(delta) / net_liq
        if share > limit:
            found.append(Breach(
                "max_portfolio_delta_pct", "portfolio", share, limit, delta, net_liq,
                f"Net delta is {units.money(delta, currency, sign=True)}, {units.pct_points(share)} of net liq "
                f"({units.money(net_liq, currency)}); the limit is {units.pct_points(limit)} (max_portfolio_delta_pct)"))
    return sorted(found, key=lambda b: b.excess, reverse=True)
