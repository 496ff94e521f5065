"""Every section a page fills reaches the browser, even when Panel had to queue its patch while an earlier
write was still completing (the Flow page's lost last section under load: panel_app/ws_writes.py).

The race, staged deterministically in a real Panel server (this module, run as a script in a subprocess: a
`Page` of two sections on a temp OH_HOME) with a real chromium reading it. The first fill is plain; the
test then clicks "Stage the race", and once nothing is being written on the websocket the page holds Bokeh's
`write_lock` (as Bokeh does while it writes a message of its own, e.g. the OK to a message of the browser),
makes the socket slow (the frames go out at once, their completion is reported only when section 2 says so)
and refreshes:
- section 1's patch is queued behind the lock; the lock is freed before Panel's writer task for it runs, so
  that task writes it and waits on the slow socket;
- section 2 (the last) lets those writes complete and holds the lock again until that task is done, so its
  own patch is queued and cannot be written before.
Panel 1.9.4 then unblocks the document (its task wrote all *it* had taken) though the queue holds the last
patch, whose own task returns on seeing the document unblocked: the browser never gets section 2 (nor, on
a first fill, `.oh-ready`, which comes in the last section's patch).

The test asserts the race was staged (a write was still awaited when the last section was queued) and that
the browser gets both sections of the refresh. No timing is asserted: every wait is for a condition.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.browser import free_port
from tests.ui.conftest import READY_WAIT

REPO = Path(__file__).resolve().parents[2]
SLUG = "slow-socket"
SECTIONS = 2


# ---------------------------------------------------------------- the server (run as a script)
class SlowSocket:
    """Panel's websocket writes with their completion held back while closed (the frames go out at once, as
    on a socket the browser reads late); `open()` completes the held ones at once (their writes are done)."""

    def __init__(self) -> None:
        self.closed = False
        self.held: list[tuple[Any, asyncio.Future[None]]] = []

    def wrap(self, dispatch: Callable[..., Any]) -> Callable[..., Any]:
        def slow(conn: Any, events: Any = None, msg: Any = None) -> list[Any]:
            futures = list(dispatch(conn, events, msg))
            if not self.closed:
                return futures
            late = []
            for future in futures:
                reported: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self.held.append((future, reported))
                late.append(reported)
            return late
        return slow

    def open(self) -> int:
        """Report every held write complete (when it is); how many were still awaited."""
        self.closed = False
        awaited = sum(1 for _, reported in self.held if not reported.done())
        for future, reported in self.held:
            if future.done():  # at once, not a turn later: the waiting task resumes before anything queued after
                _settle(future, reported)
            else:
                future.add_done_callback(lambda f, r=reported: _settle(f, r))
        self.held = []
        return awaited


def _settle(future: Any, reported: asyncio.Future[None]) -> None:
    if reported.done():
        return
    if future.cancelled() or future.exception() is not None:
        reported.set_exception(future.exception() or asyncio.CancelledError())
    else:
        reported.set_result(None)


def serve(port: int) -> None:
    """Serve the three-section page on 127.0.0.1:`port` until killed (OH_HOME from the environment)."""
    import panel as pn
    import panel.io.document as pn_document

    from bus.home import Home
    from panel_app import context
    from panel_app.components import STATIC, STATIC_ROUTE, Slot
    from panel_app.page import Page

    socket = SlowSocket()
    pn_document.dispatch_tornado = socket.wrap(pn_document.dispatch_tornado)

    class SlowSocketPage(Page):
        """Two sections; the first fill is plain, the refresh the button asks for stages the race."""

        slug = SLUG
        title = "Slow socket"

        def __init__(self, ctx: Any) -> None:
            super().__init__(ctx)
            self.slots = [Slot(f"Section {n}") for n in range(1, SECTIONS + 1)]
            self.stage = pn.widgets.Button(name="Stage the race")
            self.stage.on_click(lambda _event: self._start(self._staged_refresh()))
            self.round = 0
            self.tasks: set[asyncio.Future[None]] = set()  # the page's own tasks, kept until done
            self.ours = False  # whether this page holds the socket's write lock

        def layout(self) -> list[Any]:
            return [self.stage, *(slot.panel for slot in self.slots)]

        def update(self) -> None:
            self.round += 1
            steps = (self._release_soon, self._complete_writes_hold_lock) if self.round > 1 else (str, str)
            for n, (slot, step) in enumerate(zip(self.slots, steps, strict=True), 1):
                self.fill(slot, lambda slot=slot, step=step, n=n, r=self.round: slot.html(
                    f'<p class="oh-round-{r}-section-{n}">Round {r}, section {n}. {step()}</p>'), f"Section {n}")

        def _start(self, work: Any) -> None:
            task = asyncio.ensure_future(work)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        def _lock(self) -> Any:
            (conn,) = self.doc.session_context.session._subscribed_connections
            return conn._socket.write_lock

        async def _staged_refresh(self) -> None:
            """Once nothing is being written on the socket (the click's OK sent), hold Bokeh's write lock, make
            the socket slow and refresh: the first section's patch is queued behind the lock."""
            lock = self._lock()
            while (lock._block._value == 0 or self.doc in pn_document._WRITE_BLOCK
                   or self.doc in pn_document._WRITE_MSGS):
                await asyncio.sleep(0.005)
            lock.acquire()  # free: taken at once
            self.ours = True
            socket.closed = True
            self.doc.add_next_tick_callback(self.refresh)

        def _release_lock(self) -> None:
            if self.ours:
                self.ours = False
                self._lock().release()

        def _release_soon(self) -> str:
            """Section 1: free the lock before Panel's writer task for this section's patch runs (it is started
            after this), so that task writes it and then waits on the slow socket."""
            asyncio.get_running_loop().call_soon(self._release_lock)
            return ""

        def _complete_writes_hold_lock(self) -> str:
            """Section 2 (the last): let the waiting writes complete and hold the lock until their writer task is
            done, so this section's patch is queued and cannot be written before that task ends."""
            writers = [t for t in pn_document._write_tasks.get(self.doc, []) if not t.done()]
            awaited = socket.open()
            lock = self._lock()
            if lock._block._value > 0:
                lock.acquire()
                self.ours = True
            self._start(self._release_after(writers))
            return f'<span class="oh-staged" data-awaited="{awaited}" data-writers="{len(writers)}"></span>'

        async def _release_after(self, writers: list[Any]) -> None:
            if writers:
                await asyncio.wait(writers)
            self._release_lock()

    home = Home(Path(os.environ["OH_HOME"])).ensure()
    ctx = context.start(home)
    pn.extension(notifications=False)
    pn.config.design = None
    pn.serve({SLUG: lambda: SlowSocketPage(ctx).view()}, port=port, address="127.0.0.1", show=False, start=True,
             websocket_origin=[f"127.0.0.1:{port}"], static_dirs={STATIC_ROUTE: str(STATIC)}, verbose=False)


# ---------------------------------------------------------------- the test
@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The script's server on a temp OH_HOME (its output in OH_HOME/../server.log); its URL."""
    root = tmp_path_factory.mktemp("slow-socket")
    port = free_port()
    env = {**os.environ, "OH_HOME": str(root / "oh_home"), "PYTHONPATH": str(REPO)}
    with (root / "server.log").open("ab") as out:
        server = subprocess.Popen([sys.executable, "-m", "tests.ui.test_patch_delivery", str(port)], cwd=REPO,
                                  env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/{SLUG}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"the server exited {server.returncode}: {root / 'server.log'}"
            try:
                with urllib.request.urlopen(url, timeout=10) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "the server never served the page"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(20)


def test_every_page_uses_the_corrected_write_queue() -> None:
    """Importing the pages installs `panel_app.ws_writes` in Panel's place (a Panel whose internals changed
    leaves it out, with a warning: this test then says to check whether that Panel still loses patches)."""
    import panel.io.document as pn_document

    import panel_app.page  # noqa: F401  (installs it)
    from panel_app import ws_writes

    assert pn_document._dispatch_msgs is ws_writes.dispatch_msgs
    assert ws_writes.install()  # again: idempotent


@pytest.mark.browser
@pytest.mark.integration
def test_the_last_section_arrives_when_its_patch_was_queued_behind_a_slow_write(slow_server: str, page: Any) -> None:
    """The race is staged (a write was still awaited when the last section was queued) and the browser still
    gets every section of the refresh (Panel's own queue lost the last one: panel_app/ws_writes.py)."""
    page.goto(slow_server)
    page.wait_for_selector(".oh-ready", state="attached", timeout=READY_WAIT)  # the first fill, not staged
    page.get_by_role("button", name="Stage the race").click()
    staged = page.locator(".oh-staged")
    try:
        staged.wait_for(state="attached", timeout=READY_WAIT)
    except Exception as exc:
        shown = [n for n in range(1, SECTIONS + 1) if page.locator(f".oh-round-2-section-{n}").count()]
        raise AssertionError(f"the refresh's last section never reached the browser (its sections shown: {shown})") from exc
    assert int(staged.get_attribute("data-awaited") or 0) > 0, "no write was in flight: the race was not staged"
    for n in range(1, SECTIONS + 1):
        assert page.locator(f".oh-round-2-section-{n}").count() == 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    serve(int(sys.argv[1]))
