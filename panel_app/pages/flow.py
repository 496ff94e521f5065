"""Flow: where open interest is building or unwinding, by strike or expiry, and the top contracts,
with window, session and group-by controls (rows of `options_flow`, computed by the flow service)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

from oh.domain import units
from panel_app import charts
from panel_app.components import Slot, empty_text, frame, sync_url
from panel_app.page import Page
from panel_app.widgets import options_of, symbol_select, url_arg

SYMBOLS = "SELECT DISTINCT symbol FROM options_flow ORDER BY 1"
WINDOWS = "SELECT DISTINCT window_sessions FROM options_flow WHERE symbol = ? ORDER BY 1"
DAYS = "SELECT DISTINCT to_date FROM options_flow WHERE symbol = ? AND window_sessions = ? ORDER BY 1 DESC"
ROWS = """
SELECT row_key, put_call, expiry, strike, oi_before, oi_today, d_oi, d_oi_notional, volume, volume_notional,
       volume_oi_ratio, delta_notional, label, from_date
FROM options_flow WHERE symbol = ? AND window_sessions = ? AND to_date = ? AND group_by = ?
ORDER BY expiry NULLS FIRST, strike NULLS FIRST, put_call
"""
TOP = """
SELECT row_key AS contract, put_call, expiry, strike, label, d_oi, d_oi_notional, oi_today, volume, volume_oi_ratio,
       delta_notional
FROM options_flow WHERE symbol = ? AND window_sessions = ? AND to_date = ? AND group_by = 'contract'
  AND d_oi IS NOT NULL
ORDER BY abs(d_oi_notional) DESC NULLS LAST, row_key LIMIT ?
"""
SUMMARY = """
SELECT label, count(*) AS contracts, sum(d_oi) AS d_oi, sum(d_oi_notional) AS d_oi_notional,
       sum(volume) AS volume
FROM options_flow WHERE symbol = ? AND window_sessions = ? AND to_date = ? AND group_by = 'contract'
GROUP BY label ORDER BY label
"""
GROUPS = {"Strike": "strike", "Expiry": "expiry", "Expiry x strike": "expiry-strike", "Contract": "contract"}
VALUES = ("d_oi", "d_oi_notional", "volume", "delta_notional")
GROUP_WORDS = {v: k.lower() for k, v in GROUPS.items()}
TOP_COLUMNS = ["contract", "put_call", "expiry", "strike", "label", "d_oi", "d_oi_notional", "oi_today", "volume",
               "volume_oi_ratio", "delta_notional"]
ROW_COLUMNS = ["row_key", "put_call", "expiry", "strike", "label", "oi_before", "oi_today", "d_oi", "d_oi_notional",
               "volume", "volume_notional", "volume_oi_ratio", "delta_notional", "from_date"]


class FlowPage(Page):
    """Positioning proxies from day-over-day open interest and volume."""

    slug = "flow"
    title = "Flow"
    watch = frozenset({"FlowComputed"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.symbol = symbol_select(self.read, SYMBOLS, url_arg("symbol"))
        self.window = pn.widgets.Select(name="Window (sessions)", options=[1], value=1)
        self.day = pn.widgets.Select(name="Session", options=[])
        wanted_day = url_arg("date")
        if wanted_day:
            self.day.options, self.day.value = [wanted_day], wanted_day
        self.group = pn.widgets.RadioBoxGroup(name="Group by", options=GROUPS, value="strike", inline=False)
        self.value = pn.widgets.Select(name="Value", options={units.label(v): v for v in VALUES}, value="d_oi_notional")
        self.top = pn.widgets.IntInput(name="Top contracts", value=20, start=5, end=500, step=5)
        self._refresh_choices()
        for widget, name in ((self.symbol, "symbol"), (self.window, "window"), (self.day, "date"),
                             (self.group, "group_by"), (self.value, "value"), (self.top, "top")):
            sync_url(widget, name)
        self.control(self.symbol, self.window, self.day, self.group, self.value, self.top)
        self.summary = Slot("Building vs unwinding (contracts)")
        self.chart = Slot("By strike", min_height=340)
        self.top_rows = Slot("Top contracts by |ΔOI notional|")
        self.rows = Slot("Grouped rows")

    def controls(self) -> list[Any]:
        return [self.symbol, self.window, self.day, pn.pane.Markdown("Group by", margin=(0, 10)), self.group,
                self.value, self.top]

    def layout(self) -> list[Any]:
        return [self.summary.panel, self.chart.panel, self.top_rows.panel, self.rows.panel]

    def relevant(self, event: Any) -> bool:
        return event.type in self.watch and (not event.symbols or self.symbol.value in event.symbols)

    def _refresh_choices(self) -> None:
        """Windows and sessions stored for the symbol (keeping the current choice when it still exists)."""
        symbol = self.symbol.value
        if not symbol:
            return
        windows = [int(w) for w in options_of(self.read, WINDOWS, [symbol])] or [1]
        if list(self.window.options) != windows:
            keep = self.window.value if self.window.value in windows else windows[0]
            self.window.options, self.window.value = windows, keep
        days = [str(d) for d in options_of(self.read, DAYS, [symbol, int(self.window.value)])]
        if days and list(self.day.options) != days:
            keep = self.day.value if self.day.value in days else days[0]
            self.day.options, self.day.value = days, keep

    def update(self) -> None:
        if not self.symbol.options:
            self.symbol.options = [str(s) for s in self.read(SYMBOLS).column(0).to_pylist()]
            if self.symbol.options and not self.symbol.value:
                self.symbol.value = self.symbol.options[0]
        symbol = self.symbol.value
        if not symbol:
            self.summary.notice("empty", empty_text("flow", "oh emit snapshot-options --symbols SPY --start 2025-06-02 --end 2025-06-06 --wait"))
            return
        self._refresh_choices()
        if not self.day.value:
            self.summary.notice("empty", empty_text(f"flow for {symbol}", f"oh emit snapshot-options --symbols {symbol} --wait"))
            return
        key = [symbol, int(self.window.value), self.day.value]
        self.rows.set_title(f"Rows grouped by {GROUP_WORDS.get(self.group.value, self.group.value)}")
        self.fill(self.summary, lambda: self._fill_summary(key), "The flow summary")
        self.fill(self.chart, lambda: self._fill_chart(key), "The flow chart")
        self.fill(self.top_rows, lambda: self._fill_table(self.top_rows, TOP, [*key, int(self.top.value)], TOP_COLUMNS),
                  "The top contracts")
        self.fill(self.rows, lambda: self._fill_table(self.rows, ROWS, [*key, self.group.value], ROW_COLUMNS), "The rows")

    def _fill_table(self, slot: Slot, sql: str, params: list[Any], columns: list[str]) -> None:
        rows = frame(self.read(sql, params))
        slot.table(rows[[c for c in columns if c in rows.columns]],
                   row_class=lambda row: f"oh-flow-{row.get('label')}" if row.get("label") else "")

    def _fill_summary(self, key: list[Any]) -> None:
        rows = frame(self.read(SUMMARY, key))
        if rows.empty:
            self.summary.notice("info", "No contract rows for this session.")
            return
        columns = [("label", "Flow"), ("contracts", "Contracts"), ("d_oi", units.label("d_oi")),
                   ("d_oi_notional", units.label("d_oi_notional")), ("volume", "Volume")]
        self.summary.rows(rows.to_dict("records"), columns,
                          row_class=lambda row: f"oh-flow-{row['label']}")

    def _fill_chart(self, key: list[Any]) -> None:
        group, value = self.group.value, self.value.value
        self.chart.set_title(f"{units.label(value)} by {GROUP_WORDS.get(group, group)} ({key[2]}, window of "
                             f"{units.plural(int(key[1]), 'session')})")
        rows = frame(self.read(ROWS, [*key, "expiry-strike" if group == "contract" else group]))
        if rows.empty:
            self.chart.notice("info", f"No `{group}` rows for this session.")
            return
        if group == "expiry-strike" or group == "contract":
            self.chart.chart(rows[["expiry", "strike", value]].dropna(subset=[value]),
                             lambda d: charts.flow_heatmap(d, value), key=(group, value))
            return
        x = "strike" if group == "strike" else "expiry"
        data = rows[[x, "put_call", value, "label", "oi_today", "volume"]].copy()
        data[value] = pd.to_numeric(data[value]).fillna(0.0)
        self.chart.chart(data.reset_index(drop=True), lambda d: charts.flow_bars(d, x, value), key=(group, value))
