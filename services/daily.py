"""Job `daily`: the whole daily chain for one session, run by the scheduler worker.

It sends the first commands and follows the chain to its end, so one run says whether the day
worked: candles (`incremental`: per symbol only what the `candle_days` window lacks, plus an overlap it checks
against the stored rows; the whole window for a new symbol, a hole or a changed history: services/ingest.py),
option bars and the snapshot at once (in parallel, on their workers); flow, derived
and the briefing then start on their own, each on the committed `RunFinished` of the step before it,
derived also not before the candles have ended (it reads the session's close: services/pipeline.py,
`waits_for`). Every command id derives from this run's id (`pipeline.daily_command_id`), and the run
ids of the chained steps are computed the same way the chaining workers compute them, so the
job knows which runs to wait for, a restarted job re-sends only duplicates the ledger drops, and
running the same day twice changes nothing. The run fails, naming the steps, if any step failed.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime, timedelta

from contracts import (
    Command,
    IngestCandles,
    IngestOptionsBars,
    RunDaily,
    SnapshotOptions,
)
from oh.domain import calendar
from services.pipeline import Step, daily_command_id, follow_chain, step_of, wait_for_run
from services.runs import RunContext, RunFailed

log = logging.getLogger(__name__)


def step_timeouts() -> tuple[float, float]:
    """(start, step) seconds, read when a day runs (never at import: docs/configuration.md). A step no worker picks
    up within the first fails the day (its worker is probably not running); one that runs longer than the second
    fails it too (it is still recorded when it ends)."""
    return (float(os.environ.get("OH_DAILY_START_TIMEOUT", "600")), float(os.environ.get("OH_DAILY_STEP_TIMEOUT", "7200")))


def resolve_as_of(as_of: date | None, now: datetime | None = None) -> date:
    """The session a daily run covers: the one asked for, else the newest session already closed."""
    if as_of is not None:
        if not calendar.is_session(as_of):
            raise ValueError(f"{as_of} is not an NYSE session")
        return as_of
    return calendar.last_closed_session(now or datetime.now(UTC))


def _send(run: RunContext, commands: list[Command]) -> list[Step]:
    run.send_commands(commands)
    return [step_of(command) for command in commands]


def _watchlist(run: RunContext, name: str) -> list[str]:
    from oh.adapters.watchlists import load_watchlist

    return load_watchlist(run.home, name)


def _portfolio_underlyings(run: RunContext) -> list[str]:
    """The default portfolio's underlyings; none (with a warning in the log) if it is missing or malformed."""
    from oh.adapters.portfolio_file import load
    from oh.domain.portfolio import PortfolioError, underlyings

    path = run.home.config / "portfolio.json"
    if not path.exists():
        return []
    try:
        return underlyings(load(path))
    except PortfolioError as exc:
        log.warning("daily: portfolio %s not used: %s", path, exc)
        return []


def daily(command: RunDaily, run: RunContext) -> None:
    """Run the chain for one session and wait for it; fail naming every step that did not succeed."""
    day = resolve_as_of(command.as_of)
    listed = _watchlist(run, command.watchlist) if command.watchlist else []
    portfolio = _portfolio_underlyings(run) if command.with_portfolio else []
    symbols = sorted(set(command.symbols) | set(listed) | set(portfolio))
    if not symbols:
        raise ValueError("no symbols: give --symbols or --watchlist, or add positions to the portfolio")
    first_candle = day - timedelta(days=command.candle_days)
    common = {"parent_run_id": run.run_id, "triggered_by": "pipeline"}
    provider = {"provider": command.provider, "fallback": command.fallback}
    candles, bars, snapshot = _send(run, [
        IngestCandles(id=daily_command_id(run.run_id, "ingest_candles"), symbols=symbols, start=first_candle, end=day,
                      incremental=True, **provider, **common),
        IngestOptionsBars(id=daily_command_id(run.run_id, "ingest_options_bars"), symbols=symbols, start=day, end=day,
                          **provider, **common),
        SnapshotOptions(id=daily_command_id(run.run_id, "snapshot_options"), symbols=symbols, start=day, end=day,
                        **provider, **common),
    ])
    timeouts = step_timeouts()
    # the candles first: derived, in the chain, is sent only once they have ended (the waits overlap the runs)
    outcomes = {candles: wait_for_run(run.query, candles, *timeouts, run.check_stop)}
    outcomes.update(follow_chain(run.query, snapshot, *timeouts, run.check_stop))
    outcomes[bars] = wait_for_run(run.query, bars, *timeouts, run.check_stop)
    failed = [(step, status) for step, status in outcomes.items() if status != "success"]
    if failed:
        reasons = run.query(
            "SELECT run_id, error_message FROM meta.ingestion_runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
            [[step.run_id for step, _ in failed]],
        ).to_pylist()
        why = {r["run_id"]: r["error_message"] for r in reasons}
        named = "; ".join(f"{step.job} {status}" + (f": {why[step.run_id]}" if why.get(step.run_id) else "")
                          for step, status in failed)
        raise RunFailed(f"daily {day}: {named}", RuntimeError(named))
