"""The Portfolio page's tables and cards from a PortfolioAnalysis, in trader units (oh.domain.units).

- `positions_html`: one row per position with what it is in words (a stock's shares; a single option's
  `+2 AAPL 250 call 2026-01-16`; a structure's kind), DTE, mark, cost, value, PnL and spread; a
  structure's legs below it, each named the same way; the total last.
- `greeks_html`: delta in shares and dollars, gamma, vega and theta in dollars, per position and
  underlying, then the total.
- `summary_html`: the cards on top (net liq, cash, PnL, dollar Greeks).
- `limits_html`: the risk profile's limits (oh.domain.limits.breaches), each breach in words, or the
  limits the book is within.

Pure string building: nothing here queries or computes a value the analysis does not hold.
"""

from __future__ import annotations

import html
import math
from typing import Any

from oh.domain import units
from oh.domain.analyze import Exposure, PortfolioAnalysis, PositionAnalysis
from oh.domain.limits import Breach
from oh.domain.portfolio import RiskProfile
from panel_app.components import esc


def _num(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def describe(position: PositionAnalysis) -> str:
    """What a position is, in words: `20 shares`, `+2 AAPL 250 call 2026-01-16`, `vertical, 2 legs`."""
    if position.type == "stock":
        return f"{units.count(position.quantity)} shares" if position.quantity >= 0 else \
            f"{units.count(position.quantity)} shares (short)"
    if position.type == "option" and position.legs:
        leg = position.legs[0]
        return units.contract(position.symbol, leg.expiry, leg.right, leg.strike, leg.quantity)
    kind = position.kind.replace("_", " ")
    return f"{kind}, {units.plural(len(position.legs), 'leg')}"


def _pct(value: float, sign: bool = True) -> str:
    return units.pct_points(value, sign=sign) if _num(value) is not None else units.MISSING


def _row(cells: list[str], css: str = "", numeric: tuple[bool, ...] = ()) -> str:
    tds = "".join(f'<td class="num">{c}</td>' if numeric and numeric[i] else f"<td>{c}</td>" for i, c in enumerate(cells))
    return f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>"


POSITION_HEADER = ("Position", "Symbol", "What", "DTE", "Mark", "Cost", "Value", "PnL", "PnL %", "Spread")
POSITION_NUMERIC = (False, False, False, True, True, True, True, True, True, True)


def positions_html(analysis: PortfolioAnalysis, currency: str = "USD") -> str:
    """Positions and structures (legs below), with the totals row."""
    rows = []
    for p in analysis.positions:
        rows.append(_row([
            esc(p.id), esc(p.symbol), esc(describe(p)), "" if p.dte is None else units.count(p.dte),
            units.price(p.mark), units.price(p.cost), units.money(p.market_value, currency),
            units.money(p.pnl, currency, sign=True), _pct(p.pnl_pct),
            "" if p.type == "stock" else _pct(p.spread_pct, sign=False),
        ], "oh-bad" if not p.complete else "", POSITION_NUMERIC))
        if p.type == "structure":
            for leg in p.legs:
                what = units.contract(p.symbol, leg.expiry, leg.right, leg.strike, leg.quantity)
                if leg.status != "ok":
                    what += f" ({leg.status.replace('_', ' ')})"
                rows.append(_row([
                    "", "", f"&nbsp;&nbsp;{esc(what)}", units.count(leg.dte), units.price(leg.mark), units.price(leg.cost),
                    units.money(leg.market_value, currency), units.money(leg.pnl, currency, sign=True), "",
                    _pct(leg.spread_pct, sign=False),
                ], "oh-leg", POSITION_NUMERIC))
    t = analysis.totals
    rows.append(_row(["Total", "", "", "", "", "", units.money(t.market_value, currency),
                      units.money(t.pnl, currency, sign=True), _pct(t.pnl_pct), ""], "oh-total", POSITION_NUMERIC))
    return _table(POSITION_HEADER, POSITION_NUMERIC, rows)


def _table(header: tuple[str, ...], numeric: tuple[bool, ...], rows: list[str]) -> str:
    head = "".join(f'<th class="num">{esc(h)}</th>' if n else f"<th>{esc(h)}</th>"
                   for h, n in zip(header, numeric, strict=True))
    return (f'<div class="oh-scroll"><table class="oh-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


GREEK_HEADER = ("Position", "Symbol", "Delta (shares)", "Delta $", "Gamma $ per 1%", "Vega $ per vol pt",
                "Theta $ per day")
GREEK_NUMERIC = (False, False, True, True, True, True, True)


def _greeks(e: Exposure, currency: str) -> list[str]:
    return [units.number(e.delta_shares, 1, sign=True) if _num(e.delta_shares) is not None else units.MISSING,
            *(units.money(v, currency, sign=True, digits=0) for v in
              (e.delta_dollars, e.gamma_dollars, e.vega_dollars, e.theta_dollars))]


def greeks_html(analysis: PortfolioAnalysis, currency: str = "USD") -> str:
    """Delta in shares and dollars, then gamma, vega and theta in dollars: per position, per underlying, total."""
    rows = [_row([esc(p.id), esc(p.symbol), *_greeks(p.exposure, currency)], numeric=GREEK_NUMERIC)
            for p in analysis.positions]
    if len(analysis.underlyings) > 1:
        rows += [_row([f"All {esc(u.symbol)}", esc(u.symbol), *_greeks(u.exposure, currency)], "oh-leg", GREEK_NUMERIC)
                 for u in analysis.underlyings]
    rows.append(_row(["Total", "", *_greeks(analysis.totals.exposure, currency)], "oh-total", GREEK_NUMERIC))
    return _table(GREEK_HEADER, GREEK_NUMERIC, rows)


def summary_html(analysis: PortfolioAnalysis, currency: str = "USD") -> str:
    """The cards on top: net liq, cash, positions, PnL and the dollar Greeks."""
    t = analysis.totals
    e = t.exposure
    cards = [("Net liq", units.money(t.net_liq, currency)), ("Cash", units.money(t.cash, currency)),
             ("Positions", units.money(t.market_value, currency)),
             ("PnL", f"{units.money(t.pnl, currency, sign=True)} ({_pct(t.pnl_pct)})"),
             ("Delta $", units.money(e.delta_dollars, currency, sign=True, digits=0)),
             ("Gamma $ per 1%", units.money(e.gamma_dollars, currency, sign=True, digits=0)),
             ("Vega $ per vol pt", units.money(e.vega_dollars, currency, sign=True, digits=0)),
             ("Theta $ per day", units.money(e.theta_dollars, currency, sign=True, digits=0))]
    cells = "".join(f'<div class="oh-card"><div class="oh-card-k">{esc(k)}</div><div class="oh-card-v">{esc(v)}</div></div>'
                    for k, v in cards)
    valued = "" if t.valued == t.positions else f" · {t.valued} of {units.plural(t.positions, 'position')} valued"
    return (f'<div class="oh-cards">{cells}</div><div class="oh-more">as of {analysis.as_of} in {esc(currency)}'
            f"{valued}; quotes from the latest snapshot on or before that day</div>")


def limits_html(found: list[Breach], profile: RiskProfile) -> tuple[str, str]:
    """(notice kind, Markdown text): the breaches in words, or the limits the book is within."""
    rules = (f"position size at most {units.pct_points(profile.max_position_pct)} of net liq, net delta at most "
             f"{units.pct_points(profile.max_portfolio_delta_pct)} of net liq")
    if not found:
        return "info", f"**Within the risk profile's limits** ({rules})."
    lines = "\n".join(f"- **{html.escape(b.label)}:** {html.escape(b.text)}" for b in found)
    return "limit", (f"**{units.plural(len(found), 'risk limit')} breached** (risk profile: {rules}; "
                     f"edit it in the portfolio file):\n\n{lines}")


def positions_rows(analysis: PortfolioAnalysis) -> list[dict[str, Any]]:
    """The positions as plain rows (id, what, value), for tests and other views."""
    return [{"id": p.id, "what": describe(p), "value": p.market_value} for p in analysis.positions]
