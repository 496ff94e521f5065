"""A page fills while the browser is still loading it: the first fill starts when the session is created,
not when the browser reports the page loaded (issue #15.3, panel_app/page.py).

The client here only fetches a page's HTML (which creates its session on the real `oh ui`, with the
real ledger) and never runs Bokeh's or Panel's scripts, so it never opens the websocket nor sends the
"document ready" event a browser sends once those scripts have run. A page that waited for that
event would never fill for it; ours fill anyway, and `oh ui` logs it ("<page> filled in N ms (browser
still loading)"). No browser is needed. That no change is lost when a browser does connect mid-fill
is what the browser tests (test_dashboard_browser.py) see on every page."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import pytest

from devtools.browser import Stack
from tests.ui.conftest import _home

pytestmark = [pytest.mark.integration]

FILLED_PAGES = ("health", "portfolio", "symbol", "flow", "derived", "explorer")  # Live starts its ticks on load
DEADLINE = 120.0  # s: generous for a loaded machine; a page that waits for the browser never logs it


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The ledger (no workers, no data) and `oh ui`."""
    for home in _home(tmp_path_factory, "ui-fill"):
        stack = Stack(home)
        try:
            stack.start_services(workers=())
            stack.start_ui()
            yield stack
        finally:
            stack.stop()


def _filled_lines(stack: Stack, slug: str) -> list[str]:
    log = stack.home.logs / "ui.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if f" {slug} filled in " in line]


@pytest.mark.parametrize("slug", FILLED_PAGES)
def test_a_page_fills_before_the_browser_has_loaded_it(fresh: Stack, slug: str) -> None:
    """Fetching a page's HTML alone (no scripts run, no websocket) is enough for the server to fill it."""
    before = len(_filled_lines(fresh, slug))
    with urllib.request.urlopen(f"{fresh.url}/{slug}", timeout=60) as reply:
        assert reply.status == 200
    deadline = time.monotonic() + DEADLINE
    while len(_filled_lines(fresh, slug)) <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = _filled_lines(fresh, slug)[before:]
    assert lines, f"/{slug} was not filled for a client that never loaded the page's scripts"
    assert all("browser still loading" in line for line in lines)
