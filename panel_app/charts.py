"""The dashboard's charts: DataFrames in, hvplot/HoloViews objects out (nothing is computed here
that a service owns; these only draw what the warehouse holds)."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import hvplot.pandas  # noqa: F401  (registers DataFrame.hvplot)
import pandas as pd

hv.extension("bokeh", logo=False)

STATUS_COLORS = {"success": "#2e7d32", "failed": "#c62828", "abandoned": "#8e24aa", "started": "#1565c0",
                 "skipped": "#9e9e9e"}
COVERAGE_CODES = {"before_start": 0, "present": 1, "missing": 2}
WIDE = {"responsive": True, "height": 320}
TOOLS = ["hover"]


def plain(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text columns are plain objects: HoloViews reshapes columns, which pandas 3's
    Arrow-backed `str` arrays refuse (heatmaps, hover columns)."""
    out = df.copy()
    for column in out.columns:
        if pd.api.types.is_string_dtype(out[column].dtype) and out[column].dtype != object:
            out[column] = out[column].astype(object)
    return out


def _dates(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    out = plain(df)
    for column in columns:
        out[column] = pd.to_datetime(out[column])
    return out


class RunsTimeline:
    """One segment per run (start to end, or to now while it runs) on a row per job, colored by status.

    Plain Bokeh rather than hvplot because it is live: a refresh replaces the data of one
    ColumnDataSource (a small patch to the browser) instead of building a new figure each time.
    """

    def __init__(self) -> None:
        from bokeh.models import ColumnDataSource, FactorRange, HoverTool
        from bokeh.plotting import figure

        self.source = ColumnDataSource({k: [] for k in ("start", "end", "job", "status", "run_id", "color")})
        self.figure = figure(y_range=FactorRange(), x_axis_type="datetime", height=240, sizing_mode="stretch_width",
                             tools="xpan,xwheel_zoom,reset,save", toolbar_location="right")
        self.figure.segment(x0="start", y0="job", x1="end", y1="job", color="color", line_width=12, source=self.source,
                            legend_field="status")
        self.figure.add_tools(HoverTool(tooltips=[("job", "@job"), ("status", "@status"), ("run", "@run_id"),
                                                  ("started", "@start{%F %T}")], formatters={"@start": "datetime"}))
        self.figure.legend.location = "top_left"
        self.figure.legend.orientation = "horizontal"
        self.figure.xaxis.axis_label = "started (UTC)"

    def update(self, df: pd.DataFrame) -> None:
        """Show these runs (job_name, status, started_at, ended_at, run_id)."""
        data = _dates(df, "started_at", "ended_at")
        ended = data["ended_at"].fillna(pd.Timestamp.now(tz="UTC").tz_localize(None))
        span = (ended.max() - data["started_at"].min()) if len(data) else pd.Timedelta(0)
        shortest = max(span * 0.004, pd.Timedelta(milliseconds=200))  # a sub-second run stays visible
        end = pd.concat([ended, data["started_at"] + shortest], axis=1).max(axis=1)
        self.source.data = {
            "start": list(data["started_at"]), "end": list(end), "job": [str(j) for j in data["job_name"]],
            "status": [str(s) for s in data["status"]], "run_id": [str(r)[:8] for r in data["run_id"]],
            "color": [STATUS_COLORS.get(str(s), "#555555") for s in data["status"]],
        }
        jobs = sorted({str(j) for j in data["job_name"]})
        if list(self.figure.y_range.factors) != jobs:
            self.figure.y_range.factors = jobs


def coverage_heatmap(df: pd.DataFrame) -> Any:
    """Symbol x session: present (green), missing (red), before the symbol's first session (grey)."""
    data = plain(df)
    data["session"] = data["session"].astype(str).astype(object)
    data["code"] = data["state"].map(COVERAGE_CODES)
    height = max(160, 28 * data["symbol"].nunique() + 90)
    return data.hvplot.heatmap(
        x="session", y="symbol", C="code", cmap=["#e0e0e0", "#43a047", "#e53935"], clim=(0, 2), colorbar=False,
        hover_cols=["state"], rot=60, responsive=True, height=height, xlabel="", ylabel="",
    )


def candles(df: pd.DataFrame) -> Any:
    """Candlesticks over volume spikes, sharing the date axis."""
    data = _dates(df, "date")
    price = data.hvplot.ohlc(x="date", y=["open", "low", "high", "close"], responsive=True, height=340,
                             ylabel="price", xlabel="", grid=True)
    volume = hv.Spikes(data, "date", "volume").opts(responsive=True, height=130, line_width=2, color="#607d8b",
                                                    xlabel="", tools=TOOLS)
    return (price + volume).cols(1)


def iv_smile(df: pd.DataFrame) -> Any:
    """Implied volatility by strike, one line per expiry (out-of-the-money side of each strike)."""
    data = plain(df)
    data["expiry"] = data["expiry"].astype(str).astype(object)
    return data.hvplot.line(x="strike", y="iv", by="expiry", responsive=True, height=320, ylabel="IV",
                            legend="right", grid=True)


def oi_by_strike(df: pd.DataFrame) -> Any:
    """Open interest by strike, calls and puts side by side."""
    return plain(df).hvplot.step(x="strike", y="open_interest", by="put_call", where="mid", responsive=True, height=280,
                          ylabel="open interest", grid=True, color=["#1e88e5", "#e53935"])


def flow_bars(df: pd.DataFrame, x: str, y: str) -> Any:
    """A flow value by strike or expiry: calls (blue) just left of each strike, puts (red) just right."""
    data = plain(df)
    if x == "expiry":
        data[x] = pd.to_datetime(data[x])
        offset: Any = pd.Timedelta(hours=18)
    else:
        steps = pd.Series(sorted(data[x].dropna().unique())).diff().dropna()
        offset = float(steps.min()) * 0.18 if len(steps) else 0.5
    layers = []
    for right, color, sign, label in (("C", "#1e88e5", -1, "calls"), ("P", "#e53935", 1, "puts")):
        part = data[data["put_call"] == right]
        points = pd.DataFrame({x: part[x] + sign * offset, y: part[y], "label": part["label"], "oi_today": part["oi_today"]})
        layers.append(hv.Spikes(points, x, [y, "label", "oi_today"], label=label).opts(color=color, line_width=4,
                                                                                        tools=TOOLS))
    return hv.Overlay(layers).opts(responsive=True, height=320, ylabel=y, xlabel=x, legend_position="top_left",
                                   show_grid=True)


def flow_heatmap(df: pd.DataFrame, value: str) -> Any:
    """Expiry x strike heatmap of one flow value (building blue, unwinding red)."""
    data = plain(df)
    data["expiry"] = data["expiry"].astype(str).astype(object)
    top = max(1.0, float(data[value].abs().max() or 1.0))
    return data.hvplot.heatmap(x="strike", y="expiry", C=value, reduce_function=sum, cmap="RdBu", clim=(-top, top),
                               responsive=True, height=420, colorbar=True)


def metric_history(df: pd.DataFrame, metric: str, by: str = "symbol") -> Any:
    """One derived metric over time, a line per symbol (or per `by`)."""
    data = _dates(df, "session_date")
    return data.hvplot.line(x="session_date", y=metric, by=by, responsive=True, height=320, grid=True,
                            xlabel="", ylabel=metric, legend="top_left")


def iv_rank_bands(df: pd.DataFrame) -> Any:
    """IV rank (0-100) over time with the low (< 20) and high (> 80) bands shaded."""
    data = _dates(df, "session_date")
    lines = data.hvplot.line(x="session_date", y="iv_rank", by="symbol", responsive=True, height=260, grid=True,
                             xlabel="", ylabel="IV rank", ylim=(0, 100), legend="top_left")
    bands = hv.HSpan(0, 20).opts(color="#43a047", alpha=0.12) * hv.HSpan(80, 100).opts(color="#e53935", alpha=0.12)
    return bands * lines


def stress_heatmap(df: pd.DataFrame) -> Any:
    """Portfolio PnL over a spot x vol grid, each cell labelled with its PnL."""
    data = plain(df)
    data["spot"] = data["spot_shock"].map(lambda v: f"{100 * v:+g}%").astype(object)
    data["vol"] = data["vol_shock"].map(lambda v: f"{v:+g} pts").astype(object)
    data["text"] = data["pnl"].map(lambda v: f"{v:+,.0f}").astype(object)
    top = max(1.0, float(data["pnl"].abs().max() or 1.0))
    heat = hv.HeatMap(data, kdims=["spot", "vol"], vdims=["pnl"]).opts(cmap="RdYlGn", clim=(-top, top),
                                                                        responsive=True, height=300, tools=TOOLS)
    labels = hv.Labels(data, kdims=["spot", "vol"], vdims=["text"]).opts(text_font_size="9pt", text_color="#1f2d3d")
    return heat * labels


def performance(df: pd.DataFrame) -> Any:
    """Daily portfolio value (or PnL) over time."""
    data = _dates(df, "date")
    return data.hvplot.line(x="date", y="value", responsive=True, height=260, grid=True, xlabel="", ylabel="value")
