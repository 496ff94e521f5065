"""The live page's grid: tables the browser patches cell by cell, and HTML it rewrites in place.

`PatchedTable` is what keeps the page still while numbers move: one `LiveGrid` widget per table,
built once. Each update is compared with what that browser tab already shows, and only the cells
whose text changed go over the websocket (a `{"seq", "cells": [[row, column, text], ...]}` message
through ReactiveESM's `_send_msg`), where the grid rewrites just those cells. A different set of
rows (the portfolio file changed) or a grid that (re)rendered and asked for a resync gets the full
rows once. The grid numbers messages, so a patch that arrived before the grid listened is noticed
and answered with the full rows: what the tab shows always converges on the newest marks.

One message per update and tab: the legs table and the summary cards (a `LiveHTML`) are the
positions table's *riders*: their changes travel inside the positions' message (`"riders": {"legs":
{"cells": ...}, "summary": {"html": ...}}`) and the browser hands each part to its component (they
register under their role on `window.__ohLiveParts`). A rider never sends updates itself; its own
component that (re)renders asks for, and gets directly, its full content. `LiveHTML` also carries the
stream health: HTML written by the browser into its own element, where an HTML pane's text change
would make the browser lay out the whole page again.

Flow control: the browser acknowledges each message once applied, and a tab has at most WINDOW
(1) message unacknowledged. Updates that come meanwhile only replace the newest rows; an
acknowledgement sends what changed since, in one message, and tells the marker (`on_ready`) that
this tab can take a new marking (panel_app.live_marks marks only for a tab that can send it at
once). So a tab that cannot keep up (a phone, a busy machine) gets fewer, larger patches of the
newest marks instead of a growing queue of old ones in the websocket. With no acknowledgement for
ACK_TIMEOUT after the newest message, one more goes out (one per timeout, never a stream). The
acknowledgement is handled in Bokeh's own handler of the incoming message (`_Direct`), and the next
patch leaves in that same turn of the event loop. (bench/live_browser measured windows of 2 and 8 under load: slower, the
extra messages only queue in front of a starved browser.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import param
from panel.custom import JSComponent
from panel.io.state import set_curdoc
from panel.models.esm import DataEvent

from panel_app.components import CSS
from panel_app.live_tables import CELL_CSS, NUMERIC_COLUMNS, QUOTE_STATES, Row

WINDOW = 1  # messages a tab may have unacknowledged (bench/live_browser: 2 and 8 were slower under load)
ACK_TIMEOUT = 5.0  # seconds: with no acknowledgement that long after the newest message, one more goes out


GRID_ESM = """
export function render({ model, el }) {
  const box = document.createElement('div'); box.className = 'oh-scroll';
  const table = document.createElement('table'); table.className = 'oh-table oh-grid';
  const head = document.createElement('thead'), body = document.createElement('tbody');
  table.append(head, body); box.append(table); el.append(box);
  const numeric = new Set(model.numeric_columns), states = model.quote_states;
  let fields = model.columns, seq = 0, resyncing = true;  // resyncing: patches wait for the full rows
  const drawHead = () => {
    head.innerHTML = '<tr>' + fields.map((c, j) =>
      `<th data-field="${c}" class="${numeric.has(c) ? 'oh-num' : ''}">${model.headers[j] || c}</th>`).join('') + '</tr>'; };
  const time = (value) => { const ts = parseFloat(value);
    return ts > 0 ? new Date(ts * 1000).toISOString().slice(11, 19) : '\u2014'; };
  const write = (td, j, value) => {  // text only (never HTML): cheap for the browser, nothing to escape
    if (td.__v === value) return;
    td.__v = value;
    const field = fields[j];
    if (field === 'quote at') {
      td.dataset.ts = value; const shown = time(value); if (td.textContent !== shown) td.textContent = shown; return; }
    td.textContent = value;
    if (field === 'pnl' || field === 'pnl %') {
      td.classList.toggle('oh-neg', value.startsWith('-')); td.classList.toggle('oh-pos', value.startsWith('+')); }
    else if (field === 'quote') td.className = states[value] || '';
  };
  const reset = (rows) => {
    while (body.rows.length > rows.length) body.deleteRow(-1);
    rows.forEach((row, i) => {
      let tr = body.rows[i];
      if (!tr) { tr = body.insertRow(); tr.className = 'oh-row';
        fields.forEach((c, j) => { const td = tr.insertCell(); td.dataset.field = c; td.__v = null;
          if (numeric.has(c)) td.className = 'oh-num'; }); }
      tr.dataset.key = row[0];
      row.forEach((value, j) => write(tr.cells[j], j, value));
    });
  };
  const patch = (cells) => {
    for (const [i, j, value] of cells) { const tr = body.rows[i]; if (tr) write(tr.cells[j], j, value); }
  };
  drawHead(); reset(model.rows);
  const apply = (part) => {  // one table's part of a message: the whole rows, or changed cells
    if (part.rows) { reset(part.rows); resyncing = false; } else if (!resyncing) patch(part.cells); };
  const parts = (window.__ohLiveParts = window.__ohLiveParts || {});
  if (model.role) parts[model.role] = apply;  // a rider: its parts come inside another table's messages
  model.on('msg:custom', (msg) => {
    try { receive(msg); } catch (error) {  // never stall the server's window: start again from the full rows
      console.error(error); resyncing = true; model.send_msg({resync: seq}); return; }
    model.send_msg({ack: seq});
  });
  const receive = (msg) => {  // applies one message
    if (msg.rows) { reset(msg.rows); resyncing = false; }
    else if (resyncing) return;  // the full rows are on their way
    else if (msg.seq !== seq + 1) { resyncing = true; model.send_msg({resync: seq}); return; }  // one came before we listened
    else { const received = Date.now(); patch(msg.cells);
      if (msg.tr) (window.__ohTrace = window.__ohTrace || []).push([...msg.tr, received, Date.now(), fields.length]); }
    if (msg.riders) for (const [role, part] of Object.entries(msg.riders)) { if (parts[role]) parts[role](part); }
    seq = msg.seq;  // applied, this and every one before: the acknowledgement lets the server send the next one
  };
  model.on('columns', () => { fields = model.columns; drawHead(); body.innerHTML = ''; });
  model.send_msg({resync: seq});  // (re)rendered: ask for the full rows once
}
"""


class _Direct(JSComponent):
    """A JSComponent whose messages from the browser are handled at once, in Bokeh's handler of the incoming
    message (on the server's event loop, document locked), and whose answers leave in that same turn.

    Panel would schedule each one as a callback on the event loop, then as a coroutine, then send the answer
    on a further tick (panel/reactive.py, _server_event): three turns of a loop that every tab shares, for
    an acknowledgement that only lets the next patch go. Here the handlers are small and never block."""

    def _server_event(self, doc: Any, event: Any) -> None:
        if isinstance(event, DataEvent):
            with set_curdoc(doc):
                self._handle_msg(event.data)
            return
        super()._server_event(doc, event)


class LiveGrid(_Direct):
    """A read-only table drawn by the browser, cell by cell (see the module docstring): `rows` is only the
    first content; updates arrive as messages carrying just the changed cells, and the browser rewrites
    only those cells (rows and cells are created once), so nothing is rebuilt and nothing flickers.

    Why not Tabulator: Panel 1.9's Tabulator answers every `patch` with a full `setData` of all rows
    in the browser (panel/models/tabulator.ts, updateOrAddData), which at four redraws a second on a
    busy machine piled up a backlog of tens of seconds (bench/live_browser.py). Why messages and not a
    `rows` parameter: a parameter is synced whole, so every tick would send every row to every tab."""

    columns = param.List(default=[], doc="Column fields (each cell's data-field); the first is the row key.")
    headers = param.List(default=[], doc="Column headers in words.")
    quote_states = param.Dict(default=QUOTE_STATES, doc="Text of a 'quote' cell -> its CSS class.")
    numeric_columns = param.List(default=[], doc="Columns aligned right (numbers).")
    rows = param.List(default=[], doc="The first rows; later ones arrive as messages.")
    role = param.String(default="", doc="Set: updates ride in another table's messages under this name.")

    _esm = GRID_ESM

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.resync_requests = 0
        self.acks = 0
        self.on_resync: Callable[[], None] | None = None
        self.on_ack: Callable[[int], None] | None = None

    def _handle_msg(self, data: Any) -> None:
        """From the browser: `{"ack": seq}` (message seq applied) or `{"resync": seq}` (send the full rows:
        the grid (re)rendered, or a patch came before it listened)."""
        if not isinstance(data, dict):
            return
        if "ack" in data and self.on_ack is not None:
            self.acks += 1
            self.on_ack(int(data["ack"]))
        elif "resync" in data:
            self.resync_requests += 1
            if self.on_resync is not None:
                self.on_resync()


class LiveHTML(_Direct):
    """HTML that the server replaces often (the summary cards, stream health): `html` is the first content, each
    later one arrives as a message (`{"html": ...}`) that the browser writes into this component's own element.
    Why not an HTML pane: a pane's text is a Bokeh property, and every change of it makes the browser lay
    out the whole page again; here only this element's content changes (its box is `contain: content`)."""

    html = param.String(default="", doc="The first content; later ones arrive as messages.")
    role = param.String(default="", doc="Set: the content rides in a PatchedTable's messages under this name.")

    _esm = """
export function render({ model, el }) {
  const box = document.createElement('div'); box.style.contain = 'content'; box.innerHTML = model.html; el.append(box);
  const show = (part) => { if (typeof part.html === 'string' && box.innerHTML !== part.html) box.innerHTML = part.html; };
  model.on('msg:custom', show);
  if (model.role) (window.__ohLiveParts = window.__ohLiveParts || {})[model.role] = show;
  model.send_msg({resync: true});  // (re)rendered: ask for the newest content once
}
"""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.text = self.html  # the newest content
        self.carried = self.html  # the newest content sent

    def show(self, text: str) -> None:
        """Replace the content: sent now, or with the carrier's next message when this rides in one."""
        self.text = text
        if not self.role and text != self.carried:
            self._send_msg(self.full())

    def part(self) -> dict[str, Any] | None:
        """The new content as a message body, None when the browser has it (taken as sent)."""
        return None if self.text == self.carried else self.full()

    def full(self) -> dict[str, Any]:
        """The content as a message body (taken as sent)."""
        self.carried = self.text
        return {"html": self.text}

    def _handle_msg(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("resync"):
            self._send_msg(self.full())


class PatchedTable:
    """A LiveGrid, what its browser tab shows and what it should show: sends only the cells that changed,
    with at most `window` messages unacknowledged (see the module docstring).

    `riders` (other tables, LiveHTML boxes) travel inside this table's messages: one websocket message per
    update carries this table's cells and each rider's changes (`"riders": {role: part}`), applied by the
    browser in that order. A rider sends directly only the full content its own component asks for."""

    def __init__(self, columns: Sequence[tuple[str, str]], css_class: str, window: int = WINDOW,
                 ack_timeout: float = ACK_TIMEOUT, riders: Sequence[PatchedTable | LiveHTML] = (),
                 role: str = "") -> None:
        self.columns = [field for field, _ in columns]
        self.rows: list[Row] = []  # the newest rows
        self.shown: list[Row] = []  # the rows the browser has once it applied what was sent
        self.seq = 0  # messages sent
        self.acked = 0  # the newest message the browser acknowledged
        self.patches = 0  # cells sent in patches
        self.resets = 0  # full rows sent (first rows, a different set of rows, a resync)
        self.window = window
        self.ack_timeout = ack_timeout
        self.riders = list(riders)
        self.on_ready: Callable[[], None] | None = None  # called when an acknowledgement leaves room to send
        self.role = role  # set: this table rides in another one's messages (it never sends updates itself)
        self._sent_at: dict[int, float] = {}  # unacknowledged message -> when it was sent (monotonic)
        self.trace: tuple[float, ...] = ()  # set by the page with OH_LIVE_TRACE: the hops of the newest rows
        self._blocked_since = 0.0  # when an update first waited for the ack slot (time.time(); 0: none waits)
        self._ack_rtt = 0.0  # seconds from sending the last acknowledged message to its acknowledgement
        self.widget = LiveGrid(columns=self.columns, headers=[header for _, header in columns],
                               numeric_columns=[c for c in NUMERIC_COLUMNS if c in self.columns], role=role,
                               sizing_mode="stretch_width", stylesheets=[CSS, CELL_CSS], css_classes=[css_class])
        self.widget.on_resync = self.resync
        self.widget.on_ack = self.acknowledged

    @property
    def blocked(self) -> bool:
        """Whether `window` messages await their acknowledgement, the newest sent less than `ack_timeout` ago.
        Measured from the newest, not the oldest: a tab that stops acknowledging gets one message per
        timeout, never a stream (from the oldest, every update after the first timeout would go out, the
        queue in front of a slow tab would grow and its acknowledgements come later still: bench/live_browser
        saw values 30 s old that way)."""
        if self.seq - self.acked < self.window:
            return False
        newest = self._sent_at.get(self.seq)
        return newest is not None and time.monotonic() - newest < self.ack_timeout

    def update(self, rows: list[Row]) -> int:
        """Show `rows`: sent at once unless the window is full, else when an acknowledgement frees it (a rider
        only keeps them for its carrier's next message). Returns how many cells were sent now (0: nothing
        changed, or not yet)."""
        self.rows = rows
        if self.role:
            return 0
        if self.blocked:
            if not self._blocked_since:
                self._blocked_since = time.time()
            return 0
        return self.flush()

    def part(self) -> dict[str, Any] | None:
        """What the browser lacks, as the body of a message (the changed cells, or the whole rows when the set
        of rows changed), taken as shown from now on; None when it lacks nothing."""
        rows = self.rows
        if rows == self.shown and self.resets:
            return None
        if not self.resets or len(rows) != len(self.shown) or any(
                a[0] != b[0] for a, b in zip(rows, self.shown, strict=True)):
            self.shown = rows
            self.resets += 1
            return {"rows": [list(r) for r in rows]}
        cells = [[i, j, new] for i, (a, b) in enumerate(zip(rows, self.shown, strict=True)) if a != b
                 for j, (new, old) in enumerate(zip(a, b, strict=True)) if new != old]
        self.shown = rows
        self.patches += len(cells)
        return {"cells": cells}

    def full(self) -> dict[str, Any]:
        """The whole rows, as the body of a message, taken as shown from now on."""
        self.shown = self.rows
        self.resets += 1
        return {"rows": [list(r) for r in self.rows]}

    def flush(self) -> int:
        """Send what the browser lacks, of this table and of its riders, in one message; returns this table's
        cells sent."""
        cpu0 = time.thread_time()
        own = self.part()
        riders = {r.role: p for r in self.riders if (p := r.part()) is not None}
        if own is None and not riders:
            return 0
        message: dict[str, Any] = own if own is not None else {"cells": []}
        if riders:
            message["riders"] = riders
        if self.trace and "cells" in message:
            waited = time.time() - self._blocked_since if self._blocked_since else 0.0
            message["tr"] = [*self.trace, waited, time.thread_time() - cpu0, self._ack_rtt, time.time()]
        self._blocked_since = 0.0
        self._send(message)
        return len(self.rows) * len(self.columns) if "rows" in message else len(message["cells"])

    def acknowledged(self, seq: int) -> None:
        """The browser applied message `seq` (and every one before it): send what changed since, if room."""
        if seq <= self.acked:
            return
        sent = self._sent_at.get(seq)
        if sent is not None:
            self._ack_rtt = time.monotonic() - sent
        self.acked = min(seq, self.seq)
        self._sent_at = {s: at for s, at in self._sent_at.items() if s > self.acked}
        if not self.role and not self.blocked:
            self.flush()
            if self.on_ready is not None:
                self.on_ready()

    def resync(self) -> None:
        """Send the full rows (the browser asked: it (re)rendered, so it will never acknowledge what came before),
        with every rider's full content."""
        self.acked = self.seq
        self._sent_at.clear()
        message = self.full()
        if self.riders:
            message["riders"] = {r.role: r.full() for r in self.riders}
        self._send(message)

    def _send(self, message: dict[str, Any]) -> None:
        self.seq += 1
        self._sent_at[self.seq] = time.monotonic()
        self.widget._send_msg({"seq": self.seq, **message})
