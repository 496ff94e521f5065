"""`oh notify test | list`: try the notification hook of `$OH_HOME/config/notify.toml`, and see what it sent.

The hook itself is run by the `notify` worker on a failed run or a failed check, and journaled
(`meta.notifications`); `test` runs it once here with a sample message (not journaled) and says
how it went; `list` shows the latest notifications. See oh/adapters/notify.py and docs/configuration.md.
"""

from __future__ import annotations

import typer

from bus.home import Home
from oh.cli.common import console, fail
from oh.domain.units import plural

notify_app = typer.Typer(help="The notification hook ($OH_HOME/config/notify.toml): try it, list what it sent.",
                         no_args_is_help=True)


@notify_app.command("test")
def test() -> None:
    """Run the configured hook once with a sample message (not journaled); exit 1 if it did not succeed."""
    from oh.adapters.notify import Notice, NotifyConfigError, config_path, load_settings, run_hook

    home = Home.from_env()
    try:
        settings = load_settings(home.config)
    except NotifyConfigError as exc:
        fail(str(exc), 2)
    if not settings.enabled:
        fail(f"no hook configured: set `command` in {config_path(home.config)} (docs/configuration.md)", 2)
    outcome = run_hook(settings, Notice("test", "oh: test notification", "the hook works; nothing failed",
                                        job="test"))
    took = (outcome.ended_at - outcome.started_at).total_seconds()
    if outcome.status != "sent":
        fail(f"the hook ({outcome.program}) {outcome.status} after {took:.1f}s: {outcome.error}")
    console.print(f"[green]sent[/] with {outcome.program} in {took:.1f}s", highlight=False)


@notify_app.command("list")
def list_notifications(limit: int = typer.Option(20, help="At most this many, newest first.")) -> None:
    """The latest notifications the notify worker ran: when, why, and how it went."""
    from rich.table import Table

    from oh.cli.data import reader

    if limit < 1:
        fail(f"--limit must be at least 1, got {limit}", 2)
    with reader(Home.from_env()) as read:
        has_table = read("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' "
                         "AND table_name = 'notifications'", None).column(0)[0].as_py()
        rows = read("SELECT started_at, trigger, subject, title, status, error FROM meta.notifications "
                    f"ORDER BY started_at DESC LIMIT {int(limit)}", None).to_pylist() if has_table else []
    if not rows:
        console.print("no notifications yet")
        return
    view = Table(title=f"Notifications (latest {plural(len(rows), 'notification')})", title_justify="left")
    for column in ("when (UTC)", "trigger", "subject", "title", "status", "error"):
        view.add_column(column)
    for row in rows:
        view.add_row(f"{row['started_at']:%Y-%m-%d %H:%M:%S}", row["trigger"], row["subject"], row["title"],
                     row["status"], row["error"] or "", style=None if row["status"] == "sent" else "red")
    console.print(view)
