"""Browser-test fixtures: one populated OH_HOME with the real ledger, workers and `oh ui` for the tests that use it.

Mark: `browser` (registered here). Run only these with `pytest -m browser tests/ui`; the unit tests
of the dashboard's parts in this folder need no browser. Screenshots of every page go to
docs/screenshots/ when OH_SCREENSHOTS=1 (see docs/dashboard.md).

Two ways to get a page, by what the test checks:
- `page`: a fresh browser context (cold cache, no cookies): for what a first load does (what it fetches), a
  reload, a login, a page whose state the test changes in ways another test could see;
- `tabs` (`Tabs.show(url)`): the one tab of a context shared by the module, loaded with a URL once for a run
  of tests that read it, or change only what no other test reads (their own watchers, a query in the SQL
  box); a test that changes what others read says so (`Tabs.discard`), the next one loads the URL afresh.
  Tests that read the same URL come one after the other in their module. A page load costs
  chromium 1-3 CPU-s (a fresh context about one more) and `oh ui` 0.5-1.5 (a Bokeh session).
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from devtools.browser import CHROMIUM, Stack, browser
from oh.adapters.portfolio_file import save
from oh.domain.portfolio import Portfolio


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's chromium against a real `oh ui` (playwright)")


def _needs_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (.ci/run installs it)")
    pytest.importorskip("playwright.sync_api")


def _home(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Home]:
    home = Home(tmp_path_factory.mktemp(name) / "oh_home").ensure()
    yield home
    _clean_sockets(home)


def _clean_sockets(home: Home) -> None:
    if home.sockets.parent != home.root:
        shutil.rmtree(home.sockets, ignore_errors=True)


def live_stack(tmp_path_factory: pytest.TempPathFactory, name: str, portfolio: Portfolio) -> Iterator[Stack]:
    """The real ledger, live_stream and `oh ui` (no login, loopback) on a temp OH_HOME holding `portfolio`, stopped
    after (a module-scoped fixture yields from it)."""
    _needs_browser()
    home = Home(tmp_path_factory.mktemp(name) / "oh_home").ensure()
    save(home.config / "portfolio.json", portfolio)
    stack = Stack(home)
    try:
        stack.start_services(("live_stream",))
        stack.start_ui()
        yield stack
    finally:
        stack.stop()


class Shared:
    """The populated stack of a session, built when a test first asks for it and stopped after the last test
    of the run of consecutive tests that use it (`pytest_runtest_teardown` below), not at the session's end:
    its modules are one xdist work unit (tests/conftest.py's SHARED_UNITS), and their worker went on to run
    other modules for most of the suite while the ledger, six workers and `oh ui` idled beside them (~0.01
    CPU-s a second, ~18 minutes in a loaded run). A test that asks for it after that builds it again."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.stack: Stack | None = None

    def get(self) -> Stack:
        """The running stack (built now unless it runs)."""
        if self.stack is None:
            _needs_browser()
            self.stack = Stack(Home(self.tmp_path_factory.mktemp("ui-populated") / "oh_home").ensure())
            try:
                self.stack.start_services()
                self.stack.populate(chain_sessions=26)
                self.stack.start_ui()
            except BaseException:
                self.stop()
                raise
        return self.stack

    def stop(self) -> None:
        """Stop the stack if it runs, and clean its home's sockets."""
        stack, self.stack = self.stack, None
        if stack is not None:
            try:
                stack.stop()
            finally:
                _clean_sockets(stack.home)


_SHARED_KEY = pytest.StashKey[Shared]()


@pytest.fixture(scope="session")
def shared_populated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """The session's `Shared` holder (stops what it holds at the session's end at the latest)."""
    shared = Shared(tmp_path_factory)
    request.config.stash[_SHARED_KEY] = shared
    yield shared
    shared.stop()


@pytest.fixture
def populated(shared_populated: Shared) -> Stack:
    """Ledger, workers, sim data (like `oh demo`, smaller) and `oh ui`, shared by every browser test that asks
    for it (one stack for a run of such tests: see `Shared`)."""
    return shared_populated.get()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last of a run of tests using `populated` (the next test, if any, does not), stop its stack."""
    if "populated" in getattr(item, "fixturenames", ()) and (
            nextitem is None or "populated" not in getattr(nextitem, "fixturenames", ())):
        shared = item.config.stash.get(_SHARED_KEY, None)
        if shared is not None:
            shared.stop()


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


class Tabs:
    """The one tab of a browser context, shared by tests that read the same URL: `show(url)` loads `url` in it
    (and waits for its first fill, the `.oh-ready` marker) unless it shows `url` already, as the last test left
    it. One tab, not one per URL: every open page of the dashboard gets the ledger's state each second and
    playwright hears of every websocket frame, so tabs left open in the background cost CPU all along."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.tab = context.new_page()
        self.url: str | None = None  # what the tab shows, as loaded by `show`
        self.loaded: set[str] = set()  # every URL loaded in the tab (by this `oh ui`: one session each)
        self.said: list[str] = []  # the page's console errors and warnings, and uncaught errors, since the last load
        self.tab.on("console", lambda msg: self.said.append(f"{msg.type}: {msg.text}")
                    if msg.type in ("error", "warning") else None)
        self.tab.on("pageerror", lambda exc: self.said.append(f"uncaught: {exc}"))
        self.frames: deque[str] = deque(maxlen=200)  # the page's websocket frames since the last load, in short
        self.tab.on("websocket", self._watch)

    def _watch(self, socket: Any) -> None:
        def note(way: str, payload: Any) -> None:
            text = payload if isinstance(payload, str) else f"<{len(payload)} bytes>"
            self.frames.append(f"{way} {len(text)}{' oh-ready' if 'oh-ready' in text else ''}: {text[:80]}")
        socket.on("framereceived", lambda payload: note("in", payload))
        socket.on("framesent", lambda payload: note("out", payload))

    def show(self, url: str) -> Any:
        """The tab, showing `url` (loaded unless it shows it already)."""
        if self.url != url:
            self.url = None
            self.said = []
            self.frames.clear()
            self.tab.goto(url)
            try:
                self.tab.wait_for_selector(".oh-ready", state="attached", timeout=READY_WAIT)
            except Exception as exc:  # say what the page said, not only that it never got ready
                raise AssertionError(f"{url} never showed .oh-ready; the page said: {self.said[-20:]}; its websocket "
                                     f"frames, the last: {list(self.frames)[-40:]}") from exc
            self.url = url
            self.loaded.add(url)
        return self.tab

    def discard(self) -> None:
        """Forget what the tab shows (a test changed what other tests read): the next `show` loads afresh."""
        self.url = None


READY_WAIT = 60_000  # ms


@pytest.fixture(scope="module")
def tabs(chromium: Any) -> Iterator[Tabs]:
    """The tab shared by the tests of one module that read a page (the same viewport as `page`)."""
    context = chromium.new_context(viewport={"width": 1400, "height": 2000})
    yield Tabs(context)
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path | None:
    """Where to write page screenshots (docs/screenshots) when OH_SCREENSHOTS=1, else None."""
    if os.environ.get("OH_SCREENSHOTS") != "1":
        return None
    path = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
