"""`oh db health`: what ran, what failed (grouped), what is stale, failed checks, gaps, the plan.

For cron and scripts, `--fail-on CONDITIONS` (a comma list, or `all`) turns what it finds into the exit
code, with one line on stderr naming each condition that holds:

| exit | meaning |
|---|---|
| 0 | none of the named conditions holds (or no `--fail-on`) |
| 1 | health could not be judged (the warehouse could not be read) |
| 2 | bad arguments |
| 3 | at least one named condition holds |

Conditions: `failed` (the latest run of a job failed or was abandoned), `stale` (a dataset more
than --stale-days sessions behind), `gaps` (sessions missing in the last --gap-sessions), `checks`
(a failed check of severity error or warn in the last --days), `future` (data dated after the
last closed session), `ledger` (the ledger is not storing events: damaged journal, full disk).
`--json` adds `problems` (the count of each condition) whatever `--fail-on` says.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from bus.home import Home
from contracts.events import RUN_FAILED
from oh.cli.common import Provider, console, err_console, fail
from oh.cli.data import db_app, reader
from oh.domain import units
from oh.domain.units import plural

UNHEALTHY = 3  # the exit code when a --fail-on condition holds
CONDITIONS = ("failed", "stale", "gaps", "checks", "future", "ledger")
ALERTING_SEVERITIES = ("error", "warn")


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if column == "duration_ms":
        return f"{value / 1000:,.1f} s"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int):
        return units.count(value)
    return str(value)


def _table(title: str, rows: list[dict[str, Any]], columns: list[str], empty: str, red: str | None = None,
           headers: dict[str, str] | None = None) -> None:
    if not rows:
        console.print(f"[bold]{title}[/]: {empty}", soft_wrap=True, highlight=False)
        return
    view = Table(title=title, title_justify="left")
    for column in columns:
        numeric = column in ("duration_ms", "failures", "staleness_sessions", "sessions")
        view.add_column((headers or {}).get(column, column.replace("_", " ")), justify="right" if numeric else "left")
    for row in rows:
        cells = [_cell(c, row.get(c)) for c in columns]
        style = "red" if red and row.get(red) else None
        view.add_row(*cells, style=style)
    console.print(view)


def parse_fail_on(text: str | None) -> tuple[str, ...]:
    """`failed,stale` -> ("failed", "stale"); `all` -> every condition; exit 2 naming an unknown one."""
    if text is None:
        return ()
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return CONDITIONS
    unknown = [name for name in names if name not in CONDITIONS]
    if unknown or not names:
        fail(f"--fail-on {text!r}: choose from {', '.join(CONDITIONS)} (comma-separated) or all", 2)
    return tuple(dict.fromkeys(names))


def problems(report: dict[str, Any]) -> dict[str, int]:
    """How many of each condition the report shows (0: it does not hold)."""
    ledger = report.get("ledger") or {}
    return {
        "failed": sum(r.get("status") in RUN_FAILED for r in report["latest_runs"]),
        "stale": sum(bool(w.get("stale")) for w in report["watermarks"]),
        "gaps": len(report["gaps"]),
        "checks": sum(c.get("severity") in ALERTING_SEVERITIES for c in report["failed_checks"]),
        "future": sum(bool(w.get("future")) for w in report["watermarks"]),
        "ledger": int(bool(ledger.get("fault") or ledger.get("stalled"))),
    }


def _words(condition: str, n: int) -> str:
    return {
        "failed": f"failed: the latest run of {plural(n, 'job')} failed",
        "stale": f"stale: {plural(n, 'dataset')} behind",
        "gaps": f"gaps: {plural(n, 'gap')}",
        "checks": f"checks: {plural(n, 'failed check')} (error or warn)",
        "future": f"future: {plural(n, 'dataset')} dated after the last closed session",
        "ledger": "ledger: not storing events",
    }[condition]


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
    coverage: bool = typer.Option(False, "--coverage", help="Add the symbol x session coverage (a grid per "
                                  "dataset; with --json, the matrix)."),
    fail_on: str | None = typer.Option(None, "--fail-on", help=f"Exit {UNHEALTHY} if any of these holds: "
                                       f"{','.join(CONDITIONS)} (or all). For cron: 0 healthy, 1 error, 2 bad "
                                       f"arguments, {UNHEALTHY} unhealthy."),
) -> None:
    """Latest run per job, recurring failures, freshness in trading sessions, failed checks, gaps and the plan."""
    from oh.read.health import HealthOptions, health_report

    conditions = parse_fail_on(fail_on)
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
    found = problems(report)
    if as_json:
        report["problems"] = found
        sys.stdout.write(json.dumps(report, default=_json_default, sort_keys=True, indent=2) + "\n")
    else:
        _render(report)
    if run:
        _run_plan(report["plan"], str(provider.value))
    holding = [name for name in conditions if found[name]]
    if holding:
        err_console.print("unhealthy: " + "; ".join(_words(name, found[name]) for name in holding),
                          soft_wrap=True, highlight=False)
        raise typer.Exit(UNHEALTHY)


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
           "no runs yet: try `oh emit ingest-candles ...`", headers={"job_name": "job", "duration_ms": "took"})
    _table("Recurring failures", report["failure_groups"],
           ["job_name", "error_type", "failures", "first_seen", "last_seen", "last_message"], "none",
           headers={"job_name": "job"})
    _table("Freshness", [{**w, "flag": "stale" if w["stale"] else "FUTURE" if w.get("future") else ""}
                         for w in report["watermarks"]],
           ["asset_key", "scope_key", "watermark_ts", "staleness_sessions", "flag"], "no watermarks yet", red="flag",
           headers={"asset_key": "dataset", "scope_key": "symbol", "watermark_ts": "data through",
                    "staleness_sessions": "sessions behind"})
    _table("Failed checks", report["failed_checks"], ["checked_at", "asset_key", "partition_key", "check_name", "severity", "message"], "none",
           headers={"asset_key": "dataset", "partition_key": "partition", "check_name": "check"})
    window = report["gap_window"]
    _table(f"Gaps ({plural(window['sessions'], 'session')} {window['start']} .. {window['end']})", report["gaps"],
           ["asset_key", "symbol", "start", "end", "sessions"], "none", headers={"asset_key": "dataset"})
    if "coverage" in report:
        _render_coverage(report["coverage"], window)
    if report.get("forgotten"):
        names = ", ".join(row["symbol"] for row in report["forgotten"])
        console.print(f"[bold]Forgotten symbols[/] (left out of freshness, gaps and the plan; `oh symbols remember` "
                      f"brings one back): {names}", soft_wrap=True, highlight=False)
    if report["plan"]:
        console.print(f"[bold]Backfill plan[/] ({plural(len(report['plan']), 'command')}; run them with "
                      "`oh db health --run`):", soft_wrap=True)
        for step in report["plan"]:
            console.print(f"  {step['command']}", soft_wrap=True, highlight=False)


STORED, MISSING, BEFORE = "█", "·", " "


def coverage_grid(rows: list[dict[str, Any]]) -> list[tuple[str, str, int, int]]:
    """A dataset's coverage rows (symbol, session, state) as one line per symbol: (symbol, cells, stored, expected),
    one cell per session in session order: █ stored, · missing, blank before the symbol's first session."""
    by_symbol: dict[str, list[tuple[date, str]]] = {}
    for row in rows:
        by_symbol.setdefault(row["symbol"], []).append((row["session"], row["state"]))
    lines = []
    for symbol in sorted(by_symbol):
        cells = sorted(by_symbol[symbol])
        text = "".join(STORED if state == "present" else MISSING if state == "missing" else BEFORE for _, state in cells)
        stored = sum(state == "present" for _, state in cells)
        expected = sum(state != "before_start" for _, state in cells)
        lines.append((symbol, text, stored, expected))
    return lines


def _render_coverage(coverage: dict[str, list[dict[str, Any]]], window: dict[str, Any]) -> None:
    console.print(f"[bold]Coverage[/] ({plural(window['sessions'], 'session')} {window['start']} .. {window['end']}, "
                  f"oldest left; {STORED} stored, {MISSING} missing, blank before a symbol's first session)",
                  soft_wrap=True, highlight=False)
    if not any(coverage.values()):
        console.print("  nothing stored yet", highlight=False)
    for asset_key, rows in coverage.items():
        lines = coverage_grid(rows)
        if not lines:
            continue
        console.print(f"  {asset_key}", highlight=False)
        width = max(len(symbol) for symbol, *_ in lines)
        for symbol, cells, stored, expected in lines:
            shown = escape(cells).replace(MISSING, f"[red]{MISSING}[/]")
            console.print(f"    {symbol:<{width}}  {shown}  {stored}/{expected}", highlight=False, soft_wrap=True)


def _run_plan(plan: list[dict[str, Any]], provider: str) -> None:
    """Run each planned command as `oh ... --wait`, in order (upstream first), stopping at the first failure."""
    import subprocess

    for step in plan:
        console.print(f"running: {step['command']}", soft_wrap=True, highlight=False)
        argv = [sys.executable, "-m", "oh.cli", *step["argv"], "--wait"]
        if step["job"] != "replay":
            argv += ["--provider", provider]
        if subprocess.run(argv).returncode != 0:
            fail(f"stopped: `{step['command']}` did not succeed; the rest of the plan was not run")
    console.print(f"ran {plural(len(plan), 'backfill command')}")
