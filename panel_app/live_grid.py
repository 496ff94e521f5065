"""The live page's grid: tables the browser patches cell by cell, and HTML it rewrites in place.

`PatchedTable` is what keeps the page still while numbers move: one `LiveGrid` widget per table,
built once. Each marking is compared with what the tab was already sent, and only the cells whose
text changed travel (`{"cells": [[row, column, text], ...]}`), where the grid rewrites just those
cells. A different set of rows (the portfolio file changed) or a new socket gets the full rows once.

The marks travel through the page's own websocket (panel_app.live_channel), not through Bokeh: one
frame per marking and tab carries the positions table's part and its *riders'* (the legs table, and
the summary cards and the risk-limits banner, each a `LiveHTML`): `{"seq", "positions": ..., "legs": ...,
"summary": {"html": ...}, "limits": {"html": ...}}`; every role registered in the page gets its part.
The positions grid opens the socket with the token its session put in its `token` property, and
hands each part to the component registered under that role (`window.__ohLive.parts`). The grids
write a frame's cells as it arrives (text only, into the cell's one text node in place: no new node
and layout object per write; through references to every cell and its text node kept since the row was
made, not the table's row and cell collections; a cell's class or `data-ts` written only when it changes:
the frame's script 17-33% lower in four alternating pairs, bench/README.md), then the
carrier acknowledges it (`{"ack": n}`: the server's window, see
live_channel) once the browser has laid it out and painted it: in the first task after the next animation
frame (a MessageChannel message posted from requestAnimationFrame). Acknowledged as soon as written, the
next frame came while the browser was still laying out and painting the last one and waited behind it,
its quotes ageing (bench/live_browser, issue #14.3, three pairs at load 15-21: sent -> received p99
60-630 ms against 410-2,340 ms, feed -> DOM p99 0.39-1.10 s against 0.70-2.88 s). A hidden tab (no
animation frames) acknowledges as it writes. Writing the cells in a requestAnimationFrame was measured
slower on a starved machine: the animation frame itself waits (p99 2.9-3.0 s against 1.9 s at load
25-30); here the writes stay at once and only the acknowledgement waits. A gap in the frames' numbers, or a grid that
(re)rendered, asks for the full rows (`{"resync": n}` on the socket). The socket reconnects by
itself (backing off to 10 s) unless its session ended.

The moving numbers (`canvas_columns`: mark, PnL, PnL %, value, DTE, spread; a leg's bid and ask) are not DOM text:
they are drawn on an opaque canvas laid over their columns (panel_app.live_canvas), only the changed cells' boxes
filled and drawn again, each in its sign's colour from the palette the CSS is written from (live_tables.PALETTE).
Each frame of marks changes ~600 of them, and as DOM text every one was laid out, painted and rastered again; on the
canvas a frame costs chromium about 30% less CPU (bench/README.md, issue #14 item 3). Their cells keep a hidden
copy of the text, brought up to date once a second, for a screen reader, copying and the tests; `table.ohGrid`
gives the tests each cell's value and what the canvas last drew there, in which colour and where. Every other cell
(the position, the contract, the quote's state and time, the warnings) is DOM text as before.

`LiveHTML` without a role (the stream health) still gets its content as Panel messages
(ReactiveESM's `_send_msg`): it changes twice a second at most, on the page's slow check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import param
from panel.custom import JSComponent
from panel.io.state import set_curdoc
from panel.models.esm import DataEvent

from panel_app.components import CSS
from panel_app.live_canvas import CANVAS_JS
from panel_app.live_channel import CLOSE_SESSION_GONE, PROTOCOL, ROUTE, Sent
from panel_app.live_tables import CANVAS_COLUMNS, CELL_CSS, NUMERIC_COLUMNS, PALETTE, QUOTE_STATES, Row

LIVE_JS = """
const live = () => (window.__ohLive = window.__ohLive || {parts: {}, resync: () => {}});
const alikeKids = (a, b) => a.childNodes.length === b.childNodes.length
  && [...a.childNodes].every((child, i) => alike(child, b.childNodes[i]));
const alike = (a, b) => a.nodeType === b.nodeType && a.nodeName === b.nodeName && alikeKids(a, b);
const patchKids = (a, b) => a.childNodes.forEach((child, i) => patch(child, b.childNodes[i]));
const patch = (a, b) => {  // b's text and attributes into a, node by node (the two alike)
  if (a.nodeType === 3 || a.nodeType === 8) { if (a.data !== b.data) a.data = b.data; return; }
  if (a.nodeType === 1) {
    for (const {name, value} of b.attributes) if (a.getAttribute(name) !== value) a.setAttribute(name, value);
    for (const {name} of [...a.attributes]) if (!b.hasAttribute(name)) a.removeAttribute(name);
  }
  patchKids(a, b);
};
const morph = (box, html) => {  // the new HTML into box: when it has the same nodes, only their changed text and
  // attributes are written (no node made anew, no layout object); otherwise the whole content is replaced
  const next = document.createElement('template'); next.innerHTML = html;
  if (alikeKids(box, next.content)) patchKids(box, next.content); else box.replaceChildren(...next.content.childNodes);
};
"""

GRID_ESM = LIVE_JS + CANVAS_JS + """
export function render({ model, el }) {
  const box = document.createElement('div'); box.className = 'oh-scroll';
  const table = document.createElement('table'); table.className = 'oh-table oh-grid';
  const head = document.createElement('thead'), body = document.createElement('tbody');
  table.append(head, body); box.append(table); el.append(box);
  const numeric = new Set(model.numeric_columns), states = model.quote_states, palette = model.palette;
  const drawable = new Set(model.canvas_columns);
  let fields = model.columns, onCanvas = fields.map((c) => drawable.has(c));
  const drawHead = () => {
    head.innerHTML = '<tr>' + fields.map((c, j) =>
      `<th data-field="${c}" class="${numeric.has(c) ? 'oh-num' : ''}${onCanvas[j] ? ' oh-cv' : ''}">${model.headers[j] || c}</th>`).join('') + '</tr>'; };
  // Every cell of the body, by row and column, kept from when it was made: {td, node (its one text node; a canvas
  // cell's is its hidden copy's), v (the text it shows), x (what the value decided beside the text: the pnl sign's
  // class, the quote time's second), and for a canvas cell i, j (where it is), drawn and fill (the text and colour
  // last drawn: what the tests read)}. A frame's cells are written through these references: no lookup through the
  // table's row and cell collections, no attribute or class written that did not change.
  let grid = [];
  const KIND = {'quote at': 1, 'pnl': 2, 'pnl %': 2, 'quote': 3};  // what a column writes beside its text
  let kinds = fields.map((c) => KIND[c] || 0);
  const write = (c, kind, value) => {  // text only (never HTML): cheap for the browser, nothing to escape
    if (c.v === value) return;
    c.v = value;
    if (c.i !== undefined) { layer.touch(c); return; }  // a canvas cell: drawn by paint(), at the end of the frame
    if (kind === 1) {  // the newest quote's feed time: the stamp as data-ts, shown as HH:MM:SS when its second moved
      c.td.setAttribute('data-ts', value);
      const ts = parseFloat(value), second = ts > 0 ? Math.floor(ts) : -1;
      if (second !== c.x) { c.x = second; c.node.data = second >= 0 ? new Date(second * 1000).toISOString().slice(11, 19) : '\u2014'; layer.moved(); }
      return;
    }
    c.node.data = value;  // the cell's one text node changed in place: no node, no layout object made anew
    layer.moved();  // a DOM text of another width can move every column of an auto-sized table
    if (kind === 2) {
      const sign = value.startsWith('-') ? 'oh-neg' : value.startsWith('+') ? 'oh-pos' : '';
      if (sign !== c.x) { if (c.x) c.td.classList.remove(c.x); if (sign) c.td.classList.add(sign); c.x = sign; }
    } else if (kind === 3) { const css = states[value] || ''; if (css !== c.x) { c.x = css; c.td.className = css; } }
  };
  // The moving numbers are drawn on a canvas laid over their columns (panel_app.live_canvas); their cells hold only a
  // hidden copy of their text, for a screen reader, copying and the tests. Every other cell is DOM text, as before.
  const layer = canvasLayer({box, table, head, body, palette, cells: () => grid, drawn: () => onCanvas});
  model.on('remove', () => layer.stop());
  table.ohGrid = {  // the grid's model, for the tests: a cell's text, what the canvas shows there and in which colour
    cell: (i, field) => { const j = fields.indexOf(field), c = grid[i] && grid[i][j]; if (!c) return null;
      return {v: c.v, canvas: c.i !== undefined, drawn: c.drawn, fill: c.fill, copy: c.node.data,
              box: c.i !== undefined ? layer.box(i, j) : null}; },
    canvas: layer.canvas, palette, mirror: layer.mirror, style: layer.style};
  const reset = (rows) => {
    while (body.rows.length > rows.length) body.deleteRow(-1);
    if (grid.length > rows.length) grid.length = rows.length;
    rows.forEach((row, i) => {
      if (!grid[i]) { const tr = body.insertRow(); tr.className = 'oh-row';
        grid[i] = fields.map((c, j) => { const td = tr.insertCell(); td.dataset.field = c;
          if (numeric.has(c)) td.className = 'oh-num';
          const node = document.createTextNode('');
          if (onCanvas[j]) { const copy = document.createElement('span'); copy.className = 'oh-sr'; copy.append(node); td.append(copy);
            return {td, node, v: null, x: null, i, j, k: kinds[j], drawn: null, fill: null}; }
          td.append(node);
          return {td, node, v: null, x: null}; }); }
      const tr = body.rows[i];
      if (tr.dataset.key !== row[0]) tr.dataset.key = row[0];
      row.forEach((value, j) => write(grid[i][j], kinds[j], value));
    });
    layer.reset(); layer.mirror();
  };
  drawHead(); reset(model.rows); layer.paint();
  let pending = null;  // a frame's part for this table: {rows or null, cells: the frames' cell lists, oldest first}
  const queue = (part) => {
    if (part.rows) { pending = {rows: part.rows, cells: []}; return; }
    if (!pending) pending = {rows: null, cells: []};
    pending.cells.push(part.cells);
  };
  const flush = () => {
    if (!pending) return;
    const p = pending; pending = null;
    if (p.rows) reset(p.rows);
    for (const cells of p.cells) {  // in order: a cell in two frames ends with the newer text
      for (const [i, j, value] of cells) { const row = grid[i]; if (row && j < row.length) write(row[j], kinds[j], value); }
    }
    layer.paint();
  };
  const shared = live();
  shared.parts[model.role] = {queue, flush, tidy: layer.tidy, check: layer.check};
  model.on('columns', () => { fields = model.columns; kinds = fields.map((c) => KIND[c] || 0);
    onCanvas = fields.map((c) => drawable.has(c)); drawHead();
    body.innerHTML = ''; grid = []; layer.reset(); layer.paint(); shared.resync(); });
  if (!model.carrier) { shared.resync(); return; }  // a rider: its parts come in the carrier's frames
  let ws = null, seq = 0, resyncing = true, backoff = 500, gone = false, traced = [];
  let acking = false;
  const ack = () => {  // the frame is painted: a grid's housekeeping (its hidden copies, once a second; one grid's
    // a frame, not both tables' at once) first, while no frame can come (the server waits for this acknowledgement),
    // then the acknowledgement
    acking = false;
    for (const part of Object.values(shared.parts)) if (part.check) part.check();
    for (const part of Object.values(shared.parts)) if (part.tidy && part.tidy()) break;
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ack: seq})); };
  const painted = new MessageChannel(); painted.port1.onmessage = ack;
  const flushAll = () => {  // writes what came, then acknowledges the frame once the browser has painted it
    for (const part of Object.values(shared.parts)) part.flush();
    if (document.hidden) ack();  // no animation frames in a hidden tab: acknowledged at once, as written
    else if (!acking) { acking = true; requestAnimationFrame(() => painted.port2.postMessage(0)); }
    if (traced.length) { const applied = Date.now(), trace = (window.__ohTrace = window.__ohTrace || []);
      for (const t of traced) trace.push([...t, applied, fields.length]); traced = []; }
  };
  const receive = (msg, received) => {
    if (!(msg.positions && msg.positions.rows)) {  // cells: they need every frame before them
      if (resyncing) { seq = msg.seq; return; }  // the full rows are on their way
      if (msg.seq !== seq + 1) { seq = msg.seq; shared.resync(); return; }
    }
    seq = msg.seq; resyncing = false;
    for (const role in shared.parts) { if (msg[role]) shared.parts[role].queue(msg[role]); }
    if (msg.tr) traced.push([...msg.tr, received]);
    flushAll();
  };
  const connect = () => {
    if (gone || !model.token || ws) return;
    const socket = ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '%(route)s',
                                      ['%(protocol)s', model.token]);
    seq = 0; resyncing = true;
    socket.onopen = () => { backoff = 500; };
    socket.onmessage = (event) => {
      const received = Date.now();
      try { receive(JSON.parse(event.data), received); } catch (error) { console.error(error); shared.resync(); }
    };
    shared.resync = () => { if (socket.readyState === 1) { resyncing = true; socket.send(JSON.stringify({resync: seq})); } };
    socket.onclose = (event) => {
      if (ws === socket) ws = null;
      shared.resync = () => {};
      if (gone || event.code === %(gone)d) return;
      setTimeout(connect, backoff); backoff = Math.min(2 * backoff, 10000);
    };
  };
  model.on('token', connect);
  model.on('remove', () => { gone = true; if (ws) ws.close(); });
  connect();
}
""".replace("%(route)s", ROUTE).replace("%(protocol)s", PROTOCOL).replace("%(gone)d", str(CLOSE_SESSION_GONE))


class _Direct(JSComponent):
    """A JSComponent whose messages from the browser are handled at once, in Bokeh's handler of the incoming
    message (on the server's event loop, document locked), and whose answers leave in that same turn
    (Panel would schedule each one as a callback, then a coroutine, then send the answer on a further tick:
    panel/reactive.py, _server_event). The handlers are small and never block."""

    def _server_event(self, doc: Any, event: Any) -> None:
        if isinstance(event, DataEvent):
            with set_curdoc(doc):
                self._handle_msg(event.data)
            return
        super()._server_event(doc, event)


class LiveGrid(JSComponent):
    """A read-only table drawn by the browser, cell by cell (see the module docstring): `rows` is only the
    first content; updates arrive through the page's marks channel carrying just the changed cells, and the
    browser rewrites only those cells (rows and cells are created once), so nothing is rebuilt and nothing
    flickers.

    Why not Tabulator: Panel 1.9's Tabulator answers every `patch` with a full `setData` of all rows
    in the browser (panel/models/tabulator.ts, updateOrAddData), which at four redraws a second on a
    busy machine piled up a backlog of tens of seconds (bench/live_browser.py). Why not a `rows`
    parameter: a parameter is synced whole, so every tick would send every row to every tab."""

    columns = param.List(default=[], doc="Column fields (each cell's data-field); the first is the row key.")
    headers = param.List(default=[], doc="Column headers in words.")
    quote_states = param.Dict(default=QUOTE_STATES, doc="Text of a 'quote' cell -> its CSS class.")
    numeric_columns = param.List(default=[], doc="Columns aligned right (numbers).")
    canvas_columns = param.List(default=list(CANVAS_COLUMNS), doc="Columns drawn on the canvas (the moving numbers).")
    palette = param.Dict(default=PALETTE, doc="The colours shared with the CSS (a PnL's sign: 'pos', 'neg').")
    rows = param.List(default=[], doc="The first rows; later ones arrive through the marks channel.")
    role = param.String(default="", doc="The name of this table's part in the channel's frames.")
    carrier = param.Boolean(default=False, doc="This grid opens the marks channel; the others ride in its frames.")
    token = param.String(default="", doc="The carrier's session's channel token (set once the session is live).")

    _esm = GRID_ESM


class LiveHTML(_Direct):
    """HTML that the server replaces often (the summary cards, stream health): `html` is the first content.
    With a `role` (the summary cards) later content rides in the marks channel's frames under that name;
    without (the stream health) each arrives as a Panel message (`{"html": ...}`). Either way the browser
    writes it into this component's own element, and when the new HTML has the same nodes as what is shown (the
    cards each marking: only their numbers and the `data-marking` move) only the changed text and attributes are
    written, into the nodes already there (`morph`): no node and layout object made anew each frame. Why not an
    HTML pane: a pane's text is a Bokeh property, and every change of it makes the browser lay out the whole page
    again; here only this element's content changes (its box is `contain: content`)."""

    html = param.String(default="", doc="The first content; later ones arrive as messages or frames.")
    role = param.String(default="", doc="Set: the content rides in the marks channel's frames under this name.")

    _esm = LIVE_JS + """
export function render({ model, el }) {
  const box = document.createElement('div'); box.style.contain = 'content'; box.innerHTML = model.html; el.append(box);
  let shown = model.html;
  const show = (part) => { if (typeof part.html === 'string' && part.html !== shown) { shown = part.html; morph(box, shown); } };
  if (model.role) {  // a rider: queued with the grids, written with the carrier's frame
    let pending = null; const shared = live();
    shared.parts[model.role] = {queue: (part) => { pending = part; }, flush: () => { if (pending) show(pending); pending = null; }};
    shared.resync();
    return;
  }
  model.on('msg:custom', show);
  model.send_msg({resync: true});  // (re)rendered: ask for the newest content once
}
"""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.text = self.html  # the newest content
        self.carried = self.html  # the newest content sent as a Panel message (no role)

    def show(self, text: str) -> None:
        """Replace the content: sent now as a Panel message, or with the marks channel's next frame (a role)."""
        self.text = text
        if not self.role and text != self.carried:
            self._send_msg(self.message())

    def message(self) -> dict[str, Any]:
        """The content as a Panel message (taken as sent)."""
        self.carried = self.text
        return {"html": self.text}

    def part(self, sent: Sent) -> dict[str, Any] | None:
        """The new content as a frame's part for a tab that was `sent` what it was, None when it has it."""
        return None if sent.get(self.role) == self.text else self.full(sent)

    def full(self, sent: Sent) -> dict[str, Any]:
        """The content as a frame's part (taken as sent)."""
        sent[self.role] = self.text
        return {"html": self.text}

    def _handle_msg(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("resync") and not self.role:
            self._send_msg(self.message())


class PatchedTable:
    """A LiveGrid's columns and newest rows. `part` gives what a tab lacks against what it was sent (the
    changed cells, or the whole rows when the set of rows changed); `frame` the same for this table and its
    riders as one marks-channel frame (see the module docstring). What each socket was sent is the
    socket's (`Sent`), so every tab of a session is diffed against what it has.

    `riders` (other tables, LiveHTML boxes) travel inside this table's frames under their `role`."""

    def __init__(self, columns: Sequence[tuple[str, str]], css_class: str,
                 riders: Sequence[PatchedTable | LiveHTML] = (), role: str = "positions", carrier: bool = True) -> None:
        self.columns = [field for field, _ in columns]
        self.rows: list[Row] = []  # the newest rows
        self.patches = 0  # cells sent in patches
        self.resets = 0  # full rows sent (first rows, a different set of rows, a resync)
        self.riders = list(riders)
        self.role = role
        self.widget = LiveGrid(columns=self.columns, headers=[header for _, header in columns],
                               numeric_columns=[c for c in NUMERIC_COLUMNS if c in self.columns], role=role,
                               carrier=carrier, sizing_mode="stretch_width", stylesheets=[CSS, CELL_CSS],
                               css_classes=[css_class])

    def update(self, rows: list[Row]) -> None:
        """The newest rows: they go with the next frame."""
        self.rows = rows

    def part(self, sent: Sent) -> dict[str, Any] | None:
        """What a tab that was `sent` what it was lacks, as a frame's part, taken as sent; None: nothing."""
        rows, shown = self.rows, sent.get(self.role)
        if rows is shown or rows == shown:
            return None
        if shown is None or len(rows) != len(shown) or any(a[0] != b[0] for a, b in zip(rows, shown, strict=True)):
            return self.full(sent)
        cells = [[i, j, new] for i, (a, b) in enumerate(zip(rows, shown, strict=True)) if a != b
                 for j, (new, old) in enumerate(zip(a, b, strict=True)) if new != old]
        sent[self.role] = rows
        self.patches += len(cells)
        return {"cells": cells}

    def full(self, sent: Sent) -> dict[str, Any]:
        """The whole rows, as a frame's part, taken as sent."""
        sent[self.role] = rows = self.rows
        self.resets += 1
        return {"rows": [list(r) for r in rows]}

    def frame(self, sent: Sent) -> dict[str, Any] | None:
        """What the tab lacks of this table and its riders, as one frame (without its number); None: nothing."""
        parts = {self.role: self.part(sent), **{r.role: r.part(sent) for r in self.riders}}
        frame = {role: part for role, part in parts.items() if part is not None}
        if not frame:
            return None
        frame.setdefault(self.role, {"cells": []})
        return frame

    def full_frame(self, sent: Sent) -> dict[str, Any]:
        """Everything, of this table and its riders, as one frame (a new socket; the browser asked)."""
        sent.clear()
        return {self.role: self.full(sent), **{r.role: r.full(sent) for r in self.riders}}
