"""The Bokeh glue of trader units: tick formatters, hover text and figure defaults built from oh.domain.units.

Every chart of the dashboard (panel_app/charts.py) formats its axes here, so an axis reads like the
table beside it: money as `$110.5K` / `$1.2M`, counts as `12.3K`, IV and other fractions as `25%`,
percent points as `4.2%`, prices as `1,234.5`, dates as `Jun 04` / `Jun 2026`. The compact money and
count formatters run in the browser (a `CustomJSTickFormatter`) with the thresholds and currency
symbols of `oh.domain.units` written into their code, so a tick and a table cell never disagree (a
unit test runs that code in node against `units.money` / `units.count`).

Also here: `new_figure` (the dashboard's figure defaults: responsive width, a small auto-hiding
toolbar, no logo), `legend_outside` (legends beside or under the plot, never over the data),
`set_axis` (a column's unit -> the axis formatter and label), and the two passes every chart goes
through before it is sent (`prepared`, used by `Slot.chart` and the Health timeline): `drop_unused_glyphs`,
`share_stateless_parts` and `one_way`. A chart built inside `building_for(doc)` (Slot.chart, the Health
timeline) takes those stateless parts from its session as it is built (`part`: `new_figure`'s axes, `set_axis`'s
formatters, `glyphs.draw`'s filters), so the copies sharing would drop are never made; the passes stay as the
net for anything built otherwise. Importing this module installs `lean_models` (Bokeh's constructor without the
default models its arguments replace).

`share_stateless_parts`: some models of a figure are stateless in BokehJS, yet Bokeh gives every axis,
plot, renderer and source its own: an axis's ticker, tick formatter and label policy (each call gets the
range it ticks; a date axis's ticker alone is 13 models, a DatetimeTicker and its 12 sub-tickers, plus 2
formatters), a plot's x and y scales (templates: each plot view clones them and sets the clone's ranges),
a renderer's `AllIndices` filter (a function of the source it is given), a source's `UnionRenderers`
selection policy (a function of the renderers it is given) and a box-zoom overlay's handle styling
(`BoxInteractionHandles` and its `AreaVisuals`: colours only). Within one document (one browser session),
equal parts (same type, same properties, recursively) share one copy: fewer models to build on the
server, serialize, send and build in the browser. Stateful parts (ranges, sources, their selections,
CDS views, overlays, tools) are never shared. Sharing is done once the figure is built (what the chart
code set is part of the comparison); nothing mutates these parts after that.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from weakref import WeakKeyDictionary

from bokeh.document import Document
from bokeh.model import Model
from bokeh.models import (
    AllIndices,
    Axis,
    BasicTicker,
    BasicTickFormatter,
    BoxAnnotation,
    BoxInteractionHandles,
    CategoricalAxis,
    CategoricalTicker,
    CategoricalTickFormatter,
    CDSView,
    ColumnDataSource,
    CustomJS,
    CustomJSTickFormatter,
    DatetimeAxis,
    DatetimeTicker,
    DatetimeTickFormatter,
    FactorRange,
    GlyphRenderer,
    Grid,
    LabelingPolicy,
    Legend,
    LinearAxis,
    NoOverlap,
    NumeralTickFormatter,
    Plot,
    Scale,
    Ticker,
    TickFormatter,
    UnionRenderers,
)
from bokeh.plotting import figure

from oh.domain import units
from panel_app import lean_models

lean_models.install()  # every Bokeh model of the process is built without the default models its arguments replace
AXIS_DIGITS = 2  # decimals of a compact tick at most: 1.25M stays 1.25M
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
GRID = "#e8ecf1"
TEXT = "#3b4654"
# A chart's tools. Over time (candles, histories, timelines): pan, zoom by wheel (one click to arm it: the page
# scrolls) or box, reset, save. Across strikes or expiries (IV smile, open interest, flow): box zoom, reset and save
# only: a cross-section of a chain is read by hovering and zoomed into by a box (the strikes near the money); pan
# and wheel zoom were two models more per chart that added nothing a box zoom and reset do not.
TIME_TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
STRIKE_TOOLS = "box_zoom,reset,save"
# The legend's columns follow the plot's width (a phone gets fewer): one callback per browser session, shared by
# every legend under a plot (it reads the legend's item width and most columns from the legend's `tags`)
LEGEND_COLUMNS_JS = """
for (const legend of [...cb_obj.above, ...cb_obj.below]) {
  if (legend.type !== "Legend" || legend.tags.length < 2) { continue; }
  const [item_px, most] = legend.tags;
  const n = legend.items.length || 1;
  const fit = Math.max(1, Math.floor(cb_obj.inner_width / item_px));
  const ncols = Math.min(n, most, fit);
  if (legend.ncols !== ncols) { legend.ncols = ncols; }
}
"""

# The compact scaling of oh.domain.units._scaled, in JavaScript: the thresholds come from units.SUFFIXES. A number
# is grouped by one Intl.NumberFormat per digit count, kept for the page (`toLocaleString` with options builds a new
# one on every call, which is what it does: the same text; a tenth of a millisecond per tick label otherwise).
_SCALED_JS = """
const SUFFIXES = %(suffixes)s;
const FORMATS = globalThis.__ohNumberFormats || (globalThis.__ohNumberFormats = new Map());
function group(x, d) {
  let format = FORMATS.get(d);
  if (format === undefined) {
    format = new Intl.NumberFormat('en-US', {minimumFractionDigits: d, maximumFractionDigits: d});
    FORMATS.set(d, format);
  }
  return format.format(x);
}
function trim(text) { return text.indexOf('.') < 0 ? text : text.replace(/0+$/, '').replace(/\\.$/, ''); }
function scaled(size, digits) {
  for (const [threshold, suffix] of SUFFIXES) {
    if (size >= threshold * (1 - 0.5 * Math.pow(10, -digits) / 1000)) {
      return (digits ? trim(group(size / threshold, digits)) : group(size / threshold, 0)) + suffix;
    }
  }
  return digits && size !== Math.trunc(size) ? trim(group(size, digits)) : group(size, 0);
}
"""


def _scaled_js() -> str:
    return _SCALED_JS % {"suffixes": json.dumps([[t, s] for t, s in units.SUFFIXES])}


def money_js(currency: str = "USD", digits: int = AXIS_DIGITS) -> str:
    """The body of a tick formatter (`tick` in, text out) equal to units.money(tick, compact=True)."""
    symbol = units.CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    return _scaled_js() + f"""
const body = scaled(Math.abs(tick), {digits});
const lead = tick < 0 && body.replace(/[0.,KMBT]/g, '') !== '' ? '-' : '';
return lead + {json.dumps(symbol)} + body;
"""


def count_js(digits: int = AXIS_DIGITS) -> str:
    """The body of a tick formatter equal to units.count(tick, compact=True)."""
    return _scaled_js() + f"""
const n = Math.abs(tick % 1) === 0.5 ? 2 * Math.round(tick / 2) : Math.round(tick);  // half to even, as Python
return (n < 0 ? '-' : '') + scaled(Math.abs(n), {digits});
"""


PERCENT_OF_FRACTION_JS = "return (100 * tick).toFixed(1).replace(/\\.0$/, '') + '%';"
PERCENT_POINTS_JS = "return tick.toFixed(1).replace(/\\.0$/, '') + '%';"


def dates() -> DatetimeTickFormatter:
    """Dates on a time axis: `Jun 04` within months, `Jun` across them (the year once, under the first
    tick), hours when zoomed in: short labels that stay apart on a phone."""
    day = "%b %d %Y"
    context = DatetimeTickFormatter(seconds=day, minsec=day, minutes=day, hourmin=day, hours=day, days="%Y",
                                    months="%Y", years="")
    return DatetimeTickFormatter(seconds="%H:%M:%S", minsec="%H:%M:%S", minutes="%H:%M", hourmin="%H:%M",
                                 hours="%H:%M", days="%b %d", months="%b", years="%Y", context=context,
                                 context_which="start")


def tick_formatter(kind: str, currency: str = "USD") -> TickFormatter:
    """The formatter for a unit of oh.domain.units.KINDS (`money`, `count`, `fraction`, `points`, `price`, ...)."""
    if kind == "money":
        return CustomJSTickFormatter(code=money_js(currency))
    if kind == "count":
        return CustomJSTickFormatter(code=count_js())
    if kind == "fraction":
        return CustomJSTickFormatter(code=PERCENT_OF_FRACTION_JS)
    if kind == "points":
        return CustomJSTickFormatter(code=PERCENT_POINTS_JS)
    if kind == "date":
        return dates()
    if kind in ("price", "strike", "ratio", "vol_points"):
        return NumeralTickFormatter(format="0,0.[00]")
    return NumeralTickFormatter(format="0,0.[00]")


def set_axis(axis: Any, column: str | None = None, *, kind: str | None = None, title: str | None = None,
             currency: str = "USD") -> None:
    """Format an axis (or a list of them) for a column: its unit's ticks and its name in words."""
    axis.formatter = formatter(column, kind=kind, currency=currency)
    label = title if title is not None else (units.label(column) if column else None)
    if label is not None:
        axis.axis_label = label


def formatter(column: str | None = None, *, kind: str | None = None, currency: str = "USD") -> TickFormatter:
    """The session's tick formatter for a column's unit (or `kind`; `tick_formatter`)."""
    unit = kind or (units.kind(column) if column else "number")
    return part(("formatter", unit, currency), lambda: tick_formatter(unit, currency))


def label_policy() -> LabelingPolicy:
    """The session's tick label policy: Bokeh's own, a label that would overlap its neighbour is not drawn (a
    phone's narrow chart keeps every other session or time instead of a smear of labels)."""
    return part(("policy",), lambda: NoOverlap(min_distance=4))


# ---------------------------------------------------------------- parts built once per session

_building: ContextVar[Document | None] = ContextVar("oh_chart_document", default=None)


@contextmanager
def building_for(doc: Document | None) -> Iterator[None]:
    """Charts built inside are for `doc`'s session: `part` hands them the stateless parts it already has."""
    token = _building.set(doc)
    try:
        yield
    finally:
        _building.reset(token)


def part(key: Any, make: Callable[[], Model]) -> Model:
    """The stateless part `key` (a ticker, a tick formatter, a label policy, a filter: see the module docstring)
    of the session's charts being built (`building_for`), made by `make()` the first time; outside a session a
    new one each time. Building a chart with its session's parts, rather than sharing them once it is built
    (`share_stateless_parts`, still the net for parts made elsewhere), means the copies are never built."""
    doc = _building.get()
    if doc is None:
        return make()
    pool = _shared.setdefault(doc, {})
    made = pool.get(("made", key))
    if made is None:
        made = pool[("made", key)] = make()
        made = pool.setdefault(_identity(made), made)  # an equal part shared before is the one kept
        pool[("made", key)] = made
    return made


AXIS_STYLE: dict[str, Any] = {
    "axis_label_text_font_style": "normal", "axis_label_text_font": FONT, "major_label_text_font": FONT,
    "axis_label_text_color": TEXT, "major_label_text_color": TEXT, "axis_line_color": "#c9d1db",
}


def _axis(axis_type: str, rng: Any) -> Axis:
    """The axis `figure(x_axis_type=...)` would add for this range, with the dashboard's style and its session's
    ticker, formatter and label policy (Bokeh's own figure builds a default of each, a date axis's ticker alone
    13 models, and the chart replaced them)."""
    policy = label_policy()
    if axis_type == "datetime":
        return DatetimeAxis(ticker=part(("ticker", "datetime"), lambda: DatetimeTicker(num_minor_ticks=5)),
                            formatter=formatter(kind="date"), major_label_policy=policy,
                            **AXIS_STYLE)
    if axis_type == "auto" and isinstance(rng, FactorRange):
        return CategoricalAxis(ticker=part(("ticker", "categorical"), CategoricalTicker),
                               formatter=part(("formatter", "categorical"), CategoricalTickFormatter),
                               major_label_policy=policy, **AXIS_STYLE)
    if axis_type not in ("auto", "linear"):
        raise ValueError(f"no dashboard axis for x_axis_type={axis_type!r}")
    return LinearAxis(ticker=part(("ticker", "linear"), BasicTicker), formatter=part(("formatter", "basic"), BasicTickFormatter),
                      major_label_policy=policy, **AXIS_STYLE)


def new_figure(height: int = 300, *, x_axis_type: str = "auto", tools: str = TIME_TOOLS, grid: bool = True,
               **kwargs: Any) -> Any:
    """A figure with the dashboard's defaults: full width, fixed height, quiet grid, a toolbar that hides, no
    title model (each section has its heading above the chart; an empty Bokeh title is one model more that
    draws nothing). `tools=""` gives a figure without a toolbar; `grid=False` one without grid lines (a heatmap's
    cells cover them: no Grid models at all rather than two hidden ones). Its axes are Bokeh's figure's (a date
    axis for `x_axis_type="datetime"`, categories on a FactorRange, else linear) built with the session's parts."""
    options: dict[str, Any] = {"height": height, "sizing_mode": "stretch_width", "x_axis_type": None,
                               "y_axis_type": None, "title": None,
                               "tools": tools, "toolbar_location": "above" if tools else None, "min_border_left": 10,
                               "min_border_right": 10, "background_fill_color": "white"}
    options.update(kwargs)
    fig = figure(**options)
    fig.toolbar.logo = None
    fig.toolbar.autohide = True
    if tools and "wheel_zoom" in tools:
        fig.toolbar.active_scroll = None  # the page scrolls; zoom is one click away
    # as Bokeh's figure adds them: each axis's grid to the centre, then the axis below (x) or left (y)
    for dim, axis_type, rng, side in ((0, x_axis_type, fig.x_range, "below"), (1, "auto", fig.y_range, "left")):
        axis = _axis(axis_type, rng)
        if grid:
            fig.add_layout(Grid(dimension=dim, axis=axis, grid_line_color=GRID), "center")
        fig.add_layout(axis, side)
    fig.outline_line_color = None
    return fig


def style_axis(axis: Axis) -> None:
    """The dashboard's axis style and label policy (`new_figure`'s axes have them; for an axis added later, e.g. a
    second y axis)."""
    for name, setting in AXIS_STYLE.items():
        setattr(axis, name, setting)
    axis.major_label_policy = label_policy()


def legend_outside(fig: Any, place: str = "below", columns: int | None = None) -> None:
    """Move the figure's legend out of the plot area (below by default, in `columns` columns), so it never
    covers data; clicking an entry hides its series."""
    if not fig.legend:
        return
    legend: Legend = fig.legend[0]
    for side in ("center", "above", "below", "left", "right"):
        setattr(fig, side, [r for r in getattr(fig, side) if r is not legend])
    legend.location = "center" if place in ("above", "below") else "top_left"
    legend.orientation = "horizontal" if place in ("above", "below") else "vertical"
    if columns is not None and place in ("above", "below"):
        # no more columns than entries: what the browser's callback below would set on a wide screen, where the
        # legend then keeps it (a change there re-rendered the legend and laid out and painted the plot again)
        legend.ncols = max(1, min(columns, len(legend.items)))
    legend.click_policy = "hide"
    legend.border_line_color = None
    legend.background_fill_alpha = 0.0
    legend.label_text_font = FONT
    legend.label_text_font_size = "12px"
    legend.spacing = 2
    legend.padding = 4
    legend.margin = 2
    fig.add_layout(legend, place)
    if place in ("above", "below"):
        # as many columns as fit the plot's width (a phone gets fewer), never wider than the figure
        labels = [_label_text(item) for item in legend.items]
        legend.tags = [max((len(text) for text in labels), default=8) * 7 + 40, columns or 99]  # item px, most columns
        fig.js_on_change("inner_width", CustomJS(code=LEGEND_COLUMNS_JS))  # one per session: share_stateless_parts


def _label_text(item: Any) -> str:
    label = item.label
    if isinstance(label, dict):
        return str(label.get("value", label.get("field", "")))
    return str(getattr(label, "value", label) or "")


def drop_unused_glyphs(model: Any, parts: list[Model] | None = None) -> Any:
    """Remove what Bokeh gives every glyph renderer that no dashboard chart uses: the selection-state and muted
    copies of its glyph (no chart has a selection tool and legends hide, never mute, a series: two of every
    renderer's nine models, never drawn), and a CDS view of its own when another renderer draws the same source
    through an equal filter (a view's indices are a function of its source and filter: the renderers of one
    source share one). `parts`: the models under `model` if the caller has them (`prepared`: one walk of the
    graph for all three passes). Returns `model`."""
    views: dict[Any, CDSView] = {}
    renderers = (p for p in parts if isinstance(p, GlyphRenderer)) if parts is not None else model.select({"type": GlyphRenderer})
    for renderer in renderers:
        renderer.nonselection_glyph = None
        renderer.muted_glyph = None
        key = (renderer.data_source.id, _identity(renderer.view.filter))
        view = views.setdefault(key, renderer.view)
        if view is not renderer.view:
            renderer.view = view
    return model


def one_way(model: Any, parts: list[Model] | None = None) -> Any:
    """Mark every model of a chart not to sync its browser-side changes back to the server (Bokeh's
    `syncable=False`): BokehJS reports each figure's computed ranges, sizes and legend columns as it lays a
    chart out (about eight messages per chart section), which the server would parse and apply between the
    sections it is filling, and nothing on the server reads them. Changes made on the server still go to the
    browser; JavaScript callbacks still run. `parts`: as for `drop_unused_glyphs`. Returns `model`."""
    for part in model.references() if parts is None else parts:
        part.syncable = False
    return model


# (model type, attribute): the stateless parts shared within a document (see the module docstring)
SHARED_PARTS: tuple[tuple[type[Model], str], ...] = (
    (Axis, "ticker"), (Axis, "formatter"), (Axis, "major_label_policy"),
    (Plot, "x_scale"), (Plot, "y_scale"),
    (CDSView, "filter"),
    (ColumnDataSource, "selection_policy"),
    (BoxAnnotation, "handles"),
)
SHAREABLE = (TickFormatter, Ticker, LabelingPolicy, Scale, AllIndices, UnionRenderers, BoxInteractionHandles)
_shared: WeakKeyDictionary[Document, dict[Any, Model]] = WeakKeyDictionary()


def _identity(value: Any) -> Any:
    """A hashable key equal for equal values: a model by its type and explicitly set properties (recursively)."""
    if isinstance(value, Model):
        props = value.properties_with_values(include_defaults=False)
        return type(value).__name__, tuple(sorted((name, _identity(v)) for name, v in props.items()))
    if isinstance(value, dict):
        return tuple(sorted((str(k), _identity(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_identity(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def share_stateless_parts(model: Any, doc: Document | None, parts: list[Model] | None = None) -> Any:
    """Give every axis, plot, renderer view, source and box overlay under `model` the stateless parts (see the
    module docstring) already used by an equal one of `doc`; without a document (no browser session) nothing
    is shared. `parts`: as for `drop_unused_glyphs`. Returns `model`."""
    if doc is None:
        return model
    pool = _shared.setdefault(doc, {})
    for owner in list(model.references()) if parts is None else parts:  # one walk of the graph (each select() is another)
        if isinstance(owner, Plot) and owner.js_property_callbacks:
            _share_callbacks(owner, pool)
        for owner_type, attr in SHARED_PARTS:
            if isinstance(owner, owner_type):
                part = getattr(owner, attr, None)
                if isinstance(part, SHAREABLE):
                    shared = pool.setdefault(_identity(part), part)
                    if shared is not part:
                        setattr(owner, attr, shared)
    return model


def _share_callbacks(plot: Plot, pool: dict[Any, Model]) -> None:
    """A plot's JavaScript callbacks without arguments (the legend's columns) are one model per document."""
    callbacks = plot.js_property_callbacks
    shared = {event: [pool.setdefault(_identity(cb), cb) if isinstance(cb, CustomJS) and not cb.args else cb
                      for cb in listed] for event, listed in callbacks.items()}
    if any(a is not b for event in callbacks for a, b in zip(callbacks[event], shared[event], strict=True)):
        plot.js_property_callbacks = shared


def prepared(figure: Any, doc: Document | None) -> Any:
    """`figure` as every dashboard chart is sent: unused glyphs dropped, stateless parts shared within `doc`,
    one-way. The three passes go over one walk of the figure's graph (each walk visits every property of every
    model: three were ~20% of a chart's server CPU). The models they detach stay in that list: one_way marks them
    too, which nothing sees; the shared copies they take were marked when their first chart was prepared.
    Returns `figure`."""
    parts = list(figure.references())
    return one_way(share_stateless_parts(drop_unused_glyphs(figure, parts), doc, parts), parts)
