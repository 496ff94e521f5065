"""The briefing worker: job `build_briefing` (asset `briefing_markdown`), chained after every derived run.

For session D it loads the portfolio file (the command's path, else `$OH_HOME/config/portfolio.json`),
reads through the ledger (never the DuckDB file) the latest chains on or before D for the portfolio's
underlyings, D's derived rows, D's contract-level flow and the health report, renders Markdown with the
pure `oh.domain.briefing.render`, writes `$OH_HOME/briefings/D.md` atomically and emits BriefingBuilt (which the
ledger upserts into `briefings`, one row per day). No default portfolio file gives a briefing without
the portfolio section, saying so; a malformed one puts its error in that section and the rest is written.
A portfolio path named by the command that does not exist (it vanished after `oh emit briefing`
checked it) fails the run and writes nothing: a briefing without the portfolio the trader asked for
must not replace that day's briefing. A session that has not closed fails the run too (its data
cannot exist). The same stored data always gives the same bytes: a rerun rewrites nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from contracts import BriefingBuilt, BuildBriefing, RunFinished, utc_now
from oh.adapters import files
from oh.adapters.portfolio_file import load
from oh.domain import analyze, briefing, calendar
from oh.domain.portfolio import Portfolio, PortfolioError, option_legs
from oh.read import quotes
from oh.read.health import HealthOptions, health_report
from services.pipeline import send_next_step
from services.runtime import RunContext, Worker, main

log = logging.getLogger(__name__)

JOB = "build_briefing"
ASSET = "briefing_markdown"

FLOW_SQL = """
SELECT symbol, row_key, put_call, expiry, strike, d_oi, d_oi_notional, volume, label FROM options_flow
WHERE symbol = ? AND to_date = ? AND window_sessions = 1 AND group_by = 'contract'
  AND (label IN ('building', 'unwinding') OR list_contains(?::VARCHAR[], row_key))
ORDER BY row_key
"""
DERIVED_SQL = "SELECT * FROM derived_daily WHERE symbol = ? AND session_date = ?"


def briefing_path(root: Path, as_of: date) -> Path:
    """`$OH_HOME/briefings/YYYY-MM-DD.md`."""
    return root / "briefings" / f"{as_of.isoformat()}.md"


def write_atomically(path: Path, text: str) -> bool:
    """Write `text` to `path` through a temp file, fsync and os.replace; False (nothing written) when it is already there."""
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    files.write_atomically(path, data)
    return True


def _portfolio(path: Path) -> tuple[Portfolio | None, str | None]:
    """The portfolio, or None with the sentence the briefing shows instead."""
    if not path.exists():
        return None, "No portfolio file: this briefing has no portfolio section (create one with `oh portfolio init`)."
    try:
        return load(path), None
    except PortfolioError as exc:
        return None, f"The portfolio file could not be read, so it is not analyzed: {exc}"


def _rows(worker: Worker, sql: str, symbols: list[str], as_of: date, *extra: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for symbol in symbols:
        rows += worker.query(sql, [symbol, as_of, *extra]).to_pylist()
    return rows


class BriefingRefused(ValueError):
    """The briefing would describe what cannot be known, or leave out what was asked for; nothing is written."""


def gather(command: BuildBriefing, worker: Worker) -> briefing.BriefingInput:
    """Everything the briefing shows for command.as_of, read through the ledger."""
    last = calendar.last_closed_session(calendar.wall_clock())
    if command.as_of > last:
        raise BriefingRefused(f"{command.as_of} has not closed yet (the last closed session is {last}): no briefing")
    path = Path(command.portfolio) if command.portfolio else worker.home.config / "portfolio.json"
    if command.portfolio and not path.exists():
        raise BriefingRefused(f"{path}: the portfolio file this briefing was asked for is gone; the {command.as_of} "
                              "briefing is not rewritten without it")
    portfolio, note = _portfolio(path)
    held = sorted({p.symbol for p in portfolio.positions}) if portfolio else []
    symbols = sorted(set(command.symbols) | set(held))
    analysis = None
    if portfolio is not None:
        chains = quotes.latest_chains(worker.query, held, command.as_of)
        closes = quotes.latest_closes(worker.query, [s for s in held if s not in chains], command.as_of)
        analysis = analyze.analyze_portfolio(portfolio, chains, command.as_of, spots=closes)
    contracts = {sym.compact for _, sym, _ in option_legs(portfolio)} if portfolio else set()
    # only the rows flow_highlights can show: building/unwinding, and the held contracts (not all ~100k)
    flow_rows = _rows(worker, FLOW_SQL, symbols, command.as_of, sorted(contracts))
    notable, mine = briefing.flow_highlights(flow_rows, contracts)
    now = datetime.combine(command.as_of, time(23, 59, 59), tzinfo=UTC)  # staleness relative to D, not the clock
    report = health_report(worker.query, HealthOptions(now=now))
    return briefing.BriefingInput(
        as_of=command.as_of, symbols=tuple(symbols), portfolio_path=str(path), analysis=analysis,
        portfolio_note=note, currency=portfolio.base_currency if portfolio else "USD",
        derived=tuple(_rows(worker, DERIVED_SQL, symbols, command.as_of)), flow=notable, held_flow=mine,
        health=briefing.health_summary(report, symbols),
    )


def build_briefing(command: BuildBriefing, run: RunContext) -> None:
    """Render the day's briefing, write the file, and emit BriefingBuilt with the same text."""
    started = utc_now()
    try:
        data = gather(command, run.worker)
        markdown = briefing.render(data)
        path = briefing_path(run.worker.home.root, command.as_of)
        written = write_atomically(path, markdown)
    except Exception as exc:
        run.asset_failed(ASSET, str(command.as_of), exc, started)
        raise
    log.info("briefing %s %s (%d bytes)", path, "written" if written else "unchanged", len(markdown))
    run.emit(BriefingBuilt(run_id=run.run_id, as_of=command.as_of, path=str(path), markdown=markdown,
                           symbols=list(data.symbols), started_at=started, ended_at=utc_now()))


def after_derived(event: RunFinished, worker: Worker) -> None:
    """Chain: a finished derived run sends one BuildBriefing per session it covered."""
    send_next_step(worker, event, "compute_derived")


HANDLERS = {BuildBriefing: (JOB, build_briefing)}
EVENT_HANDLERS = {RunFinished: after_derived}

if __name__ == "__main__":
    main("briefing", HANDLERS, EVENT_HANDLERS)
