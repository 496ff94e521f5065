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
from oh.domain import calendar, units
from oh.domain.analyze import PortfolioAnalysis, StressSpec, analyze_portfolio
from oh.domain.limits import breaches
from oh.domain.portfolio import Portfolio, PortfolioError
from oh.read.quotes import chains_by_day, closes_by_day, latest_chains, latest_closes
from panel_app import book, charts
from panel_app.components import Slot, empty_text, side_by_side, sync_url
from panel_app.page import Page
from panel_app.widgets import date_picker, url_arg

SESSIONS = """
SELECT DISTINCT snapshot_date AS day FROM option_snapshots
WHERE snapshot_date <= ? AND underlying IN (SELECT unnest(?::VARCHAR[]))
ORDER BY 1 DESC LIMIT ?
"""
PERFORMANCE_SESSIONS = 20
PERFORMANCE_TABLES = ("option_snapshots", "candles_daily")  # the events that change these drop the cached series


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
        self.as_of = date_picker("Value as of (empty: the last closed session)", url_arg("as_of"))
        self.horizon = pn.widgets.RadioButtonGroup(name="Stress horizon", options=["today", "days forward"],
                                                   value="today")
        for widget, name in ((self.as_of, "as_of"), (self.horizon, "horizon")):
            sync_url(widget, name)
        self.control(self.as_of, self.horizon)
        self.symbols: set[str] = set()
        self._mtime: float | None = None
        self.summary = Slot()
        self.limits = Slot()
        self.positions = Slot("Positions and structures")
        self.greeks = Slot("Greeks")
        self.stress = Slot("Stress PnL (spot x vol)", min_height=300)
        self.performance = Slot("Daily performance (net liquidation value at each snapshot session)", min_height=260)
        self.warnings = Slot()

    def controls(self) -> list[Any]:
        return [self.as_of, pn.pane.Markdown("Stress horizon", margin=(0, 10)), self.horizon]

    def layout(self) -> list[Any]:
        return [self.summary.panel, self.limits.panel, self.positions.panel, self.greeks.panel,
                side_by_side(self.stress.panel, self.performance.panel, basis=440), self.warnings.panel]

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
        for slot in (self.limits, self.positions, self.greeks, self.stress, self.performance, self.warnings):
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
        day = self.as_of.value or calendar.last_closed_session(calendar.wall_clock())  # as the briefing values it
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
        currency = portfolio.base_currency
        self.summary.html(book.summary_html(analysis, currency))
        kind, text = book.limits_html(breaches(analysis, portfolio.risk_profile, currency=currency),
                                      portfolio.risk_profile)
        self.limits.notice(kind, text)
        self.positions.html(book.positions_html(analysis, currency))
        self.greeks.html(book.greeks_html(analysis, currency))
        self.fill(self.stress, lambda: self._fill_stress(analysis), "The stress grid")
        self.fill(self.performance, lambda: self._fill_performance(portfolio, symbols, day), "The performance")
        lines = tables.warning_lines(analysis)  # the same warnings as `oh portfolio analyze`
        if lines:
            self.warnings.notice("info", f"**{units.plural(len(lines), 'warning')}:**\n\n" +
                                 "\n".join(f"- {html.escape(line)}" for line in lines))
        else:
            self.warnings.show()

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
        key = ("portfolio_performance", self._mtime, self._file_size(), day, tuple(symbols))
        points = self.ctx.queries.memo(key, PERFORMANCE_TABLES, lambda: self._performance(portfolio, symbols, day))
        if len(points) < 2:
            self.performance.notice("info", "Daily performance needs snapshots of two or more sessions "
                                            "(`oh emit snapshot-options --start ... --end ...`).")
            return
        self.performance.chart(pd.DataFrame(points), charts.performance)

    def _performance(self, portfolio: Portfolio, symbols: list[str], day: date) -> list[dict[str, Any]]:
        """Net liq and PnL at each of the last snapshot sessions (the portfolio valued as of each)."""
        sessions = [r["day"] for r in self.read(SESSIONS, [day, symbols, PERFORMANCE_SESSIONS]).to_pylist()]
        flat = StressSpec((), (), 0)
        chains = chains_by_day(self.read, symbols, sessions)  # one query for every session, not one per symbol
        unquoted = sorted({s for session in sessions for s in symbols if s not in chains[session]})
        closes = closes_by_day(self.read, unquoted, sessions)
        points = []
        for session in sorted(sessions):
            spots = {s: c for s, c in closes[session].items() if s not in chains[session]}
            totals = analyze_portfolio(portfolio, chains[session], session, flat, spots=spots).totals
            if totals.valued == totals.positions:
                points.append({"date": session, "value": totals.net_liq, "pnl": totals.pnl})
        return points

    def _file_size(self) -> int | None:
        try:
            return self.path.stat().st_size
        except OSError:
            return None
