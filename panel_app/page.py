"""The base of every page: build once per session, refresh from queries, react to live events.

A page lays out its `Slot`s once, then `update()` fills them from cached queries. Live events that
concern the page (`relevant`) schedule a refresh, throttled to one per `min_interval` so a burst
of events costs one re-read; events never arrive faster than the page can draw them. When the
ledger stops answering, the page says so (and what to run) and refreshes when it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import panel as pn

from bus.control_client import QueryError
from panel_app.components import Slot, down_text, error_text, html_pane, notice, shell
from panel_app.context import AppContext
from panel_app.data import LedgerDown
from panel_app.live import LedgerState, LiveEvent

log = logging.getLogger(__name__)


class Page:
    """One dashboard page in one browser session."""

    slug = ""
    title = ""
    watch: frozenset[str] = frozenset()  # committed event types that may change what the page shows
    min_interval = 1.0  # seconds between two refreshes caused by live events

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.read = ctx.queries.read
        self.doc = pn.state.curdoc
        self.alert = pn.Column(sizing_mode="stretch_width")
        self.badge = html_pane("")
        self.ready = html_pane("", height=0, margin=0)
        self.up: bool | None = None
        self.refreshes = 0
        self._last_refresh = 0.0
        self._pending = False

    # ---------------------------------------------------------------- to implement
    def controls(self) -> list[Any]:
        """Widgets for the sidebar (their values live in the URL)."""
        return []

    def layout(self) -> list[Any]:
        """The page's sections, laid out once."""
        return []

    def update(self) -> None:
        """Fill the sections from queries (may raise LedgerDown)."""

    def relevant(self, event: LiveEvent) -> bool:
        """Whether a committed event may change what this page shows."""
        return event.type in self.watch

    def on_events(self, events: list[LiveEvent]) -> None:
        """Apply live events directly (before any throttled refresh); pages with live widgets override."""

    # ---------------------------------------------------------------- machinery
    def view(self) -> pn.template.BaseTemplate:
        """Build the session's template; fill it once the browser has it (so the page paints at once)."""
        template = shell(self.slug, self.title, [self.alert, *self.layout()], self.controls(), self.badge,
                         self.ready)
        if self.doc is not None and self.doc.session_context is not None:
            pn.state.onload(self.first_fill)
        else:
            self.first_fill()
        return template

    def first_fill(self) -> None:
        """The first refresh, then the `.oh-ready` marker tests and benchmarks wait for."""
        self.refresh()
        self.ready.object = f'<span class="oh-ready" data-page="{self.slug}"></span>'

    def fill(self, slot: Slot, fill: Callable[[], None], where: str = "This section") -> None:
        """Run one section's fill; a failed query becomes a notice in that section (LedgerDown goes up)."""
        try:
            fill()
        except LedgerDown:
            raise
        except QueryError as exc:
            slot.notice("error", error_text(str(exc), where))
        except Exception as exc:  # never a traceback in the browser
            log.exception("%s: %s failed", self.slug, where)
            slot.notice("error", error_text(f"{type(exc).__name__}: {exc}", where))

    def refresh(self) -> None:
        """Re-read everything (cached queries make this cheap when nothing changed)."""
        self._last_refresh = time.monotonic()
        self.refreshes += 1
        try:
            self.update()
        except LedgerDown as exc:
            self.show_down(str(exc))
            return
        except Exception as exc:
            log.exception("%s: refresh failed", self.slug)
            self.alert.objects = [notice("error", error_text(f"{type(exc).__name__}: {exc}", "This page"))]
            return
        if self.ctx.queries.is_down:  # what is shown came from the cache: say it may be stale
            self.show_down()
        elif self.alert.objects:
            self.alert.objects = []

    def show_down(self, message: str | None = None) -> None:
        """Say the ledger is down and what to run."""
        text = down_text(message or self.ctx.queries.down_message())
        current = self.alert.objects
        if not (len(current) == 1 and getattr(current[0], "object", None) == text):
            self.alert.objects = [notice("down", text)]
        self._badge(False)

    def _badge(self, up: bool, state: LedgerState | None = None) -> None:
        if up and state is not None:
            self.badge.object = (f'<div class="oh-ledger up">Ledger: up · seq {state.head_seq:,} · '
                                 f'{len(state.heartbeats)} services beating</div>')
        elif not up:
            self.badge.object = '<div class="oh-ledger down">Ledger: not running · run <code>oh up</code></div>'

    def request_refresh(self) -> None:
        """Refresh now, or once the throttle interval has passed (one pending refresh at most)."""
        if self._pending:
            return
        wait = self._last_refresh + self.min_interval - time.monotonic()
        if wait <= 0 or self.doc is None:
            self.refresh()
            return
        self._pending = True
        try:
            self.doc.add_timeout_callback(self._deferred, int(wait * 1000) + 1)
        except Exception:
            self._pending = False

    def _deferred(self) -> None:
        self._pending = False
        self.refresh()

    def live(self, events: list[LiveEvent], state: LedgerState | None, lost: bool) -> None:
        """The session feed's handler: ledger up/down transitions, live events, throttled refreshes."""
        if state is not None:
            was_up, self.up = self.up, state.up
            self._badge(state.up, state)
            self.on_state(state)
            if not state.up and was_up is not False:
                self.show_down()
            elif state.up and was_up is False:
                self.refresh()  # back: re-read everything
                return
        if events:
            self.on_events(events)
        if lost or any(self.relevant(e) for e in events):
            self.request_refresh()

    def on_state(self, state: LedgerState) -> None:
        """The ledger's latest status (once a second); pages showing liveness override."""
