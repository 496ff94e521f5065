"""The dashboard in a real browser: Debian's chromium (playwright) against a real `oh ui` process
serving a populated OH_HOME through the real ledger. Waits are for conditions, never for time.

Tests that read a page share the module's tab (`tabs`, tests/ui/conftest.py) and come one after the other:
Health is loaded once for every test that reads it, as is the explorer. What a first load fetches gets a fresh
browser context of its own."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from bus.producer import Producer
from contracts import AssetFailed, RunFinished, RunStarted, utc_now
from devtools.browser import Stack, emitted_run_id, run_oh
from tests.ui.conftest import Tabs

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT = 60_000  # ms: generous, the machine is shared
POLL = 50  # ms between two checks of a waited-for page function (playwright's default is every frame)
BANNER = "Not financial advice"

# slug -> (minimum Bokeh canvases, minimum tables, texts that must show); titles and labels in words (oh.domain.units)
PAGES: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "health": (2, 0, ("Runs (live)", "Latest run per job", "Recurring failures", "UnknownSymbol", "Freshness",
                      "Failed checks", "Gap backfill plan", "oh emit ingest-candles --symbols QQQ", "Services")),
    "portfolio": (2, 0, ("Net liq", "spy-vertical", "aapl-", "Greeks", "Stress PnL")),
    "symbol": (4, 1, ("latest chain", "Daily candles and volume", "IV smile", "Open interest by strike")),
    "flow": (1, 2, ("Building vs unwinding", "building", "Top contracts")),
    "derived": (2, 1, ("ATM IV over time", "IV rank")),
    "explorer": (0, 3, ("candles_daily", "option_snapshots", "meta", "Run query")),
    "live": (0, 0, ("Live portfolio",)),  # the live page has its own tests (test_live_page.py)
}


def open_page(page: Any, stack: Stack, path: str) -> None:
    """Go to a page and wait until its first fill is done (the `.oh-ready` marker)."""
    page.goto(f"{stack.url}{path}")
    page.wait_for_selector(".oh-ready", state="attached", timeout=WAIT)


DEEP_TEXT = """e => { const text = n => (n.shadowRoot ? text(n.shadowRoot) : '') + Array.from(n.childNodes).map(
    c => c.nodeType === 3 ? c.textContent : (c.nodeType === 1 && !['STYLE', 'SCRIPT'].includes(c.tagName) ? text(c) : '')
    ).join(' '); return text(e); }"""


def deep_text(locator: Any) -> str:
    """The text of an element including its shadow roots (Panel renders each pane in one)."""
    return " ".join(str(locator.evaluate(DEEP_TEXT)).split())


def body_text(page: Any) -> str:
    return deep_text(page.locator("body"))


@pytest.mark.parametrize("slug", [slug for slug in PAGES if slug != "health"] + ["health"])
def test_every_page_loads_with_sim_data(populated: Stack, tabs: Tabs, slug: str, screenshots: Path | None) -> None:
    """Each page paints its banner, charts (Bokeh canvases) and tables from the ledger, and never a traceback,
    and carries no busy spinner (Panel's follows one flag for the whole server: it spun in every tab whenever
    any tab ran a callback, its animation drawing the tab at 60 frames a second; panel_app/components.shell).
    (Health comes last: the tests below read it in the same tab.)"""
    canvases, tables, texts = PAGES[slug]
    page = tabs.show(f"{populated.url}/{slug}")
    assert page.get_by_text(BANNER).first.is_visible()
    for text in texts:
        page.get_by_text(text).first.wait_for(state="attached", timeout=WAIT)
    if canvases:
        page.wait_for_function(f"document.querySelectorAll('*').length && {canvases} <= "
                               "(function count(root){let n=root.querySelectorAll('canvas').length;"
                               "root.querySelectorAll('*').forEach(e=>{if(e.shadowRoot)n+=count(e.shadowRoot)});return n})(document)",
                               timeout=WAIT, polling=POLL)
    assert page.locator("table.oh-table").count() >= tables
    text = body_text(page)
    assert "Traceback" not in text and "could not be loaded" not in text
    assert page.locator(f'.oh-nav a.active[data-page="{slug}"]').count() == 1
    assert page.locator(".pn-busy-container .loader").count() == 0, "a busy spinner in the header"
    if screenshots is not None and slug == "live":  # the other pages: test_dashboard_layout.py, at 390 and 1440 px
        page.wait_for_timeout(1500)  # let Bokeh finish drawing before the picture (not an assertion)
        page.screenshot(path=str(screenshots / f"{slug}.png"), full_page=True)


STYLE_COPIES = """() => { let copies = 0, links = new Set(); for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (m.url !== undefined && String(m.url).includes('oh-static/')) links.add(m.id);
    for (const s of (m.stylesheets || [])) if (typeof s === 'string' && s.includes('table.oh-table')) copies++; }
    return [copies, links.size]; }"""
HEADER_BACKGROUNDS = """() => { const out = []; const walk = root => { for (const e of root.querySelectorAll('*')) if (e.shadowRoot)
    walk(e.shadowRoot); for (const th of root.querySelectorAll('table.oh-table th')) out.push(getComputedStyle(th).backgroundColor); };
    walk(document); return out; }"""


def test_pages_fetch_only_what_they_use_and_one_cached_stylesheet(populated: Stack, page: Any) -> None:
    """A page fetches Bokeh's and Panel's bundles but no script it does not use (Bokeh's WebGL and MathJax; the
    ES-module shim, which only the Live page's components need); the
    dashboard's CSS is one file at a versioned URL the browser may keep for good, one
    stylesheet model shared by every pane of the session instead of a copy of the CSS in each, and it is applied
    inside the panes' shadow DOMs (every table header gets its grey)."""
    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    open_page(page, populated, "/health")
    urls = [r.url for r in responses]
    assert any("bokeh.min.js" in u for u in urls) and any("panel.min.js" in u for u in urls)
    for unused in ("bokeh-gl", "bokeh-mathjax", "es-module-shims"):
        assert not [u for u in urls if unused in u], unused
    sheets = [r for r in responses if re.search(r"/oh-static/oh\.css\?v=\w+$", r.url)]
    assert len(sheets) == 1, [r.url for r in sheets]
    age = re.search(r"max-age=(\d+)", sheets[0].headers.get("cache-control", ""))
    assert age is not None and int(age.group(1)) >= 365 * 86400
    assert page.evaluate(STYLE_COPIES) == [0, 1]
    page.get_by_text("Latest run per job").first.wait_for(state="attached", timeout=WAIT)
    backgrounds = page.evaluate(HEADER_BACKGROUNDS)
    assert backgrounds and set(backgrounds) == {"rgb(245, 247, 250)"}


def test_the_ready_marker_comes_with_the_last_section(populated: Stack, page: Any) -> None:
    """The first fill's `.oh-ready` marker reaches the browser in the same message as the page's last section
    (the Data explorer's preview), not in a message of its own that the browser would apply after it. The
    browser sends no browser information (dark mode, pixel ratio, language, time zone...: Panel's BrowserInfo,
    which nothing reads, was 7 messages to the server and 7 answers before each page's first fill)."""
    frames: list[str] = []
    sent: list[str] = []

    def watch(ws: Any) -> None:
        ws.on("framereceived", lambda data: frames.append(data if isinstance(data, str) else ""))
        ws.on("framesent", lambda data: sent.append(data if isinstance(data, str) else ""))

    page.on("websocket", watch)
    open_page(page, populated, "/explorer")
    with_marker = [f for f in frames if "oh-ready" in f]
    assert len(with_marker) == 1, len(with_marker)
    assert "Preview of main.candles_daily" in with_marker[0]
    assert any("PULL-DOC-REQ" in f for f in sent)  # what the browser sends is seen
    assert not [f for f in sent if '"attr":"device_pixel_ratio"' in f or '"attr":"timezone"' in f], sent


def test_a_page_says_the_browser_has_its_files_for_the_next_page(populated: Stack, tabs: Tabs) -> None:
    """Every page sets the files cookie once its scripts ran (panel_app/components.FILES_COOKIE): `oh ui` starts the
    next page's first fill at once for such a browser, and holds a first visit's fill back while its files are sent."""
    from panel_app.components import FILES_COOKIE

    page = tabs.show(f"{populated.url}/flow")
    assert f"{FILES_COOKIE}=1" in page.evaluate("() => document.cookie").split("; ")


def test_stale_data_shows_in_red(populated: Stack, tabs: Tabs) -> None:
    """QQQ stopped a week early: its freshness row is stale (red) and the planner offers the command."""
    page = tabs.show(f"{populated.url}/health")
    row = page.locator("tr.oh-stale-row", has_text="QQQ").first
    row.wait_for(timeout=WAIT)
    assert "rgb(198, 40, 40)" in row.locator("td").first.evaluate("e => getComputedStyle(e).color")
    assert page.locator("tr.oh-fresh-row", has_text="AAPL").count() >= 1


def _watch_statuses(page: Any) -> None:
    """Record every status each run row shows, and mark the page to detect reloads. A MutationObserver on the
    document and on every shadow root (Panel renders each pane in one; roots that appear later are observed
    from the scan after the change that added them) re-reads the rows after each change: every state the rows
    are in between two changes is seen, with no polling. Installed once per page; later calls only re-mark."""
    page.evaluate("""() => {
        window.__ohNoReload = true;
        if (window.__ohStatuses) return;
        window.__ohStatuses = {};
        const seen = (root) => root.querySelectorAll('tr.oh-run').forEach(tr => {
            const id = tr.dataset.runId, st = tr.dataset.status;
            (window.__ohStatuses[id] = window.__ohStatuses[id] || []);
            if (!window.__ohStatuses[id].includes(st)) window.__ohStatuses[id].push(st);
        });
        const observed = new WeakSet();
        const observer = new MutationObserver(() => scan());
        const scan = () => { const walk = (root) => {
            if (!observed.has(root)) {
                observed.add(root);
                observer.observe(root, {subtree: true, childList: true, attributes: true, characterData: true});
            }
            seen(root);
            root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot); }); }; walk(document); };
        scan();
    }""")


def _statuses(page: Any, run_id: str) -> list[str]:
    return list(page.evaluate(f"() => window.__ohStatuses['{run_id}'] || []"))


def test_health_shows_a_new_run_appear_and_finish_without_reload(populated: Stack, tabs: Tabs) -> None:
    """`oh emit ingest-candles` (no --wait): the run's row appears and then shows success, no reload."""
    page = tabs.show(f"{populated.url}/health")
    _watch_statuses(page)
    symbols = ",".join(f"S{i:04d}" for i in range(40))
    result = run_oh(populated.home, "emit", "ingest-candles", "--symbols", symbols, "--start", "2020-01-02",
                    "--end", "2024-12-31")
    run_id = emitted_run_id(result)
    page.locator(f'tr.oh-run[data-run-id="{run_id}"]').wait_for(timeout=WAIT)
    page.locator(f'tr.oh-run[data-run-id="{run_id}"][data-status="success"]').wait_for(timeout=WAIT)
    assert page.evaluate("() => window.__ohNoReload") is True
    assert _statuses(page, run_id)[-1] == "success"
    assert "40 done" in deep_text(page.locator(f'tr.oh-run[data-run-id="{run_id}"]'))


def test_health_shows_start_progress_and_failure_live(populated: Stack, tabs: Tabs) -> None:
    """Events sent the way a worker sends them: started, then a failed partition, then failed, each shown
    live; the recurring failures table picks the failure up without a reload."""
    page = tabs.show(f"{populated.url}/health")
    _watch_statuses(page)
    producer = Producer(populated.home)
    run_id = f"ui-live-{os.getpid()}"
    start = utc_now()
    try:
        producer.send(RunStarted(run_id=run_id, job_name="ingest_candles", provider="sim", started_at=start))
        producer.flush(30)
        page.locator(f'tr.oh-run[data-run-id="{run_id}"][data-status="started"]').wait_for(timeout=WAIT)
        producer.send(AssetFailed(run_id=run_id, asset_key="candles_daily", partition_key="NOPE",
                                  error_type="UnknownSymbol", error_message="no such symbol NOPE",
                                  started_at=start, ended_at=utc_now()))
        producer.flush(30)
        page.locator(f'tr.oh-run[data-run-id="{run_id}"]', has_text="1 failed").wait_for(timeout=WAIT)
        producer.send(RunFinished(run_id=run_id, status="failed", ended_at=utc_now(), duration_ms=5,
                                  error_type="BrowserTestFailure", error_message="1 of 1 symbols failed: NOPE",
                                  error_stack_hash="browser-test"))
        producer.flush(30)
    finally:
        producer.close()
    page.locator(f'tr.oh-run[data-run-id="{run_id}"][data-status="failed"]').wait_for(timeout=WAIT)
    # its error on the line under it, across the board
    error_line = page.locator(f'tr.oh-run[data-run-id="{run_id}"] + tr.oh-detail')
    assert deep_text(error_line).strip() == "1 of 1 symbols failed: NOPE"
    page.get_by_text("BrowserTestFailure").first.wait_for(timeout=WAIT)  # the failure groups re-read
    assert _statuses(page, run_id) == ["started", "failed"]
    assert page.evaluate("() => window.__ohNoReload") is True


# How often a root is laid out while sections' children are replaced in place, as a filled section's patch does:
# a section alone (a root column), and two sections side by side (one root holding both) changed together.
LAYOUTS_PER_UPDATE = """async () => {
  const columns = view => (view.child_views || []).filter(child => child.model.type === 'panel.models.layout.Column');
  const counted = async (root, updated) => {
    let layouts = 0;
    root.compute_layout = function (...args) { layouts++; return Object.getPrototypeOf(this).compute_layout.apply(this, args); };
    try { await Promise.all(updated.map(view => view.update_children())); } finally { delete root.compute_layout; }
    return [layouts, root.has_finished(), updated.every(view => view.child_views.every(child => child.el.isConnected))];
  };
  const alone = Bokeh.index.roots.find(v => v.model.type === 'panel.models.layout.Column' && v.child_views.length > 1);
  const pair = Bokeh.index.roots.find(v => columns(v).length === 2);
  return [await counted(alone, [alone]), await counted(pair, columns(pair))];
}"""


def test_a_section_is_laid_out_once_when_its_content_changes(populated: Stack, tabs: Tabs) -> None:
    """When a section's content changes, its root is laid out (every view's size read back, every plot in it
    laid out and painted) once, not twice: Bokeh's and Panel's `update_children` laid it out after rendering the
    new children and again at its end; and two sections side by side changed in one patch lay their root out
    once, not once each (panel_app/static/oh_layout.js). The sections are whole and finished after."""
    page = tabs.show(f"{populated.url}/health")
    assert page.evaluate("() => window.ohLayoutOnce") is True
    alone, pair = page.evaluate(LAYOUTS_PER_UPDATE)
    assert alone == [1, True, True]
    assert pair == [1, True, True]


TOOLBARS = """() => Array.from(Bokeh.index.query(v => v.model.type === 'Toolbar')).map(v => [
  v.model.tools.length, v.tool_button_views.length, v.el.isConnected && getComputedStyle(v.el).visibility])"""
PLOTS = """() => Array.from(Bokeh.index.query(v => v.model.type === 'Figure')).map(v => {
  const b = v.el.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2]; })"""


def test_a_charts_toolbar_gets_its_buttons_when_first_shown(populated: Stack, tabs: Tabs) -> None:
    """A chart's toolbar hides until the pointer enters the plot; its buttons are built then, not with the page
    (panel_app/static/oh_toolbar.js): none before, every tool's button once shown, hidden again when the pointer
    leaves, and shown with the same buttons the next time."""
    page = tabs.tab
    tabs.discard()  # it hovers the charts
    open_page(page, populated, "/symbol")
    assert page.evaluate("() => window.ohToolbarWhenShown") is True
    toolbars = page.evaluate(TOOLBARS)
    assert len(toolbars) >= 4 and all(tools > 0 and buttons == 0 and shown == "hidden"
                                       for tools, buttons, shown in toolbars), toolbars
    for x, y in page.evaluate(PLOTS):
        page.mouse.move(x, y)
    page.mouse.move(1, 1)
    page.wait_for_function(f"() => ({TOOLBARS})().every(([tools, buttons, shown]) => buttons > 0 && shown === 'hidden')",
                           timeout=WAIT, polling=POLL)
    x, y = page.evaluate(PLOTS)[0]
    page.mouse.move(x, y)
    page.wait_for_function(f"() => ({TOOLBARS})()[0][2] === 'visible'", timeout=WAIT, polling=POLL)
    built = page.evaluate(TOOLBARS)
    assert all(buttons >= 3 for _tools, buttons, _shown in built), built  # box zoom, reset, save at least (hover: 4)


SHADOW_STYLES = """() => { const found = {roots: 0, styles: 0, empty: 0, marks: 0};
  const walk = r => { for (const el of r.querySelectorAll('*')) { if (!el.shadowRoot) continue; found.roots++;
    for (const node of el.shadowRoot.childNodes) {
      if (node.nodeName === 'STYLE') { found.styles++; if (node.textContent === '') found.empty++; }
      if (node.nodeType === Node.COMMENT_NODE && node.data === '') found.marks++; }
    walk(el.shadowRoot); } };
  walk(document); return found; }"""


def test_a_views_empty_stylesheets_wait_for_rules(populated: Stack, tabs: Tabs) -> None:
    """A BokehJS view's stylesheets that have no rules are not in its shadow root, only a placeholder where each
    goes once it gets some (panel_app/static/oh_styles.js); those with rules are (every root has its base sheet)."""
    page = tabs.show(f"{populated.url}/health")
    assert page.evaluate("() => window.ohStylesWhenFilled") is True
    found = page.evaluate(SHADOW_STYLES)
    assert found["roots"] > 50 and found["styles"] >= found["roots"], found
    assert found["empty"] == 0 and found["marks"] > found["roots"], found


COUNT_PAINTS = """(() => { window.__ohPaints = new Map();
  const hook = () => { const PlotView = Bokeh.require('models/plots/plot_canvas').PlotView, paint = PlotView.prototype._actual_paint;
    PlotView.prototype._actual_paint = function () { const n = window.__ohPaints.get(this.model.id) || 0;
      window.__ohPaints.set(this.model.id, n + 1); return paint.apply(this, arguments); }; };
  document.addEventListener('DOMContentLoaded', hook); })()"""
PAINTED = """async () => { for (let i = 0; i < 3; i++) await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const plots = Array.from(Bokeh.index.query(v => v.model.type === 'Figure'));
  return plots.map(v => [v.model.renderers.length, v.has_finished(), window.__ohPaints.get(v.model.id) || 0,
                         v.model.below.concat(v.model.right).filter(m => m.type === 'Legend').length]); }"""


def test_a_chart_with_a_legend_beside_it_is_painted_once(populated: Stack, chromium: Any) -> None:
    """A chart whose legend sits under or beside it is painted once when its section fills: the legend's first
    report of its size, the size the plot was laid out with, no longer repaints it (panel_app/static/oh_legend.js;
    3 of the Symbol explorer's 7 plot paints)."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.add_init_script(COUNT_PAINTS)
        open_page(page, populated, "/symbol")
        assert page.evaluate("() => window.ohLegendSized") is True
        plots = page.evaluate(PAINTED)
        assert len(plots) == 4 and sum(legends for *_, legends in plots) >= 2, plots
        assert all(finished and paints == 1 for _renderers, finished, paints, _legends in plots), plots
    finally:
        context.close()


def test_sql_box_refuses_delete(populated: Stack, tabs: Tabs) -> None:
    """A DELETE in the SQL box is refused with a clear message and changes nothing; a SELECT answers."""
    before = populated.query("SELECT count(*) AS n FROM candles_daily")[0]["n"]
    page = tabs.show(f"{populated.url}/explorer")
    box = page.locator(".oh-sql textarea")
    box.fill("DELETE FROM candles_daily")
    page.get_by_role("button", name="Run query").click()
    refused = page.locator(".oh-notice-refused")
    refused.wait_for(timeout=WAIT)
    assert "Refused: the dashboard is read-only" in deep_text(refused)
    assert "DELETE" in deep_text(refused)
    assert populated.query("SELECT count(*) AS n FROM candles_daily")[0]["n"] == before
    box.fill("SELECT symbol, count(*) AS n FROM candles_daily GROUP BY symbol ORDER BY symbol")
    page.get_by_role("button", name="Run query").click()
    page.locator(".oh-result table.oh-table").wait_for(timeout=WAIT)
    page.locator(".oh-result").get_by_text("AAPL").first.wait_for(timeout=WAIT)
    assert "sql=" in page.url  # the query is part of the shareable URL


def test_a_query_error_is_a_message_not_a_traceback(populated: Stack, tabs: Tabs) -> None:
    page = tabs.show(f"{populated.url}/explorer")
    page.locator(".oh-sql textarea").fill("SELECT * FROM no_such_table")
    page.get_by_role("button", name="Run query").click()
    error = page.locator(".oh-notice-error")
    error.wait_for(timeout=WAIT)
    assert "no_such_table" in deep_text(error) and "Traceback" not in body_text(page)


def test_page_state_lives_in_the_url(populated: Stack, tabs: Tabs) -> None:
    """A shared URL opens the same view; changing a control updates the URL; a reload keeps it."""
    page = tabs.tab
    tabs.discard()  # it goes to pages of its own
    open_page(page, populated, "/symbol?symbol=MSFT")
    page.get_by_text("Daily candles and volume").first.wait_for(timeout=WAIT)
    assert page.locator("select").first.input_value() == "MSFT"
    page.locator("select").first.select_option("AAPL")
    page.wait_for_url(re.compile(r".*symbol=AAPL.*"), timeout=WAIT)
    page.get_by_text("AAPL latest chain").first.wait_for(timeout=WAIT)
    page.reload()
    page.wait_for_selector(".oh-ready", state="attached", timeout=WAIT)
    assert page.locator("select").first.input_value() == "AAPL"
    open_page(page, populated, "/flow?symbol=SPY&group_by=expiry&value=d_oi")
    page.get_by_text("ΔOI (contracts) by expiry").first.wait_for(timeout=WAIT)


def test_the_dashboard_never_opens_the_warehouse(populated: Stack, tabs: Tabs) -> None:
    """After every page has loaded (each once in this module, by the tests before or here), the `oh ui` process
    holds no file descriptor on the DuckDB file."""
    for slug in PAGES:
        if f"{populated.url}/{slug}" not in tabs.loaded:
            tabs.show(f"{populated.url}/{slug}")
    assert populated.ui is not None
    fds = Path(f"/proc/{populated.ui.pid}/fd")
    targets = [os.readlink(fd) for fd in fds.iterdir() if fd.is_symlink()]
    assert not [t for t in targets if t.endswith(".duckdb") or ".duckdb." in t]
