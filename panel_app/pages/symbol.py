"""Symbol explorer: candles with volume, the latest option chain (IV smile per expiry, open interest
by strike) and the symbol's derived-metrics history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import panel as pn

from oh.domain import units
from panel_app import charts
from panel_app.components import Slot, empty_text, frame, side_by_side, sync_url
from panel_app.page import Page
from panel_app.widgets import date_picker, symbol_select, url_arg

SYMBOLS = """
SELECT symbol FROM candles_daily UNION SELECT underlying FROM option_snapshots UNION SELECT symbol FROM derived_daily
ORDER BY 1
"""
CANDLES = """
SELECT date, open, high, low, close, volume FROM candles_daily
WHERE symbol = ? AND date BETWEEN ? AND ? ORDER BY date
"""
LAST_CANDLE = "SELECT max(date) AS last FROM candles_daily WHERE symbol = ?"
LATEST_CHAIN_DATE = "SELECT max(snapshot_date) AS day FROM option_snapshots WHERE underlying = ?"
CHAIN = """
SELECT expiry, put_call, strike, spot, iv, open_interest FROM option_snapshots
WHERE underlying = ? AND snapshot_date = ? ORDER BY expiry, strike, put_call
"""
DERIVED = """
SELECT session_date, spot, atm_iv, atm_iv_30d, rv_20, rv_60, expected_move_pct, skew_25d_pts, term_slope_pts,
       pcr_oi, pcr_volume, call_wall, put_wall, max_pain, iv_rank, iv_percentile
FROM derived_daily WHERE symbol = ? ORDER BY session_date
"""
SMILE_EXPIRIES = 6


class SymbolPage(Page):
    """One underlying, everything the warehouse knows about it."""

    slug = "symbol"
    title = "Symbol explorer"
    watch = frozenset({"CandlesIngested", "ChainSnapshotted", "DerivedComputed"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.symbol = symbol_select(self.read, SYMBOLS, url_arg("symbol"))
        self.start = date_picker("From", url_arg("start"))
        self.end = date_picker("To", url_arg("end"))
        self.expiry = pn.widgets.Select(name="Open interest of expiry", options=[])
        wanted_expiry = url_arg("expiry")
        if wanted_expiry:
            self.expiry.options = [wanted_expiry]
            self.expiry.value = wanted_expiry
        for widget, name in ((self.symbol, "symbol"), (self.start, "start"), (self.end, "end"), (self.expiry, "expiry")):
            sync_url(widget, name)
        self.symbol.param.watch(self._symbol_changed, "value")
        self.control(self.start, self.end, self.expiry)
        self.summary = Slot()
        self.candles = Slot("Daily candles and volume", min_height=470)
        self.smile = Slot("IV smile per expiry (latest chain, out-of-the-money side)", min_height=330)
        self.oi = Slot("Open interest by strike", min_height=330)
        self.derived_chart = Slot("Derived metrics history: ATM IV vs realized volatility", min_height=330)
        self.derived_table = Slot("Derived metrics (latest first)", page_size=60)

    def controls(self) -> list[Any]:
        return [self.symbol, self.start, self.end, self.expiry]

    def layout(self) -> list[Any]:
        return [self.summary.panel, self.candles.panel,
                side_by_side(self.smile.panel, self.oi.panel, basis=440),
                self.derived_chart.panel, self.derived_table.panel]

    def relevant(self, event: Any) -> bool:
        return event.type in self.watch and (not event.symbols or self.symbol.value in event.symbols)

    def _symbol_changed(self, _event: Any) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            self.expiry.value = None
        finally:
            self._updating = False
        self.refresh()

    def update(self) -> None:
        if not self.symbol.options:
            self.symbol.options = self.read(SYMBOLS).column("symbol").to_pylist()
            if self.symbol.options and self.symbol.value is None:
                self.symbol.value = self.symbol.options[0]
        symbol = self.symbol.value
        if not symbol:
            self.summary.notice("empty", empty_text("symbols", "oh emit ingest-candles --symbols SPY --start 2025-01-02 --end 2025-06-30 --wait"))
            return
        self.fill(self.smile, lambda: self._fill_chain(symbol), "The latest chain")
        self.fill(self.candles, lambda: self._fill_candles(symbol), "The candles")
        self.fill(self.derived_chart, lambda: self._fill_derived(symbol), "The derived metrics")
        self.fill(self.derived_table, lambda: self._fill_derived_table(symbol), "The derived metrics table")

    def _fill_candles(self, symbol: str) -> None:
        last = self.read(LAST_CANDLE, [symbol]).column("last")[0].as_py()
        if last is None:
            self.candles.notice("empty", empty_text(f"candles for {symbol}", f"oh emit ingest-candles --symbols {symbol} --start 2025-01-02 --end 2025-06-30 --wait"))
            return
        end = self.end.value or last
        start = self.start.value or (end - timedelta(days=182))
        rows = frame(self.read(CANDLES, [symbol, start, end]))
        if rows.empty:
            self.candles.notice("info", f"No candles for {symbol} between {start} and {end} (the last is {last}).")
            return
        self.candles.chart(rows, charts.candles, key=symbol)

    def _fill_chain(self, symbol: str) -> None:
        day = self.read(LATEST_CHAIN_DATE, [symbol]).column("day")[0].as_py()
        if day is None:
            text = empty_text(f"option chains for {symbol}", f"oh emit snapshot-options --symbols {symbol} --wait")
            self.smile.notice("empty", text)
            self.oi.notice("empty", text)
            self.summary.show()
            return
        chain = frame(self.read(CHAIN, [symbol, day]))
        spot = float(chain["spot"].iloc[0])
        expiries = sorted(chain["expiry"].unique())
        self.summary.html(f"<div class='oh-summary'><b>{symbol}</b> latest chain <b>{day}</b>: spot {units.price(spot)}, "
                          f"{units.plural(len(chain), 'contract')} over {units.plural(len(expiries), 'expiry', 'expiries')}."
                          "</div>")
        otm = chain[((chain["put_call"] == "C") & (chain["strike"] >= spot)) | ((chain["put_call"] == "P") & (chain["strike"] < spot))]
        near = [e for e in expiries if e > day][:SMILE_EXPIRIES] or expiries[:SMILE_EXPIRIES]
        smile = otm[otm["expiry"].isin(near)].sort_values(["expiry", "strike"])[["expiry", "strike", "iv"]]
        self.smile.chart(smile.reset_index(drop=True), charts.iv_smile, key=(symbol, day))
        labels = [str(e) for e in expiries]
        if list(self.expiry.options) != labels:
            current = self.expiry.value
            self.expiry.options = labels
            self.expiry.value = current if current in labels else (str(near[min(2, len(near) - 1)]) if near else labels[0])
        chosen = self.expiry.value
        oi = chain[chain["expiry"].astype(str) == chosen].sort_values(["strike", "put_call"])[["strike", "put_call", "open_interest"]]
        self.oi.set_title(f"Open interest by strike, expiry {chosen}")
        self.oi.chart(oi.reset_index(drop=True), charts.oi_by_strike, key=(symbol, day, chosen))

    def _fill_derived(self, symbol: str) -> None:
        rows = frame(self.read(DERIVED, [symbol]))
        if rows.empty:
            text = empty_text(f"derived metrics for {symbol}", f"oh emit snapshot-options --symbols {symbol} --wait")
            self.derived_chart.notice("empty", text)
            return
        long = rows.melt(id_vars=["session_date"], value_vars=["atm_iv", "rv_20", "rv_60"], var_name="series",
                         value_name="volatility")
        self.derived_chart.chart(long, lambda d: charts.metric_history(d, "volatility", by="series", kind="fraction",
                                                                       title="Volatility"), key=symbol)

    def _fill_derived_table(self, symbol: str) -> None:
        rows = frame(self.read(DERIVED, [symbol]))
        if rows.empty:
            self.derived_table.show()
            return
        self.derived_table.table(rows.sort_values("session_date", ascending=False).reset_index(drop=True))

