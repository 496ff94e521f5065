"""Derived history: any metric of `derived_daily` over time for one or more symbols, and IV rank
with its low/high bands (the metrics are computed by the derived service; this only draws them)."""

from __future__ import annotations

from typing import Any

import panel as pn

from oh.domain import units
from panel_app import charts
from panel_app.components import Slot, empty_text, frame, sync_url
from panel_app.page import Page
from panel_app.widgets import date_picker, options_of, url_arg, url_list

SYMBOLS = "SELECT DISTINCT symbol FROM derived_daily ORDER BY 1"
METRICS = """
SELECT column_name FROM duckdb_columns()
WHERE schema_name = 'main' AND table_name = 'derived_daily'
  AND data_type IN ('DOUBLE', 'INTEGER', 'BIGINT') AND column_name NOT IN ('formula_version')
ORDER BY column_index
"""
FALLBACK_METRICS = ["atm_iv", "atm_iv_30d", "rv_20", "rv_60", "iv_rv_20", "expected_move_pct", "skew_25d_pts",
                    "term_slope_pts", "pcr_oi", "pcr_volume", "net_gex", "iv_rank", "iv_percentile"]
LATEST = """
SELECT * EXCLUDE (formula_version) FROM derived_daily
QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY session_date DESC) = 1
ORDER BY symbol
"""


def _history_sql(metric: str, count: int) -> str:
    marks = ", ".join("?" for _ in range(count))
    return (f'SELECT symbol, session_date, "{metric}" FROM derived_daily WHERE symbol IN ({marks}) '
            "AND session_date BETWEEN coalesce(?, DATE '1900-01-01') AND coalesce(?, DATE '2999-12-31') "
            "ORDER BY symbol, session_date")


class DerivedPage(Page):
    """A metric over time per symbol; IV rank bands."""

    slug = "derived"
    title = "Derived history"
    watch = frozenset({"DerivedComputed"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        symbols = [str(s) for s in options_of(self.read, SYMBOLS)]
        wanted = [s for s in url_list("symbols")]
        metrics = [str(m) for m in options_of(self.read, METRICS)] or FALLBACK_METRICS
        self.symbols = pn.widgets.MultiChoice(name="Symbols", options=sorted({*symbols, *wanted}),
                                              value=wanted or symbols[:3])
        wanted_metric = url_arg("metric")
        self.metric = pn.widgets.Select(name="Metric", options={units.label(m): m for m in metrics},
                                        value=wanted_metric if wanted_metric in metrics else
                                        ("atm_iv" if "atm_iv" in metrics else metrics[0]))
        self.start = date_picker("From", url_arg("start"))
        self.end = date_picker("To", url_arg("end"))
        for widget, name in ((self.symbols, "symbols"), (self.metric, "metric"), (self.start, "start"),
                             (self.end, "end")):
            sync_url(widget, name)
        self.control(self.symbols, self.metric, self.start, self.end)
        self.history = Slot("History", min_height=340)
        self.bands = Slot("IV rank (0-100) with the low (< 20) and high (> 80) bands", min_height=340)
        self.latest = Slot("Latest values per symbol")

    def controls(self) -> list[Any]:
        return [self.symbols, self.metric, self.start, self.end]

    def layout(self) -> list[Any]:
        return [self.history.panel, self.bands.panel, self.latest.panel]

    def update(self) -> None:
        if not self.symbols.options:
            found = [str(s) for s in self.read(SYMBOLS).column(0).to_pylist()]
            self.symbols.options = found
            if found and not self.symbols.value:
                self.symbols.value = found[:3]
        symbols = list(self.symbols.value)
        if not symbols:
            text = empty_text("derived metrics", "oh emit snapshot-options --symbols SPY --start 2025-06-02 --end 2025-06-06 --wait")
            self.history.notice("empty", text)
            self.bands.show()
            self.latest.show()
            return
        self.fill(self.history, lambda: self._fill_history(symbols), "The history")
        self.fill(self.bands, lambda: self._fill_bands(symbols), "IV rank")
        self.fill(self.latest, lambda: self.latest.table(frame(self.read(LATEST))), "The latest values")

    def _rows(self, metric: str, symbols: list[str]) -> Any:
        return frame(self.read(_history_sql(metric, len(symbols)), [*symbols, self.start.value, self.end.value]))

    def _fill_history(self, symbols: list[str]) -> None:
        metric = self.metric.value
        self.history.set_title(f"{units.label(metric)} over time")
        rows = self._rows(metric, symbols).dropna(subset=[metric])
        if rows.empty:
            self.history.notice("info", f"No {units.label(metric)} values for {', '.join(symbols)} in this range.")
            return
        self.history.chart(rows, lambda d: charts.metric_history(d, metric), key=(metric, tuple(symbols)))

    def _fill_bands(self, symbols: list[str]) -> None:
        rows = self._rows("iv_rank", symbols).dropna(subset=["iv_rank"])
        if rows.empty:
            self.bands.notice("info", "No IV rank yet: it needs 20 earlier sessions of snapshots "
                                      "(`oh emit snapshot-options --start ... --end ...` over a month).")
            return
        self.bands.chart(rows, charts.iv_rank_bands, key=tuple(symbols))
