"""The live portfolio page in a real browser: Debian's chromium (playwright) against a real `oh ui`, the
real ledger and the real live_stream worker (sim provider) in a temp OH_HOME. Nothing is mocked.
Waits are for conditions (generous timeouts on a shared machine), never for time."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from bus.home import Home
from devtools.browser import Stack
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.portfolio_file import save
from oh.adapters.sim.stream import sim_portfolio
from oh.domain.portfolio import Portfolio, Structure

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT = 60_000  # ms
SYMBOLS = ["AAPL", "MSFT", "SPY"]

# One live table: Panel puts the css class on the widget's host, the table in its shadow root.
HOST_JS = """(cls) => { const find = (root) => { const h = root.querySelector(`.${cls}`); if (h) return h;
  for (const e of root.querySelectorAll('*')) { if (e.shadowRoot) { const f = find(e.shadowRoot); if (f) return f; } }
  return null; }; const host = find(document); return host && host.shadowRoot ? host.shadowRoot : host; }"""
# Row cells of a table: position id -> {field: text, ts: the data-ts of its newest quote}.
ROWS_JS = """(cls) => { const out = {}; const root = (""" + HOST_JS + """)(cls); if (!root) return out;
  root.querySelectorAll('tr.oh-row').forEach(row => {
    const cell = f => row.querySelector(`td[data-field="${f}"]`);
    const id = cell('position'); if (!id) return;
    const text = f => cell(f) ? cell(f).textContent.trim() : '';
    const ts = row.querySelector('[data-ts]');
    out[id.textContent.trim()] = {mark: text('mark'), pnl: text('pnl'), quote: text('quote'),
      warnings: text('warnings'), leg: text('leg'), ts: ts ? parseFloat(ts.dataset.ts) : 0};
  });
  return out; }"""
TABLE_JS = """(cls) => (""" + HOST_JS + """)(cls).querySelector('table.oh-grid')"""


def rows(page: Any, cls: str = "oh-live-positions") -> dict[str, dict[str, Any]]:
    """The positions (or legs) table as the browser shows it."""
    return dict(page.evaluate(ROWS_JS, cls))


@pytest.fixture(scope="module")
def portfolio() -> Portfolio:
    """12 positions on 3 sim symbols: stocks, single calls, put verticals and iron condors."""
    return sim_portfolio(SYMBOLS, 12)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, portfolio: Portfolio) -> Iterator[Stack]:
    """The real ledger, the real live_stream worker and `oh ui` on a temp OH_HOME holding `portfolio`."""
    from tests.ui.conftest import _needs_browser

    _needs_browser()
    home = Home(tmp_path_factory.mktemp("ui-live") / "oh_home").ensure()
    save(home.config / "portfolio.json", portfolio)
    stack = Stack(home)
    try:
        stack.start_services(("live_stream",))
        stack.start_ui()
        yield stack
    finally:
        stack.stop()


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
        return {json.dumps(ids)}.every(id => r[id] && r[id].mark !== '' && r[id].quote === 'live'); }}""",
                           timeout=WAIT)
    return rows(page)


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
    assert (live.home.logs / "ui.log").read_text().count("tick feed started") == 1
