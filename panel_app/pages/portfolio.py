"""Portfolio: positions and structures with mark, PnL, DTE and Greeks, the stress grid (spot x vol) as a
heatmap, and daily performance, all from `oh.domain.analyze` over the latest stored snapshots.

The portfolio file is only read (the `oh portfolio` commands are its only writers). Valuation is
`oh.domain.analyze.analyze_portfolio` on chains read by `oh.read.quotes` through the dashboard's cached queries,
the same code as `oh portfolio analyze` and the briefing, so the three always agree.
"""

from __future__ import annotations

import html
import math
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn

from oh.adapters.portfolio_file import load
from oh.domain import analyze_tables as tables
from oh.domain.analyze import PortfolioAnalysis, StressSpec, analyze_portfolio
from oh.domain.portfolio import Portfolio, PortfolioError
from oh.read.quotes import latest_chains, latest_closes
from panel_app import charts
from panel_app.components import Slot, empty_text, esc, sync_url
from panel_app.page import Page
from panel_app.widgets import date_picker, url_arg

SESSIONS = """
SELECT DISTINCT snapshot_date AS day FROM option_snapshots
WHERE snapshot_date <= ? AND underlying IN (SELECT unnest(?::VARCHAR[]))
ORDER BY 1 DESC LIMIT ?
"""
PERFORMANCE_SESSIONS = 20


def text_table_html(table: tables.TextTable) -> str:
    """A TextTable (the CLI's and the briefing's layout) as an HTML table; the total row in bold."""
    head = "".join(f'<th style="text-align:{"right" if n else "left"}">{html.escape(h)}</th>'
                   for h, n in zip(table.header, table.numeric, strict=True))
    body = []
    for row in table.rows:
        style = ' style="font-weight:600"' if row[0] == "total" else ""
        cells = "".join(f'<td style="text-align:{"right" if n else "left"}">{html.escape(c)}</td>'
                        for c, n in zip(row, table.numeric, strict=True))
        body.append(f"<tr{style}>{cells}</tr>")
    return f'<table class="oh-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def wide_spec(base: StressSpec) -> StressSpec:
    """A denser grid around the risk profile's shocks (half, one and two times each), for the heatmap."""
    spot = max((abs(s) for s in base.spot_shocks_pct), default=5.0) or 5.0
    vol = max((abs(v) for v in base.vol_shocks_pts), default=5.0) or 5.0
    spots = tuple(sorted({k * spot for k in (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)}))
    vols = tuple(sorted({k * vol for k in (-2.0, -1.0, 1.0, 2.0)}))
    return StressSpec(spots, vols, base.days_forward)


class PortfolioPage(Page):
    """The trader's book, valued from the latest snapshots (never from made-up numbers)."""

    slug = "portfolio"
    title = "Portfolio"
    watch = frozenset({"ChainSnapshotted", "CandlesIngested"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.path: Path = ctx.home.config / "portfolio.json"
        self.as_of = date_picker("Value as of (empty: today)", url_arg("as_of"))
        self.horizon = pn.widgets.RadioButtonGroup(name="Stress horizon", options=["today", "days forward"],
                                                   value="today")
        for widget, name in ((self.as_of, "as_of"), (self.horizon, "horizon")):
            sync_url(widget, name)
            widget.param.watch(lambda _e: self.refresh(), "value")
        self.symbols: set[str] = set()
        self._mtime: float | None = None
        self.summary = Slot()
        self.positions = Slot("Positions and structures")
        self.greeks = Slot("Greeks")
        self.stress = Slot("Stress PnL (spot x vol)", min_height=300)
        self.performance = Slot("Daily performance (net liquidation value at each snapshot session)", min_height=260)
        self.warnings = Slot()

    def controls(self) -> list[Any]:
        return [self.as_of, pn.pane.Markdown("Stress horizon", margin=(0, 10)), self.horizon]

    def layout(self) -> list[Any]:
        return [self.summary.panel, self.positions.panel, self.greeks.panel,
                pn.Row(self.stress.panel, self.performance.panel, sizing_mode="stretch_width"), self.warnings.panel]

    def relevant(self, event: Any) -> bool:
        return event.type in self.watch and (not event.symbols or bool(self.symbols & set(event.symbols)))

    def on_state(self, state: Any) -> None:
        mtime = self._file_mtime()
        if self._mtime is not None and mtime != self._mtime:
            self.request_refresh()  # the user edited the portfolio with `oh portfolio ...`

    def _file_mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def _load(self) -> Portfolio | None:
        self._mtime = self._file_mtime()
        if self._mtime is None:
            self.summary.notice("empty", f"**No portfolio file yet** ({html.escape(str(self.path))}). Create it with "
                                         "`oh portfolio init`, then `oh portfolio add-position ...` (see docs/portfolio.md).")
            return None
        try:
            return load(self.path)
        except PortfolioError as exc:
            self.summary.notice("error", f"**The portfolio file cannot be read:** {html.escape(str(exc))}. "
                                         "Fix it, or check it with `oh portfolio list`.")
            return None

    def _clear(self) -> None:
        for slot in (self.positions, self.greeks, self.stress, self.performance, self.warnings):
            slot.show()

    def update(self) -> None:
        portfolio = self._load()
        if portfolio is None:
            self._clear()
            return
        self.symbols = {p.symbol for p in portfolio.positions}
        if not portfolio.positions:
            self.summary.notice("empty", empty_text("positions", "oh portfolio add-position --symbol MSFT --quantity 10 --cost 400"))
            self._clear()
            return
        day = self.as_of.value or date.today()
        symbols = sorted(self.symbols)
        chains = latest_chains(self.read, symbols, day)
        closes = latest_closes(self.read, [s for s in symbols if s not in chains], day)
        if not chains and not closes:
            self.summary.notice("empty", empty_text(f"quotes for {', '.join(symbols)}",
                                                    f"oh emit snapshot-options --symbols {','.join(symbols)} --wait"))
            self._clear()
            return
        spec = wide_spec(StressSpec.from_risk_profile(portfolio.risk_profile))
        analysis = analyze_portfolio(portfolio, chains, day, spec, spots=closes)
        self.summary.html(self._summary_html(analysis, portfolio.base_currency))
        self.positions.html(text_table_html(tables.positions_table(analysis)))
        self.greeks.html(text_table_html(tables.greeks_table(analysis)))
        self.fill(self.stress, lambda: self._fill_stress(analysis), "The stress grid")
        self.fill(self.performance, lambda: self._fill_performance(portfolio, symbols, day), "The performance")
        lines = tables.warning_lines(analysis)
        if lines:
            self.warnings.notice("info", "**Warnings:** " + "; ".join(html.escape(line) for line in lines))
        else:
            self.warnings.show()

    @staticmethod
    def _summary_html(analysis: PortfolioAnalysis, currency: str) -> str:
        t = analysis.totals
        cards = [("Net liq", tables.money(t.net_liq)), ("Cash", tables.money(t.cash)),
                 ("Positions", tables.money(t.market_value)), ("PnL", f"{tables.money(t.pnl, True)} ({tables.pct(t.pnl_pct)})"),
                 ("Delta $", tables.whole(t.exposure.delta_dollars)), ("Gamma $/1%", tables.whole(t.exposure.gamma_dollars)),
                 ("Vega $/pt", tables.whole(t.exposure.vega_dollars)), ("Theta $/day", tables.whole(t.exposure.theta_dollars))]
        cells = "".join(f'<div class="oh-card"><div class="oh-card-k">{esc(k)}</div><div class="oh-card-v">{esc(v)}</div></div>'
                        for k, v in cards)
        valued = "" if t.valued == t.positions else f" · {t.valued} of {t.positions} positions valued"
        return (f'<div class="oh-cards">{cells}</div><div class="oh-more">as of {analysis.as_of} in {esc(currency)}'
                f"{valued}; quotes from the latest snapshot on or before that day</div>")

    def _fill_stress(self, analysis: PortfolioAnalysis) -> None:
        days = analysis.spec.day_axis()[0 if self.horizon.value == "today" else -1]
        rows = [{"spot_shock": r.scenario.spot_pct / 100.0, "vol_shock": r.scenario.vol_pts, "pnl": r.pnl}
                for r in analysis.stress if r.scenario.days == days and math.isfinite(r.pnl)]
        if not rows:
            self.stress.notice("info", "No position can be repriced (no quotes).")
            return
        self.stress.set_title(f"Stress PnL (spot x vol), {'today' if days == 0 else f'in {days} days'}")
        self.stress.chart(pd.DataFrame(rows), charts.stress_heatmap, key=days)

    def _fill_performance(self, portfolio: Portfolio, symbols: list[str], day: date) -> None:
        sessions = [r["day"] for r in self.read(SESSIONS, [day, symbols, PERFORMANCE_SESSIONS]).to_pylist()]
        flat = StressSpec((), (), 0)
        points = []
        for session in sorted(sessions):
            chains = latest_chains(self.read, symbols, session)
            closes = latest_closes(self.read, [s for s in symbols if s not in chains], session)
            totals = analyze_portfolio(portfolio, chains, session, flat, spots=closes).totals
            if totals.valued == totals.positions:
                points.append({"date": session, "value": totals.net_liq, "pnl": totals.pnl})
        if len(points) < 2:
            self.performance.notice("info", "Daily performance needs snapshots of two or more sessions "
                                            "(`oh emit snapshot-options --start ... --end ...`).")
            return
        self.performance.chart(pd.DataFrame(points), charts.performance)
