"""One streaming session at a time: start from a StartLive, stop on StopLive, report, watch for silence.

`LiveManager.start(command)` stops any current session, reads and validates the portfolio, builds
the subscription plan (oh.domain.live_plan: the contract cap applies before anything subscribes), makes a
fresh Conflator that accepts only the planned symbols, and starts the provider's feed (oh.adapters.sim.stream
or oh.adapters.alpaca.stream) in background threads; it returns at once. A portfolio that cannot be read puts
the worker in state `error` with the reason, and nothing streams.

An alpaca session with fills also runs a FillReconciler (services.live.fills): before the feed starts it
records the home's first watermark, and whenever the trade-updates stream is listening (the first
connect and every reconnect) it fetches the fills since then over REST and journals what the stream
missed, so a fill is never lost to a crash of this worker or a dropped connection.

The publisher thread (services.live.publisher) calls `status()` and `watchdog()` twice a second;
`watchdog` asks the feed to reconnect a quote stream that is connected but silent for
`silence_after` seconds (trade updates are rare by nature, so the fills stream is not watched).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bus.home import Home
from contracts import StartLive, TradeUpdated
from contracts.live import TICKS_ENDPOINT, LiveCounters, LiveStatus, StreamHealth
from oh.adapters.portfolio_file import load
from oh.adapters.streams import DEFAULT_SILENCE_SECONDS, Feed
from oh.domain.conflate import Conflator
from oh.domain.live_plan import LivePlan, build_plan
from oh.domain.marks import NEW_YORK
from oh.domain.portfolio import PortfolioError
from services.live.fills import FillReconciler
from services.live.publisher import FillJournal, TickPublisher

log = logging.getLogger(__name__)

WATCHED = ("stocks", "options")


@dataclass
class Session:
    """What one StartLive set running."""

    command: StartLive
    portfolio: Path
    plan: LivePlan
    conflator: Conflator
    feed: Feed
    started_at: float
    resumed: bool = False
    stopped_at: float | None = None
    warnings: list[str] = field(default_factory=list)
    reconciler: FillReconciler | None = None


def portfolio_path(home: Home, command: StartLive) -> Path:
    """The portfolio file a StartLive names (None: $OH_HOME/config/portfolio.json)."""
    return Path(command.portfolio).expanduser() if command.portfolio else home.config / "portfolio.json"


class LiveManager:
    """Owns the current session, the tick publisher and the fills journal of the live_stream worker."""

    def __init__(self, home: Home, *, silence_after: float | None = None, flush: float | None = None) -> None:
        self.home = home
        self.silence_after = silence_after if silence_after is not None else float(
            os.environ.get("OH_LIVE_SILENCE_SECONDS", DEFAULT_SILENCE_SECONDS))
        self.session: Session | None = None
        self.last: Session | None = None  # the most recent session, kept after a stop for the status
        self.error: str | None = None
        self.failed: tuple[StartLive, Path] | None = None  # the StartLive that could not start, while error
        self.fills = FillJournal(home)
        flush_s = flush if flush is not None else float(os.environ.get("OH_LIVE_FLUSH_MS", "5")) / 1000
        self.publisher = TickPublisher(home.endpoint(TICKS_ENDPOINT), self, flush=flush_s)

    def open(self) -> None:
        """Start the publisher (binds the tick socket) and the fills journal; no network I/O."""
        self.fills.start()
        self.publisher.start()
        self.publisher.ready.wait(5)

    def _on_fill(self, event: TradeUpdated) -> None:
        self.fills.put(event)

    def start(self, command: StartLive, resumed: bool = False) -> None:
        """Stop any session, then start the one `command` asks for (returns at once)."""
        self.stop()
        path = portfolio_path(self.home, command)
        try:
            portfolio = load(path)
            today = datetime.now(UTC).astimezone(NEW_YORK).date()
            plan = build_plan(
                portfolio, provider=command.provider, stocks=command.stocks, options=command.options,
                fills=command.fills, max_option_contracts=command.max_option_contracts, today=today,
            )
        except (PortfolioError, ValueError) as exc:
            self.error = f"cannot start: {exc}"
            self.failed = (command, path)
            self.last = None
            log.error("%s", self.error)
            return
        self.error = None
        kinds = {s: "stock" for s in plan.stocks} | {s: "option" for s in plan.options}
        conflator = Conflator(kinds)
        feed = self._feed(command, plan, conflator)
        session = Session(command, path, plan, conflator, feed, time.time(), resumed, warnings=list(plan.warnings))
        for warning in plan.warnings:
            log.warning("%s", warning)
        log.info("%s live %s: %d stocks, %d option contracts, fills %s (command %s)",
                 "resuming" if resumed else "starting", command.provider, len(plan.stocks), len(plan.options),
                 "on" if plan.fills else "off", command.id)
        if command.provider == "alpaca" and plan.fills:
            session.reconciler = self._reconciler(feed)
        self.session = self.last = session
        feed.start()
        if session.reconciler is not None and "fills" in getattr(feed, "streams", {}):
            session.reconciler.start()
            session.reconciler.request()  # at start, even before (or without) a stream connection

    def _reconciler(self, feed: Feed) -> FillReconciler:
        """The session's fills reconciliation, wired to the feed's REST fetch and its reconnects."""
        reconciler = FillReconciler(self.home, feed.fetch_fills, self.fills)  # type: ignore[attr-defined]
        reconciler.prepare()
        feed.on_fills_connected = lambda: reconciler.request(listening=True)  # type: ignore[attr-defined]
        return reconciler

    def _feed(self, command: StartLive, plan: LivePlan, conflator: Conflator) -> Feed:
        if command.provider == "alpaca":
            from oh.adapters.alpaca.stream import AlpacaFeed

            return AlpacaFeed(plan, conflator, self._on_fill, home=self.home, stock_feed=command.stock_feed,
                              options_feed=command.options_feed)
        from oh.adapters.sim.stream import SimFeed

        return SimFeed(plan, conflator, self._on_fill, rate=command.sim_quotes_per_second, command_id=command.id)

    def stop(self) -> None:
        """Stop the current session's streams, if any; the worker is idle afterwards."""
        session, self.session = self.session, None
        self.error = self.failed = None
        if session is None:
            return
        session.feed.stop()
        if session.reconciler is not None:
            session.reconciler.stop()
        session.stopped_at = time.time()
        log.info("live streams stopped (command %s)", session.command.id)

    def close(self) -> None:
        """Stop streaming and the helper threads (process exit); unjournaled fills get 5 s to be acknowledged."""
        self.stop()
        self.publisher.stopped.set()
        self.publisher.join(2)
        self.fills.stopped.set()
        self.fills.join(10)

    def watchdog(self, now: float) -> None:
        """Reconnect a quote stream that is connected (or connecting) but silent for `silence_after` s."""
        session = self.session
        if session is None:
            return
        for monitor in session.feed.monitors:
            if monitor.name in WATCHED and monitor.silent(now, self.silence_after):
                reason = f"no data for {self.silence_after:g}s while {monitor.state}: reconnecting"
                log.warning("%s stream: %s", monitor.name, reason)
                session.feed.reconnect(monitor.name, reason)

    def status(self, now: float, seq: int = 0, tick_seq: int = 0) -> LiveStatus:
        """The worker's state for the tick channel and `oh live status`."""
        session = self.session or self.last
        streaming = self.session is not None
        state = "error" if self.error else ("streaming" if streaming else "idle")
        if session is None:
            failed = self.failed if self.error else None
            return LiveStatus(
                seq=seq, ts=now, pid=os.getpid(), state=state, last_error=self.error,  # type: ignore[arg-type]
                provider=failed[0].provider if failed else None, portfolio=str(failed[1]) if failed else None,
                command_id=failed[0].id if failed else None, tick_seq=tick_seq,
                counters=LiveCounters(fills=self.fills.sent),
            )
        c = session.conflator
        streams: list[StreamHealth] = [m.health(now) for m in session.feed.monitors]
        warnings = session.warnings + list(getattr(session.feed, "warnings", []))
        if session.reconciler is not None and session.reconciler.error:
            warnings.append(session.reconciler.error)
        return LiveStatus(
            seq=seq, ts=now, pid=os.getpid(), state=state, provider=session.command.provider,  # type: ignore[arg-type]
            portfolio=str(session.portfolio), command_id=session.command.id,
            keep_running=session.command.keep_running, resumed=session.resumed, started_at=session.started_at,
            stocks=len(session.plan.stocks), options=len(session.plan.options), plan_warnings=warnings,
            streams=streams, last_error=self.error, tick_seq=tick_seq,
            counters=LiveCounters(received=c.received, conflated=c.conflated, dropped=c.dropped,
                                  batches=self.publisher.batches, quotes=self.publisher.quotes, fills=self.fills.sent),
        )
