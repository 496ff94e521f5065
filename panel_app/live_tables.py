"""The live page's tables: marks formatted for display, a Tabulator patched cell by cell, stream health.

Formatting only: every number comes from `oh.domain.marks.mark_portfolio` (positions, structures'
net mark and PnL, legs) or from the worker's LiveStatus; nothing here prices anything.

`PatchedTable` is what keeps the page still while numbers move: one `LiveGrid` widget per table,
built once; each redraw sends the rows only if a cell changed, and the browser rewrites only the
cells whose text changed (rows and cells are created once and kept), so the widget, its scroll
position and everything around it stay put. A different set of rows (the portfolio file changed)
only adds or drops rows.

Each row carries the feed time of the newest quote it was marked with, as `data-ts` on the
"quote at" cell (seconds since the epoch): the browser benchmark reads it to measure how old a
value is when it reaches the DOM.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import param
from panel.custom import JSComponent

from contracts.live import LiveStatus, Quote
from oh.domain.marks import PortfolioMarks
from panel_app.components import CSS

POSITION_COLUMNS = ("position", "kind", "symbol", "qty", "mark", "value", "pnl", "pnl %", "dte", "spread",
                    "age", "quote", "warnings", "quote at")
LEG_COLUMNS = ("position", "leg", "qty", "bid", "ask", "mark", "pnl", "spread", "age", "quote", "warnings",
               "quote at")
HTML_COLUMNS = ("quote", "quote at")
CELL_CSS = """
.oh-q-ok { color:#1e7b34; } .oh-q-stale { color:#c62828; font-weight:600; } .oh-q-none { color:#777; }
.oh-neg { color:#c62828; } .oh-pos { color:#1e7b34; }
"""


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"


def _pct(value: float | None, sign: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:+.1%}" if sign else f"{value:.1%}"


def _age(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def _quote_state(has_mark: bool, stale: bool, age: float | None) -> str:
    if age is None and not has_mark:
        return '<span class="oh-q-none">no quote</span>'
    if stale:
        return '<span class="oh-q-stale">stale</span>'
    return '<span class="oh-q-ok">live</span>'


def _quote_at(stamp: float) -> str:
    if stamp <= 0:
        return '<span class="oh-ts" data-ts="0"></span>'
    shown = datetime.fromtimestamp(stamp, UTC).strftime("%H:%M:%S.%f")[:-3]
    return f'<span class="oh-ts" data-ts="{stamp:.6f}">{shown}</span>'


def _newest(symbols: Sequence[str], quotes: Mapping[str, Quote]) -> float:
    stamps = [q.ts_feed if q.ts_feed > 0 else q.ts_recv for s in symbols if (q := quotes.get(s)) is not None]
    return max(stamps, default=0.0)


def position_rows(marks: PortfolioMarks, quotes: Mapping[str, Quote]) -> list[tuple[str, ...]]:
    """One display row per position: structures show their net mark and net PnL per structure."""
    rows = []
    for p in marks.positions:
        kind = p.structure_kind or p.type
        rows.append((
            p.position_id, kind, p.symbol, _num(p.quantity, 0), _num(p.mark, 2), _num(p.value, 2),
            _num(p.pnl, 2, sign=True), _pct(p.pnl_pct, sign=True), "" if p.dte is None else str(p.dte),
            _pct(p.spread_pct), _age(p.age), _quote_state(p.mark is not None, p.stale, p.age),
            "; ".join(p.warnings), _quote_at(_newest([leg.symbol for leg in p.legs], quotes)),
        ))
    return rows


def leg_rows(marks: PortfolioMarks, quotes: Mapping[str, Quote]) -> list[tuple[str, ...]]:
    """One display row per leg of every structure (single positions are whole rows above)."""
    rows = []
    for p in marks.positions:
        if p.type != "structure":
            continue
        for leg in p.legs:
            rows.append((
                p.position_id, leg.symbol, _num(leg.quantity, 0), _num(leg.bid), _num(leg.ask), _num(leg.mark),
                _num(leg.pnl, 2, sign=True), _pct(leg.spread_pct), _age(leg.age),
                _quote_state(leg.mark is not None, leg.stale, leg.age), "; ".join(leg.warnings),
                _quote_at(_newest([leg.symbol], quotes)),
            ))
    return rows


GRID_ESM = """
export function render({ model, el }) {
  const table = document.createElement('table');
  table.className = 'oh-table oh-grid';
  const head = document.createElement('thead'), body = document.createElement('tbody');
  table.append(head, body); el.append(table);
  const html = new Set(model.html_columns);
  const drawHead = () => { head.innerHTML = '<tr>' + model.columns.map(c => `<th>${c}</th>`).join('') + '</tr>'; };
  const draw = () => {
    const rows = model.rows, cols = model.columns;
    while (body.rows.length > rows.length) body.deleteRow(-1);
    rows.forEach((row, i) => {
      let tr = body.rows[i];
      if (!tr) { tr = body.insertRow(); tr.className = 'oh-row';
        cols.forEach(c => { const td = tr.insertCell(); td.dataset.field = c; td.__v = null; }); }
      tr.dataset.key = row[0];
      row.forEach((value, j) => { const td = tr.cells[j];
        if (td.__v !== value) { td.__v = value; if (html.has(cols[j])) td.innerHTML = value; else td.textContent = value; } });
    });
  };
  drawHead(); draw();
  model.on('rows', draw);
  model.on('columns', () => { drawHead(); body.innerHTML = ''; draw(); });
}
"""


class LiveGrid(JSComponent):
    """A read-only table drawn by the browser, cell by cell: a new `rows` value rewrites only the cells
    whose text changed (rows and cells are created once), so nothing is rebuilt and nothing flickers.

    Why not Tabulator: Panel 1.9's Tabulator answers every `patch` with a full `setData` of all rows
    in the browser (panel/models/tabulator.ts, updateOrAddData), which at four redraws a second on a
    busy machine piled up a backlog of tens of seconds (bench/live_browser.py)."""

    columns = param.List(default=[], doc="Column headers; the first column is the row key.")
    html_columns = param.List(default=[], doc="Columns whose cells are HTML (built and escaped by the server).")
    rows = param.List(default=[], doc="Rows of display strings, one per position or leg.")

    _esm = GRID_ESM


class PatchedTable:
    """A LiveGrid plus the last rows sent, to send nothing when nothing changed (see the module docstring)."""

    def __init__(self, columns: Sequence[str], css_class: str) -> None:
        self.columns = list(columns)
        self.rows: list[tuple[str, ...]] = []
        self.patches = 0  # cells changed
        self.resets = 0  # a different set of rows (the portfolio file changed)
        self.widget = LiveGrid(columns=self.columns, html_columns=[c for c in HTML_COLUMNS if c in self.columns],
                               sizing_mode="stretch_width", stylesheets=[CSS, CELL_CSS], css_classes=[css_class])

    def update(self, rows: list[tuple[str, ...]]) -> int:
        """Show `rows`; returns how many cells changed (0: nothing was sent to the browser)."""
        if rows == self.rows:
            return 0
        if len(rows) != len(self.rows) or any(a[0] != b[0] for a, b in zip(rows, self.rows, strict=True)):
            self.resets += 1
            changed = len(rows) * len(self.columns)
        else:
            changed = sum(x != y for a, b in zip(rows, self.rows, strict=True) for x, y in zip(a, b, strict=True))
        self.patches += changed
        self.rows = rows
        self.widget.rows = [list(r) for r in rows]
        return changed


def _ago(now: float, then: float | None) -> str:
    return "never" if then is None else f"{max(now - then, 0.0):.1f}s ago"


def health_html(status: LiveStatus, now: float, lost: int) -> str:
    """Stream health per stream (state, last event age, reconnects, last error in words) and the counters."""
    title = f"live_stream: <b>{html.escape(status.state)}</b>"
    if status.provider:
        title += f" ({html.escape(status.provider)}, {status.stocks} stocks, {status.options} option contracts)"
    if status.state == "idle" and status.streams:
        title += " · streams stopped; marks below are the last quotes received"
    rows = []
    for s in status.streams:
        css = "oh-stream-bad" if s.state in ("error", "reconnecting") else ""
        retry = f"in {s.next_retry_in:.1f}s" if s.next_retry_in is not None else ""
        rows.append(
            f'<tr class="oh-stream {css}" data-stream="{html.escape(s.name)}" data-state="{html.escape(s.state)}">'
            f"<td>{html.escape(s.name)}</td><td>{html.escape(s.state)}</td><td>{_ago(now, s.last_event)}</td>"
            f"<td>{s.events:,}</td><td>{s.reconnects}</td><td>{retry}</td>"
            f"<td>{html.escape(s.last_error or '')}</td></tr>")
    table = ""
    if rows:
        head = "".join(f"<th>{h}</th>" for h in ("stream", "state", "last event", "events", "reconnects",
                                                  "next retry", "last error"))
        table = f'<table class="oh-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    c = status.counters
    counters = (f'<div class="oh-more">received {c.received:,}, conflated {c.conflated:,}, dropped {c.dropped:,}; '
                f"published {c.quotes:,} quotes in {c.batches:,} batches; fills journaled {c.fills:,}; "
                f"batches lost by this dashboard {lost:,}</div>")
    error = f'<div class="oh-stale">error: {html.escape(status.last_error)}</div>' if status.last_error else ""
    warnings = "".join(f'<div class="oh-more">warning: {html.escape(w)}</div>' for w in status.plan_warnings)
    return (f'<div class="oh-live-health" data-state="{html.escape(status.state)}" data-pid="{status.pid}">'
            f"<div>{title}</div>{table}{counters}{error}{warnings}</div>")
