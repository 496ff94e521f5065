"""Shared pieces of every page: the template with its sidebar, the banner, notices, tables and slots.

A `Slot` is a place on a page that keeps its Bokeh models across refreshes: a new DataFrame
updates the existing table in place, a chart is rebuilt only when its data changed, so a page that
refreshes on live events neither flickers nor loses its scroll position.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import panel as pn
import pyarrow as pa

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
CSS = """
.oh-nav a { display:block; padding:6px 10px; margin:2px 0; border-radius:6px; color:#1f2d3d; text-decoration:none; }
.oh-nav a:hover { background:#e9eef5; }
.oh-nav a.active { background:#0d6efd; color:white; font-weight:600; }
.oh-ledger { font-size:0.9em; padding:6px 10px; border-radius:6px; }
.oh-ledger.up { background:#e6f4ea; color:#1e6b34; } .oh-ledger.down { background:#fde8e8; color:#a61b1b; }
table.oh-table { border-collapse:collapse; width:100%; font-size:0.92em; }
table.oh-table th, table.oh-table td { padding:4px 8px; border-bottom:1px solid #e3e6ea; text-align:left; white-space:nowrap; }
table.oh-table th { background:#f5f7fa; }
table.oh-table tr.oh-bad td { color:#c62828; font-weight:600; }
tr.oh-flow-building td { color:#1565c0; } tr.oh-flow-unwinding td { color:#c62828; }
.oh-cards { display:flex; flex-wrap:wrap; gap:10px; margin:4px 0; }
.oh-card { background:#f5f7fa; border-radius:8px; padding:8px 14px; min-width:120px; }
.oh-card-k { font-size:0.8em; color:#5f6b7a; } .oh-card-v { font-size:1.15em; font-weight:600; color:#1f2d3d; }
.oh-more { color:#777; font-size:0.85em; padding:4px 8px; }
.oh-status-started { color:#0b63c5; font-weight:600; } .oh-status-success { color:#1e7b34; }
.oh-status-failed, .oh-status-abandoned, .oh-stale, .oh-silent { color:#c62828; font-weight:600; }
.oh-status-skipped, .oh-never { color:#777; }
pre.oh-plan { background:#f5f7fa; padding:10px; border-radius:6px; white-space:pre-wrap; font-size:0.9em; }
.oh-h { font-weight:600; font-size:1.02em; color:#1f2d3d; }
"""


def html_pane(text: str, **kwargs: Any) -> pn.pane.HTML:
    """An HTML pane carrying the dashboard's CSS (Panel renders each pane in its own shadow DOM)."""
    options = {"sizing_mode": "stretch_width", "stylesheets": [CSS]}
    options.update(kwargs)
    return pn.pane.HTML(text, **options)


def frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow result as a DataFrame (dates stay dates, timestamps become datetime64, decimals floats:
    Bokeh cannot serialize Decimal, and DuckDB sums of integers are HUGEINT decimals)."""
    for index, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.float64()))
    return table.to_pandas(date_as_object=True)


def esc(value: Any) -> str:
    """HTML-escape a cell ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d}" if (value.hour, value.minute, value.second) == (0, 0, 0) else f"{value:%Y-%m-%d %H:%M:%S}"
    return html.escape(str(value))


def html_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]],
               row_attrs: Callable[[dict[str, Any]], str] | None = None,
               cell_class: Callable[[str, dict[str, Any]], str] | None = None) -> str:
    """A small static HTML table: (key, header) columns, optional per-row attributes and cell classes."""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = []
    for row in rows:
        attrs = row_attrs(row) if row_attrs else ""
        cells = []
        for key, _ in columns:
            css = cell_class(key, row) if cell_class else ""
            cells.append(f'<td class="{css}">{esc(row.get(key))}</td>' if css else f"<td>{esc(row.get(key))}</td>")
        body.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    return f'<table class="oh-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


# ---------------------------------------------------------------- notices
_ALERT = {"down": "danger", "error": "danger", "refused": "warning", "empty": "info", "info": "secondary"}


def notice(kind: str, text: str) -> pn.pane.Alert:
    """A message that says what is wrong and what to run (kinds: down, error, refused, empty, info)."""
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


# ---------------------------------------------------------------- tables and slots
TABLE_CSS = ".tabulator { font-size: 13px; } .tabulator .tabulator-cell, .tabulator .tabulator-col { padding: 3px 6px; }"


def table_widget(df: pd.DataFrame, page_size: int = 15, **kwargs: Any) -> pn.widgets.Tabulator:
    """A read-only table, paginated only when it has more than `page_size` rows."""
    options = {"disabled": True, "show_index": False, "pagination": "local" if len(df) > page_size else None,
               "page_size": page_size, "sizing_mode": "stretch_width", "theme": "bootstrap5",
               "layout": "fit_data_table", "stylesheets": [TABLE_CSS]}
    options.update(kwargs)
    return pn.widgets.Tabulator(df, **options)


def _heading(title: str) -> str:
    return f'<div class="oh-h">{html.escape(title)}</div>'


class Slot:
    """A named place on a page whose content is replaced in place (see the module docstring)."""

    def __init__(self, title: str | None = None, min_height: int | None = None, page_size: int = 15) -> None:
        self.page_size = page_size
        self.box = pn.Column(sizing_mode="stretch_width", min_height=min_height)
        self.title = html_pane(_heading(title or ""), margin=(8, 5, 0, 5), visible=bool(title))
        self.panel = pn.Column(self.title, self.box, sizing_mode="stretch_width")
        self._kind = ""
        self._data: Any = None
        self._pane: Any = None

    def set_title(self, title: str) -> None:
        """Change the section's heading."""
        self.title.object = _heading(title)
        self.title.visible = True

    def _replace(self, kind: str, pane: Any, data: Any) -> None:
        self._kind, self._pane, self._data = kind, pane, data
        self.box.objects = [pane]

    def table(self, df: pd.DataFrame) -> None:
        """Show a DataFrame; an existing table with the same columns is updated in place."""
        paged = len(df) > self.page_size
        if (self._kind == "table" and list(self._data.columns) == list(df.columns)
                and paged == (len(self._data) > self.page_size)):
            if not self._data.equals(df):
                self._pane.value = df
                self._data = df
            return
        self._replace("table", table_widget(df, self.page_size), df)

    def chart(self, data: pd.DataFrame, build: Callable[[pd.DataFrame], Any], key: Any = None) -> None:
        """Show `build(data)` (an hvplot/HoloViews object) as a Bokeh figure, rebuilt only when `data` (or
        `key`) changed. Rendering happens now rather than when Panel lays the page out, so a chart that
        cannot be drawn becomes a notice in its section instead of breaking the page."""
        stamp = (key, data)
        if self._kind == "chart" and self._data[0] == key and self._data[1].equals(data):
            return
        import holoviews as hv

        figure = hv.render(build(data), backend="bokeh")  # here, so a chart that cannot draw fails inside fill()
        self._replace("chart", pn.pane.Bokeh(figure, sizing_mode="stretch_width"), stamp)

    def html(self, text: str) -> None:
        """Show raw HTML (small status tables); updated in place."""
        if self._kind == "html":
            if self._data != text:
                self._pane.object = text
                self._data = text
            return
        self._replace("html", html_pane(text), text)

    def rows(self, rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], limit: int = 50,
             row_class: Callable[[dict[str, Any]], str] | None = None) -> None:
        """Show rows as a light HTML table (cheaper to draw than a Tabulator), at most `limit` of them."""
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
        self.box.objects = list(objects)


def sync_url(widget: Any, name: str, parameter: str = "value") -> None:
    """Keep `widget.<parameter>` in the page URL as `?name=...` (shareable, survives a reload)."""
    location = pn.state.location
    if location is None:
        return
    location.sync(widget, {parameter: name}, on_error=lambda _values: None)


def shell(slug: str, title: str, main: list[Any], sidebar: list[Any], ledger_badge: Any,
          ready: Any) -> pn.template.BaseTemplate:
    """The page template: sidebar navigation, ledger badge and page controls; the banner on top of main."""
    links = "".join(
        f'<a class="oh-nav-link{" active" if s == slug else ""}" href="/{s}" data-page="{s}">{html.escape(t)}</a>'
        for s, t in NAV
    )
    template = pn.template.BootstrapTemplate(
        title=f"options-helper · {title}", header_background="#1f2d3d", sidebar_width=260,
    )
    template.sidebar.extend([html_pane(f'<nav class="oh-nav">{links}</nav>'), ledger_badge, *sidebar])
    template.main.extend([
        pn.pane.Alert(BANNER, alert_type="warning", css_classes=["oh-banner"], sizing_mode="stretch_width"),
        pn.pane.Markdown(f"## {title}", margin=(0, 10)),
        *main,
        ready,
    ])
    return template
