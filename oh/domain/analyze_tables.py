"""A PortfolioAnalysis as tables of text (pure): one layout for the terminal, the briefing and the dashboard.

Each builder returns a `TextTable` (title, header, rows of strings, which columns are numbers);
`oh portfolio analyze` draws them with rich, `oh.domain.briefing` writes them as Markdown. Unknown
values (NaN) print as `n/a`, never as 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from oh.domain.analyze import Exposure, PortfolioAnalysis, PositionAnalysis
from oh.domain.stress import Scenario

NA = "n/a"


@dataclass(frozen=True)
class TextTable:
    """Rows of already-formatted cells; `numeric[i]` says whether column i is right-aligned."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]


def money(value: float, signed: bool = False) -> str:
    """1,234.56 (or +1,234.56 when signed); n/a for NaN."""
    if not math.isfinite(value):
        return NA
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def whole(value: float, signed: bool = True) -> str:
    """+1,235 (rounded to the unit; 0 when it rounds to nothing); n/a for NaN."""
    if not math.isfinite(value):
        return NA
    if abs(value) < 0.5:
        return "0"
    return f"{value:+,.0f}" if signed else f"{value:,.0f}"


def pct(value: float, signed: bool = True, digits: int = 1) -> str:
    """+12.3% for a value already in percent; n/a for NaN."""
    if not math.isfinite(value):
        return NA
    return f"{value:+.{digits}f}%" if signed else f"{value:.{digits}f}%"


def number(value: float, digits: int = 2, signed: bool = False) -> str:
    """A plain number with `digits` decimals; n/a for NaN."""
    if not math.isfinite(value):
        return NA
    return f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"


def _qty(position: PositionAnalysis) -> str:
    if position.type == "option":
        return f"{position.quantity:+.0f}"
    if position.type == "structure":
        return f"{len(position.legs)} legs"
    return f"{position.quantity:g}"


def positions_table(analysis: PortfolioAnalysis, with_legs: bool = True) -> TextTable:
    """Per position: quantity, DTE, mark, cost, market value, PnL and spread; structure legs below their row."""
    header = ("id", "kind", "symbol", "qty", "DTE", "mark", "cost", "value", "PnL", "PnL %", "spread")
    rows: list[tuple[str, ...]] = []
    for p in analysis.positions:
        rows.append((p.id, p.kind, p.symbol, _qty(p), "" if p.dte is None else str(p.dte), money(p.mark),
                     money(p.cost), money(p.market_value), money(p.pnl, True), pct(p.pnl_pct),
                     pct(p.spread_pct, False) if p.type != "stock" else ""))
        if with_legs and p.type == "structure":
            for leg in p.legs:
                rows.append(("", f"  {leg.status if leg.status != 'ok' else 'leg'}", leg.contract, f"{leg.quantity:+d}",
                             str(leg.dte), money(leg.mark), money(leg.cost), money(leg.market_value),
                             money(leg.pnl, True), "", pct(leg.spread_pct, False)))
    t = analysis.totals
    rows.append(("total", "", "", "", "", "", "", money(t.market_value), money(t.pnl, True), pct(t.pnl_pct), ""))
    return TextTable(f"Positions as of {analysis.as_of}", header, tuple(rows),
                     (False, False, False, True, True, True, True, True, True, True, True))


def _greek_cells(e: Exposure) -> tuple[str, ...]:
    return (number(e.delta_shares, 1, True), number(e.gamma_shares, 2, True), whole(e.delta_dollars),
            whole(e.gamma_dollars), whole(e.vega_dollars), whole(e.theta_dollars))


def greeks_table(analysis: PortfolioAnalysis) -> TextTable:
    """Per position and per underlying: delta and gamma in shares, then delta $, gamma $/1%, vega $/pt, theta $/day."""
    header = ("id", "symbol", "delta sh", "gamma sh/$1", "delta $", "gamma $/1%", "vega $/pt", "theta $/day")
    rows = [(p.id, p.symbol, *_greek_cells(p.exposure)) for p in analysis.positions]
    if len(analysis.underlyings) > 1:
        rows += [(f"all {u.symbol}", u.symbol, *_greek_cells(u.exposure)) for u in analysis.underlyings]
    rows.append(("total", "", *_greek_cells(analysis.totals.exposure)))
    return TextTable("Greeks (share and dollar terms)", header, tuple(rows), (False, False, *(True,) * 6))


def stress_tables(analysis: PortfolioAnalysis) -> list[TextTable]:
    """Total PnL on the spot x vol grid, one table per horizon (today, then days forward)."""
    by_key = {(r.scenario.spot_pct, r.scenario.vol_pts, r.scenario.days): r.pnl for r in analysis.stress}
    spec = analysis.spec
    out = []
    for days in spec.day_axis():
        header = ("spot \\ vol", *(f"{v:+g} pts" for v in spec.vol_axis()))
        rows = tuple((f"{s:+g}%", *(whole(by_key.get((s, v, days), math.nan)) for v in spec.vol_axis()))
                     for s in spec.spot_axis())
        title = "Stress PnL today" if days == 0 else f"Stress PnL in {days} days"
        out.append(TextTable(title, header, rows, (False, *(True,) * len(spec.vol_axis()))))
    return out


def _single_factor(analysis: PortfolioAnalysis) -> list[Scenario]:
    spec = analysis.spec
    shocks = [Scenario(s, 0.0, 0) for s in spec.spot_axis() if s] + [Scenario(0.0, v, 0) for v in spec.vol_axis() if v]
    return shocks + [Scenario(0.0, 0.0, d) for d in spec.day_axis() if d]


def stress_by_position_table(analysis: PortfolioAnalysis) -> TextTable:
    """Each position's PnL for each one-factor shock (spot, vol, time) and its worst case over the whole grid."""
    results = {r.scenario: r for r in analysis.stress}
    shocks = [s for s in _single_factor(analysis) if s in results]
    labels = [f"spot {s.spot_pct:+g}%" if s.spot_pct else f"vol {s.vol_pts:+g}" if s.vol_pts else f"+{s.days}d"
              for s in shocks]
    rows = []
    for p in analysis.positions:
        worst = [r.by_position.get(p.id, math.nan) for r in analysis.stress]
        known = [w for w in worst if math.isfinite(w)]
        rows.append((p.id, *(whole(results[s].by_position.get(p.id, math.nan)) for s in shocks),
                     whole(min(known)) if len(known) == len(worst) and known else NA))
    total_worst = min((r.pnl for r in analysis.stress), default=math.nan)
    rows.append(("total", *(whole(results[s].pnl) for s in shocks), whole(total_worst)))
    return TextTable("Stress PnL by position", ("id", *labels, "worst"), tuple(rows), (False, *(True,) * (len(shocks) + 1)))


def warning_lines(analysis: PortfolioAnalysis) -> list[str]:
    """Every warning, portfolio-wide first, then per position as `id: message`."""
    return [*analysis.warnings, *(f"{p.id}: {w}" for p in analysis.positions for w in p.warnings)]


def summary_line(analysis: PortfolioAnalysis, currency: str = "USD") -> str:
    """Cash, market value, net liquidation value and PnL in one line."""
    t = analysis.totals
    valued = "" if t.valued == t.positions else f" ({t.valued} of {t.positions} positions valued)"
    return (f"cash {money(t.cash)} {currency}; positions {money(t.market_value)}; net liq {money(t.net_liq)}; "
            f"PnL {money(t.pnl, True)} ({pct(t.pnl_pct)}){valued}")
