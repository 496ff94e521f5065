"""`oh demo` (what `make demo` runs): every service on the sim market, enough history that every feature shows.

It starts supervisord and, while the services start, writes a sample portfolio (only when there is none, opened
PORTFOLIO_AGE sessions back); as soon as the ledger and the ingest worker answer it backfills two years of
candles. Then it sends, at once: the option-chain snapshots of the DEMO_SESSIONS - 1 sessions before the latest
as CHAIN_PARTS ranged commands (consecutive runs of sessions, oldest first), the option bars of the last few,
and `daily` for the latest session. The workers chain flow, derived metrics and a briefing after each snapshot
run by themselves, so the parts go down the chain as a pipeline: the flow of the first part runs while the
second is snapshotted, and so on (each worker runs its commands in journal order, so a part's derived rows
always see the IV history of the parts before it, and the daily's those of every part: the same rows as one
ranged command). One subscription follows all of them (each event is read once) until the daily has ended, and
so every part's chain too. Last, a FLOW_WINDOW-session flow for the latest FLOW_WINDOW sessions (daily computes
one-session flow only; a multi-session window chains nothing: no later stage reads it). The demo ends once every
service (the dashboard too) is up. 30 sessions are enough for IV rank and percentile (20 earlier sessions), the
multi-session flow windows and the briefing's highlights on the first look. The last line says how long each
stage took.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import typer

from bus.home import Home
from oh.cli.common import console, fail
from oh.cli.services import require_ready, start_supervisord
from oh.domain.units import plural

if TYPE_CHECKING:
    from contracts import Command

DEMO_SESSIONS = 30
BAR_SESSIONS = 5  # option bars for the latest sessions only (no page needs 30; they cost as much as the chains)
PORTFOLIO_AGE = 5  # the sample portfolio is opened this many sessions back: its contracts are still alive
FLOW_WINDOW = 5  # a multi-session flow window (the Flow page's window choice) for the latest this many sessions
CHAIN_PARTS = 3  # the snapshot range goes down the chain in this many parts, each stage working on one part
# while the stage before it works on the next (more parts: more overlap, and more runs of fixed cost each)
DAILY_CANDLE_DAYS = 7  # the daily's candles: the last week again (the backfill wrote the years before just now)
START_TIMEOUT = 90.0  # seconds for the services to start
PIPELINE_WORKERS = ("options_bars", "snapshot", "flow", "derived", "briefing", "checks", "scheduler")


def demo(
    years: int = typer.Option(2, help="Years of daily history to backfill for the default watchlist."),
    sessions: int = typer.Option(DEMO_SESSIONS, help="Option-chain snapshots of the latest sessions (flow, derived "
                                 "metrics and briefings follow; IV rank needs 21)."),
) -> None:
    """Start everything on the sim provider, backfill the watchlist, run the daily chain, and say where to look."""
    from contracts import ComputeFlow, IngestCandles, IngestOptionsBars, RunDaily, SnapshotOptions
    from oh.adapters.watchlists import DEFAULT_WATCHLIST
    from oh.cli.follow import follow_all, send
    from oh.domain import calendar

    if years < 1 or sessions < 2:
        fail("--years must be at least 1 and --sessions at least 2", 2)
    stages = _Stages()
    home = Home.from_env().ensure()
    start_supervisord(home)  # the services start while the portfolio is written (before the daily and any briefing)
    symbols = list(DEFAULT_WATCHLIST)
    last = calendar.last_closed_session(datetime.now(UTC))
    days = [day.astype(date) for day in calendar.last_sessions(last, sessions)]
    _demo_portfolio(home, days[-min(PORTFOLIO_AGE, len(days))])
    require_ready(home, START_TIMEOUT, ["ingest"])  # the ledger and the first step's worker: the others start meanwhile
    stages.done("start")
    # candles first (derived metrics read them), then everything else at once
    candles = IngestCandles(symbols=symbols, start=last - timedelta(days=365 * years), end=last, provider="sim")
    follow_all([(candles, send(candles), len(symbols))], timeout=600.0)
    stages.done("candles")
    require_ready(home, START_TIMEOUT, PIPELINE_WORKERS)
    parts = [SnapshotOptions(symbols=symbols, start=part[0], end=part[-1], provider="sim")
             for part in split_sessions(days[:-1], CHAIN_PARTS)]
    bar_days = days[-min(BAR_SESSIONS, len(days)):-1]
    bars = IngestOptionsBars(symbols=symbols, start=bar_days[0], end=bar_days[-1], provider="sim")
    daily = RunDaily(symbols=symbols, as_of=last, provider="sim", candle_days=DAILY_CANDLE_DAYS)
    sent = [(command, send(command)) for command in (*parts, bars, daily)]  # in this order: the daily's steps
    # queue behind the parts' on every worker, so once it has ended every part's chain has too
    totals = [len(symbols) * len(calendar.sessions(c.start, c.end)) for c in (*parts, bars)]  # type: ignore[attr-defined]
    follow_all([(command, receipt, total) for (command, receipt), total in zip(sent, [*totals, 0], strict=True)],
               timeout=900.0)
    for number, part in enumerate(parts, 1):
        _follow_chain(home, part, f"flow, derived metrics and briefings of part {number} of {len(parts)} "
                                  f"({part.start} to {part.end})")
    stages.done("chains, flow, derived, briefings and daily")
    window_days = days[-min(FLOW_WINDOW, len(days) - 1):]
    windowed = ComputeFlow(symbols=symbols, sessions=window_days, window=min(FLOW_WINDOW, len(days) - 1))
    send(windowed)
    _follow_chain(home, windowed, f"{windowed.window}-session flow for the latest {plural(len(window_days), 'session')}")
    stages.done(f"{windowed.window}-session flow")
    require_ready(home, START_TIMEOUT)  # the dashboard, the live stream and notify too
    stages.done("every service up")
    console.print(
        f"\n[bold]Done[/] in {stages.total():.0f}s. {plural(years, 'year')} of candles, {len(days)} sessions of "
        f"option chains ({len(bar_days) + 1} of option bars), flow (1- and {windowed.window}-session windows), derived metrics (IV rank and percentile from the 21st session on) and the "
        f"{last} briefing for the default watchlist are in DuckDB.\n"
        f"  Dashboard:  {_dashboard_url()}\n"
        f"  Briefing:   {home.root / 'briefings' / f'{last}.md'}\n"
        "  oh db health     # runs, failures, freshness, checks, gaps and the backfill plan\n"
        f"  oh query \"SELECT symbol, session_date, spot, atm_iv, iv_rank, expected_move_pct FROM derived_daily "
        f"WHERE session_date = DATE '{last}' ORDER BY symbol\"\n"
        "  oh portfolio analyze   # the sample portfolio: marks, Greeks, stress, risk limits\n"
        "  oh emit daily --wait   # the whole chain again for the latest session (idempotent)\n"
        "  oh status        # services        oh down    # stop everything\n"
        f"Stages: {stages.summary()}.",
        soft_wrap=True, highlight=False,
    )


def split_sessions(days: list[date], parts: int) -> list[list[date]]:
    """`days` (oldest first) in at most `parts` consecutive runs of nearly equal length, oldest first."""
    parts = max(1, min(parts, len(days)))
    size, extra = divmod(len(days), parts)
    out, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        out.append(days[start:end])
        start = end
    return out


class _Stages:
    """Seconds per stage of the demo (and the 1-minute load average at each stage's end), for its last line."""

    def __init__(self) -> None:
        self.started = self.mark = time.monotonic()
        self.stages: list[tuple[str, float, float]] = []

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.stages.append((name, now - self.mark, os.getloadavg()[0]))
        self.mark = now

    def total(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        """`start 6.1s (load 3.2), candles 1.9s (load 3.4), ...`."""
        return ", ".join(f"{name} {seconds:.1f}s (load {load:.1f})" for name, seconds, load in self.stages)


def _demo_portfolio(home: Home, opened: date) -> None:
    """Write a sample portfolio (stocks, single legs, verticals, iron condors on sim contracts opened on
    `opened`) when there is none, so the Portfolio page and the briefing have something to show. An
    existing portfolio file is never touched."""
    from oh.adapters.portfolio_file import save
    from oh.adapters.sim.stream import sim_portfolio

    path = home.config / "portfolio.json"
    if path.exists():
        return
    save(path, sim_portfolio(["SPY", "AAPL", "MSFT"], positions=8, day=opened))
    console.print(f"wrote a sample portfolio to {path} (yours to edit: `oh portfolio list`)", soft_wrap=True)


def _dashboard_url() -> str:
    """Where `oh ui` (the supervisord program `ui`) serves the dashboard."""
    return f"http://127.0.0.1:{os.environ.get('OH_UI_PORT', '5006')}"


def _follow_chain(home: Home, command: Command, doing: str) -> None:
    """Wait until the run of `command` and the runs the workers chain after it (flow, derived, briefing: one
    ranged run per stage; their run ids follow from the first's) have ended, and say if one did not succeed."""
    from bus.control_client import ControlClient
    from services.pipeline import follow_chain, step_of

    client = ControlClient(home, timeout=30.0)
    try:
        with console.status(f"{doing} ..."):
            outcomes = follow_chain(lambda sql, params: client.query(sql, params), step_of(command),
                                    start_timeout=60.0, run_timeout=600.0)
    except TimeoutError as exc:
        fail(f"{doing}: not finished: {exc}")
    finally:
        client.close()
    failed = [f"{step.job} {status}" for step, status in outcomes.items() if status != "success"]
    if failed:
        fail(f"{doing}: {', '.join(failed)}; `oh db health` shows why")
