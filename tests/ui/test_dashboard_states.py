"""Empty and broken states in a real browser: a fresh install (ledger up, no data), then the ledger
going down under an open page. Every page says what is wrong and what to run, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bus.home import Home
from devtools.browser import Stack, run_oh
from tests.ui.conftest import _home, _needs_browser
from tests.ui.test_dashboard_browser import (
    BANNER,
    PAGES,
    WAIT,
    body_text,
    deep_text,
    open_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh install: only the ledger (no workers, no data, no portfolio file) and `oh ui`."""
    _needs_browser()
    for home in _home(tmp_path_factory, "ui-fresh"):
        stack = Stack(home)
        try:
            stack.start_services(workers=())
            stack.start_ui()
            yield stack
        finally:
            stack.stop()


EMPTY = {
    "health": "No runs yet",
    "portfolio": "No portfolio file yet",
    "symbol": "No symbols yet",
    "flow": "No flow yet",
    "derived": "No derived metrics yet",
    "explorer": "candles_daily",  # the tables exist (the ledger made them); they are empty
    "live": "Live portfolio",
}


def test_fresh_install_then_ledger_down(fresh: Stack, page: Any) -> None:
    """Each page of a fresh install says there is no data and what to run; when the ledger stops, an open
    page says so without a reload, and a newly opened page says it too (with `oh up`)."""
    for slug in sorted(PAGES, key=lambda s: s == "health"):  # Health last: it stays open for the ledger's stop
        open_page(page, fresh, f"/{slug}")
        scope = page.locator("table.oh-table") if slug == "explorer" else page
        scope.get_by_text(EMPTY[slug]).first.wait_for(timeout=WAIT)
        text = body_text(page)
        assert BANNER in text and "Traceback" not in text
        if slug not in ("explorer", "live"):  # the live page has its own tests
            assert "oh " in text  # what to run
    page.evaluate("() => { window.__ohNoReload = true; }")
    fresh.stop_ledger()
    down = page.locator(".oh-notice-down")
    down.wait_for(timeout=WAIT)
    assert "oh up" in deep_text(down)
    assert page.evaluate("() => window.__ohNoReload") is True
    assert "not running" in deep_text(page.locator(".oh-ledger"))
    other = page.context.new_page()  # a new tab: a new session of the dashboard
    try:
        for slug in ("symbol", "explorer", "portfolio"):
            other.goto(f"{fresh.url}/{slug}")
            other.wait_for_selector(".oh-ready", state="attached", timeout=WAIT)
            if slug == "portfolio":
                continue  # with no portfolio file there is nothing to read from the ledger: it says so instead
            notice = other.locator(".oh-notice-down")
            notice.wait_for(timeout=WAIT)
            assert "The ledger is not running" in deep_text(notice) and "oh up" in deep_text(notice)
            assert "Traceback" not in body_text(other)
    finally:
        other.close()


def test_oh_ui_rejects_a_bad_port(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = Home(tmp_path_factory.mktemp("ui-cli") / "oh_home")
    result = run_oh(home, "ui", "--port", "70000", check=False, timeout=60)
    assert result.returncode == 2 and "--port" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
