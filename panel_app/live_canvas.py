"""The live grid's canvas: the moving numbers drawn on an opaque canvas laid over their columns, not written as DOM text.

Contract (`CANVAS_JS`, used by panel_app.live_grid's `LiveGrid`): `canvasLayer({box, table, head, body, palette,
cells, drawn})` puts a canvas into `box` (the grid's scroller) over the body rows of the columns whose flag in
`drawn()` is true (they must be side by side: the canvas is one opaque block) and returns
`{touch(cell), moved(), reset(), paint(), check(), mirror(), tidy(), stop(), cell(i, j)}`. `cells()` is the grid's rows of cells;
a canvas cell is `{td, node, v, i, j, k, drawn, fill}`: its row and column, its kind (2: a PnL, drawn in its sign's
colour), its text `v`, and what the canvas last drew there (`drawn`, `fill`: what the tests read). The grid calls
`touch` for a cell whose text changed, `moved` when a DOM text changed (in an auto-sized table any text of another
width can move every column), `reset` when rows were made or dropped, `paint` at the end of each frame, and `check`
once the frame has been painted (before it acknowledges it).

- **What is drawn.** Each changed cell's box (above its bottom line) is filled with the table's background and its
  text drawn right-aligned, in the cell's font and colour as the CSS has them (read from a canvas cell's computed
  style), a PnL in `palette.pos` / `palette.neg` by its sign (the palette the CSS is written from:
  panel_app.live_tables.PALETTE). When the geometry moved (a column widened, rows added, the window, the phone
  layout, the zoom: a ResizeObserver on the table) the whole canvas is drawn again, with the cells' bottom lines.
- **Geometry.** The columns' boxes come from the header cells, the rows' from the body rows
  (`getBoundingClientRect`, on device pixels), at the device pixel ratio, read only when the layout may have moved:
  before drawing when rows came or went or the table was resized; after a DOM text changed (an age, a quote's time,
  a warning: nearly every frame, and seldom a column's move), in `check()`, once the frame has been painted, where
  the layout is clean and reading it forces none; the canvas is drawn again then only if the geometry did move.
  Read in the frame's script, right after the texts were written, it forced a layout per grid before the frame's
  own (bench/live_browser `--profile`: `getBoundingClientRect` 2.4 ms of a frame's script at load 12, 0.3 after).
- **Widths.** A text wider than its column widens the column (`min-width` on its header, with a digit to spare);
  it is measured (`measureText`) only when it is longer than the longest text that fitted (digits are of one
  width in the usual UI fonts). Columns never narrow while the page is open.
- **Opaque.** `alpha: false`: the software compositor draws the canvas alone instead of blending it over the tiles
  under it (its quads took ~1.6 times the CPU transparent: bench/README.md).
- **The hidden copies.** Each canvas cell keeps its text in a visually hidden span (`.oh-sr`), brought up to date
  every `MIRROR_MS` (1 s): what a screen reader reads, what a copy of the table takes, and what find in page finds,
  up to a second old (1.5 s once the marks are still). The canvas is `aria-hidden`. While frames flow the grid calls
  `tidy()` when a frame has been painted, before acknowledging it (the server sends no frame before the
  acknowledgement), so the copies' writes and the layout they cause fall between two frames, never while one waits;
  `tidy()` says whether it wrote them (one grid's a frame: the grid does not take both tables' at once). A timer covers
  a page whose marks are still.
"""

from __future__ import annotations

MIRROR_MS = 1000  # how often the canvas cells' hidden copies (screen reader, copying, tests) are brought up to date

CANVAS_JS = """
const canvasLayer = ({box, table, head, body, palette, cells, drawn}) => {
  const canvas = document.createElement('canvas'); canvas.className = 'oh-grid-canvas';
  canvas.setAttribute('aria-hidden', 'true'); box.append(canvas);
  const ctx = canvas.getContext('2d', {alpha: false});  // opaque: the compositor draws it alone, not over what is under it
  const dirty = new Set();  // canvas cells whose text changed since they were last drawn
  let moved = true;  // the layout may have moved (the rows, the size): geometry read again before drawing
  let shifted = false;  // a DOM text changed (its width may move the columns): geometry checked once the frame is painted
  let full = true;  // the whole canvas to be drawn again
  let geo = null, style = null, ink = null, later = false, fits = [];  // fits: per column, the longest text that fitted
  const measure = () => {  // the canvas columns' boxes and the rows', in CSS pixels on device pixels (lines fall where the table's do)
    const b = box.getBoundingClientRect(), ths = head.rows[0] ? head.rows[0].cells : [], dpr = window.devicePixelRatio || 1;
    const px = (v) => Math.round(v * dpr) / dpr, on = drawn();
    let x0 = Infinity, x1 = -Infinity;
    const cols = on.map((flag, j) => {
      if (!flag || !ths[j]) return null;
      const r = ths[j].getBoundingClientRect(); if (r.width === 0) return null;  // hidden (the phone layout)
      x0 = Math.min(x0, px(r.left)); x1 = Math.max(x1, px(r.right)); return [px(r.left), px(r.right)];
    });
    const top = px(body.getBoundingClientRect().top);
    const rows = [...body.rows].map((tr) => { const r = tr.getBoundingClientRect(); return [px(r.top) - top, px(r.bottom) - px(r.top)]; });
    if (x0 === Infinity || !rows.length) return {left: 0, top: 0, w: 0, h: 0, cols: [], rows: [], dpr};
    const last = rows[rows.length - 1];
    return {left: x0 - px(b.left) + box.scrollLeft, top: top - px(b.top) + box.scrollTop, w: x1 - x0, h: last[0] + last[1],
            cols: cols.map((c) => c && [c[0] - x0, c[1] - c[0]]), rows, dpr};
  };
  const same = (a, b) => !!a && !!b && JSON.stringify(a) === JSON.stringify(b);
  const restyle = () => {  // the font, colours, line and padding of a canvas cell, as the CSS has them
    const grid = cells(), one = grid.length ? grid[0].find((c) => c.i !== undefined) : null; if (!one) return null;
    const cs = getComputedStyle(one.td), font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    ctx.font = font; const m = ctx.measureText('0');  // (its computed 'font' is '': tabular-nums has no shorthand)
    let bg = null;  // what shows through the cells: the first ancestor's own background (out of the shadow root too)
    for (let e = table; e && !bg; e = e.parentElement || (e.getRootNode() && e.getRootNode().host)) {
      const c = getComputedStyle(e).backgroundColor; if (c && c !== 'transparent' && !c.endsWith(', 0)')) bg = c; }
    return {font, color: cs.color, bg: bg || '#fff', line: cs.borderBottomColor, lineWidth: parseFloat(cs.borderBottomWidth) || 0,
            padL: parseFloat(cs.paddingLeft) || 0, padR: parseFloat(cs.paddingRight) || 0,
            mid: (m.fontBoundingBoxAscent - m.fontBoundingBoxDescent) / 2, slack: m.width};
  };
  const widen = (j, width) => {  // a wider value came: its column widened (with a digit to spare), drawn again after layout
    const th = head.rows[0] && head.rows[0].cells[j]; if (!th) return;
    th.style.minWidth = Math.ceil(width + style.padL + style.padR + style.slack) + 'px'; moved = true;
  };
  const draw = (c) => {  // one cell's box filled and its text drawn; false: its column is too narrow for it
    const col = geo.cols[c.j], row = geo.rows[c.i]; if (!col || !row) return true;
    ctx.fillStyle = ink = style.bg; ctx.fillRect(col[0], row[0], col[1], row[1] - style.lineWidth);  // the box, above its line
    const text = c.v || '', fill = c.k === 2 ? (text.startsWith('-') ? palette.neg : text.startsWith('+') ? palette.pos : style.color)
      : style.color;
    if (fill !== ink) { ink = fill; ctx.fillStyle = fill; }
    ctx.fillText(text, col[0] + col[1] - style.padR, row[0] + row[1] / 2 + style.mid);
    c.drawn = text; c.fill = fill;
    if (text.length <= (fits[c.j] || 0)) return true;  // no longer than a text that fitted (a digit to spare): not measured
    const width = ctx.measureText(text).width;
    if (width > col[1] - style.padL - style.padR) { widen(c.j, width); return false; }
    fits[c.j] = text.length; return true;
  };
  const paint = () => {  // the changed cells (or all, when the geometry moved) onto the canvas
    for (let pass = 0; pass < 3 && (dirty.size || full || moved); pass++) {
      if (moved) { moved = false; const g = measure(); if (!same(g, geo)) { geo = g; full = true; } }
      if (!geo) return;
      if (full) {
        full = false; dirty.clear(); style = restyle(); if (!style) return; fits = [];
        const w = Math.ceil(geo.w * geo.dpr), h = Math.ceil(geo.h * geo.dpr);
        if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
        canvas.style.width = geo.w + 'px'; canvas.style.height = geo.h + 'px';
        canvas.style.transform = `translate(${geo.left}px, ${geo.top}px)`;
        ctx.setTransform(geo.dpr, 0, 0, geo.dpr, 0, 0); ctx.font = style.font; ctx.textAlign = 'right';
        ctx.textBaseline = 'alphabetic';
        ctx.fillStyle = style.bg; ctx.fillRect(0, 0, geo.w, geo.h);
        ctx.fillStyle = ink = style.line;  // each cell's bottom line, as the table draws it beside the canvas
        if (style.lineWidth) for (const [y, h] of geo.rows) ctx.fillRect(0, y + h - style.lineWidth, geo.w, style.lineWidth);
        for (const row of cells()) for (const c of row) if (c.i !== undefined) draw(c);
      } else {
        for (const c of dirty) draw(c);
        dirty.clear();
      }
    }
  };
  // The table's size changed (the window, the phone layout, a font, the zoom): drawn again before the next paint (not
  // in the observer's callback, where a widened column would be a resize loop); a hidden tab, at its next frame of marks
  const resized = new ResizeObserver(() => { moved = true;
    if (!later) { later = true; requestAnimationFrame(() => { later = false; paint(); }); } });
  resized.observe(table);
  let mirrored = 0;  // when the hidden copies were last brought up to date (performance.now())
  const mirror = () => {  // the hidden copies brought up to date
    mirrored = performance.now();
    for (const row of cells()) for (const c of row) if (c.i !== undefined && c.node.data !== (c.v || '')) c.node.data = c.v || ''; };
  // While frames flow the grid calls tidy() once a frame is painted, before it acknowledges it: the copies' ~600 texts
  // (and the table's layout they cause) then fit between two frames instead of falling at any moment of the second,
  // where a frame that came meanwhile waited for them. The timer covers a page whose marks are still.
  // A DOM text that changed (an age, a quote's time, a warning) seldom moves the columns, and reading the geometry
  // right after it forces a layout in the frame's script (one per grid, then the frame's own): check() reads it once
  // the frame is painted (the layout clean, nothing forced) and draws the canvas again only if it did move.
  const check = () => {
    if (!shifted) return;
    shifted = false; const g = measure(); if (!same(g, geo)) { moved = true; paint(); } };
  const tidy = () => { if (performance.now() - mirrored < %(mirror_ms)d) return false; mirror(); return true; };
  const timer = setInterval(() => { if (performance.now() - mirrored >= 1.5 * %(mirror_ms)d) mirror(); }, %(mirror_ms)d / 2);
  return {
    canvas, palette, mirror, tidy, check, paint, style: () => style,
    touch: (c) => { dirty.add(c); },
    moved: () => { shifted = true; },
    reset: () => { dirty.clear(); moved = full = true; },
    stop: () => { clearInterval(timer); resized.disconnect(); },
    box: (i, j) => (geo && geo.cols[j] && geo.rows[i] ? [...geo.cols[j], ...geo.rows[i]] : null),
  };
};
""".replace("%(mirror_ms)d", str(MIRROR_MS))
