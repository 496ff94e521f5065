"""Who may reach the dashboard (issue #16): loopback by default; any other address only with a login and
with websocket origins checked. Attacks tried: a wildcard or LAN address without a login (many spellings),
an empty password file, a wrong password, a websocket opened from another site's page. Real `oh ui`
processes on free ports; waits are for conditions, never for time."""

from __future__ import annotations

import asyncio
import base64
import gc
import http.client
import http.cookiejar
import logging
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from devtools import forkserver
from devtools.browser import OH, free_port, home_env, run_oh
from devtools.processes import REPO
from panel_app.server import AccessRefused, access_for, is_loopback, origins, quiet_closed_tabs
from tests.ui.conftest import _needs_browser

WAIT = 60_000


# ---------------------------------------------------------------- the rule, without processes
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.10", "10.0.0.5", "dashboard.example.com", "[::]",
                                  "fe80::1", "127.0.0.1.example.com"])
def test_a_non_loopback_address_needs_a_login(host: str) -> None:
    """Every spelling of "reachable from elsewhere" is refused without a login, with how to turn one on."""
    with pytest.raises(AccessRefused) as refused:
        access_for(host, 5006)
    message = str(refused.value)
    assert "--password-file" in message and "OH_UI_PASSWORD" in message and "\n" not in message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "::1", "127.0.0.2", "[::1]"])
def test_loopback_needs_no_login(host: str) -> None:
    assert is_loopback(host)
    assert access_for(host, 5006).login == "no login"


def test_origins_are_exactly_the_served_address() -> None:
    """A named address allows only itself (and --origin extras), with the port; loopback both its names."""
    assert origins("192.168.1.10", 5006) == ["192.168.1.10:5006"]
    assert origins("192.168.1.10", 5006, ("dash.example.com",)) == ["192.168.1.10:5006", "dash.example.com:5006"]
    assert origins("127.0.0.1", 8000) == ["127.0.0.1:8000", "localhost:8000"]
    access = access_for("192.168.1.10", 5006, password="s3cret")
    assert access.origins == ("192.168.1.10:5006",) and access.login == "password login"
    assert "*" not in origins("0.0.0.0", 5006)


def test_oauth_needs_its_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PANEL_OAUTH_KEY", raising=False)
    monkeypatch.delenv("PANEL_OAUTH_SECRET", raising=False)
    with pytest.raises(AccessRefused, match="PANEL_OAUTH_KEY"):
        access_for("0.0.0.0", 5006, oauth_provider="github")
    with pytest.raises(AccessRefused, match="unknown OAuth provider"):
        access_for("0.0.0.0", 5006, oauth_provider="myspace")
    monkeypatch.setenv("PANEL_OAUTH_KEY", "id")
    monkeypatch.setenv("PANEL_OAUTH_SECRET", "secret")
    assert access_for("0.0.0.0", 5006, oauth_provider="github").login == "OAuth login (github)"


def test_a_closed_tabs_write_is_one_quiet_line(caplog: pytest.LogCaptureFixture) -> None:
    """A write to a tab that closed (Tornado's WebSocketClosedError in a task nobody awaits) is not an
    asyncio traceback in ui.log; any other unretrieved task error still is."""
    from tornado.websocket import WebSocketClosedError

    async def closed() -> None:
        raise WebSocketClosedError()

    async def broken() -> None:
        raise ValueError("a real bug")

    def on_a_thread_of_its_own() -> None:  # the session's playwright keeps an event loop running on this thread
        loop = asyncio.new_event_loop()
        try:
            quiet_closed_tabs(loop)
            for coro in (closed(), broken()):
                task = loop.create_task(coro)
                loop.run_until_complete(asyncio.sleep(0))
                assert task.done()
                del task
                gc.collect()
        finally:
            loop.close()

    with caplog.at_level(logging.DEBUG), ThreadPoolExecutor(1) as thread:
        thread.submit(on_a_thread_of_its_own).result(30)  # its failures raise here
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Task exception was never retrieved" in errors[0] and "a real bug" in errors[0]
    assert "WebSocketClosedError" not in caplog.text.replace("(WebSocketClosedError)", "")
    assert any("tab closed" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


# ---------------------------------------------------------------- the real `oh ui`
@pytest.mark.integration
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_oh_ui_refuses_to_serve_elsewhere_without_a_login(tmp_path: Path, host: str) -> None:
    """`oh ui --host 0.0.0.0` exits 2 with one line saying how to turn a login on, and binds nothing."""
    home = Home(tmp_path / "oh_home")
    port = free_port()
    result = run_oh(home, "ui", "--host", host, "--port", str(port), check=False, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--password-file" in lines[0] and "Traceback" not in result.stderr
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


@pytest.mark.integration
def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    home = Home(tmp_path / "oh_home")
    empty = tmp_path / "password"
    empty.write_text("\n")
    result = run_oh(home, "ui", "--host", "0.0.0.0", "--port", str(free_port()), "--password-file", str(empty),
                    check=False, timeout=120)
    assert result.returncode == 2 and "empty" in result.stderr and "Traceback" not in result.stderr


class Ui:
    """A real `oh ui` with a password login on loopback: the configuration a non-loopback address gets."""

    def __init__(self, home: Home, password_file: Path) -> None:
        self.port = free_port()
        self.log = (home.logs / "ui.access.out.log").open("ab")
        self.proc = forkserver.spawn([OH, "ui", "--port", str(self.port), "--password-file", str(password_file)],
                                     cwd=REPO, env=home_env(home), stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/login", timeout=10).close()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"oh ui did not serve; see {home.logs}") from None
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """`oh ui --password-file` on a fresh home (no ledger: the pages say so once in)."""
    _needs_browser()
    root = tmp_path_factory.mktemp("ui-access")
    yield from password_ui(Home(root / "oh_home").ensure(), root)


def password_ui(home: Home, root: Path) -> Iterator[Ui]:
    """`oh ui --password-file` on `home` with its password file in `root`, stopped after (a fixture yields from it)."""
    password = root / "password"
    password.write_text("correct horse battery staple\n")
    os.chmod(password, 0o600)
    ui = Ui(home, password)
    try:
        yield ui
    finally:
        ui.stop()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.mark.browser
@pytest.mark.integration
def test_the_page_asks_for_the_password_and_refuses_a_wrong_one(guarded: Ui, chromium: Any) -> None:
    """Without the login cookie every page redirects to the login page; a wrong password stays there with
    an error and no session; the right one opens the page."""
    opener = urllib.request.build_opener(NoRedirect)
    for path in ("/health", "/portfolio", "/explorer"):
        with pytest.raises(urllib.error.HTTPError) as redirected:
            opener.open(f"{guarded.url}{path}", timeout=30)
        assert redirected.value.code == 302 and "/login" in redirected.value.headers["Location"]
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{guarded.url}/health")
        page.locator("input[type=password]").wait_for(timeout=WAIT)
        assert "asks for its password" in page.content()
        for wrong in ("", "Correct horse battery staple", "correct horse battery stapl", "correct horse battery staple!",
                      "' OR 1=1 --"):
            page.locator("input[type=password]").fill(wrong)
            with page.expect_navigation(timeout=WAIT):
                page.get_by_role("button", name="Sign in").click()
            page.locator(".errormessage", has_text="Invalid").wait_for(timeout=WAIT)
            assert "/login" in page.url and page.locator(".oh-ready").count() == 0
        assert not [c for c in context.cookies() if c["name"] == "user"]
        page.locator("input[type=password]").fill("correct horse battery staple")
        with page.expect_navigation(timeout=WAIT):
            page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector(".oh-ready", state="attached", timeout=WAIT)
        assert "/health" in page.url
    finally:
        context.close()


def _ws_status(port: int, path: str, origin: str, cookie: str = "") -> int:
    """The HTTP status of a websocket handshake for `path` sent with this Origin (101 when accepted). A plain
    HTTP request with the handshake's headers: no event loop (playwright's sync API holds the thread's)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={
            "Origin": origin, "Cookie": cookie, "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
        return conn.getresponse().status
    finally:
        conn.close()


def _signed_in(ui: Ui) -> str:
    """The Cookie header of a browser that signed in with the right password."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = urllib.parse.urlencode({"username": "trader", "password": "correct horse battery staple"}).encode()
    opener.open(f"{ui.url}/login", data=form, timeout=60).close()
    assert any(c.name == "user" for c in jar), "signing in set no login cookie"
    return "; ".join(f"{c.name}={c.value}" for c in jar)


@pytest.mark.integration
@pytest.mark.parametrize("origin", ["http://evil.example", "http://evil.example:{port}", "http://127.0.0.1.evil.example:{port}",
                                    "null", "http://127.0.0.1:1", "http://localhost.evil.example:{port}"])
def test_a_websocket_from_another_origin_is_refused(guarded: Ui, origin: str) -> None:
    """A page on another site (or another port) cannot open the dashboard's websocket, even in a browser that
    signed in (its cookie goes along): 403 at the handshake; the dashboard's own origin gets 101."""
    cookie = _signed_in(guarded)
    assert _ws_status(guarded.port, "/health/ws", origin.format(port=guarded.port), cookie) == 403
    assert _ws_status(guarded.port, "/health/ws", f"http://127.0.0.1:{guarded.port}", cookie) == 101
