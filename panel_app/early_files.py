"""A cold load's scripts and stylesheets fetched before the server builds its session (`Link: rel=preload`).

Panel's page handler (`panel.io.server.DocHandler.get`) builds the session's whole document before it
sends a byte: 120-550 ms of the server's one event loop per load (the page's components turned into
Bokeh models). Only then does the browser read the HTML and learn the ~2.8 MB of scripts and the
stylesheets every page links, so on a cold load their fetch and compile came after the build.

`install()` wraps that handler. Once a path has been served, the files its page linked are remembered
(from the HTML it wrote). A later request for the path from a browser that has not had them (no
`oh_files` cookie naming this set of files; a navigation, `Sec-Fetch-Dest: document`, not a script's
request, which would not fetch them) gets its response headers at once, with one
`Link: <file>; rel=preload; as=script|style` per file, and the session is built only once the server
has answered those files (or after `WAIT_S`): the files come from the same event loop, which the build
would hold. So the browser fetches and compiles the scripts while the server builds the document, on
the other core; when the HTML arrives its `<script>` and `<link>` tags find them loaded. Every page sets
the cookie, so a browser that has the files (warm and hot loads: each versioned file is cached for ten
years) is served as before, without the headers or the wait. A browser that lost its cache but kept
the cookie is served as before too.

Sending the headers first commits the response as a 200 before the session exists, so it is done only
when nothing of the build can answer otherwise: the request is signed in (else Panel redirects to the
login page), no authorization callback is configured (it can answer 403), and the request names no
Bokeh session or token (which can be refused with 403). `session()` in panel_app/app.py already answers
a failed page build with a page saying so, never an error status. The first request for a path after the
server starts is served as before (nothing is known yet); the Live page, which adds the ES-module shim,
is learnt from its own pages.

This touches one Panel internal: the `get` of Panel's DocHandler, replaced by a wrapper that calls the
original (tests/ui/test_dashboard_document.py fails if that handler or its place in Bokeh's per-app
routes changes on an upgrade). The files' completion is Tornado's public `Application.log_request`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any
from urllib.parse import urljoin

FILE_TAG = re.compile(r'<script type="text/javascript" src="([^"]+)"|<link rel="stylesheet" href="([^"]+)"')
SESSION_ARGUMENTS = ("bokeh-token", "bokeh-session-id")
COOKIE = "oh_files"
WAIT_S = 0.5  # at most this long for the files before the build starts anyway

_files: dict[str, tuple[tuple[str, str], ...]] = {}  # request path -> ((url, "script" | "style"), ...) its page links
_waiting: list[tuple[set[str], asyncio.Event]] = []  # files not yet answered (absolute URIs), per waiting request


def linked_files(html: str) -> tuple[tuple[str, str], ...]:
    """The scripts and stylesheets a page links, in its order: (url, "script" | "style")."""
    return tuple((script, "script") if script else (style, "style") for script, style in FILE_TAG.findall(html))


def link_header(files: tuple[tuple[str, str], ...]) -> str:
    """One `Link` header value preloading `files`."""
    return ", ".join(f"<{url}>; rel=preload; as={kind}" for url, kind in files)


def files_key(files: tuple[tuple[str, str], ...]) -> str:
    """The cookie's value for a browser that has had `files`: a short hash of their URLs."""
    return hashlib.sha256("\n".join(url for url, _ in files).encode()).hexdigest()[:16]


def may_answer_early(handler: Any) -> bool:
    """Whether this is a browser's navigation (it will fetch what the headers name: `Sec-Fetch-Dest`, which
    curl and scripts do not send) and nothing of the session's build can answer it with anything but its page."""
    from panel.config import config

    request = handler.request
    return (request.headers.get("Sec-Fetch-Dest") == "document" and bool(handler.current_user)
            and not config.authorize_callback and "Bokeh-Session-Id" not in request.headers
            and not any(name in request.arguments for name in SESSION_ARGUMENTS))


def answered(uri: str) -> None:
    """A request for `uri` was answered: release the page requests waiting for nothing else."""
    for remaining, event in _waiting:
        remaining.discard(uri)
        if not remaining:
            event.set()


async def wait_for(uris: set[str], timeout: float = WAIT_S) -> None:
    """Until every one of `uris` was answered after this call, or `timeout`."""
    event = asyncio.Event()
    entry = (set(uris), event)
    _waiting.append(entry)
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        pass
    finally:
        _waiting.remove(entry)


def install(app: Any) -> None:
    """Wrap Panel's page handler (once per process) and watch `app`'s answered requests (the Tornado
    application of the server)."""
    from panel.io.server import DocHandler

    log_request = app.log_request

    def log_and_release(handler: Any) -> None:
        if _waiting:
            answered(handler.request.uri)
        log_request(handler)

    app.log_request = log_and_release
    original = DocHandler.get
    if getattr(original, "_oh_early_files", False):
        return

    async def get(self: Any, *args: Any, **kwargs: Any) -> None:
        path = self.request.path
        known = _files.get(path)
        early = False
        if known and self.get_cookie(COOKIE) != files_key(known) and may_answer_early(self):
            self.set_header("Content-Type", "text/html")
            self.set_header("Cache-Control", "no-store")
            self.set_header("Link", link_header(known))
            self.set_cookie(COOKIE, files_key(known), path="/", expires_days=3650, httponly=True, samesite="Strict")
            await self.flush()  # the headers now; the page once its session is built
            early = True
            await wait_for({urljoin(path, url) for url, _ in known})
        written: list[str] = []
        write = self.write

        def remember(chunk: Any) -> None:
            if isinstance(chunk, str):
                written.append(chunk)
            elif isinstance(chunk, bytes):
                written.append(chunk.decode("utf-8", "replace"))
            write(chunk)

        self.write = remember
        try:
            await original(self, *args, **kwargs)
        finally:
            del self.write
        if self.get_status() == 200 and written:
            files = linked_files("".join(written))
            if files:
                _files[path] = files
                if not early:
                    self.set_cookie(COOKIE, files_key(files), path="/", expires_days=3650, httponly=True,
                                    samesite="Strict")

    get._oh_early_files = True  # type: ignore[attr-defined]
    DocHandler.get = get
