"""`oh up | down | status | demo`: the processes under supervisord, and the ledger's health."""

from __future__ import annotations

import time
from datetime import date, timedelta

import typer
from rich.markup import escape
from rich.table import Table

from bus.home import Home
from oh.adapters import supervisor
from oh.cli.common import console, fail


def _ledger_status(home: Home, timeout: float = 1.0):  # type: ignore[no-untyped-def]
    from bus.control_client import ControlClient, LedgerUnavailable

    client = ControlClient(home, timeout=timeout)
    try:
        return client.status()
    except LedgerUnavailable:
        return None
    finally:
        client.close()


def wait_ready(home: Home, timeout: float) -> list[str]:
    """Wait until the ledger answers and every worker has sent a heartbeat; return who is missing."""
    workers = [name for name in supervisor.program_names() if name != "ledger"]
    deadline = time.monotonic() + timeout
    missing = ["ledger", *workers]
    while time.monotonic() < deadline:
        status = _ledger_status(home)
        if status is not None:
            missing = [name for name in workers if name not in status.heartbeats]
            if not missing:
                return []
        time.sleep(0.2)
    return missing


def up(timeout: float = typer.Option(60.0, help="Seconds to wait for every service to be ready.")) -> None:
    """Start every service under supervisord (ledger first) and wait until all are ready."""
    home = Home.from_env().ensure()
    if not supervisor.is_running(home):
        result = supervisor.start(home)
        if result.returncode != 0:
            fail(f"supervisord did not start: {(result.stderr or result.stdout).strip()}")
    missing = wait_ready(home, timeout)
    if missing:
        fail(f"not ready after {timeout:g}s: {', '.join(missing)}; see the logs in {home.logs}")
    ledger = _ledger_status(home)
    if ledger is not None and (ledger.fault or ledger.stalled):
        fail(f"the services are up but the ledger is not storing events: {ledger.fault or ledger.stalled}")
    console.print(f"[green]oh is up[/] (home {home.root}); `oh status` shows each service")


def down(timeout: float = typer.Option(60.0, help="Seconds to wait for a clean shutdown.")) -> None:
    """Stop every service cleanly (SIGTERM, ledger included) and supervisord itself."""
    home = Home.from_env()
    if not supervisor.is_running(home):
        console.print("oh is not running")
        return
    pid = supervisor.supervisord_pid(home)
    supervisor.ctl(home, "shutdown")
    # supervisord stops answering as soon as shutdown begins, but exits only after every program
    # has exited: wait for its pid, so `oh down` returning means everything is down.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (supervisor.is_running(home) or (pid and supervisor.pid_alive(pid))):
        time.sleep(0.1)
    if supervisor.is_running(home) or (pid and supervisor.pid_alive(pid)):
        fail(f"supervisord still running after {timeout:g}s")
    console.print("oh is down")


def status() -> None:
    """Show each service's state and last heartbeat, and the ledger's journal and warehouse offsets."""
    home = Home.from_env()
    states = supervisor.program_states(home) if supervisor.is_running(home) else {}
    ledger = _ledger_status(home)
    table = Table(title=f"oh services ({home.root})")
    for column in ("service", "supervisord", "last heartbeat"):
        table.add_column(column)
    now = time.time()
    for name in supervisor.program_names():
        beat = ledger.heartbeats.get(name) if ledger else None
        if name == "ledger":
            heard = "answering" if ledger else "not answering"
        else:
            heard = f"{now - beat['last_seen']:.1f}s ago (pid {beat['pid']})" if beat else "never"
        table.add_row(name, states.get(name, "not running"), heard)
    console.print(table)
    if ledger:
        counters = ", ".join(f"{k}={v}" for k, v in sorted(ledger.counters.items())) or "none"
        console.print(
            f"journal head seq {ledger.head_seq}, warehouse applied seq {ledger.applied_seq}, "
            f"fsync {ledger.fsync}, up {now - ledger.started_at:.0f}s; counters: {counters}"
        )
        if ledger.tcp:
            c = ledger.counters
            refused = c.get("tcp_refused_key", 0) + c.get("tcp_refused_handshake", 0)
            console.print(
                f"bus also on {ledger.tcp} (CURVE): {c.get('tcp_authenticated', 0)} connections authenticated, "
                f"{refused} refused ({c.get('tcp_refused_key', 0)} unknown key, "
                f"{c.get('tcp_refused_handshake', 0)} not a CURVE client of this ledger)",
                soft_wrap=True, highlight=False,
            )
        for problem, style in ((ledger.fault, "bold red"), (ledger.stalled, "bold yellow")):
            if problem:
                console.print(f"[{style}]ledger not storing events:[/] {escape(problem)}", soft_wrap=True, highlight=False)
    all_up = ledger is not None and states and all(s.startswith("RUNNING") for s in states.values())
    if not all_up:
        console.print("some services are not running: start them with `oh up`")
        raise typer.Exit(3)
    if ledger.fault or ledger.stalled:
        raise typer.Exit(3)


def demo(
    years: int = typer.Option(2, help="Years of daily history to backfill for the default watchlist."),
    sessions: int = typer.Option(5, help="Option-chain snapshots of the latest sessions (flow and derived follow)."),
) -> None:
    """Start everything on the sim provider, backfill the watchlist, run the daily chain, and say where to look."""
    from datetime import UTC, datetime

    from contracts import IngestCandles, IngestOptionsBars, RunDaily, SnapshotOptions
    from oh.adapters.watchlists import DEFAULT_WATCHLIST
    from oh.cli.follow import emit_and_wait
    from oh.domain import calendar

    up(timeout=90.0)
    symbols = list(DEFAULT_WATCHLIST)
    last = calendar.last_closed_session(datetime.now(UTC))
    days = calendar.last_sessions(last, max(sessions, 2))
    first, before_last = days[0].astype(date), days[-2].astype(date)
    _demo_portfolio(Home.from_env(), first)
    emit_and_wait(IngestCandles(symbols=symbols, start=last - timedelta(days=365 * years), end=last, provider="sim"),
                  len(symbols), wait=True, timeout=600.0)
    emit_and_wait(IngestOptionsBars(symbols=symbols, start=first, end=before_last, provider="sim"),
                  len(symbols) * (len(days) - 1), wait=True, timeout=600.0)
    emit_and_wait(SnapshotOptions(symbols=symbols, start=first, end=before_last, provider="sim"),
                  len(symbols) * (len(days) - 1), wait=True, timeout=600.0)
    _wait_for_chained_runs(Home.from_env(), len(days) - 1)
    emit_and_wait(RunDaily(symbols=symbols, as_of=last, provider="sim"), 0, wait=True, timeout=900.0)
    console.print(
        f"\n[bold]Done.[/] {years} years of candles, {len(days)} sessions of option chains and bars, flow, derived "
        f"metrics and the {last} briefing for the default watchlist are in DuckDB.\n"
        f"  Dashboard:  {_dashboard_url()}\n"
        f"  Briefing:   {Home.from_env().root / 'briefings' / f'{last}.md'}\n"
        "  .venv/bin/oh db health     # runs, failures, freshness, checks, gaps and the backfill plan\n"
        "  .venv/bin/oh query \"SELECT symbol, session_date, spot, atm_iv, iv_rank, expected_move_pct FROM derived_daily ORDER BY ALL\"\n"
        "  .venv/bin/oh emit daily --wait   # the whole chain again for the latest session (idempotent)\n"
        "  .venv/bin/oh status        # services        .venv/bin/oh down    # stop everything",
        soft_wrap=True,
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
    console.print(f"wrote a sample portfolio to {path} (yours to edit: `oh portfolio list`)")


def _dashboard_url() -> str:
    """Where `oh ui` (the supervisord program `ui`) serves the dashboard."""
    import os

    return f"http://127.0.0.1:{os.environ.get('OH_UI_PORT', '5006')}"


def _wait_for_chained_runs(home: Home, sessions: int, timeout: float = 180.0) -> None:
    """Wait until the flow, derived and briefing runs that follow the snapshots have finished."""
    from bus.control_client import ControlClient, LedgerUnavailable

    client = ControlClient(home)
    deadline = time.monotonic() + timeout
    try:
        with console.status("flow, derived metrics and briefings are following the snapshots ..."):
            while time.monotonic() < deadline:
                try:
                    done = client.query(
                        "SELECT count(*) FILTER (WHERE job_name = 'build_briefing' AND status != 'started'), "
                        "count(*) FILTER (WHERE status = 'started') FROM meta.ingestion_runs"
                    ).to_pylist()[0]
                except LedgerUnavailable:
                    done = {}
                values = list(done.values())
                if values and values[0] >= sessions and values[1] == 0:
                    return
                time.sleep(0.5)
    finally:
        client.close()
    console.print("flow, derived and briefings are still running; `oh db health` shows their runs")
