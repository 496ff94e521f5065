"""Shared pieces of every page: the template with its sidebar, the banner, notices, tables and slots.

A `Slot` is a place on a page that keeps its Bokeh models across refreshes: a new table updates the
existing pane in place, a chart is rebuilt only when its data changed, so a page that refreshes on
live events neither flickers nor loses its scroll position.

Tables are light HTML (cheap to draw, no table library to download): every cell goes through
`oh.domain.units.show` (money, %, counts, prices, dates in trader units), headers through
`units.label`, numbers are right-aligned, and a table scrolls inside its card (sideways when wide,
down when long) instead of running over the page. Long texts (errors, messages) wrap.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import pyarrow as pa

from oh.domain import units
from panel_app.axes import building_for, prepared

NAV: tuple[tuple[str, str], ...] = (
    ("health", "Health"),
    ("portfolio", "Portfolio"),
    ("symbol", "Symbol explorer"),
    ("flow", "Flow"),
    ("derived", "Derived history"),
    ("explorer", "Data explorer"),
    ("live", "Live portfolio"),
)
BANNER = ("**Not financial advice.** A read-only view of your local data: this dashboard never places "
          "orders and never changes anything.")
PHONE = 767.98  # px: at or below this width the sidebar starts collapsed and overlays the page
STATIC = Path(__file__).parent / "static"  # served by `oh ui` at /oh-static/ (panel_app/server.py)
STATIC_ROUTE = "oh-static"
CSS = (STATIC / "oh.css").read_text(encoding="utf-8")
# The URL of that file, relative to the page like Panel's own stylesheets, versioned by its content (so a browser
# keeps it cached for good, and a new version is fetched at once). Every HTML pane of a session shares one
# stylesheet model: the document carries a 60-byte link per pane instead of a 2 KB copy of the CSS.
CSS_URL = f"{STATIC_ROUTE}/oh.css?v={hashlib.sha256(CSS.encode()).hexdigest()[:16]}"
# The page around the panes (the template's light DOM): phone layout and the sidebar's widgets.
PAGE_CSS = f"""
#content {{ position: relative; }}
#sidebar .bk-panel-models-widgets-Select, #sidebar .bk-Row {{ max-width: 100%; }}
#header {{ flex-wrap: nowrap; }}
#header .app-header {{ min-width: 0; }}
#header .title {{ overflow: hidden; text-overflow: ellipsis; }}
@media (max-width: {PHONE}px) {{
  #header .title {{ font-size: 1.05em; padding-left: 0.2em; }}
  #header-items {{ margin-left: 4px; flex-grow: 0; }}
  #sidebar.show, #sidebar.collapsing {{ position: absolute; top: 0; left: 0; bottom: 0; z-index: 1050;
    background: var(--bs-body-bg); box-shadow: 4px 0 16px rgba(0,0,0,0.18); }}
  #main {{ padding: 6px 6px 12px 6px; }}
}}
"""
# Panel's icon at a versioned static URL (cached for good, like the scripts); its default, /favicon.ico, is sent
# without caching headers, so every page load fetched its 15 KB again from the server's one event loop. (The
# version ends in ".ico": Panel's template reads the icon's type from the URL's end.)
FAVICON = f"static/extensions/panel/images/favicon.ico?v={pn.__version__}.ico"
BOOTSTRAP_CSS = frozenset(pn.theme.Bootstrap._resources["css"].values())
WRAPPED_LABEL = "label { white-space: normal; overflow-wrap: anywhere; }"
TEMPLATE = Path(__file__).parent / "templates" / "oh.html"


def _code(name: str) -> str:
    """A page script's code, not its comment."""
    return (STATIC / name).read_text(encoding="utf-8").split("*/", 1)[1].strip()


# Inlined in every page after Bokeh's and Panel's scripts (each file's comment says how and why;
# tests/ui/test_dashboard_document.py guards what they rely on): a root laid out once, not twice, when a section's
# patch changes its children; a chart's hidden toolbar built when it is first shown; an empty stylesheet of a view
# put in its shadow root when it gets rules; no plot repaint for a legend's first report of the size it was laid
# out with.
LAYOUT_JS = _code("oh_layout.js")
TOOLBAR_JS = _code("oh_toolbar.js")
STYLES_JS = _code("oh_styles.js")
LEGEND_JS = _code("oh_legend.js")
# Set by every page once its scripts have run: this browser has the page's files (panel_app/page.py reads it).
FILES_COOKIE = "oh_files"
FILES_COOKIE_JS = f'document.cookie = "{FILES_COOKIE}=1; path=/; max-age=2592000; SameSite=Strict";'  # 30 days
PAGE_JS = "\n".join((LAYOUT_JS, TOOLBAR_JS, STYLES_JS, LEGEND_JS, FILES_COOKIE_JS))
WRAP = frozenset({"error", "error_message", "message", "last_message", "warnings"})


def html_pane(text: str, **kwargs: Any) -> pn.pane.HTML:
    """An HTML pane carrying the dashboard's CSS (Panel renders each pane in its own shadow DOM; the CSS is
    the one cached file at CSS_URL, one stylesheet model per session shared by every pane)."""
    options = {"sizing_mode": "stretch_width", "stylesheets": [CSS_URL]}
    options.update(kwargs)
    return pn.pane.HTML(text, **options)


def frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow result as a DataFrame (dates stay dates, timestamps become datetime64, decimals floats:
    DuckDB sums of integers are HUGEINT decimals)."""
    for index, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.float64()))
    return table.to_pandas(date_as_object=True)


def _plain(value: Any) -> Any:
    """numpy / pandas scalars as Python values, NaN/NaT as None (so units.show picks the right unit)."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def cell(key: str, value: Any) -> str:
    """One table cell's text in its unit, HTML-escaped ('' for a missing value in a text column)."""
    value = _plain(value)
    if value is None:
        return units.MISSING if units.KINDS.get(key) else ""
    if isinstance(value, (list, tuple, dict, bytes)):
        return html.escape(str(value)[:200])
    return html.escape(units.show(key, value))


def esc(value: Any) -> str:
    """HTML-escape a value shown as it is ('' for None)."""
    return "" if value is None else html.escape(str(value))


def _numeric(value: Any) -> bool:
    value = _plain(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def html_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]],
               row_attrs: Callable[[dict[str, Any]], str] | None = None,
               cell_class: Callable[[str, dict[str, Any]], str] | None = None,
               numeric: Sequence[str] | None = None,
               detail: Callable[[dict[str, Any]], str] | None = None) -> str:
    """A small static HTML table in a scrolling box: (key, header) columns, cells in their units
    (`units.show(key, value)`), numbers right-aligned, optional per-row attributes and cell classes.
    `detail` gives a row's note (a run's error, say), shown under it across the whole table, wrapped, so a
    long text never widens a column past its card; none for an empty one."""
    numeric_keys = set(numeric) if numeric is not None else {
        key for key, _ in columns if any(_numeric(row.get(key)) for row in rows)}
    head = "".join(f'<th class="num">{html.escape(title)}</th>' if key in numeric_keys else f"<th>{html.escape(title)}</th>"
                   for key, title in columns)
    body = []
    for row in rows:
        attrs = row_attrs(row) if row_attrs else ""
        cells = []
        for key, _ in columns:
            classes = [c for c in ((cell_class(key, row) if cell_class else ""), "num" if key in numeric_keys else "",
                                   "oh-wrap" if key in WRAP else "") if c]
            css = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{css}>{cell(key, row.get(key))}</td>")
        body.append(f"<tr {attrs}>{''.join(cells)}</tr>" if attrs else f"<tr>{''.join(cells)}</tr>")
        note = detail(row) if detail else ""
        if note:
            body.append(f'<tr class="oh-detail"><td colspan="{len(columns)}"><div>{html.escape(note)}</div></td></tr>')
    long = " oh-long" if len(rows) > 15 else ""
    return (f'<div class="oh-scroll{long}"><table class="oh-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def frame_table(df: pd.DataFrame, limit: int = 500, columns: Sequence[str] | None = None,
                row_class: Callable[[dict[str, Any]], str] | None = None) -> str:
    """A DataFrame as an HTML table (headers in words, cells in units), at most `limit` rows."""
    names = list(columns or df.columns)
    rows = df.head(limit).to_dict("records")
    attrs = (lambda row: f'class="{row_class(row)}"') if row_class else None
    more = (f"<div class='oh-more'>first {units.count(limit)} of {units.plural(len(df), 'row')} shown</div>"
            if len(df) > limit else "")
    return html_table(rows, [(n, units.label(n)) for n in names], row_attrs=attrs) + more


# ---------------------------------------------------------------- notices
_ALERT = {"down": "danger", "error": "danger", "refused": "warning", "empty": "info", "info": "secondary",
          "limit": "warning"}


def notice(kind: str, text: str) -> pn.pane.Alert:
    """A message that says what is wrong and what to run (kinds: down, error, refused, empty, info, limit)."""
    return pn.pane.Alert(text, alert_type=_ALERT[kind], css_classes=["oh-notice", f"oh-notice-{kind}"],
                         sizing_mode="stretch_width")


def down_text(message: str) -> str:
    """The ledger-down message with what to run."""
    return (f"**{message}** Start the services with `oh up` (or `make demo` for sample data). "
            "This page refreshes by itself when the ledger answers again.")


def empty_text(what: str, command: str) -> str:
    """The no-data-yet message with what to run."""
    return f"**No {what} yet.** Run `{command}` (or `oh demo` for a sample market)."


def error_text(message: str, where: str = "This section") -> str:
    """A failed query, in one line (never a traceback)."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return f"**{where} could not be loaded:** {html.escape(first)}. Details are in the `ui` log (`OH_HOME/logs/ui.log`)."


# ---------------------------------------------------------------- slots


HEADING_PX = 25  # a section heading's height in the browser: its pane's 8 px top margin and one line of .oh-h (17 px)


def _heading(title: str) -> str:
    return f'<div class="oh-h">{html.escape(title)}</div>'


class Slot:
    """A named place on a page whose content is replaced in place (see the module docstring).

    Two Bokeh models before its content: one column holding the heading and then the content (no inner
    box: a Slot was three, the column, the heading and a box for the content, and a page has 4-9 of them).
    `min_height` reserves room for the content under the heading, before the fill and while the content is
    shorter (the column's own minimum: the content's plus the heading's height, HEADING_PX)."""

    def __init__(self, title: str | None = None, min_height: int | None = None, page_size: int = 500) -> None:
        self.page_size = page_size  # rows shown of a table (it scrolls inside its card)
        self.min_height = min_height
        self.title = html_pane(_heading(title or ""), margin=(8, 5, 0, 5), visible=bool(title))
        self.panel = pn.Column(self.title, sizing_mode="stretch_width", css_classes=["oh-slot"],
                               min_height=self._reserved(bool(title)))
        self._kind = ""
        self._data: Any = None
        self._pane: Any = None

    def _reserved(self, titled: bool) -> int | None:
        return None if self.min_height is None else self.min_height + (HEADING_PX if titled else 0)

    @property
    def content(self) -> list[Any]:
        """What the section shows under its heading (empty before its first fill)."""
        return list(self.panel.objects[1:])

    def set_title(self, title: str) -> None:
        """Change the section's heading."""
        self.title.object = _heading(title)
        if not self.title.visible:
            self.title.visible = True
            self.panel.min_height = self._reserved(True)

    def _replace(self, kind: str, pane: Any, data: Any) -> None:
        self._kind, self._pane, self._data = kind, pane, data
        self.panel.objects = [self.title, pane]

    def table(self, df: pd.DataFrame, row_class: Callable[[dict[str, Any]], str] | None = None) -> None:
        """Show a DataFrame as an HTML table in trader units (updated in place when it changed)."""
        self.html(frame_table(df, self.page_size, row_class=row_class))

    def chart(self, data: pd.DataFrame, build: Callable[[pd.DataFrame], Any], key: Any = None) -> None:
        """Show `build(data)` (a Bokeh model), rebuilt only when `data` (or `key`) changed. The figure is
        built here, so a chart that cannot be drawn becomes a notice in its section (inside fill())."""
        if self._kind == "chart" and self._data[0] == key and self._data[1].equals(data):
            return
        with building_for(pn.state.curdoc):  # the chart takes its session's stateless parts as it is built
            figure = prepared(build(data), pn.state.curdoc)
        self._replace("chart", pn.pane.Bokeh(figure, sizing_mode="stretch_width"), (key, data))

    def html(self, text: str) -> None:
        """Show raw HTML (tables, cards); updated in place."""
        if self._kind == "html":
            if self._data != text:
                self._pane.object = text
                self._data = text
            return
        self._replace("html", html_pane(text), text)

    def rows(self, rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], limit: int = 50,
             row_class: Callable[[dict[str, Any]], str] | None = None) -> None:
        """Show rows as a light HTML table, at most `limit` of them."""
        shown = list(rows[:limit])
        more = f"<div class='oh-more'>{len(rows) - limit} more not shown</div>" if len(rows) > limit else ""
        attrs = (lambda row: f'class="{row_class(row)}"') if row_class else None
        self.html(html_table(shown, columns, row_attrs=attrs) + more)

    def notice(self, kind: str, text: str) -> None:
        """Show a notice instead of content."""
        if self._kind == f"notice-{kind}" and self._data == text:
            return
        self._replace(f"notice-{kind}", notice(kind, text), text)

    def show(self, *objects: Any) -> None:
        """Show arbitrary Panel objects (replaces whatever was there)."""
        self._kind, self._data, self._pane = "custom", None, None
        self.panel.objects = [self.title, *objects]


def side_by_side(*panels: Any, basis: int = 420, grow: tuple[int, ...] = ()) -> pn.FlexBox:
    """Sections next to each other on a wide screen and stacked on a narrow one (they wrap at `basis` px
    each; `grow` gives their shares of a wide row), so they never draw over each other."""
    for i, item in enumerate(panels):
        share = grow[i] if i < len(grow) else 1
        item.styles = {**(item.styles or {}), "flex": f"{share} 1 {basis}px", "min-width": "0"}
        item.sizing_mode = "stretch_width"
    return pn.FlexBox(*panels, flex_wrap="wrap", gap="8px", sizing_mode="stretch_width")


def sync_url(widget: Any, name: str, parameter: str = "value") -> None:
    """Keep `widget.<parameter>` in the page URL as `?name=...` (shareable, survives a reload)."""
    location = pn.state.location
    if location is None:
        return
    location.sync(widget, {parameter: name}, on_error=lambda _values: None)


class OhDesign(pn.theme.Bootstrap):
    """Panel's Bootstrap design without Bootstrap's own 220 KB stylesheet in the components' shadow DOMs.

    The page's head links it (the header, the sidebar and the collapse toggle use it), and its custom
    properties reach every shadow DOM from there; Panel's design also linked it in each root's shadow DOM
    and in that of every component rendered after the page was built (each filled section's panes): ~2,600
    more rules in each of those style scopes. The components keep Panel's Bootstrap theme
    (`theme/bootstrap.css`, 23 KB), which is what styles them: the pages look the same."""

    @classmethod
    def _get_modifiers(cls, viewable: Any, theme: Any = None, isolated: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        modifiers, children = super()._get_modifiers(viewable, theme, isolated)
        if "stylesheets" in modifiers:
            modifiers["stylesheets"] = [s for s in modifiers["stylesheets"] if s not in BOOTSTRAP_CSS]
        return modifiers, children


class OhTemplate(pn.template.BootstrapTemplate):
    """Panel's Bootstrap template with the dashboard's page shell (panel_app/templates/oh.html): the
    viewport meta for phones, the sidebar collapsed on a narrow screen before the first paint, and the
    scripts after the page's frame so the header and sidebar paint while they load."""

    _template = TEMPLATE

    def _update_vars(self, *args: Any) -> None:
        super()._update_vars(*args)
        self._render_variables["oh_page_js"] = PAGE_JS

    def server_doc(self, doc: Any = None, title: str | None = None, location: Any = True) -> Any:
        """Add the template's roots to the session's document under one freeze of its model graph: Bokeh
        recomputes the document's set of models (a walk over every model's properties) once at the end
        instead of once per root (about 20 roots, 20 walks of a growing graph per session)."""
        document = doc if doc is not None else pn.state.curdoc
        if document is None:
            return super().server_doc(doc, title, location)
        with document.models.freeze():
            return super().server_doc(doc, title, location)


def shell(slug: str, title: str, main: list[Any], sidebar: list[Any], ledger_badge: Any,
          ready: Any) -> pn.template.BaseTemplate:
    """The page template: sidebar navigation, ledger badge and page controls; the banner on top of main."""
    links = "".join(
        f'<a class="oh-nav-link{" active" if s == slug else ""}" href="/{s}" data-page="{s}">{html.escape(t)}</a>'
        for s, t in NAV
    )
    # No busy spinner: Panel's busy flag is one for the whole server (`pn.state.busy`, true while any session
    # of any tab runs a callback), so the header's spinner said nothing about this page, and while it spun its
    # CSS animation made the browser composite and draw the tab at 60 frames a second (bench/live_browser's
    # trace: ~190 draws a second for three Live tabs, an idle page's tab spinning with them). Each section
    # shows its own state instead (a notice, a placeholder, the `.oh-ready` marker once filled).
    template = OhTemplate(
        title=f"options-helper · {title}", header_background="#1f2d3d", sidebar_width=260,
        meta_viewport="width=device-width, initial-scale=1", busy_indicator=None, design=OhDesign, favicon=FAVICON,
    )
    template.config.raw_css.append(PAGE_CSS)
    for widget in sidebar:
        if hasattr(widget, "sizing_mode") and widget.sizing_mode in (None, "fixed"):
            widget.sizing_mode = "stretch_width"
        if hasattr(widget, "stylesheets"):  # a long label wraps inside the sidebar instead of running past it
            widget.stylesheets = [*widget.stylesheets, WRAPPED_LABEL]
    template.sidebar.extend([html_pane(f'<nav class="oh-nav">{links}</nav>'), ledger_badge, *sidebar])
    template.main.extend([
        pn.pane.Alert(BANNER, alert_type="warning", css_classes=["oh-banner"], sizing_mode="stretch_width"),
        pn.pane.Markdown(f"## {title}", margin=(0, 10)),
        *main,
        ready,
    ])
    return template
