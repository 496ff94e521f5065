"""Every page but Live (its own tests) laid out at a phone's width (390 px) and a desktop's (1440 px), in a
real chromium against the shared populated stack (tests/ui/conftest.py: `populated`, read only here).

Per page and width, once its sections are filled (`.oh-ready`) and its charts drawn:
- no horizontal page scroll (wide tables scroll inside their card instead);
- no two sections (`.oh-slot`) overlap: Health's tables side by side do not draw over each other;
- everything in a section stays inside it (a long error message wraps instead of running over the next
  section), except what scrolls inside a box of its own (a wide table) and the box itself stays inside;
- the sidebar's inputs are inside the sidebar's sides (not cut at its right edge; it scrolls down), and at 390 px the sidebar starts
  collapsed (the page is the content);
- Health's coverage heatmap has its colour legend.

With OH_SCREENSHOTS=1 each page is saved as docs/screenshots/<page>-<width>.png (full page).
Waits are for conditions, never for time; no timing is asserted. The pages of one width are loaded one
after the other in the one tab of that width's browser context (`Tabs`), each once: the legend's test loads
Health, the layout tests read it there first and load Flow last, and the "Group by" test reads Flow there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.browser import Stack
from tests.ui.conftest import Tabs

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT = 60_000
POLL = 50  # ms between two checks of a waited-for page function (playwright's default is every frame)
PAGES = ("health", "portfolio", "symbol", "derived", "explorer", "flow")  # Health first (the legend's test left it), Flow last (the "Group by" test reads it)
WIDTHS = {390: 844, 1440: 900}  # width -> height of the viewport (an iPhone 14's and a laptop's)

# The layout in numbers, measured in the page (through shadow roots: Panel renders each pane in one).
# A box "clips" when its overflow is not visible: what is inside may be wider and scroll (or be cut) there.
MEASURE = r"""() => {
  const TOL = 1;
  const clips = e => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(e).overflowX);
  const kids = e => [...(e.shadowRoot ? e.shadowRoot.children : []), ...e.children]
      .filter(c => !['STYLE', 'SCRIPT', 'LINK', 'TEMPLATE'].includes(c.tagName));
  const shown = r => r.width > 0 && r.height > 0;
  const name = e => (e.tagName + '.' + String(typeof e.className === 'string' ? e.className : '').trim()
      .split(/\s+/).slice(0, 2).join('.') + ' "' + (e.textContent || '').trim().slice(0, 40) + '"');
  const all = [];
  (function walk(e) { for (const c of kids(e)) { all.push(c); walk(c); } })(document.documentElement);
  const slots = all.filter(e => e.classList && e.classList.contains('oh-slot'))
      .map(e => [e, e.getBoundingClientRect()]).filter(([, r]) => shown(r));
  const overlaps = [];
  for (let i = 0; i < slots.length; i++) for (let j = i + 1; j < slots.length; j++) {
    const [a, ra] = slots[i], [b, rb] = slots[j];
    if (a.contains(b) || b.contains(a)) continue;
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > TOL && h > TOL) overlaps.push([name(a), name(b)]);
  }
  const outside = (box, r, sideways) => r.left < box.left - TOL || r.right > box.right + TOL
      || (!sideways && (r.top < box.top - TOL || r.bottom > box.bottom + TOL));
  const spills = [];
  const within = (root, box, where, sideways = false) => {
    for (const c of kids(root)) {
      const r = c.getBoundingClientRect();
      if (shown(r) && getComputedStyle(c).visibility !== 'hidden' && getComputedStyle(c).position !== 'fixed'
          && outside(box, r, sideways)) spills.push([where, name(c), [r.left, r.right, r.top, r.bottom].map(Math.round)]);
      if (!clips(c)) within(c, box, where, sideways);
    }
  };
  for (const [slot, r] of slots) within(slot, r, name(slot));
  const sidebar = document.getElementById('sidebar');
  const sideRect = sidebar ? sidebar.getBoundingClientRect() : null;
  // the sidebar scrolls down when its inputs are taller than the window: only its sides are checked
  if (sidebar && shown(sideRect)) within(sidebar, sideRect, 'sidebar', true);
  const doc = document.documentElement;
  return {scroll: doc.scrollWidth, width: doc.clientWidth, overlaps, spills: spills.slice(0, 10),
          slots: slots.length, sidebarShown: !!(sidebar && shown(sideRect) && sideRect.right > 0)};
}"""

TALL = """() => { const m = document.getElementById('main');
  return Math.ceil(Math.max(document.documentElement.scrollHeight, m ? m.getBoundingClientRect().top + m.scrollHeight : 0)); }"""
CANVASES = ("(function count(root){let n=root.querySelectorAll('canvas').length;"
            "root.querySelectorAll('*').forEach(e=>{if(e.shadowRoot)n+=count(e.shadowRoot)});return n})(document)")


@pytest.fixture(scope="module", params=list(WIDTHS), ids=lambda w: f"{w}px")
def sized(request: pytest.FixtureRequest, chromium: Any) -> Iterator[Tabs]:
    """One browser context per width for the module, and its tab."""
    width = int(request.param)
    context = chromium.new_context(viewport={"width": width, "height": WIDTHS[width]})
    yield Tabs(context)
    context.close()


def laid_out(sized: Tabs, stack: Stack, slug: str) -> tuple[Any, dict[str, Any]]:
    """A page's tab at this width, once its sections are filled and its charts drawn, and MEASURE's figures."""
    tab = sized.show(f"{stack.url}/{slug}")
    if slug not in ("explorer",):  # every other page draws at least one chart
        tab.wait_for_function(f"{CANVASES} > 0", timeout=WAIT, polling=POLL)
    # Bokeh sizes a chart on the frame after it draws; measure once two frames show the same layout
    tab.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    return tab, dict(tab.evaluate(MEASURE))


def test_the_coverage_heatmap_has_a_colour_legend(populated: Stack, sized: Tabs) -> None:
    """Each colour of Health's coverage heatmap is named under it, in words."""
    tab, _ = laid_out(sized, populated, "health")
    for words in ("present", "missing", "before the symbol's first session"):
        tab.locator(".oh-swatch", has_text=words).first.wait_for(state="attached", timeout=WAIT)


@pytest.mark.parametrize("slug", PAGES)
def test_every_page_fits_its_width(populated: Stack, sized: Tabs, slug: str, screenshots: Path | None) -> None:
    """No horizontal page scroll, no section over another, nothing spilling out of its section or the sidebar;
    on a phone the sidebar starts collapsed."""
    tab, figures = laid_out(sized, populated, slug)
    width = tab.viewport_size["width"]
    assert figures["slots"] >= 1
    assert figures["scroll"] <= figures["width"], f"{slug} at {width}px scrolls sideways: {figures}"
    assert not figures["overlaps"], f"{slug} at {width}px: sections overlap: {figures['overlaps']}"
    assert not figures["spills"], f"{slug} at {width}px: content outside its section: {figures['spills']}"
    if width < 768:
        assert not figures["sidebarShown"], f"{slug} at {width}px: the sidebar is open over the page"
    if screenshots is not None:
        whole_page_picture(tab, width, screenshots / f"{slug}-{width}.png")


def whole_page_picture(tab: Any, width: int, path: Path) -> None:
    """A picture of the whole page: the template scrolls inside #main (not the document), so the window is
    made as tall as the content for the picture, then put back."""
    height = int(tab.evaluate(TALL))
    tab.set_viewport_size({"width": width, "height": max(height, WIDTHS[width])})
    tab.wait_for_timeout(1500)  # let Bokeh redraw at the new size before the picture (not an assertion)
    tab.screenshot(path=str(path), full_page=True)
    tab.set_viewport_size({"width": width, "height": WIDTHS[width]})


def test_flows_group_by_shows_all_four_choices(populated: Stack, sized: Tabs) -> None:
    """Every "Group by" choice in Flow's sidebar can be seen and picked (a clipped choice cannot be clicked:
    playwright clicks only what receives the click at its place). At 390 px the sidebar is opened first."""
    tab, _ = laid_out(sized, populated, "flow")
    try:
        if tab.viewport_size["width"] < 768:
            tab.locator("#sidebar-toggle").click()
        for choice in ("Strike", "Expiry", "Expiry x strike", "Contract"):
            option = tab.get_by_label(choice, exact=True)
            option.scroll_into_view_if_needed(timeout=WAIT)
            option.check(timeout=WAIT)
            assert option.is_checked()
    finally:
        sized.discard()  # the sidebar is open, another grouping picked
