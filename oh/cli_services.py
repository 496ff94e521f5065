"""`oh up | down | status | demo`: the processes under supervisord, and the ledger's health."""

from __future__ import annotations

import time
from datetime import date, timedelta

import typer
from rich.table import Table

from oh import supervisor
from oh.cli_common import console, fail
from oh.home import Home


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
    all_up = ledger is not None and states and all(s.startswith("RUNNING") for s in states.values())
    if not all_up:
        console.print("some services are not running: start them with `oh up`")
        raise typer.Exit(3)


def demo(
    years: int = typer.Option(2, help="Years of daily history to backfill for the default watchlist."),
) -> None:
    """Start everything on the sim provider, backfill the default watchlist, and say how to look."""
    from contracts import IngestCandles
    from oh.cli_emit import emit_and_wait
    from oh.watchlists import DEFAULT_WATCHLIST

    up(timeout=90.0)
    end = date.today()
    start = end - timedelta(days=365 * years)
    command = IngestCandles(symbols=list(DEFAULT_WATCHLIST), start=start, end=end, provider="sim")
    emit_and_wait(command, len(DEFAULT_WATCHLIST), wait=True, timeout=600.0)
    console.print(
        "\n[bold]Done.[/] Candles for the default watchlist are in DuckDB. Look at them with:\n"
        "  .venv/bin/oh query \"SELECT symbol, count(*) AS sessions, max(date) AS last FROM candles_daily GROUP BY ALL ORDER BY symbol\"\n"
        "  .venv/bin/oh query \"SELECT job_name, status, duration_ms FROM meta.ingestion_runs ORDER BY started_at DESC LIMIT 5\"\n"
        "  .venv/bin/oh status     # services      .venv/bin/oh down    # stop everything\n"
        "(The Panel dashboard is not part of this build yet.)",
        soft_wrap=True,
    )
