"""Live portfolio: Start/Stop the live_stream worker, live marks per position and structure, recent
fills and stream health, all updating in place.

- **Start / Stop** send the same journaled commands as `oh live start` / `oh live stop` (StartLive
  for $OH_HOME/config/portfolio.json, provider sim by default; StopLive) through a
  `bus.producer.Producer`, in a thread so a slow ledger never blocks the server. Start stays
  disabled while the portfolio file has an error (checked with oh.domain.portfolio's loader and the
  subscription planner, like the CLI) and the page says why; the file is re-checked whenever it
  changes, without a reload.
- **Marks** come from `oh.domain.marks.mark_portfolio` (mark, PnL $ and %, DTE, spread %, quote age,
  stale flag and warnings per position; net mark and net PnL per structure; per-leg detail). The
  page calls it with the clock (`now=time.time()`), so a feed that stalls completely turns every
  quote stale after the threshold (default 30 s, `?stale=` in the URL) and a banner says so.
- **Ticks** come from the server's one shared tick reader (panel_app.live_ticks), never a socket
  per tab. Each session redraws on its own periodic callback (every OH_LIVE_REFRESH_MS, default
  250 ms): the tables are patched cell by cell (panel_app.live_tables.PatchedTable), never rebuilt.
- **Stream health** is the worker's LiveStatus (state, last event age, reconnects, last error in
  words per stream). No status for 2 s means "live_stream not answering".
- **Recent fills** are read from `trade_updates` through the ledger's query endpoint; the cached
  result is dropped by the live hub when a TradeUpdated is committed, which refreshes this section.
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import panel as pn

from bus.producer import Producer
from contracts import Command, StartLive, StopLive
from oh.adapters.portfolio_file import load
from oh.domain.live_plan import PROVIDERS, build_plan
from oh.domain.marks import DEFAULT_STALE_AFTER, mark_portfolio
from oh.domain.portfolio import Portfolio, PortfolioError
from panel_app import live_ticks
from panel_app.components import Slot, html_pane, notice, sync_url
from panel_app.live_tables import (
    LEG_COLUMNS,
    POSITION_COLUMNS,
    PatchedTable,
    health_html,
    leg_rows,
    position_rows,
)
from panel_app.live_ticks import SILENT_AFTER
from panel_app.page import Page

log = logging.getLogger(__name__)

REFRESH_MS = int(os.environ.get("OH_LIVE_REFRESH_MS", "250"))
FILLS = ("SELECT ts, order_id, symbol, event, side, qty, price, filled_at FROM trade_updates "
         "ORDER BY ts DESC LIMIT 50")
FILL_COLUMNS = [("ts", "time (UTC)"), ("symbol", "symbol"), ("event", "event"), ("side", "side"), ("qty", "qty"),
                ("price", "price"), ("order_id", "order")]
NOT_ANSWERING = ("**live_stream not answering**: {since}. Is it running? (`oh up`, `oh status`). "
                 "Marks below turn stale by the clock.")


class LivePortfolioPage(Page):
    """The live portfolio page of one browser session (see the module docstring)."""

    slug = "live"
    title = "Live portfolio"
    watch = frozenset({"TradeUpdated"})
    min_interval = 1.0

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.ticks = live_ticks.shared(ctx.home)
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
        self.command_line = html_pane("", margin=(12, 10))
        self.file_note = pn.Column(sizing_mode="stretch_width")
        self.banner = pn.Column(sizing_mode="stretch_width")
        self.summary = html_pane("")
        self.positions = PatchedTable(POSITION_COLUMNS, "oh-live-positions")
        self.legs = PatchedTable(LEG_COLUMNS, "oh-live-legs")
        self.positions_slot = Slot("Positions (live marks; structures at their net mark and net PnL)")
        self.legs_slot = Slot("Structure legs")
        self.health = Slot("Stream health")
        self.fills = Slot("Recent fills and order updates")
        self.positions_slot.show(self.positions.widget)
        self.legs_slot.show(self.legs.widget)
        self.portfolio: Portfolio | None = None
        self.file_error: str | None = None
        self._file_key: tuple[Any, ...] | None = None
        self._outbox: tuple[str, str, str | None] | None = None  # (kind, command id, error) from the sender thread
        self._command: tuple[str, str, str | None] | None = None
        self._sending = False
        self._texts: dict[str, str] = {}
        self._callback: Any = None
        self._attached = False
        self.ticks_done = 0

    # ---------------------------------------------------------------- layout
    def controls(self) -> list[Any]:
        return [self.provider, self.rate, self.stale_after]

    def layout(self) -> list[Any]:
        return [pn.Row(self.start_button, self.stop_button, self.command_line, sizing_mode="stretch_width"),
                self.file_note, self.banner, self.summary, self.positions_slot.panel, self.legs_slot.panel,
                self.health.panel, self.fills.panel]

    def first_fill(self) -> None:
        """Fill once, then start this session's periodic redraw (stopped when the session ends)."""
        self.tick()
        super().first_fill()
        if self.doc is not None and self.doc.session_context is not None and self._callback is None:
            self.ticks.attach()
            self._attached = True
            self._callback = pn.state.add_periodic_callback(self.tick, period=REFRESH_MS)
            self.doc.on_session_destroyed(self._destroyed)

    def _destroyed(self, _session_context: Any) -> None:
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
        self.fills.rows(rows, FILL_COLUMNS)

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

    # ---------------------------------------------------------------- the periodic redraw
    def tick(self) -> None:
        """Redraw from the shared tick state and the clock (every REFRESH_MS); never raises."""
        try:
            self._tick()
            self.ticks_done += 1
        except Exception as exc:
            log.exception("live page: redraw failed")
            self.alert.objects = [notice("error", f"**The live view could not be drawn:** {html.escape(str(exc))}")]

    def _tick(self) -> None:
        now = time.time()
        view = self.ticks.view(now)
        self._check_portfolio()
        if self._outbox is not None:
            self._command, self._outbox, self._sending = self._outbox, None, False
        self._buttons()
        self._show_command(view)
        stale_after = float(self.stale_after.value or DEFAULT_STALE_AFTER)
        stale_banner = None
        if self.portfolio is not None:
            provider = view.status.provider if view.status is not None and view.status.provider else self.provider.value
            marks = mark_portfolio(self.portfolio, view.quotes, now=now, provider=str(provider),
                                   stale_after=stale_after)
            self.positions.update(position_rows(marks, view.quotes))
            self.legs.update(leg_rows(marks, view.quotes))
            self.legs_slot.panel.visible = bool(self.legs.rows)
            self._set_text(self.summary, "summary", _cards(marks.value, marks.pnl, marks.marked,
                                                           len(marks.positions), marks.stale, len(view.quotes)))
            if marks.stale:
                stale_banner = (f"**Stale quotes:** {marks.stale} of {len(marks.positions)} positions have a quote "
                                f"older than {stale_after:g} s; their marks are not live.")
        self._set_alert(self.banner, "stale", stale_banner, "oh-live-stale")
        if not view.answering:
            text = _not_answering(view)
            if self.health._kind != "notice-error" or self.health._data != text:
                self.health.notice("error", text)
        elif view.status is not None:
            self.health.html(health_html(view.status, now, view.lost))

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
        box.objects = [pn.pane.Alert(text, alert_type="warning", css_classes=["oh-notice", css],
                                     sizing_mode="stretch_width")] if text else []

def _cards(value: float, pnl: float, marked: int, positions: int, stale: int, quoted: int) -> str:
    cards = [("Value (marked)", f"{value:,.2f}"), ("PnL (marked)", f"{pnl:+,.2f}"),
             ("Marked", f"{marked} of {positions}"), ("Stale", str(stale)), ("Symbols quoted", str(quoted))]
    inner = "".join(f'<div class="oh-card"><div class="oh-card-k">{k}</div><div class="oh-card-v">{v}</div></div>'
                    for k, v in cards)
    return f'<div class="oh-cards oh-live-summary">{inner}</div>'


def _not_answering(view: live_ticks.TickView) -> str:
    """The health section's text when no LiveStatus came for SILENT_AFTER seconds (stable while silent)."""
    if view.status is None:
        since = "no status on the tick channel since this dashboard started"
    else:
        last = time.strftime("%H:%M:%S", time.gmtime(view.status.ts))
        since = f"no status on the tick channel for more than {SILENT_AFTER:g} s (the last one at {last} UTC)"
    return NOT_ANSWERING.format(since=since)
