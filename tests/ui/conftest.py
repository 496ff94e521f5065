"""Browser-test fixtures: one populated OH_HOME with the real ledger, workers and `oh ui` per session.

Mark: `browser` (registered here). Run only these with `pytest -m browser tests/ui`; the unit tests
of the dashboard's parts in this folder need no browser. Screenshots of every page go to
docs/screenshots/ when OH_SCREENSHOTS=1 (see docs/dashboard.md).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from devtools.browser import CHROMIUM, Stack, browser


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's chromium against a real `oh ui` (playwright)")


def _needs_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (.ci/run installs it)")
    pytest.importorskip("playwright.sync_api")


def _home(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Home]:
    home = Home(tmp_path_factory.mktemp(name) / "oh_home").ensure()
    yield home
    if home.sockets.parent != home.root:
        shutil.rmtree(home.sockets, ignore_errors=True)


@pytest.fixture(scope="session")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Ledger, workers, sim data (like `oh demo`, smaller) and `oh ui`, shared by every browser test."""
    _needs_browser()
    for home in _home(tmp_path_factory, "ui-populated"):
        stack = Stack(home)
        try:
            stack.start_services()
            stack.populate(chain_sessions=26)
            stack.start_ui()
            yield stack
        finally:
            stack.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless chromium for the session."""
    _needs_browser()
    with browser() as launched:
        yield launched


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context and page (tall, so screenshots show whole pages)."""
    context = chromium.new_context(viewport={"width": 1400, "height": 2000})
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path | None:
    """Where to write page screenshots (docs/screenshots) when OH_SCREENSHOTS=1, else None."""
    if os.environ.get("OH_SCREENSHOTS") != "1":
        return None
    path = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
