"""Live portfolio: Start/Stop the live_stream worker, live marks per position and structure, recent
fills and stream health, all updating in place.

- **Start / Stop** send the same journaled commands as `oh live start` / `oh live stop` (StartLive
  for $OH_HOME/config/portfolio.json, provider sim by default; StopLive) through a
  `bus.producer.Producer`, in a thread so a slow ledger never blocks the server. Start stays
  disabled while the portfolio file has an error (checked with oh.domain.portfolio's loader and the
  subscription planner, like the CLI) and the page says why; the file is re-checked whenever it
  changes, without a reload.
- **Marks** come from the server's one live marker (panel_app.live_marks): it marks the portfolio
  once per batch of ticks (at most every OH_LIVE_MARK_MS, default 25 ms, and at least once a
  second, by the clock) for every session holding the same portfolio and stale threshold, and
  hands the result to this session's marks channel when its tab can take it; the channel then writes
  only the cells that changed, of the positions, the legs and the summary cards, in one frame on the
  tab's own websocket (panel_app.live_channel; panel_app.live_grid.PatchedTable and its riders). Mark, PnL $ and %, DTE, spread %, quote age,
  stale flag and warnings per position, net mark and net PnL per structure, per-leg detail, all in trader units;
  options named by underlying, expiry, strike and right. Ages are measured against the clock, so a
  feed that stalls completely turns every quote stale after the threshold (default 30 s, `?stale=`
  in the URL) and a banner says so.
- **Risk limits**: the portfolio's risk profile judged against the live marks
  (oh.domain.limits.breaches: each position's size in % of net liq); a banner names each breach,
  its size and the limit in words.
- **The slow check** (each session, every OH_LIVE_REFRESH_MS, default 500 ms): the portfolio file,
  the command's outcome, the stale banner, stream health. The limits banner's numbers move with the marks:
  its content rides in the marks channel's frames like the summary cards (no Bokeh change of the page while
  marks flow); Bokeh only shows or hides it.
- **Stream health** is the worker's LiveStatus (state, last event age, reconnects, last error in
  words per stream). No status for 2 s means "live_stream not answering".
- **Recent fills** are read from `trade_updates` through the ledger's query endpoint; the cached
  result is dropped by the live hub when a TradeUpdated is committed, which refreshes this section.
"""

from __future__ import annotations

import hashlib
import html
import logging
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import panel as pn
from panel.custom import JSComponent

from bus.producer import Producer
from contracts import Command, StartLive, StopLive
from oh.adapters.portfolio_file import load
from oh.domain import units
from oh.domain.limits import Breach
from oh.domain.live_plan import PROVIDERS, build_plan
from oh.domain.marks import DEFAULT_STALE_AFTER
from oh.domain.portfolio import Portfolio, PortfolioError
from panel_app import live_channel, live_marks, live_ticks
from panel_app.components import CSS, Slot, html_pane, notice, sync_url
from panel_app.live_grid import LiveHTML, PatchedTable
from panel_app.live_marks import LiveMarks, MarkKey, Subscription
from panel_app.live_tables import CELL_CSS, LEG_COLUMNS, POSITION_COLUMNS, fills_html, health_html
from panel_app.live_ticks import SILENT_AFTER
from panel_app.page import Page
from services.settings import env_int

log = logging.getLogger(__name__)

REFRESH_MS = env_int("OH_LIVE_REFRESH_MS", 500, 1)  # the slow check (marks come when ticks do)
FILLS = ("SELECT ts, order_id, symbol, event, side, qty, price, filled_at FROM trade_updates "
         "ORDER BY ts DESC LIMIT 50")
NOT_ANSWERING = ("**live_stream not answering**: {since}. Is it running? (`oh up`, `oh status`). "
                 "Marks below turn stale by the clock.")


class PhoneSidebar(JSComponent):
    """Folds the template's sidebar away when the page opens on a narrow screen (a phone): Bootstrap's
    template shows it by default, over two thirds of a 390 px screen. The header's menu button opens it.
    (Page-local until the shared template does this for every page.)"""

    _esm = """
export function render({ el }) {
  if (!window.matchMedia('(max-width: 767.98px)').matches) return;
  const sidebar = document.getElementById('sidebar'), toggle = document.getElementById('sidebar-toggle');
  if (sidebar && sidebar.classList.contains('show')) {
    sidebar.classList.remove('show');
    if (toggle) { toggle.classList.add('collapsed'); toggle.setAttribute('aria-expanded', 'false'); }
  }
}
"""


class LivePortfolioPage(Page):
    """The live portfolio page of one browser session (see the module docstring)."""

    slug = "live"
    title = "Live portfolio"
    watch = frozenset({"TradeUpdated"})
    min_interval = 1.0
    # The first fill attaches the tick reader, opens the marks channel and subscribes to the marker: once the browser
    # has the page, not while it loads (filled before, a cold load cost `oh ui` 785 ms of CPU against 305 and came
    # later: page_fill, 2026-12-08).
    fill_on_load = True

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.marker = live_marks.shared(ctx.home)
        self.ticks = self.marker.ticks
        self.path: Path = ctx.home.config / "portfolio.json"
        self.provider = pn.widgets.Select(name="Provider", options=list(PROVIDERS), value="sim")
        self.rate = pn.widgets.IntInput(name="Sim quotes per second", value=200, start=1, end=100_000)
        self.stale_after = pn.widgets.FloatInput(name="Stale after (seconds)", value=DEFAULT_STALE_AFTER, start=0.5)
        for widget, name in ((self.provider, "provider"), (self.rate, "rate"), (self.stale_after, "stale")):
            sync_url(widget, name)
        self.start_button = pn.widgets.Button(name="Start", button_type="success", width=110,
                                              css_classes=["oh-live-start"])
        self.stop_button = pn.widgets.Button(name="Stop", button_type="danger", width=110,
                                             css_classes=["oh-live-stop"])
        self.start_button.on_click(lambda _e: self._send(StartLive(
            provider=str(self.provider.value), sim_quotes_per_second=float(self.rate.value or 200))))
        self.stop_button.on_click(lambda _e: self._send(StopLive()))
        self.command_line = html_pane("", margin=(12, 10), sizing_mode=None,
                                      styles={"flex": "1 1 220px"})
        self.file_note = pn.Column(sizing_mode="stretch_width")
        self.banner = pn.Column(sizing_mode="stretch_width")
        # The risk-limit banner's numbers move with every marking: it rides in the marks channel's frames (a
        # LiveHTML rider) instead of a Bokeh text change every slow check, which re-rendered a Markdown pane
        # on the page while marks flowed; only its showing and hiding go through Bokeh.
        self.limits = LiveHTML(html="", role="limits", visible=False, sizing_mode="stretch_width", margin=(5, 10),
                               stylesheets=[*pn.pane.Alert._stylesheets, CSS],
                               css_classes=["alert", "alert-warning", "oh-notice", "oh-live-limits"])
        self.summary = LiveHTML(html="", role="summary", sizing_mode="stretch_width", stylesheets=[CSS])
        self.health_view = LiveHTML(html="", sizing_mode="stretch_width", stylesheets=[CSS, CELL_CSS])
        self.legs = PatchedTable(LEG_COLUMNS, "oh-live-legs", role="legs", carrier=False)
        self.positions = PatchedTable(POSITION_COLUMNS, "oh-live-positions",
                                      riders=[self.legs, self.summary, self.limits])
        self.positions_slot = Slot("Positions (live marks; structures at their net mark and net PnL)")
        self.legs_slot = Slot("Structure legs")
        self.health = Slot("Stream health")
        self.fills = Slot("Recent fills and order updates")
        self.positions_slot.show(self.positions.widget)
        self.legs_slot.show(self.legs.widget)
        self.portfolio: Portfolio | None = None
        self.portfolio_version = ""  # a digest of the loaded portfolio: sessions holding the same one share marks
        self.file_error: str | None = None
        self._file_key: tuple[Any, ...] | None = None
        self._outbox: tuple[str, str, str | None] | None = None  # (kind, command id, error) from the sender thread
        self._command: tuple[str, str, str | None] | None = None
        self._sending = False
        self._texts: dict[str, str] = {}
        self._callback: Any = None
        self._attached = False
        self._subscription: Subscription | None = None
        self.channel: live_channel.Channel | None = None  # the tab's marks channel, from the first fill on
        self.latest: LiveMarks | None = None  # the newest marks this session applied
        self.ticks_done = 0  # slow checks done
        self.marks_applied = 0

    # ---------------------------------------------------------------- layout
    def controls(self) -> list[Any]:
        return [self.provider, self.rate, self.stale_after]

    def layout(self) -> list[Any]:
        buttons = pn.FlexBox(self.start_button, self.stop_button, self.command_line, flex_wrap="wrap",
                             align_items="center", sizing_mode="stretch_width", css_classes=["oh-live-buttons"])
        return [PhoneSidebar(height=0, width=0, margin=0), buttons, self.file_note, self.banner, self.limits,
                self.summary, self.positions_slot.panel, self.legs_slot.panel, self.health.panel, self.fills.panel]

    def first_fill(self) -> None:
        """Fill once, subscribe to the live marker, start this session's slow check (all stopped when the
        session ends)."""
        self.tick()
        super().first_fill()
        if self.doc is not None and self.doc.session_context is not None and self._callback is None:
            from tornado.ioloop import IOLoop

            self.ticks.attach()
            self._attached = True
            self.channel = live_channel.open_channel(IOLoop.current(), self.positions, self._fill_tables)
            self.positions.widget.token = self.channel.token
            self._subscribe()
            self._callback = pn.state.add_periodic_callback(self.tick, period=REFRESH_MS)
            self.doc.on_session_destroyed(self._destroyed)

    def _destroyed(self, _session_context: Any) -> None:
        if self.channel is not None:
            self.channel.close()  # the token dies with the session, and the tab's socket closes
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._callback is not None:
            try:
                self._callback.stop()
            except Exception:
                log.debug("periodic callback already gone", exc_info=True)
            self._callback = None
        if self._attached:
            self._attached = False
            self.ticks.detach()

    # ---------------------------------------------------------------- history (fills)
    def update(self) -> None:
        rows = self.read(FILLS).to_pylist()
        if not rows:
            self.fills.notice("info", "No fills or order updates yet. Trade updates are journaled into "
                                      "`trade_updates` while the fills stream runs (press **Start**).")
            return
        self.fills.html(fills_html(rows))

    # ---------------------------------------------------------------- commands
    def _send(self, command: Command) -> None:
        """Send a StartLive/StopLive through the ledger in a thread; the next tick shows the outcome."""
        if self._sending or (isinstance(command, StartLive) and self.file_error):
            return
        self._sending = True
        self._command = ("start" if isinstance(command, StartLive) else "stop", command.id, None)
        self._buttons()
        self._set_text(self.command_line, "command", f"sending {type(command).__name__}…")
        threading.Thread(target=self._deliver, args=(command,), name="oh-ui-live-command", daemon=True).start()

    def _deliver(self, command: Command) -> None:
        kind = "start" if isinstance(command, StartLive) else "stop"
        error: str | None = None
        producer = Producer(self.ctx.home)
        try:
            producer.send(command)
            producer.flush(timeout=10.0)
            if producer.rejected:
                error = f"the ledger rejected the command: {producer.rejected[0][1]}"
        except TimeoutError:
            error = "the ledger did not acknowledge the command within 10 s: is oh running? (`oh up`, `oh status`)"
        except Exception as exc:  # never a traceback in the browser
            log.exception("sending %s failed", type(command).__name__)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            producer.close()
        log.info("live page sent %s %s%s", type(command).__name__, command.id, f" ({error})" if error else "")
        self._outbox = (kind, command.id, error)

    # ---------------------------------------------------------------- marks (from the live marker)
    def _key(self) -> MarkKey:
        return MarkKey(portfolio=self.portfolio_version, provider=str(self.provider.value),
                       stale_after=float(self.stale_after.value or DEFAULT_STALE_AFTER))

    def _subscribe(self) -> None:
        """Join the live marker with this session's portfolio and settings, or tell it they changed."""
        if self.portfolio is None or self.doc is None or self.doc.session_context is None or self.channel is None:
            return
        if self._subscription is None:
            self._subscription = self.marker.subscribe(self.doc, self._key(), self.portfolio, self.apply, direct=True)
            self._subscription.ready = self.channel.ready
            self.channel.on_ready = lambda: self.marker.wake(dirty=False)
            self.channel.fresh = self.marker.mark_every
        else:
            self._subscription.change(self._key(), self.portfolio)

    def apply(self, result: LiveMarks) -> None:
        """Take a marking (in the marker's thread): kept for the slow check's banners, handed to the channel."""
        if result.key.portfolio != self.portfolio_version or self.channel is None:
            return  # marks of the previous portfolio, delivered before the marker saw the change
        self.latest = result
        if self.doc is not None and (self.legs_slot.panel.visible != bool(result.legs)
                                     or self.limits.visible != bool(result.breaches)):
            self.doc.add_next_tick_callback(self._show_legs)
        self.channel.offer(result)
        self.marks_applied += 1

    def _show_legs(self) -> None:
        """Show the legs' section only when a structure has legs, the limits banner only when a limit is broken
        (on this session's event loop)."""
        latest = self.latest
        if latest is not None and self.legs_slot.panel.visible != bool(latest.legs):
            self.legs_slot.panel.visible = bool(latest.legs)
        if latest is not None and self.limits.visible != bool(latest.breaches):
            self.limits.visible = bool(latest.breaches)

    def _fill_tables(self, result: LiveMarks) -> None:
        """Put a marking's rows into the tables (on the server's event loop, for the channel's next frame)."""
        if result.key.portfolio != self.portfolio_version:
            return
        self.legs.update(result.legs)  # the legs, the summary cards and the limits ride in the positions' frames
        self.summary.show(result.summary)
        self.limits.show(_limits_html(result.breaches))
        self.positions.update(result.positions)

    # ---------------------------------------------------------------- the slow check
    def tick(self) -> None:
        """The slow check (every REFRESH_MS): portfolio file, command outcome, banners, health; never raises."""
        try:
            self._tick()
            self.ticks_done += 1
        except Exception as exc:
            log.exception("live page: the slow check failed")
            self.alert.objects = [notice("error", f"**The live view could not be drawn:** {html.escape(str(exc))}")]

    def _tick(self) -> None:
        now = time.time()
        view = self.ticks.view(now)
        self._check_portfolio()
        self._subscribe()
        if self._outbox is not None:
            self._command, self._outbox, self._sending = self._outbox, None, False
        self._buttons()
        self._show_command(view)
        stale_after = float(self.stale_after.value or DEFAULT_STALE_AFTER)
        latest = self.latest
        stale_banner = None
        if latest is not None and latest.marks.stale:
            total = len(latest.marks.positions)
            stale_banner = (f"**Stale quotes:** {latest.marks.stale} of {units.plural(total, 'position')} have a "
                            f"quote older than {stale_after:g} s; their marks are not live.")
        self._set_alert(self.banner, "stale", stale_banner, "oh-live-stale")
        if not view.answering:
            text = _not_answering(view)
            if self.health._kind != "notice-error" or self.health._data != text:
                self.health.notice("error", text)
        elif view.status is not None:
            if self.health._pane is not self.health_view:
                self.health._replace("live", self.health_view, None)
            self.health_view.show(health_html(view.status, now, view.lost))

    def _buttons(self) -> None:
        start_off = self._sending or self.file_error is not None or self.portfolio is None
        if self.start_button.disabled != start_off:
            self.start_button.disabled = start_off
        if self.stop_button.disabled != self._sending:
            self.stop_button.disabled = self._sending

    def _show_command(self, view: live_ticks.TickView) -> None:
        status = view.status if view.answering else None
        text = ""
        if self._sending:
            return
        if self._command is not None:
            kind, command_id, error = self._command
            if error:
                text = f'<span class="oh-stale">could not {kind}: {html.escape(error)}</span>'
            elif kind == "start" and status is not None and status.command_id == command_id:
                text = ('<span class="oh-stale">live_stream could not start: '
                        f'{html.escape(status.last_error or "unknown error")}</span>' if status.state == "error"
                        else "streaming")
            elif kind == "stop" and status is not None and status.state == "idle":
                text = "streams stopped"
            else:
                text = f"{'StartLive' if kind == 'start' else 'StopLive'} sent; waiting for live_stream to confirm"
        elif status is not None:
            text = {"idle": "idle: press Start to stream the portfolio", "streaming": "streaming",
                    "error": f"error: {html.escape(status.last_error or '')}"}[status.state]
        self._set_text(self.command_line, "command", f'<span class="oh-live-command">{text}</span>')

    # ---------------------------------------------------------------- the portfolio file
    def _check_portfolio(self) -> None:
        """Re-validate the portfolio file when it (or the provider) changed; keep the last good one for marks."""
        try:
            stat = self.path.stat()
            key: tuple[Any, ...] = (stat.st_mtime_ns, stat.st_size, self.provider.value)
        except OSError:
            key = (None, self.provider.value)
        if key == self._file_key:
            return
        self._file_key = key
        try:
            portfolio = load(self.path)
            plan = build_plan(portfolio, provider=str(self.provider.value))
        except PortfolioError as exc:
            self.file_error = str(exc)
            self.file_note.objects = [notice("error", f"**Start is disabled: the portfolio file has an error.** "
                                                      f"{html.escape(str(exc))}. Fix the file; this page checks it "
                                                      "again by itself.")]
            return
        self.file_error, self.portfolio = None, portfolio
        self.portfolio_version = hashlib.sha1(msgspec.msgpack.encode(portfolio)).hexdigest()
        lines = [(f"{len(plan.stocks)} stocks, {len(plan.options)} option contracts, fills "
                  f"{'on' if plan.fills else 'off'} from `{self.path}`")]
        lines += [f"warning: {html.escape(w)}" for w in plan.warnings]
        self.file_note.objects = [notice("info", "  \n".join(lines))]

    # ---------------------------------------------------------------- small helpers
    def _set_text(self, pane: Any, key: str, text: str) -> None:
        if self._texts.get(key) != text:
            self._texts[key] = text
            pane.object = text

    def _set_alert(self, box: pn.Column, key: str, text: str | None, css: str) -> None:
        """Show a warning banner with `text` (None: none), replacing it only when the text changes."""
        if self._texts.get(f"alert-{key}") == (text or ""):
            return
        self._texts[f"alert-{key}"] = text or ""
        if text and box.objects:
            box.objects[0].object = text  # the same banner, new words: no re-render
        else:
            box.objects = [pn.pane.Alert(text, alert_type="warning", css_classes=["oh-notice", css],
                                         sizing_mode="stretch_width")] if text else []


def _limits_html(found: tuple[Breach, ...]) -> str:
    """The risk-limit banner's content: each breach in words ("": none). Its numbers move with the marks, so
    it rides in every frame that changes it."""
    if not found:
        return ""
    items = "".join(f"<li>{html.escape(b.label)}: {html.escape(b.text)}</li>" for b in found)
    return (f"<p><strong>Risk limits: {units.plural(len(found), 'breach', 'breaches')}</strong> (the portfolio's "
            "risk_profile, judged on these live marks; net delta is judged on the Portfolio page, live marks carry no "
            f"Greeks)</p><ul>{items}</ul>")


def _not_answering(view: live_ticks.TickView) -> str:
    """The health section's text when no LiveStatus came for SILENT_AFTER seconds (stable while silent)."""
    if view.status is None:
        since = "no status on the tick channel since this dashboard started"
    else:
        last = time.strftime("%H:%M:%S", time.gmtime(view.status.ts))
        since = f"no status on the tick channel for more than {SILENT_AFTER:g} s (the last one at {last} UTC)"
    return NOT_ANSWERING.format(since=since)
