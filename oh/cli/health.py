"""`oh db health`: what ran, what failed (grouped), what is stale, failed checks, gaps, the plan."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from bus.home import Home
from oh.cli.common import Provider, console, fail
from oh.cli.data import db_app, reader


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return str(value)


def _table(title: str, rows: list[dict[str, Any]], columns: list[str], empty: str, red: str | None = None) -> None:
    if not rows:
        console.print(f"[bold]{title}[/]: {empty}")
        return
    view = Table(title=title, title_justify="left")
    for column in columns:
        view.add_column(column)
    for row in rows:
        cells = [_cell(row.get(c)) for c in columns]
        style = "red" if red and row.get(red) else None
        view.add_row(*cells, style=style)
    console.print(view)


@db_app.command("health")
def health(
    days: int = typer.Option(7, help="Look back this many days for failures and failed checks."),
    limit: int = typer.Option(50, help="At most this many failure groups and failed checks."),
    stale_days: int = typer.Option(1, help="A dataset is stale past this many trading sessions behind."),
    gap_sessions: int = typer.Option(30, help="Look for gaps over this many recent sessions."),
    as_json: bool = typer.Option(False, "--json", help="Stable JSON instead of tables."),
    now: str | None = typer.Option(None, help="Judge freshness as of this earlier UTC time (YYYY-MM-DDTHH:MM; "
                                               "default now)."),
    run: bool = typer.Option(False, "--run", help="Run the gap backfill plan's commands (and wait for each)."),
    provider: Provider = typer.Option(Provider.sim, help="With --run: the provider the backfill fetches from."),
    coverage: bool = typer.Option(False, "--coverage", help="With --json, add the symbol x session coverage matrix."),
) -> None:
    """Latest run per job, recurring failures, freshness in trading sessions, failed checks, gaps and the plan."""
    from oh.read.health import HealthOptions, health_report

    clock = None
    if now:
        try:
            clock = datetime.fromisoformat(now).replace(tzinfo=UTC)
        except ValueError:
            fail(f"--now {now!r} is not a date-time such as 2025-11-24T14:30", 2)
        from oh.domain import calendar

        if clock > calendar.wall_clock():  # health judges what has happened: no session after now has data
            fail(f"--now {now} is in the future: health can only be judged as of now or earlier", 2)
    if min(days, limit, gap_sessions) < 1 or stale_days < 0:
        fail("--days, --limit and --gap-sessions must be at least 1, --stale-days at least 0", 2)
    options = HealthOptions(days=days, limit=limit, stale_days=stale_days, gap_sessions=gap_sessions, now=clock,
                            coverage=coverage)
    home = Home.from_env()
    with reader(home) as read:
        report = health_report(lambda sql, params: read(sql, params), options)
    report["ledger"] = _ledger_problems(home)
    if as_json:
        sys.stdout.write(json.dumps(report, default=_json_default, sort_keys=True, indent=2) + "\n")
    else:
        _render(report)
    if run:
        _run_plan(report["plan"], provider)


def _ledger_problems(home: Home) -> dict[str, str | None]:
    """What keeps the ledger from storing events (a damaged journal, a full disk), as it reports it; empty when down."""
    from bus.control_client import ControlClient, LedgerUnavailable

    client = ControlClient(home, timeout=2.0)
    try:
        status = client.status() if client.answers(timeout=1.0) else None  # no socket: down, answered at once
    except LedgerUnavailable:
        status = None
    finally:
        client.close()
    return {"fault": status.fault if status else None, "stalled": status.stalled if status else None}


def _render(report: dict[str, Any]) -> None:
    for problem in (report["ledger"]["fault"], report["ledger"]["stalled"]):
        if problem:
            console.print(f"[bold red]ledger not storing events:[/] {escape(problem)}", soft_wrap=True, highlight=False)
    console.print(f"[bold]oh health[/] as of {report['as_of']:%Y-%m-%d %H:%M} UTC; data expected through {report['expected_through']}")
    _table("Latest run per job", report["latest_runs"], ["job_name", "status", "triggered_by", "started_at", "duration_ms", "error_message"],
           "no runs yet: try `oh emit ingest-candles ...`")
    _table("Recurring failures", report["failure_groups"],
           ["job_name", "error_type", "failures", "first_seen", "last_seen", "last_message"], "none")
    _table("Freshness", [{**w, "flag": "stale" if w["stale"] else "FUTURE" if w.get("future") else ""}
                         for w in report["watermarks"]],
           ["asset_key", "scope_key", "watermark_ts", "staleness_sessions", "flag"], "no watermarks yet", red="flag")
    _table("Failed checks", report["failed_checks"], ["checked_at", "asset_key", "partition_key", "check_name", "severity", "message"], "none")
    window = report["gap_window"]
    _table(f"Gaps ({window['sessions']} sessions {window['start']} .. {window['end']})", report["gaps"],
           ["asset_key", "symbol", "start", "end", "sessions"], "none")
    if report.get("forgotten"):
        names = ", ".join(row["symbol"] for row in report["forgotten"])
        console.print(f"[bold]Forgotten symbols[/] (left out of freshness, gaps and the plan; `oh symbols remember` "
                      f"brings one back): {names}", soft_wrap=True, highlight=False)
    if report["plan"]:
        console.print("[bold]Backfill plan[/] (run with `oh db health --run`):")
        for step in report["plan"]:
            console.print(f"  {step['command']}", soft_wrap=True, highlight=False)


def _run_plan(plan: list[dict[str, Any]], provider: str) -> None:
    """Run each planned command as `oh ... --wait`, in order (upstream first), stopping at the first failure."""
    import subprocess
    import sys

    for step in plan:
        console.print(f"running: {step['command']}", soft_wrap=True, highlight=False)
        argv = [sys.executable, "-m", "oh.cli", *step["argv"], "--wait"]
        if step["job"] != "replay":
            argv += ["--provider", provider]
        if subprocess.run(argv).returncode != 0:
            fail(f"stopped: `{step['command']}` did not succeed; the rest of the plan was not run")
    console.print(f"ran {len(plan)} backfill commands")
