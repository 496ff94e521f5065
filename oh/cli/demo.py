"""`oh demo` (what `make demo` runs): every service on the sim market, enough history that every feature shows.

It starts the services, writes a sample portfolio (only when there is none, opened PORTFOLIO_AGE
sessions back), backfills two years of candles, then at once (two workers) snapshots option chains
for the DEMO_SESSIONS - 1 sessions before the latest and ingests option bars for the last few, one
ranged command each; the workers chain flow, derived metrics and a briefing for each session by
themselves (one ranged command per stage). Then `daily` runs the latest session, and a FLOW_WINDOW-session
flow for the latest FLOW_WINDOW sessions (daily computes one-session flow only; its chain redoes their derived
rows and briefings, the same). 30 sessions are enough for IV rank and percentile (20 earlier sessions), the
multi-session flow windows and the briefing's highlights on the first look.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import typer

from bus.home import Home
from oh.cli.common import console, fail
from oh.cli.services import up
from oh.domain.units import plural

if TYPE_CHECKING:
    from contracts import Command

DEMO_SESSIONS = 30
BAR_SESSIONS = 5  # option bars for the latest sessions only (no page needs 30; they cost as much as the chains)
PORTFOLIO_AGE = 5  # the sample portfolio is opened this many sessions back: its contracts are still alive
FLOW_WINDOW = 5  # a multi-session flow window (the Flow page's window choice) for the latest this many sessions


def demo(
    years: int = typer.Option(2, help="Years of daily history to backfill for the default watchlist."),
    sessions: int = typer.Option(DEMO_SESSIONS, help="Option-chain snapshots of the latest sessions (flow, derived "
                                 "metrics and briefings follow; IV rank needs 21)."),
) -> None:
    """Start everything on the sim provider, backfill the watchlist, run the daily chain, and say where to look."""
    from contracts import ComputeFlow, IngestCandles, IngestOptionsBars, RunDaily, SnapshotOptions
    from oh.adapters.watchlists import DEFAULT_WATCHLIST
    from oh.cli.follow import emit_and_wait, follow, send
    from oh.domain import calendar

    if years < 1 or sessions < 2:
        fail("--years must be at least 1 and --sessions at least 2", 2)
    started = time.monotonic()
    up(timeout=90.0)
    home = Home.from_env()
    symbols = list(DEFAULT_WATCHLIST)
    last = calendar.last_closed_session(datetime.now(UTC))
    days = [day.astype(date) for day in calendar.last_sessions(last, sessions)]
    first, before_last = days[0], days[-2]
    _demo_portfolio(home, days[-min(PORTFOLIO_AGE, len(days))])
    # candles first (derived metrics read them), then the chains and the recent bars at once: two workers
    emit_and_wait(IngestCandles(symbols=symbols, start=last - timedelta(days=365 * years), end=last, provider="sim"),
                  len(symbols), wait=True, timeout=600.0)
    bar_days = days[-min(BAR_SESSIONS, len(days)):-1]
    snapshots = SnapshotOptions(symbols=symbols, start=first, end=before_last, provider="sim")
    bars = IngestOptionsBars(symbols=symbols, start=bar_days[0], end=before_last, provider="sim")
    sent = [(snapshots, send(snapshots), len(days) - 1), (bars, send(bars), len(bar_days))]
    for command, receipt, count in sent:
        follow(command, receipt, len(symbols) * count, timeout=900.0)
    _follow_chain(home, snapshots, "flow, derived metrics and briefings are following the snapshots")
    emit_and_wait(RunDaily(symbols=symbols, as_of=last, provider="sim"), 0, wait=True, timeout=900.0)
    window_days = days[-min(FLOW_WINDOW, len(days) - 1):]
    windowed = ComputeFlow(symbols=symbols, sessions=window_days, window=min(FLOW_WINDOW, len(days) - 1))
    send(windowed)
    _follow_chain(home, windowed, f"{windowed.window}-session flow for the latest {plural(len(window_days), 'session')}")
    console.print(
        f"\n[bold]Done[/] in {time.monotonic() - started:.0f}s. {plural(years, 'year')} of candles, {len(days)} sessions of "
        f"option chains ({len(bar_days) + 1} of option bars), flow (1- and {windowed.window}-session windows), derived metrics (IV rank and percentile from the 21st session on) and the "
        f"{last} briefing for the default watchlist are in DuckDB.\n"
        f"  Dashboard:  {_dashboard_url()}\n"
        f"  Briefing:   {home.root / 'briefings' / f'{last}.md'}\n"
        "  oh db health     # runs, failures, freshness, checks, gaps and the backfill plan\n"
        f"  oh query \"SELECT symbol, session_date, spot, atm_iv, iv_rank, expected_move_pct FROM derived_daily "
        f"WHERE session_date = DATE '{last}' ORDER BY symbol\"\n"
        "  oh portfolio analyze   # the sample portfolio: marks, Greeks, stress, risk limits\n"
        "  oh emit daily --wait   # the whole chain again for the latest session (idempotent)\n"
        "  oh status        # services        oh down    # stop everything",
        soft_wrap=True, highlight=False,
    )


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
