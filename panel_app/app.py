"""The routes: one Panel app per page, each session wired to the server's live hub.

A session builds its page, subscribes one bounded feed to the hub, and unsubscribes when Bokeh
destroys the session (the tab closed), so closed tabs cost nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import panel as pn

from panel_app import context
from panel_app.components import notice
from panel_app.page import Page
from panel_app.pages.derived import DerivedPage
from panel_app.pages.explorer import ExplorerPage
from panel_app.pages.flow import FlowPage
from panel_app.pages.health import HealthPage
from panel_app.pages.live import LivePortfolioPage
from panel_app.pages.portfolio import PortfolioPage
from panel_app.pages.symbol import SymbolPage

log = logging.getLogger(__name__)

PAGES: tuple[type[Page], ...] = (HealthPage, PortfolioPage, SymbolPage, FlowPage, DerivedPage, ExplorerPage,
                                 LivePortfolioPage)


def session(page_cls: type[Page]) -> Any:
    """Build one page for the current session and connect it to the live hub."""
    ctx = context.get()
    started = time.perf_counter()
    try:
        page = page_cls(ctx)
        view = page.view()
    except Exception as exc:  # never a traceback in the browser
        log.exception("building %s failed", page_cls.slug)
        return pn.Column(notice("error", f"**This page could not be built:** {type(exc).__name__}: {exc}. "
                                          "Details are in `OH_HOME/logs/ui.log`."))
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        feed = ctx.hub.subscribe(doc, page.live)
        doc.on_session_destroyed(lambda _session_context: feed.close())
    log.info("%s session built in %.0f ms (%d sessions live)", page_cls.slug, 1000 * (time.perf_counter() - started),
             ctx.hub.sessions)
    return view


def route(page_cls: type[Page]) -> Callable[[], Any]:
    """The function Panel calls for each new session of one page."""

    def build() -> Any:
        return session(page_cls)

    build.__name__ = f"{page_cls.slug}_page"
    return build


def routes() -> dict[str, Callable[[], Any]]:
    """slug -> session builder, for pn.serve."""
    return {page.slug: route(page) for page in PAGES}
