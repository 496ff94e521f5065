"""`oh emit daily`: the whole chain on the sim market, each step started by the one before it, and the
scheduler emitting it on its cron schedule."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date

import pytest

from bus.home import Home
from oh.domain import calendar
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

WORKERS = ("snapshot", "flow", "derived", "briefing", "checks", "scheduler")
DAY = date(2025, 6, 4)
DATA_TABLES = ("candles_daily", "options_bars", "option_snapshots", "options_flow", "derived_daily", "briefings")
JOBS = ("daily", "ingest_candles", "ingest_options_bars", "snapshot_options", "compute_flow", "compute_derived",
        "build_briefing")


@pytest.fixture
def everything(home: Home) -> Iterator[Stack]:
    stack = Stack(home)
    stack.start_ledger()
    stack.start_ingest()
    stack.start_workers(*WORKERS)
    yield stack
    stack.stop()


def _tables(stack: Stack) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    return {t: stack.client.query(f"SELECT * FROM {t} ORDER BY ALL").to_pylist() for t in DATA_TABLES}


def test_daily_fills_every_table_for_the_day_and_is_idempotent(everything: Stack, home: Home) -> None:
    """After yesterday's daily, today's `oh emit daily --wait` lands rows for the day in every table, writes
    the briefing file, records one success run per job (all linked to the daily run); running it again
    changes no data row."""
    previous = calendar.last_sessions(DAY, 2)[0].astype(date)
    first = run_oh("emit", "daily", "--symbols", "SPY,AAPL", "--as-of", str(previous), "--wait", timeout=600)
    assert first.returncode == 0, first.stderr
    result = run_oh("emit", "daily", "--symbols", "SPY,AAPL", "--as-of", str(DAY), "--wait", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "daily succeeded" in result.stdout
    for table, day_column in (("candles_daily", "date"), ("options_bars", "date"), ("option_snapshots", "snapshot_date"),
                              ("options_flow", "to_date"), ("derived_daily", "session_date"), ("briefings", "as_of")):
        assert everything.scalar(f"SELECT count(*) FROM {table} WHERE {day_column} = ?", [DAY]) > 0, table
    assert (home.root / "briefings" / f"{DAY}.md").read_text().strip()
    daily_run = everything.scalar(
        "SELECT run_id FROM meta.ingestion_runs WHERE job_name = 'daily' AND args_json LIKE ?", [f'%"{DAY}"%'])
    tree = everything.client.query(
        "WITH RECURSIVE tree(run_id) AS (SELECT ?::VARCHAR UNION ALL SELECT r.run_id FROM meta.ingestion_runs r "
        "JOIN tree t ON r.parent_run_id = t.run_id) "
        "SELECT job_name, status FROM meta.ingestion_runs WHERE run_id IN (SELECT run_id FROM tree) ORDER BY 1",
        [daily_run],
    ).to_pylist()
    assert sorted({r["job_name"] for r in tree}) == sorted(JOBS)
    assert {r["status"] for r in tree} == {"success"}

    stored = _tables(everything)
    again = run_oh("emit", "daily", "--symbols", "SPY,AAPL", "--as-of", str(DAY), "--wait", timeout=600)
    assert again.returncode == 0, again.stderr
    after = _tables(everything)
    for table in DATA_TABLES:
        if table == "briefings":  # the same text, written again by a new run
            assert [(r["as_of"], r["markdown"]) for r in after[table]] == [(r["as_of"], r["markdown"]) for r in stored[table]]
        else:
            assert after[table] == stored[table], table


def test_daily_with_an_unknown_watchlist_is_refused_before_anything_is_sent(stack: Stack) -> None:
    """An unknown watchlist is a usage error at the command line (exit 2): nothing is journaled and no run is
    recorded (the ledger and ingest worker suffice to see that; the refusal comes before any worker matters)."""
    result = run_oh("emit", "daily", "--watchlist", "nosuchlist", "--as-of", str(DAY))
    assert result.returncode == 2
    assert "nosuchlist" in result.stderr + result.stdout
    assert stack.scalar("SELECT count(*) FROM ledger.events") == 0
    assert stack.scalar("SELECT count(*) FROM meta.ingestion_runs") == 0


def test_the_scheduler_emits_daily_on_its_cron_schedule(everything: Stack, home: Home) -> None:
    """With a schedule firing every few seconds, a `daily` run triggered by the scheduler appears and succeeds."""
    (home.config / "scheduler.toml").write_text(
        '[daily]\ncron = "* * * * * */3"\ntimezone = "UTC"\nsymbols = ["SPY"]\nprovider = "sim"\n'
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        runs = everything.client.query(
            "SELECT status FROM meta.ingestion_runs WHERE job_name = 'daily' AND triggered_by = 'scheduler'"
        ).column(0).to_pylist()
        if "success" in runs:
            break
        assert "failed" not in runs, everything.client.query("SELECT error_message FROM meta.ingestion_runs").to_pylist()
        time.sleep(0.5)
    else:
        raise AssertionError("no scheduled daily run succeeded")


def _wait(condition: Callable[[], object], what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def test_derived_waits_for_candles_that_end_last(home: Home) -> None:
    """The daily sends its snapshot beside the candles; derived reads the session's close, so with the candles'
    worker not running, snapshot and flow end and derived is not sent, even after the derived worker has handled
    flow's end; once the candles' worker starts and the candles end, derived runs after them, the briefing after
    it, and the daily succeeds."""
    stack = Stack(home)
    try:
        stack.start_ledger()
        stack.options_bars.start()
        stack.start_workers(*WORKERS)
        sent = run_oh("emit", "daily", "--symbols", "SPY", "--as-of", str(DAY))
        assert sent.returncode == 0, sent.stderr

        def status(job: str) -> str | None:
            rows = stack.client.query("SELECT status FROM meta.ingestion_runs WHERE job_name = ?", [job]).column(0)
            return rows[0].as_py() if len(rows) else None

        _wait(lambda: status("compute_flow") == "success", "flow")
        head = stack.scalar("SELECT max(seq) FROM ledger.events WHERE type = 'RunFinished'")  # flow's or after it
        offset = home.state / "derived.offset"
        _wait(lambda: offset.exists() and int(offset.read_text().split()[0]) >= head,  # type: ignore[operator]
              "derived to handle flow's end")
        assert status("ingest_candles") is None and status("compute_derived") is None

        stack.start_ingest()
        _wait(lambda: status("daily") not in (None, "started"), "the daily")
        assert status("daily") == "success"
        runs = {r["job_name"]: r for r in stack.client.query(
            "SELECT job_name, status, started_at, ended_at FROM meta.ingestion_runs").to_pylist()}
        assert runs["compute_derived"]["started_at"] >= runs["ingest_candles"]["ended_at"]
        assert runs["build_briefing"]["status"] == "success"
        assert stack.scalar("SELECT count(*) FROM derived_daily WHERE session_date = ? AND rv_20 IS NOT NULL", [DAY]) == 1
    finally:
        stack.stop()
