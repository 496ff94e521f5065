"""The live portfolio page in a real browser: Debian's chromium (playwright) against a real `oh ui`, the
real ledger and the real live_stream worker (sim provider) in a temp OH_HOME. Nothing is mocked.
Waits are for conditions (generous timeouts on a shared machine), never for time.

A page load costs ~2.5 CPU-s of chromium: the tests that read a page with marks streaming (and change nothing
another could see) share one such tab (`StreamingTab`); a test that needs the page as first loaded, or at
another size, opens its own.

With OH_SCREENSHOTS=1 the layout test writes docs/screenshots/live.png (1440 px) and live-390.png
(a phone), both with marks streaming."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from devtools.browser import Stack
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.portfolio_file import save
from oh.adapters.sim.stream import sim_portfolio
from oh.domain.portfolio import OptionPosition, Portfolio, StockPosition, Structure
from panel_app.live_channel import ACK_TIMEOUT

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT = 60_000  # ms
SYMBOLS = ["AAPL", "MSFT", "SPY"]

# One live table: Panel puts the css class on the widget's host, the table in its shadow root.
HOST_JS = """(cls) => { const find = (root) => { const h = root.querySelector(`.${cls}`); if (h) return h;
  for (const e of root.querySelectorAll('*')) { if (e.shadowRoot) { const f = find(e.shadowRoot); if (f) return f; } }
  return null; }; const host = find(document); return host && host.shadowRoot ? host.shadowRoot : host; }"""
# Row cells of a table: position id -> {field: text, ts: the data-ts of its newest quote}. The moving numbers are drawn
# on a canvas (panel_app.live_grid): their text is what the grid last drew there (its model: `table.ohGrid`), which
# DISAGREE_JS holds to the model's value, its colour and the canvas's pixels.
ROWS_JS = """(cls) => { const out = {}; const root = (""" + HOST_JS + """)(cls); if (!root) return out;
  const grid = root.querySelector('table.oh-grid').ohGrid;
  root.querySelectorAll('tr.oh-row').forEach((row, i) => {
    const cell = f => row.querySelector(`td[data-field="${f}"]`);
    const id = cell('position'); if (!id) return;
    const text = f => { const c = grid.cell(i, f); if (c && c.canvas) return (c.drawn || '').trim();
      return cell(f) ? cell(f).textContent.trim() : ''; };
    const ts = row.querySelector('[data-ts]');
    out[id.textContent.trim()] = {contract: text('contract'), qty: text('qty'), mark: text('mark'),
      value: text('value'), pnl: text('pnl'), pnlPct: text('pnl %'), dte: text('dte'), spread: text('spread'),
      quote: text('quote'), warnings: text('warnings'), leg: text('leg'), bid: text('bid'), ask: text('ask'),
      ts: ts ? parseFloat(ts.dataset.ts) : 0};
  });
  return out; }"""
TABLE_JS = """(cls) => (""" + HOST_JS + """)(cls).querySelector('table.oh-grid')"""
# Cells whose class, colour or shown time disagrees with their value (the grid writes a class only when it changes):
# a PnL's sign colour, the quote state's colour, the quote time as HH:MM:SS of its data-ts; a canvas cell whose drawn
# text is not its value, or whose box on the canvas holds no pixel of the colour it was drawn in (or any pixel, when
# it is empty). Empty: all agree.
DISAGREE_JS = """(cls) => { const root = (""" + HOST_JS + """)(cls); const bad = [];
  const states = {live: 'oh-q-ok', stale: 'oh-q-stale', 'no quote': 'oh-q-none'};
  const grid = root.querySelector('table.oh-grid').ohGrid, canvas = grid.canvas, dpr = canvas.width / parseFloat(canvas.style.width);
  const ctx = canvas.getContext('2d');
  const rgb = (css) => { ctx.save(); ctx.fillStyle = css; const h = ctx.fillStyle; ctx.restore();
    return [1, 3, 5].map(k => parseInt(h.slice(k, k + 2), 16)); };
  const st = grid.style(), bg = rgb(st.bg), far = (p, k, c) => Math.abs(p[k] - c[0]) + Math.abs(p[k + 1] - c[1]) + Math.abs(p[k + 2] - c[2]);
  const inked = (box, colour) => { const [x, w, y, h] = box, d = dpr;  // the cell's box above its bottom line
    const px = ctx.getImageData(Math.round(x * d), Math.round(y * d), Math.max(Math.round(w * d), 1),
                                Math.max(Math.round((h - st.lineWidth) * d), 1)).data; let any = 0, match = 0;
    for (let k = 0; k < px.length; k += 4) { if (far(px, k, bg) > 30) any++; if (far(px, k, colour) < 60) match++; }
    return [any, match]; };
  root.querySelectorAll('tr.oh-row').forEach((tr, i) => tr.querySelectorAll('td').forEach(td => {
    const f = td.dataset.field, c = grid.cell(i, f);
    if (c && c.canvas) {
      if (c.drawn !== c.v) { bad.push([f, c.v, 'drawn', c.drawn]); return; }
      const t = c.v || '';
      const sign = t.startsWith('-') ? grid.palette.neg : t.startsWith('+') ? grid.palette.pos : null;
      if ((f === 'pnl' || f === 'pnl %') ? (sign ? c.fill !== sign : [grid.palette.neg, grid.palette.pos].includes(c.fill))
          : c.fill === grid.palette.neg) bad.push([f, t, c.fill]);
      if (!c.box) { bad.push([f, t, 'no box']); return; }
      const [any, match] = inked(c.box, rgb(c.fill));
      if (t && !(match || (t === '\\u2014' && any))) bad.push([f, t, 'no pixel of', c.fill]);
      else if (!t && any) bad.push([f, t, 'pixels in an empty cell']);
      return;
    }
    const t = td.textContent;
    if (f === 'pnl' || f === 'pnl %') {
      if (td.classList.contains('oh-neg') !== t.startsWith('-') || td.classList.contains('oh-pos') !== t.startsWith('+')) bad.push([f, t, td.className]);
    } else if (f === 'quote') { if (td.className !== (states[t] || '')) bad.push([f, t, td.className]); }
    else if (f === 'quote at') { const ts = parseFloat(td.dataset.ts);
      if (t !== (ts > 0 ? new Date(Math.floor(ts) * 1000).toISOString().slice(11, 19) : '\\u2014')) bad.push([f, t, td.dataset.ts]); }
  })); return bad; }"""
# The canvas cells' hidden copies (what a screen reader reads, and a copy takes) that differ from their value: they
# are brought up to date once a second, so with the marks still they all agree. Empty: all agree.
STALE_COPIES_JS = """(cls) => { const root = (""" + HOST_JS + """)(cls); const grid = root.querySelector('table.oh-grid').ohGrid;
  const bad = []; root.querySelectorAll('tr.oh-row').forEach((tr, i) => tr.querySelectorAll('td').forEach(td => {
    const c = grid.cell(i, td.dataset.field);
    if (c && c.canvas && (td.textContent !== (c.v || '') || !td.querySelector('.oh-sr'))) bad.push([td.dataset.field, c.v, td.textContent]);
  })); return bad; }"""


def rows(page: Any, cls: str = "oh-live-positions") -> dict[str, dict[str, Any]]:
    """The positions (or legs) table as the browser shows it."""
    return dict(page.evaluate(ROWS_JS, cls))


BIG = "spy-big"  # a position far over the risk profile's max_position_pct (10% of net liq by default)


@pytest.fixture(scope="module")
def portfolio() -> Portfolio:
    """12 positions on 3 sim symbols (stocks, single calls, put verticals and iron condors), plus a SPY
    holding worth several times 10% of the portfolio, which breaks the default position-size limit."""
    base = sim_portfolio(SYMBOLS, 12)
    spy = next(p for p in base.positions if isinstance(p, StockPosition) and p.symbol == "SPY")
    big = StockPosition(id=BIG, symbol="SPY", quantity=round(base.cash / spy.cost_basis), cost_basis=spy.cost_basis)
    return Portfolio(cash=base.cash, base_currency=base.base_currency, risk_profile=base.risk_profile,
                     positions=[*base.positions, big])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, portfolio: Portfolio) -> Iterator[Stack]:
    """The real ledger, the real live_stream worker and `oh ui` on a temp OH_HOME holding `portfolio`."""
    from tests.ui.conftest import live_stack

    yield from live_stack(tmp_path_factory, "ui-live", portfolio)


def open_live(page: Any, stack: Stack, query: str = "") -> None:
    """Open the live page, wait for its first fill and mark the window to detect reloads."""
    page.goto(f"{stack.url}/live{query}")
    page.wait_for_selector(".oh-ready", state="attached", timeout=WAIT)
    page.evaluate("() => { window.__ohNoReload = true; }")


def start(page: Any) -> None:
    button = page.locator(".oh-live-start button")
    assert button.is_enabled()
    button.click()


def wait_marked(page: Any, stack: Stack, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Wait until every position in `ids` shows a live mark; return the rows."""
    page.wait_for_function(f"""() => {{ const r = ({ROWS_JS})('oh-live-positions');
        return {json.dumps(ids)}.every(id => r[id] && !['', '—'].includes(r[id].mark) && r[id].quote === 'live'); }}""",
                           timeout=WAIT)
    return rows(page)


class StreamingTab:
    """One tab on the Live page with marks streaming, shared by the tests that read a streaming page (a page load
    is ~2.5 CPU-s of chromium, the streaming after it a fraction of that): opened, started and with BIG marked when
    a test first asks for it, closed before the first later test that does not use it. It keeps the text frames it
    receives, on the Bokeh socket and on the marks channel, and those it sends on the channel (the acknowledgements),
    from the last `record()` on."""

    def __init__(self, live: Stack, chromium: Any) -> None:
        self.live, self.chromium = live, chromium
        self.context: Any = None
        self.tab: Any = None
        self.bokeh: list[str] = []
        self.channel: list[str] = []
        self.sent: list[str] = []

    def _watch(self, ws: Any) -> None:
        def text(payload: Any) -> str:
            return payload if isinstance(payload, str) else ""

        marks = "/oh-live" in ws.url
        ws.on("framereceived", lambda payload: (self.channel if marks else self.bokeh).append(text(payload)))
        if marks:
            ws.on("framesent", lambda payload: self.sent.append(text(payload)))

    def get(self) -> Any:
        """The tab, streaming, with BIG marked (opened now unless it is open)."""
        if self.tab is None:
            self.context = self.chromium.new_context(viewport={"width": 1400, "height": 2000})  # as `page`
            self.tab = self.context.new_page()
            self.tab.on("websocket", self._watch)
            open_live(self.tab, self.live)
        if self.tab.locator('.oh-live-health[data-state="streaming"]').count() == 0:
            start(self.tab)
        wait_marked(self.tab, self.live, [BIG])
        return self.tab

    def record(self) -> tuple[Any, list[str], list[str], list[str]]:
        """The streaming tab and its frames from now on: (tab, Bokeh socket's, channel's received, channel's sent)."""
        tab = self.get()
        for frames in (self.bokeh, self.channel, self.sent):
            frames.clear()
        return tab, self.bokeh, self.channel, self.sent

    def close(self) -> None:
        context, self.context, self.tab = self.context, None, None
        if context is not None:
            context.close()


@pytest.fixture(scope="module")
def streaming_holder(live: Stack, chromium: Any) -> Iterator[StreamingTab]:
    holder = StreamingTab(live, chromium)
    yield holder
    holder.close()


@pytest.fixture
def streaming(streaming_holder: StreamingTab) -> StreamingTab:
    """The module's streaming tab (see `StreamingTab`)."""
    return streaming_holder


@pytest.fixture(autouse=True)
def _streaming_tab_closed_when_unused(request: pytest.FixtureRequest, streaming_holder: StreamingTab) -> None:
    """A test that does not use the streaming tab runs with it closed: an open tab paints every marking."""
    if "streaming" not in request.fixturenames:
        streaming_holder.close()


def test_start_shows_live_marks_that_move_in_place_then_stop_stops_the_streams(
    live: Stack, page: Any, portfolio: Portfolio,
) -> None:
    """Start sends StartLive: every position (stocks, options, structures at their net mark) gets a live
    mark and PnL, the marks move without a reload and without replacing the table, each leg of each
    structure is shown, the streams report connected, fills arrive from trade_updates; Stop stops every
    stream and the page says so."""
    open_live(page, live)
    page.get_by_text("idle: press Start").first.wait_for(timeout=WAIT)
    table = page.evaluate_handle(TABLE_JS, "oh-live-positions")
    page.evaluate("(t) => { t.__ohKeep = true; }", table)
    start(page)
    ids = [p.id for p in portfolio.positions]
    first = wait_marked(page, live, ids)
    structures = [p.id for p in portfolio.positions if isinstance(p, Structure)]
    assert structures and all(first[s]["mark"] and first[s]["pnl"] for s in structures)
    assert all(row["ts"] > 0 for row in first.values())
    # the marks move: some position's mark text changes while the page stays the same page
    page.wait_for_function(f"""() => {{ const r = ({ROWS_JS})('oh-live-positions'); const before = {json.dumps(
        {k: v['mark'] for k, v in first.items()})}; return Object.keys(before).some(id => r[id] && r[id].mark !== before[id]); }}""",
                           timeout=WAIT)
    assert page.evaluate("(t) => t.__ohKeep === true && t.isConnected", table) is True  # patched, not replaced
    for cls in ("oh-live-positions", "oh-live-legs"):  # colours and times moved with the values they belong to
        assert page.evaluate(DISAGREE_JS, cls) == []
    legs = rows(page, "oh-live-legs")
    assert {row for row in legs} >= set(structures)
    for name in ("stocks", "options", "fills"):
        page.locator(f'tr.oh-stream[data-stream="{name}"][data-state="connected"]').wait_for(timeout=WAIT)
    page.locator("text=partial_fill").first.wait_for(timeout=WAIT)  # journaled fills, re-read on TradeUpdated

    page.locator(".oh-live-stop button").click()
    page.locator('.oh-live-health[data-state="idle"]').wait_for(timeout=WAIT)
    for name in ("stocks", "options", "fills"):
        page.locator(f'tr.oh-stream[data-stream="{name}"][data-state="stopped"]').wait_for(timeout=WAIT)
    page.get_by_text("streams stopped").first.wait_for(timeout=WAIT)
    for cls in ("oh-live-positions", "oh-live-legs"):  # the marks still: every hidden copy catches up with its value
        page.wait_for_function(f"(cls) => ({STALE_COPIES_JS})(cls).length === 0", arg=cls, timeout=WAIT)
        assert page.evaluate(DISAGREE_JS, cls) == []
    assert page.evaluate("() => window.__ohNoReload") is True


def test_a_portfolio_with_an_error_keeps_start_disabled_and_says_why(
    live: Stack, page: Any, portfolio: Portfolio,
) -> None:
    """A portfolio file with an error disables Start and the page names the position and field (the CLI's
    words); fixing the file enables Start again without a reload."""
    path = live.home.config / "portfolio.json"
    bad = {"positions": [{"type": "option", "id": "x", "symbol": "AAPL", "expiry": "2030-01-18", "right": "call",
                          "strike": -5, "quantity": 1, "cost_basis": 1.0}]}
    try:
        path.write_text(json.dumps(bad))
        open_live(page, live)
        page.get_by_text("Start is disabled").first.wait_for(timeout=WAIT)
        why = page.get_by_text("strike must be > 0").first
        why.wait_for(timeout=WAIT)
        assert 'positions[0] (id "x")' in why.inner_text()
        assert page.locator(".oh-live-start button").is_disabled()
    finally:
        save(path, portfolio)
    page.locator(".oh-live-start button:not([disabled])").wait_for(timeout=WAIT)
    page.get_by_text("Start is disabled").first.wait_for(state="detached", timeout=WAIT)
    assert page.evaluate("() => window.__ohNoReload") is True


def test_killing_live_stream_shows_it_not_answering_and_quotes_turn_stale_by_the_clock(
    live: Stack, page: Any, portfolio: Portfolio,
) -> None:
    """SIGKILL live_stream mid-stream: its status stops arriving, so the page says "live_stream not
    answering" and, since quote age is measured against the clock (not the newest event), every mark
    turns stale with a banner. Restarting the worker brings the health back."""
    open_live(page, live, "?stale=3")
    start(page)
    wait_marked(page, live, [p.id for p in portfolio.positions])
    worker = live.workers[0]
    assert worker.proc is not None
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)
    try:
        page.get_by_text("live_stream not answering").first.wait_for(timeout=WAIT)
        page.locator(".oh-live-stale").first.wait_for(timeout=WAIT)
        page.wait_for_function(f"""() => {{ const r = ({ROWS_JS})('oh-live-positions');
            return Object.keys(r).length > 0 && Object.values(r).every(x => x.quote === 'stale'); }}""", timeout=WAIT)
        assert "stale quote" in rows(page)[portfolio.positions[0].id]["warnings"]
    finally:
        live.workers[0] = Service(live.home, "live_stream").start()
        wait_for_heartbeat(live.home, "live_stream", timeout=60)
    page.locator(".oh-live-health").first.wait_for(timeout=WAIT)  # answering again (idle: nothing resumes)
    assert page.evaluate("() => window.__ohNoReload") is True


def test_every_live_session_shares_the_one_tick_reader(live: Stack, chromium: Any) -> None:
    """Several tabs on the live page read the server's one tick subscriber: it is started once per
    `oh ui` process (its log says so once), never once per session."""
    tabs = []
    try:
        for _ in range(3):
            tab = chromium.new_page()
            open_live(tab, live)
            tab.get_by_text("Stream health").first.wait_for(timeout=WAIT)
            tabs.append(tab)
    finally:
        for tab in tabs:
            tab.close()
    log = (live.home.logs / "ui.log").read_text()
    assert log.count("tick feed started") == 1 and log.count("live marker started") == 1


# ---------------------------------------------------------------- several tabs, one marking, only changed cells
MARKINGS_JS = """() => {
  const seen = new Set(); window.__ohMarkings = seen;
  const scan = () => { const deep = (root) => { const el = root.querySelector('.oh-live-summary'); if (el) return el;
      for (const e of root.querySelectorAll('*')) { if (e.shadowRoot) { const f = deep(e.shadowRoot); if (f) return f; } }
      return null; };
    const el = deep(document); if (el) seen.add(el.dataset.marking); };
  setInterval(scan, 20); }"""


SUMMARY_JS = """() => { const deep = (root) => { const el = root.querySelector('.oh-live-summary'); if (el) return el;
    for (const e of root.querySelectorAll('*')) { if (e.shadowRoot) { const f = deep(e.shadowRoot); if (f) return f; } }
    return null; }; return deep(document); }"""


def frames_of(tab: Any) -> list[str]:
    """Every websocket text frame the tab receives from now on (the Bokeh protocol's JSON)."""
    frames: list[str] = []
    tab.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(
        payload if isinstance(payload, str) else "")))
    return frames


def test_several_tabs_show_one_marking_and_receive_only_changed_cells(
    live: Stack, chromium: Any, portfolio: Portfolio,
) -> None:
    """Three tabs on the live page while quotes stream: each shows every position marked and moving; they
    show the same markings (the server marks once per batch of ticks for all of them, not once per tab),
    and what reaches each tab after its first rows is patches of the changed cells only, never the whole
    rows list again, with the summary cards inside the same messages (one message per update), written into the
    cards' own elements and text nodes (not made anew)."""
    ids = [p.id for p in portfolio.positions]
    tabs, frames = [], []
    try:
        for _ in range(3):
            tab = chromium.new_page()
            frames.append(frames_of(tab))
            open_live(tab, live)
            tabs.append(tab)
        start(tabs[0])
        for tab in tabs:
            wait_marked(tab, live, ids)
        for tab, seen in zip(tabs, frames, strict=True):
            seen.clear()
            tab.evaluate(MARKINGS_JS)
        for tab in tabs:  # every tab sees the marks move
            before = {k: v["mark"] for k, v in rows(tab).items()}
            tab.wait_for_function(f"""() => {{ const r = ({ROWS_JS})('oh-live-positions'); const b = {json.dumps(before)};
                return Object.keys(b).some(id => r[id] && r[id].mark !== b[id]); }}""", timeout=WAIT)
        for tab in tabs:
            tab.wait_for_function("() => window.__ohMarkings.size >= 5", timeout=WAIT)
        # A tab that is slow to ack skips to the newest marking (one message in flight per table), so under
        # load two tabs can miss each other's first few; wait until some marking has reached all three.
        deadline = time.monotonic() + WAIT / 1000
        while not (common := set.intersection(*[set(tab.evaluate("() => [...window.__ohMarkings]")) for tab in tabs])):
            assert time.monotonic() < deadline, "each tab was marked on its own"
            tabs[0].wait_for_timeout(200)
        assert common
        # The summary cards change in place: the next marking's cards are written into the same elements and text
        # nodes (only what changed), never as new nodes (a new card box is laid out anew, and so is what follows it).
        tabs[0].evaluate(f"""() => {{ const box = ({SUMMARY_JS})();
            window.__ohCards = {{box, value: box.querySelector('.oh-card-v').firstChild, text: box.textContent,
                                marking: box.dataset.marking}}; }}""")
        tabs[0].wait_for_function(f"""() => {{ const c = window.__ohCards, box = ({SUMMARY_JS})();
            return box.dataset.marking !== c.marking && box.textContent !== c.text; }}""", timeout=WAIT)
        assert tabs[0].evaluate(f"""() => {{ const c = window.__ohCards;
            return c.box === ({SUMMARY_JS})() && c.value.isConnected; }}"""), "the summary cards were made anew"
        for seen in frames:
            patches = [f for f in seen if '"cells"' in f]
            assert patches, "no cell patches reached a tab"
            assert not [f for f in seen if '"rows"' in f], "a tab got the whole rows list again"
            assert not [f for f in seen if "oh-live-summary" in f and '"cells"' not in f], \
                "the summary cards travelled in a message of their own, not with the positions' cells"
    finally:
        for tab in tabs:
            tab.close()


# ---------------------------------------------------------------- trader units, words, limits
def expiry_text(day: date) -> str:
    """An expiry as brokers print it: `18 Dec 26`."""
    return f"{day.day} {day:%b %y}"


def strike_text(strike: float) -> str:
    """A strike without trailing zeros: `250`, `252.5`."""
    return f"{strike:,.2f}".rstrip("0").rstrip(".")


def _option_words(p: OptionPosition) -> str:
    return f"{p.symbol} {expiry_text(p.expiry)} {strike_text(p.strike)} {p.right}"


def test_options_show_expiry_strike_and_right_and_numbers_read_in_trader_units(
    live: Stack, streaming: StreamingTab, portfolio: Portfolio,
) -> None:
    """Each single-leg option names its underlying, expiry, strike and right (not "SPY +1, 25 DTE"); each leg
    of a structure too; money has a $ and separators, PnL a sign, percentages a %, counts no decimals."""
    page = streaming.get()
    shown = wait_marked(page, live, [p.id for p in portfolio.positions])
    options = [p for p in portfolio.positions if isinstance(p, OptionPosition)]
    assert options
    for option in options:
        assert shown[option.id]["contract"] == _option_words(option)
        assert re.fullmatch(r"[+-]\d+", shown[option.id]["qty"]) and re.fullmatch(r"\d+", shown[option.id]["dte"])
    money, signed = r"-?\$\d{1,3}(,\d{3})*\.\d\d", r"([+-]\$\d{1,3}(,\d{3})*\.\d\d|\$0\.00)"
    for row in shown.values():
        assert re.fullmatch(money, row["value"]), row
        assert re.fullmatch(signed, row["pnl"]), row
        assert re.fullmatch(r"[+-]?\d+\.\d%", row["pnlPct"]), row
    big = shown[BIG]["value"].replace("$", "").replace(",", "")
    assert float(big) >= 1000 and "," in shown[BIG]["value"]
    legs = rows(page, "oh-live-legs")
    structure = next(p for p in portfolio.positions if isinstance(p, Structure))
    leg_words = [f"{structure.symbol} {expiry_text(leg.expiry)} {strike_text(leg.strike)} {leg.right}"
                 for leg in structure.legs]
    shown_legs = page.evaluate(f"""() => {{ const root = ({HOST_JS})('oh-live-legs');
        return [...root.querySelectorAll('tr.oh-row')].filter(r => r.dataset.key === {json.dumps(structure.id)})
          .map(r => r.querySelector('td[data-field="leg"]').textContent.trim()); }}""")
    assert shown_legs == leg_words and structure.id in legs


def test_a_position_over_the_risk_limit_is_flagged_with_the_limit_in_words(
    streaming: StreamingTab, portfolio: Portfolio,
) -> None:
    """The portfolio's risk profile is judged on the live marks: the position far over max_position_pct is
    named in a banner with its share of net liq, the amounts and the limit; the others are not."""
    page = streaming.get()  # streaming, BIG marked
    page.locator(".oh-live-limits").first.wait_for(timeout=WAIT)
    text = page.evaluate(f"() => ({HOST_JS})('oh-live-limits').textContent")
    limit = f"{portfolio.risk_profile.max_position_pct:.1f}%"
    assert BIG in text and "of net liq" in text and f"the limit is {limit} (max_position_pct)" in text
    assert "Position size" in text and "$" in text
    others = [p.id for p in portfolio.positions if p.id != BIG and isinstance(p, StockPosition)]
    assert not [p for p in others if f"{p} is " in text]


def test_a_live_page_load_logs_no_bokeh_validation_warning(live: Stack, streaming: StreamingTab) -> None:
    """Bokeh validates each session's document as it is sent; a model it finds wrong (the command line was a
    'fixed' pane without a width: W-1005 on every load) would put a warning line in ui.log per page load. The
    module's streaming tab is a page load of this `oh ui` (as is every earlier test's)."""
    streaming.get().get_by_text("Stream health").first.wait_for(timeout=WAIT)
    logs = sorted(live.home.logs.glob("ui*.log"))  # ui.log, and the process's own output (where Bokeh's logger writes)
    assert logs
    warnings = [line for path in logs for line in path.read_text().splitlines() if "W-1005" in line or
                "bokeh.core.validation" in line]
    assert warnings == []


LIMITS_WATCH_JS = """() => { const host = (""" + HOST_JS + """)('oh-live-limits'); window.__ohLimits = [];
  const seen = () => { const text = host.textContent; if (window.__ohLimits[window.__ohLimits.length - 1] !== text)
    window.__ohLimits.push(text); };
  seen(); new MutationObserver(seen).observe(host, {childList: true, subtree: true, characterData: true}); }"""


def test_the_limits_banner_moves_with_the_marks_without_a_change_to_the_pages_bokeh_document(
    streaming: StreamingTab,
) -> None:
    """The limits banner's amounts move with every marking. They ride in the marks channel's frames (like the
    summary cards), so while marks stream the page's Bokeh socket never carries the banner's text: before,
    the slow check replaced a Markdown pane's text twice a second, a Bokeh document change that re-rendered
    the pane on every tab while the cells were being written. The banner shows newer amounts several times
    meanwhile, all of them arrived on the marks channel."""
    tab = streaming.get()
    tab.locator(".oh-live-limits").first.wait_for(timeout=WAIT)
    tab, bokeh, channel, _ = streaming.record()
    tab.evaluate(LIMITS_WATCH_JS)
    tab.wait_for_function("() => window.__ohLimits.length >= 4", timeout=WAIT)  # three changes of its text
    shown = tab.evaluate("() => window.__ohLimits")
    assert all(BIG in text and "of net liq" in text for text in shown)
    assert not [f for f in bokeh if "Risk limits" in f or "of net liq" in f], \
        "the limits banner's text travelled as a Bokeh document change"
    assert [f for f in channel if '"limits"' in f and "of net liq" in f], "no limits banner in the channel's frames"


# CSS animations and anything that repeats for ever (a spinner's); not a CSS transition, which runs once for
# 0.15 s when a control changes state (the Stop button enabled, a badge recoloured) and then stops.
ANIMATIONS_JS = """() => { const out = []; const walk = (root) => {
  for (const a of root.getAnimations()) { const timing = a.effect ? a.effect.getComputedTiming() : {};
    if (a.animationName || timing.iterations === Infinity) out.push(a.animationName || a.constructor.name); }
  for (const e of root.querySelectorAll('*')) { if (e.shadowRoot) walk(e.shadowRoot); } }; walk(document); return out; }"""


def test_while_marks_stream_the_page_runs_no_animation_and_no_busy_spinner(streaming: StreamingTab) -> None:
    """While marks stream, nothing on the Live page keeps animating (a CSS animation or an endless one; a
    control's one-off transition when it changes state is not) and its Bokeh socket carries no busy spinner.
    Before, Panel's header spinner followed the server's one busy flag (true while any session runs a
    callback): it was switched on and off many times a second in every tab, each a Bokeh change, and while
    on, its CSS animation made the browser composite and draw the tab at 60 frames a second (about half a
    core for three tabs in bench/live_browser, against a few draws a second for the marks themselves)."""
    tab, bokeh, channel, _ = streaming.record()
    deadline = time.monotonic() + WAIT / 1000
    for _ in range(20):  # twenty frames of marks, each written and painted, and the slow checks meanwhile
        count = len(channel)
        while len(channel) == count:
            assert time.monotonic() < deadline, "the marks stopped coming"
            tab.wait_for_timeout(50)
        assert tab.evaluate(ANIMATIONS_JS) == [], "something keeps animating on the Live page while marks stream"
    assert not [f for f in bokeh if '"spin"' in f or "loader" in f], "the busy spinner travelled on the Bokeh socket"
    assert tab.locator(".pn-busy-container .loader").count() == 0


HOLD_FRAMES_JS = """() => { window.__ohHeld = []; window.__ohRaf = window.requestAnimationFrame;
  window.requestAnimationFrame = (cb) => { window.__ohHeld.push(cb); return 0; }; }"""
RELEASE_FRAMES_JS = """() => { window.requestAnimationFrame = window.__ohRaf; const held = window.__ohHeld; window.__ohHeld = [];
  held.forEach(cb => cb(performance.now())); return held.length; }"""


def test_a_tab_acknowledges_a_frame_only_after_the_browser_has_painted_it(streaming: StreamingTab) -> None:
    """The tab writes a frame's cells at once but acknowledges the frame only after its next animation frame
    (laid out and painted), so the server's next marking is made when the tab can show it instead of
    arriving while the last one is still being laid out. With the page's animation frames held, the tab
    writes what it gets and sends no acknowledgement, so no stream of frames follows (one more per the
    channel's ACK_TIMEOUT at most); released, it acknowledges and the frames flow again. Before, it
    acknowledged as it wrote, and the frames went on while the browser could not paint them."""
    tab, _, received, acks = streaming.record()
    try:
        tab.evaluate(HOLD_FRAMES_JS)
        tab.wait_for_function("() => window.__ohHeld.length > 0", timeout=WAIT)  # a frame came and was written
        received.clear()
        acks.clear()
        tab.wait_for_timeout(2 * 1000 * ACK_TIMEOUT)  # two of the channel's timeouts: frames every few ms before
        # (one acknowledgement may have been on its way from before the hold, and the frame it let go)
        assert len([a for a in acks if '"ack"' in a]) <= 1, acks
        assert len(received) <= 3, f"{len(received)} frames while the tab could not paint"
        assert tab.evaluate(RELEASE_FRAMES_JS) > 0
        deadline = time.monotonic() + WAIT / 1000
        while not ([a for a in acks if '"ack"' in a] and len(received) >= 5):
            assert time.monotonic() < deadline, "the frames did not flow again once the tab painted"
            tab.wait_for_timeout(100)
    except BaseException:
        streaming.close()  # its animation frames may be held: the next test that asks opens a new tab
        raise


# ---------------------------------------------------------------- layout at a phone's and a desktop's width
LAYOUT_JS = """() => {
  const deep = (root, out) => { for (const e of root.querySelectorAll('*')) { out.push(e); if (e.shadowRoot) deep(e.shadowRoot, out); }
    return out; };
  const main = document.getElementById('main'), all = deep(main, []);
  const box = e => { const r = e.getBoundingClientRect(); const cs = getComputedStyle(e);
    return (r.width >= 1 && r.height >= 1 && cs.visibility !== 'hidden' && cs.display !== 'none') ? r : null; };
  const name = e => (e.className && e.className.baseVal === undefined ? `${e.tagName}.${String(e.className).split(' ').join('.')}` : e.tagName)
    + (e.textContent ? ` "${e.textContent.trim().slice(0, 30)}"` : '');
  const blocks = all.filter(e => e.matches('button, .oh-live-command, .oh-card, .alert, .oh-scroll, .oh-h, h2, .oh-more'))
    .map(e => [e, box(e)]).filter(([, r]) => r);
  const contains = (a, b) => { for (let n = b; n; n = n.parentNode || n.host) { if (n === a) return true; } return false; };
  const overlaps = [];
  for (let i = 0; i < blocks.length; i++) for (let j = i + 1; j < blocks.length; j++) {
    const [a, ra] = blocks[i], [b, rb] = blocks[j];
    if (contains(a, b) || contains(b, a)) continue;
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left), h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > 1 && h > 1) overlaps.push(`${name(a)} / ${name(b)}`);
  }
  const outside = blocks.filter(([, r]) => r.left < -1 || r.right > window.innerWidth + 1).map(([e]) => name(e));
  const overflowing = blocks.filter(([e]) => !e.matches('.oh-scroll') && e.scrollWidth > e.clientWidth + 1).map(([e]) => name(e));
  const scrollers = all.filter(e => e.matches('.oh-scroll') && box(e)).map(e => ({scrolls: e.scrollWidth > e.clientWidth + 1,
    table: e.querySelector('table') ? e.querySelector('table').className : ''}));
  const sidebar = document.getElementById('sidebar'), sb = sidebar && box(sidebar), mb = main.getBoundingClientRect();
  const host = deep(document, []).find(e => e.matches('.oh-live-stop'));
  const stop = host && (host.shadowRoot ? host.shadowRoot.querySelector('button') : host.querySelector('button'));
  const sr = stop ? stop.getBoundingClientRect() : null;
  return {overlaps, outside, overflowing, scrollers,
    pageScroll: document.documentElement.scrollWidth > window.innerWidth || main.scrollWidth > main.clientWidth + 1,
    sidebarOverMain: !!(sb && sb.right > mb.left + 1 && sb.left < mb.right - 1),
    stopOnScreen: !!sr && sr.left >= 0 && sr.right <= window.innerWidth && sr.top >= 0 && sr.bottom <= window.innerHeight};
}"""


@pytest.mark.parametrize(("width", "height", "shot"), [(390, 844, "live-390.png"), (1440, 900, "live.png")])
def test_layout_at_a_phones_and_a_desktops_width(
    live: Stack, chromium: Any, portfolio: Portfolio, screenshots: Path | None, width: int, height: int, shot: str,
) -> None:
    """With marks streaming: no horizontal page scroll, no block (buttons, cards, banners, headings, tables)
    over another, none cut at the screen's edge, no text running out of its box, the sidebar never over the
    page. On a phone (390 px) the Stop button is on screen without scrolling and the wide tables scroll
    inside their card; at 1440 px every table fits whole."""
    context = chromium.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    try:
        open_live(tab, live)
        if tab.locator('.oh-live-health[data-state="streaming"]').count() == 0:
            start(tab)
        wait_marked(tab, live, [p.id for p in portfolio.positions])
        tab.locator(".oh-live-limits").first.wait_for(timeout=WAIT)
        tab.locator('.oh-live-health[data-state="streaming"]').wait_for(timeout=WAIT)
        found = tab.evaluate(LAYOUT_JS)
        assert found["overlaps"] == [] and found["outside"] == [] and found["overflowing"] == [], found
        assert not found["pageScroll"] and not found["sidebarOverMain"], found
        grids = [s for s in found["scrollers"] if "oh-grid" in s["table"]]
        assert len(grids) >= 3, found  # positions, legs, stream health (and fills once there are some)
        if width < 500:
            assert found["stopOnScreen"], found
            assert any(s["scrolls"] for s in grids), found  # the positions table is wider than a phone
        else:
            assert not any(s["scrolls"] for s in grids), found
        if screenshots is not None:
            tall = tab.evaluate("() => document.getElementById('main').scrollHeight + "
                                "document.getElementById('header').offsetHeight")
            tab.set_viewport_size({"width": width, "height": int(tall) + 20})
            wait_marked(tab, live, [p.id for p in portfolio.positions])
            tab.screenshot(path=str(screenshots / shot), full_page=True)
    finally:
        context.close()
