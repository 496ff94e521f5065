"""The dashboard's charts: DataFrames in, Bokeh models out (nothing is computed here that a service owns;
these only draw what the warehouse holds).

Plain Bokeh, with the units of oh.domain.units through panel_app/axes.py: axes in trader units (money
as `$1.2M`, counts as `12.3K`, IV as `%`, dates on time axes), titles and legends in words, legends
outside the plot area. Plain Bokeh rather than hvplot/HoloViews: a figure builds in milliseconds
instead of hundreds of them (HoloViews' plotting layer was most of a page's fill time), and every
formatter, legend and colour bar is ours to place.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd
from bokeh.core.properties import value
from bokeh.layouts import column
from bokeh.models import (
    BasicTicker,
    BoxAnnotation,
    ColorBar,
    ColumnDataSource,
    Div,
    FactorRange,
    HoverTool,
    Legend,
    LegendItem,
    Line,
    LinearAxis,
    LinearColorMapper,
    Range1d,
    Rect,
    Scatter,
    Segment,
    Step,
    Text,
    VBar,
)
from bokeh.palettes import Category10_10, RdBu11, RdYlGn11

from oh.domain import units
from panel_app.axes import (
    AXIS_STYLE,
    FONT,
    STRIKE_TOOLS,
    formatter,
    label_policy,
    legend_outside,
    new_figure,
    set_axis,
    tick_formatter,
)
from panel_app.glyphs import draw

STATUS_COLORS = {"success": "#2e7d32", "failed": "#c62828", "abandoned": "#8e24aa", "started": "#1565c0",
                 "skipped": "#9e9e9e"}
COVERAGE = (("present", "#43a047", "present"), ("missing", "#e53935", "missing"),
            ("before_start", "#d5d9de", "before the symbol's first session"))
CALLS, PUTS = "#1e88e5", "#e53935"
DAY_MS = 24 * 3600 * 1000
VOLUME, VOLUME_SHARE = "volume", 0.25  # the candles' volume range, and the share of the plot's height its bars take
PALETTE = Category10_10


def plain(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text columns are plain objects (pandas 3's Arrow-backed `str` arrays do not serialize
    into every Bokeh column the same way)."""
    out = df.copy()
    for name in out.columns:
        if pd.api.types.is_string_dtype(out[name].dtype) and out[name].dtype != object:
            out[name] = out[name].astype(object)
    return out


def _dates(df: pd.DataFrame, *names: str) -> pd.DataFrame:
    out = plain(df)
    for name in names:
        out[name] = pd.to_datetime(out[name])
    return out


def _texts(values: Any, column_name: str) -> list[str]:
    return [units.show(column_name, None if (isinstance(v, float) and math.isnan(v)) else v) for v in values]


def _hover(fig: Any, tooltips: list[tuple[str, str]], renderers: list[Any] | None = None,
           datetime_fields: tuple[str, ...] = ()) -> None:
    fig.add_tools(HoverTool(tooltips=tooltips, renderers=renderers or "auto",
                            formatters={f"@{name}": "datetime" for name in datetime_fields}))


def _color_bar(mapper: LinearColorMapper, kind: str, title: str) -> ColorBar:
    return ColorBar(color_mapper=mapper, ticker=BasicTicker(desired_num_ticks=5), formatter=tick_formatter(kind),
                    title=title, title_text_font_style="normal", title_text_font=FONT, label_standoff=6,
                    width=12, location=(0, 0), major_label_text_font=FONT)


# ---------------------------------------------------------------- Health


class RunsTimeline:
    """One segment per run (start to end, or to now while it runs) on a row per job, colored by status.

    Live: a refresh replaces the data of one ColumnDataSource (a small patch to the browser) instead of
    building a new figure each time.
    """

    def __init__(self) -> None:
        self.source = ColumnDataSource({k: [] for k in ("start", "end", "job", "status", "run_id", "color")})
        self.figure = new_figure(240, x_axis_type="datetime", y_range=FactorRange(),
                                 tools="xpan,xwheel_zoom,reset,save")
        self._items: dict[str, LegendItem] = {}
        self._by_status: dict[str, ColumnDataSource] = {}
        for status, color in STATUS_COLORS.items():
            view_source = ColumnDataSource({k: [] for k in self.source.data})
            renderer = draw(self.figure, Segment, view_source, x0="start", y0="job", x1="end", y1="job", color=color,
                            line_width=12)
            self._items[status] = LegendItem(label=status, renderers=[renderer])
            self._by_status[status] = view_source
        self.legend = Legend(items=[])
        self.figure.add_layout(self.legend, "below")
        legend_outside(self.figure, "below")
        _hover(self.figure, [("job", "@job"), ("status", "@status"), ("run", "@run_id"), ("started (UTC)", "@start{%F %T}")],
               datetime_fields=("start",))
        set_axis(self.figure.xaxis, kind="date", title="Started (UTC)")

    def update(self, df: pd.DataFrame) -> None:
        """Show these runs (job_name, status, started_at, ended_at, run_id)."""
        data = _dates(df, "started_at", "ended_at")
        ended = data["ended_at"].fillna(pd.Timestamp.now(tz="UTC").tz_localize(None))
        span = (ended.max() - data["started_at"].min()) if len(data) else pd.Timedelta(0)
        shortest = max(span * 0.004, pd.Timedelta(milliseconds=200))  # a sub-second run stays visible
        end = pd.concat([ended, data["started_at"] + shortest], axis=1).max(axis=1)
        jobs = [units.label(str(j)) for j in data["job_name"]]
        statuses = [str(s) for s in data["status"]]
        rows = {"start": list(data["started_at"]), "end": list(end), "job": jobs, "status": statuses,
                "run_id": [str(r)[:8] for r in data["run_id"]],
                "color": [STATUS_COLORS.get(s, "#555555") for s in statuses]}
        self.source.data = rows
        shown = []
        for status, source in self._by_status.items():
            keep = [i for i, s in enumerate(statuses) if s == status or (status == "started" and s not in STATUS_COLORS)]
            source.data = {k: [v[i] for i in keep] for k, v in rows.items()}
            if keep:
                shown.append(self._items[status])
        if [item.label for item in self.legend.items] != [item.label for item in shown]:
            self.legend.items = shown  # only the statuses on the chart: a legend entry always has its colour
        factors = sorted(set(jobs))
        if list(self.figure.y_range.factors) != factors:
            self.figure.y_range.factors = factors


def coverage_heatmap(df: pd.DataFrame) -> Any:
    """Symbol x session: present (green), missing (red), before the symbol's first session (grey), with
    the colour legend under the plot."""
    data = plain(df)
    data["session"] = data["session"].astype(str)
    sessions = sorted(data["session"].unique())
    symbols = sorted(data["symbol"].unique(), reverse=True)
    height = max(180, 24 * len(symbols) + 130)
    fig = new_figure(height, x_range=FactorRange(*sessions), y_range=FactorRange(*symbols), tools="save", grid=False)
    # one renderer, each cell's colour and words in the source (a renderer per state was 5 models more each, and
    # the legend is the swatches below, not Bokeh's); drawn in COVERAGE's order, as the renderers were
    order = {state: i for i, (state, _, _) in enumerate(COVERAGE)}
    data = data[data["state"].isin(list(order))].sort_values("state", key=lambda s: s.map(order), kind="stable")
    colors = {state: color for state, color, _ in COVERAGE}
    words = {state: text for state, _, text in COVERAGE}
    source = ColumnDataSource({"session": list(data["session"]), "symbol": list(data["symbol"]),
                               "state": [words[s] for s in data["state"]], "color": [colors[s] for s in data["state"]]})
    draw(fig, Rect, source, x="session", y="symbol", width=0.92, height=0.86, fill_color="color", line_color=None)
    _hover(fig, [("symbol", "@symbol"), ("session", "@session"), ("", "@state")])
    fig.xaxis.major_label_orientation = math.pi / 3
    fig.xaxis.axis_label = "Session"
    return column(fig, swatches([(color, words) for _, color, words in COVERAGE]), sizing_mode="stretch_width")


def swatches(items: list[tuple[str, str]]) -> Div:
    """A colour legend under a chart (every colour always listed, even one no cell has today)."""
    cells = "".join(f'<span class="oh-swatch"><i style="background:{color}"></i>{html.escape(words)}</span>'
                    for color, words in items)
    return Div(text=f'<div class="oh-swatches">{cells}</div>', sizing_mode="stretch_width",
               stylesheets=[".oh-swatches { display:flex; flex-wrap:wrap; gap:4px 16px; justify-content:center;"
                            " font-size:12px; color:#3b4654; font-family:" + FONT.replace('"', "'") + "; }"
                            " .oh-swatch i { display:inline-block; width:12px; height:12px; border-radius:2px;"
                            " margin-right:6px; vertical-align:-1px; }"])


# ---------------------------------------------------------------- Symbol explorer


def candles(df: pd.DataFrame) -> Any:
    """Candlesticks (green up, red down) with volume under them, in one figure: the prices on the left axis over the
    top of the plot, the volume bars on their own axis (right) over its bottom quarter, one date axis. (Two figures
    sharing a date range were twice a figure's models, axes, layout and drawing for what a trader reads together.)"""
    data = _dates(df, "date")
    up = data["close"] >= data["open"]
    source = ColumnDataSource({
        "date": data["date"], "high": data["high"], "low": data["low"],
        "top": np.maximum(data["open"], data["close"]), "bottom": np.minimum(data["open"], data["close"]),
        "color": np.where(up, "#26a69a", "#ef5350"), "volume": data["volume"],
        "ohlc": [f"O {units.price(o)}  H {units.price(h)}  L {units.price(lo)}  C {units.price(c)}"
                 for o, h, lo, c in zip(data["open"], data["high"], data["low"], data["close"], strict=True)],
        "volume_text": _texts(data["volume"], "volume"),
    })
    low, high = float(data["low"].min()), float(data["high"].max())
    span = (high - low) or max(abs(high), 1.0) * 0.02
    most = float(data["volume"].max()) if len(data) else 0.0
    most = most if most > 0 else 1.0
    # the prices keep the top ~70% of the plot (the range runs below their low), the volume bars the bottom 25%
    fig = new_figure(450, x_axis_type="datetime", y_range=Range1d(low - 0.45 * span, high + 0.05 * span),
                     extra_y_ranges={VOLUME: Range1d(0, most / VOLUME_SHARE)})
    draw(fig, VBar, source, x="date", width=0.7 * DAY_MS, top="volume", color="#90a4ae", y_range_name=VOLUME)
    draw(fig, Segment, source, x0="date", y0="high", x1="date", y1="low", color="color")
    bars = draw(fig, VBar, source, x="date", width=0.7 * DAY_MS, top="top", bottom="bottom", fill_color="color",
                line_color="color")
    # each axis only along its own part of the plot (a price tick beside the volume bars would read as theirs); the
    # volume axis needs no title beside its bars (the section is "Daily candles and volume", hover says "volume")
    set_axis(fig.yaxis, kind="price", title="Price")
    fig.yaxis.bounds = (low - 0.05 * span, high + 0.05 * span)
    volume = LinearAxis(y_range_name=VOLUME, bounds=(0, most), ticker=BasicTicker(desired_num_ticks=3),
                        formatter=formatter("volume"), axis_label="", major_label_policy=label_policy(), **AXIS_STYLE)
    fig.add_layout(volume, "right")
    _hover(fig, [("", "@date{%F}"), ("", "@ohlc"), ("volume", "@volume_text")], [bars], ("date",))
    return fig


def iv_smile(df: pd.DataFrame) -> Any:
    """Implied volatility (in %) by strike, one line per expiry (out-of-the-money side of each strike)."""
    data = plain(df)
    fig = new_figure(300, tools=STRIKE_TOOLS)
    expiries = list(data.groupby("expiry", sort=True))
    # one source for every line (columns x0, y0, x1, ...; a shorter expiry padded with NaN, where a line just
    # ends): a source with its selection per line was two models more per expiry, each drawn the same
    longest = max((len(part) for _, part in expiries), default=0)
    columns: dict[str, list[float]] = {}
    for i, (_, part) in enumerate(expiries):
        pad = [math.nan] * (longest - len(part))
        columns[f"x{i}"] = [float(v) for v in part["strike"]] + pad
        columns[f"y{i}"] = [float(v) for v in part["iv"]] + pad
    source = ColumnDataSource(columns)
    for i, (expiry, _) in enumerate(expiries):
        draw(fig, Line, source, x=f"x{i}", y=f"y{i}", color=PALETTE[i % len(PALETTE)], line_width=2,
             legend_label=str(expiry))
    set_axis(fig.xaxis, "strike")
    set_axis(fig.yaxis, "iv")
    fig.add_tools(HoverTool(tooltips=[("strike", "$x{0,0.[00]}"), ("IV", "$y{0.0%}")]))
    legend_outside(fig, "below", columns=3)
    return fig


def oi_by_strike(df: pd.DataFrame) -> Any:
    """Open interest by strike, calls and puts."""
    data = plain(df)
    fig = new_figure(280, tools=STRIKE_TOOLS)
    for right, color, words in (("C", CALLS, "Calls"), ("P", PUTS, "Puts")):
        rows = data[data["put_call"] == right]
        source = ColumnDataSource({"x": list(rows["strike"]), "y": list(rows["open_interest"])})
        draw(fig, Step, source, x="x", y="y", mode="center", color=color, line_width=2, legend_label=words)
    set_axis(fig.xaxis, "strike")
    set_axis(fig.yaxis, "open_interest")
    fig.add_tools(HoverTool(tooltips=[("strike", "$x{0,0.[00]}"), ("open interest", "$y{0,0}")]))
    legend_outside(fig, "below", columns=2)
    return fig


def metric_history(df: pd.DataFrame, metric: str, by: str = "symbol", kind: str | None = None,
                   title: str | None = None) -> Any:
    """One metric over time, a line per `by` value (symbols, or series named by column, shown in words)."""
    data = _dates(df, "session_date")
    fig = new_figure(300, x_axis_type="datetime")
    renderers = []
    for i, (name, part) in enumerate(data.groupby(by, sort=True)):
        label = units.label(str(name)) if by != "symbol" else str(name)
        source = ColumnDataSource({"date": part["session_date"], "y": part[metric], "series": [label] * len(part),
                                   "text": _texts(part[metric], metric if kind is None else _kind_column(kind))})
        color = PALETTE[i % len(PALETTE)]
        renderers.append(draw(fig, Line, source, x="date", y="y", color=color, line_width=2, legend_label=label))
        # the same label: the dots join the line's legend entry, so a click hides both
        draw(fig, Scatter, source, x="date", y="y", color=color, size=4, legend_label=label)
    set_axis(fig.yaxis, metric, kind=kind, title=title)
    set_axis(fig.xaxis, kind="date", title="")
    _hover(fig, [("", "@series"), ("session", "@date{%F}"), ("value", "@text")], renderers, ("date",))
    legend_outside(fig, "below", columns=4)
    return fig


def _kind_column(kind: str) -> str:
    """A column whose unit is `kind` (so hover text and ticks agree when a chart names the unit itself)."""
    return next((name for name, unit in units.KINDS.items() if unit == kind), "value")


# ---------------------------------------------------------------- Flow


def flow_bars(df: pd.DataFrame, x: str, y: str) -> Any:
    """A flow value by strike or expiry: calls (blue) just left of each strike, puts (red) just right."""
    data = plain(df)
    dated = x == "expiry"
    if dated:
        data[x] = pd.to_datetime(data[x])
        offset: Any = pd.Timedelta(hours=18)
        width: Any = 0.7 * DAY_MS
    else:
        steps = pd.Series(sorted(data[x].dropna().unique())).diff().dropna()
        step = float(steps.min()) if len(steps) else 1.0
        offset, width = step * 0.2, step * 0.35
    fig = new_figure(320, x_axis_type="datetime" if dated else "linear", tools=STRIKE_TOOLS)
    renderers = []
    for right, color, words, sign in (("C", CALLS, "Calls", -1), ("P", PUTS, "Puts", 1)):
        part = data[data["put_call"] == right]
        source = ColumnDataSource({
            "x": part[x] + sign * offset, "y": part[y], "label": list(part["label"].fillna("")),
            "value": _texts(part[y], y), "oi": _texts(part["oi_today"], "oi_today"),
            "at": [units.when(v.date()) if dated else units.strike(v) for v in part[x]],
        })
        renderers.append(draw(fig, VBar, source, x="x", top="y", width=width, color=color, legend_label=words))
    set_axis(fig.yaxis, y)
    set_axis(fig.xaxis, x, kind="date" if dated else None)
    _hover(fig, [(units.label(x), "@at"), (units.label(y), "@value"), ("flow", "@label"), ("OI today", "@oi")],
           renderers)
    legend_outside(fig, "below", columns=2)
    return fig


def flow_heatmap(df: pd.DataFrame, value: str) -> Any:
    """Expiry x strike heatmap of one flow value (building blue, unwinding red), with its colour bar."""
    data = plain(df)
    data["expiry"] = data["expiry"].astype(str)
    grouped = data.groupby(["expiry", "strike"], as_index=False)[value].sum()
    expiries = sorted(grouped["expiry"].unique(), reverse=True)
    strikes = sorted(grouped["strike"].unique())
    step = float(pd.Series(strikes).diff().dropna().min()) if len(strikes) > 1 else 1.0
    top = max(1.0, float(grouped[value].abs().max() or 1.0))
    mapper = LinearColorMapper(palette=list(RdBu11), low=-top, high=top)  # RdBu11 runs blue (high) to red (low)
    source = ColumnDataSource({"strike": grouped["strike"], "expiry": list(grouped["expiry"]), "v": grouped[value],
                               "text": _texts(grouped[value], value),
                               "strike_text": [units.strike(s) for s in grouped["strike"]]})
    fig = new_figure(max(260, 18 * len(expiries) + 120), y_range=FactorRange(*expiries), grid=False)
    draw(fig, Rect, source, x="strike", y="expiry", width=step, height=0.95,
         fill_color={"field": "v", "transform": mapper}, line_color=None)
    fig.add_layout(_color_bar(mapper, units.kind(value), units.label(value)), "right")
    set_axis(fig.xaxis, "strike")
    fig.yaxis.axis_label = "Expiry"
    _hover(fig, [("expiry", "@expiry"), ("strike", "@strike_text"), (units.label(value), "@text")])
    return fig


# ---------------------------------------------------------------- Derived history


def iv_rank_bands(df: pd.DataFrame) -> Any:
    """IV rank (0-100) over time per symbol, with the low (< 20) and high (> 80) bands shaded."""
    fig = metric_history(df, "iv_rank")
    fig.y_range = Range1d(0, 100)
    fig.add_layout(BoxAnnotation(bottom=0, top=20, fill_color="#43a047", fill_alpha=0.10, level="underlay"))
    fig.add_layout(BoxAnnotation(bottom=80, top=100, fill_color="#e53935", fill_alpha=0.10, level="underlay"))
    return fig


# ---------------------------------------------------------------- Portfolio


def stress_heatmap(df: pd.DataFrame) -> Any:
    """Portfolio PnL over a spot x vol grid, each cell labelled with its PnL, with a money colour bar."""
    data = plain(df)
    spots = sorted(data["spot_shock"].unique())
    vols = sorted(data["vol_shock"].unique())
    spot_text = {s: units.pct(s, 0 if float(100 * s).is_integer() else 1, sign=True) for s in spots}
    vol_text = {v: f"{v:+g} pts" for v in vols}
    top = max(1.0, float(data["pnl"].abs().max() or 1.0))
    mapper = LinearColorMapper(palette=list(reversed(RdYlGn11)), low=-top, high=top)  # reversed: green is a gain
    source = ColumnDataSource({
        "spot": [spot_text[s] for s in data["spot_shock"]], "vol": [vol_text[v] for v in data["vol_shock"]],
        "pnl": data["pnl"], "text": [units.money(v, compact=abs(v) >= 1_000, sign=True, digits=0) for v in data["pnl"]],
    })
    fig = new_figure(300, x_range=FactorRange(*[spot_text[s] for s in spots]),
                     y_range=FactorRange(*[vol_text[v] for v in vols]), tools="save", grid=False)
    draw(fig, Rect, source, x="spot", y="vol", width=0.97, height=0.95, fill_color={"field": "pnl", "transform": mapper},
         line_color=None)
    draw(fig, Text, source, x="spot", y="vol", text="text", text_align="center", text_baseline="middle",
         text_font_size="11px", text_color="#1f2d3d", text_font=value(FONT))  # a value: a bare string is read as a column name
    fig.add_layout(_color_bar(mapper, "money", "PnL"), "right")
    fig.xaxis.axis_label = "Spot move"
    fig.yaxis.axis_label = "Implied vol move"
    _hover(fig, [("spot", "@spot"), ("vol", "@vol"), ("PnL", "@text")])
    return fig


def performance(df: pd.DataFrame) -> Any:
    """Net liquidation value at each snapshot session."""
    data = _dates(df, "date")
    source = ColumnDataSource({"date": data["date"], "value": data["value"], "text": _texts(data["value"], "net_liq"),
                               "pnl": _texts(data["pnl"], "pnl")})
    fig = new_figure(260, x_axis_type="datetime")
    line = draw(fig, Line, source, x="date", y="value", color="#1565c0", line_width=2)
    draw(fig, Scatter, source, x="date", y="value", color="#1565c0", size=5)
    set_axis(fig.yaxis, "net_liq")
    set_axis(fig.xaxis, kind="date", title="")
    _hover(fig, [("session", "@date{%F}"), ("net liq", "@text"), ("PnL", "@pnl")], [line], ("date",))
    return fig
