"""The base of every page: build once per session, refresh from queries, react to live events.

A page lays out its `Slot`s once, then `update()` fills them from cached queries. In a browser
session the first fill starts once the page's HTML is answered (on a first visit 150 ms later, so the page's files
go first; `fill_on_load`: once the browser has built the page), so the document the browser pulls holds what is
filled by then; the sections fill independently: `update()` only lists each section's `fill(...)`, and the
page runs one section per turn of the document's event loop, so each section goes to the browser
as soon as it is drawn instead of the whole page waiting for its slowest part. The `.oh-ready`
marker (what tests and benchmarks wait for) is set once every section of the first fill is done, in the
same patch as the last section (a message of its own cost the browser one more patch to apply).
Each section's changes go to the browser as one patch, under one freeze of the document's model graph.
Panel's queue of websocket writes is corrected on import (`panel_app.ws_writes.install()`): Panel's own
could leave a queued patch unsent for good (under load, the Flow page's last section and its marker).

Controls the page changes itself while filling (options of a picker, a default value) never trigger
a refresh of their own: only a user's change does (`control()`), so one refresh draws each section
once. Live events that concern the page (`relevant`) schedule a refresh, throttled to one per
`min_interval` so a burst of events costs one re-read. When the ledger stops answering, the page
says so (and what to run) and refreshes when it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import panel as pn

from bus.control_client import QueryError
from panel_app.components import FILES_COOKIE, Slot, down_text, error_text, html_pane, notice, shell
from panel_app.context import AppContext
from panel_app.data import LedgerDown
from panel_app.live import LedgerState, LiveEvent
from panel_app.ws_writes import install as install_ws_writes

log = logging.getLogger(__name__)
install_ws_writes()  # every page's patches go through Panel's write queue: never leave one queued unsent
# A page's script sets FILES_COOKIE once it has run (templates/oh.html): the browser has fetched the page's files,
# so on its next page the first fill can start at once. Without it (a first visit, a new browser context) the fill
# waits FIRST_VISIT_FILL_DELAY_MS: the one event loop also serves the page's 17 files, and a fill started at once
# (~300-400 ms of it on the Symbol explorer) held them back, first paint 0.4 -> 0.7 s (page_fill on the quiet box,
# cold: first paint 0.46 s and the Symbol explorer filled in 1.43 s with 150 ms, against 0.74 and 1.50 at once; warm
# and hot, where the files are cached, a delay only made the fill later: 1.12 against 0.88 s).
FIRST_VISIT_FILL_DELAY_MS = 150


class Page:
    """One dashboard page in one browser session."""

    slug = ""
    title = ""
    watch: frozenset[str] = frozenset()  # committed event types that may change what the page shows
    min_interval = 1.0  # seconds between two refreshes caused by live events
    # When the first fill runs (`view`): False, while the browser fetches and runs the scripts, so the document it
    # then pulls holds what is filled by then and BokehJS builds and lays it out once, instead of once more per
    # section's patch after its "loaded" (docs/dashboard.md, "Filled before the browser pulls the document"). True:
    # once the browser has built the page (Panel's onload).
    fill_on_load = False

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
        self._updating = False  # inside update() or a section's fill: our own widget changes are not the user's
        self._staging = False  # collecting the sections of a refresh instead of running them
        self._tasks: list[tuple[Any, Callable[[], None], str]] = []
        self._draining = False
        self._ready = False
        self._created = time.monotonic()

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
    def control(self, *widgets: Any) -> None:
        """Refresh when the user changes one of these widgets (not when the page sets them while filling)."""
        for widget in widgets:
            widget.param.watch(self._on_control, "value")

    def _on_control(self, _event: Any) -> None:
        if not self._updating:
            self.refresh()

    @property
    def _in_session(self) -> bool:
        return self.doc is not None and self.doc.session_context is not None

    def view(self) -> pn.template.BaseTemplate:
        """Build the session's template; in a session, fill it once its HTML is answered (so the page still paints at
        once): on the event loop's next turn when the browser has the page's files (FILES_COOKIE), or
        FIRST_VISIT_FILL_DELAY_MS later when it fetches them now; with `fill_on_load`, once the browser built it."""
        template = shell(self.slug, self.title, [self.alert, *self.layout()], self.controls(), self.badge,
                         self.ready)
        if self.doc is not None and self.doc.session_context is not None:
            if self.fill_on_load:
                pn.state.onload(self.first_fill)
            elif FILES_COOKIE in (getattr(self.doc.session_context.request, "cookies", None) or {}):
                self.doc.add_next_tick_callback(self.first_fill)
            else:  # a first visit: the page's files come from this event loop too, and go first
                self.doc.add_timeout_callback(self.first_fill, FIRST_VISIT_FILL_DELAY_MS)
        else:
            self.first_fill()
        return template

    def first_fill(self) -> None:
        """The first refresh; the `.oh-ready` marker follows once all its sections are filled."""
        self.refresh()

    def _mark_ready(self) -> None:
        if not self._ready:
            self._ready = True
            log.info("%s filled in %.0f ms", self.slug, 1000 * (time.monotonic() - self._created))
            self.ready.object = f'<span class="oh-ready" data-page="{self.slug}"></span>'

    def fill(self, slot: Slot, fill: Callable[[], None], where: str = "This section") -> None:
        """Fill one section (in a session: queued, to run on its own turn of the event loop); a failed
        query becomes a notice in that section (LedgerDown goes up)."""
        if self._staging:
            self._tasks.append((slot, fill, where))
            return
        self._run_fill(slot, fill, where)

    def _run_fill(self, slot: Slot, fill: Callable[[], None], where: str) -> None:
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
        """Re-read everything (cached queries make this cheap when nothing changed); in a session the
        sections are then filled one per event-loop turn (a refresh during that replaces the rest)."""
        self._last_refresh = time.monotonic()
        self.refreshes += 1
        staged = self._in_session
        self._tasks = []
        self._updating, self._staging = True, staged
        try:
            self.update()
        except LedgerDown as exc:
            self._tasks = []
            self.show_down(str(exc))
            self._mark_ready()
            return
        except Exception as exc:
            self._tasks = []
            log.exception("%s: refresh failed", self.slug)
            self.alert.objects = [notice("error", error_text(f"{type(exc).__name__}: {exc}", "This page"))]
            self._mark_ready()
            return
        finally:
            self._updating, self._staging = False, False
        if self._tasks and staged:
            if not self._draining:
                self._draining = True
                self.doc.add_next_tick_callback(self._drain)
            return
        self._finish()

    @contextmanager
    def _one_patch(self) -> Iterator[None]:
        """One section's changes as one message to the browser and one walk of the model graph: Panel's
        `hold` combines the document's events into a single patch (the chain section was 7 messages:
        the picker's options, its value, the URL twice, the panes), and Bokeh's `models.freeze()`
        recomputes the document's set of models once, when the section is done (each pane replaced
        inside it was one recompute, a walk over every property of every model of the page)."""
        with pn.io.hold(self.doc, policy="combine"), self.doc.models.freeze():
            yield

    def _drain(self) -> None:
        """Fill the next queued section; schedule the one after (each is sent to the browser on its own)."""
        if not self._tasks:
            self._draining = False
            self._finish()
            return
        slot, fill, where = self._tasks.pop(0)
        self._updating = True
        try:
            with self._one_patch():
                self._run_fill(slot, fill, where)
                if not self._tasks:  # the last section: the ledger's state and the ready marker go in its patch
                    self._draining = False
                    self._finish()
        except LedgerDown as exc:
            self._tasks = []
            self.show_down(str(exc))
        finally:
            self._updating = False
        if self._tasks:
            self.doc.add_next_tick_callback(self._drain)
            return
        if self._draining:  # LedgerDown: the rest was dropped
            self._draining = False
            self._finish()

    def _finish(self) -> None:
        """After every section of a refresh: the ledger's state on top, then the ready marker."""
        if self.ctx.queries.is_down:  # what is shown came from the cache: say it may be stale
            self.show_down()
        elif self.alert.objects:
            self.alert.objects = []
        self._mark_ready()

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
