"""The briefing worker: job `build_briefing` (asset `briefing_markdown`), chained after every derived run.

For session D it loads the portfolio file (the command's path, else `$OH_HOME/config/portfolio.json`),
reads through the ledger (never the DuckDB file) the latest chains on or before D for the portfolio's
underlyings (and judges the risk profile's limits on them, oh.domain.limits), D's derived rows, D's
contract-level flow and the health report, renders Markdown with the
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
from contracts.catalog import job_of
from oh.adapters import files
from oh.adapters.portfolio_file import load
from oh.domain import analyze, briefing, calendar, limits
from oh.domain.portfolio import Portfolio, PortfolioError, option_legs
from oh.read import quotes
from oh.read.health import HealthOptions, health_report
from services.pipeline import Read, send_next_step
from services.runs import Bus, RunContext, raise_if_partitions_failed
from services.runtime import main

log = logging.getLogger(__name__)

BRIEFING = job_of(BuildBriefing)
ASSET = BRIEFING.asset_key

_FLOW_COLUMNS = "symbol, row_key, put_call, expiry, strike, d_oi, d_oi_notional, volume, label"
_FLOW_DAY = "list_contains($1::VARCHAR[], symbol) AND to_date = $2 AND window_sessions = 1 AND group_by = 'contract'"
# Per read, only the rows `briefing.flow_highlights` can show: the read's FLOW_ROWS ($3) largest building/unwinding
# changes (the largest of all are among each read's largest: same order, ties by symbol then contract) and the held
# contracts ($4). Reading every building/unwinding row (~700,000 at 5,000 symbols, as dicts) grew the worker with the
# width. Numbered parameters: both halves read the same symbols ($1) and day ($2).
FLOW_SQL = f"""
SELECT * FROM (
  (SELECT {_FLOW_COLUMNS} FROM options_flow WHERE {_FLOW_DAY} AND label IN ('building', 'unwinding')
     AND isfinite(d_oi_notional) ORDER BY abs(d_oi_notional) DESC, symbol, row_key LIMIT $3)
  UNION
  (SELECT {_FLOW_COLUMNS} FROM options_flow WHERE {_FLOW_DAY} AND list_contains($4::VARCHAR[], row_key)))
ORDER BY symbol, row_key
"""
DERIVED_SQL = "SELECT * FROM derived_daily WHERE list_contains(?::VARCHAR[], symbol) AND session_date = ? ORDER BY symbol"
SYMBOLS_PER_READ = 500  # symbols per query: a wide daily's briefing costs a few reads, not two per symbol


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


def _rows(read: Read, sql: str, symbols: list[str], as_of: date, *extra: Any) -> list[dict[str, Any]]:
    """The rows of `sql` for `symbols` (sorted), symbol by symbol, SYMBOLS_PER_READ symbols per query."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(symbols), SYMBOLS_PER_READ):
        rows += read(sql, [symbols[start:start + SYMBOLS_PER_READ], as_of, *extra]).to_pylist()
    return rows


def flow_candidates(read: Read, symbols: list[str], as_of: date, held: list[str]) -> list[dict[str, Any]]:
    """The flow rows of `symbols` on `as_of` that `briefing.flow_highlights` can show (FLOW_SQL), SYMBOLS_PER_READ
    symbols per query: the highlights of these rows are those of every row of the day."""
    return _rows(read, FLOW_SQL, symbols, as_of, briefing.FLOW_ROWS, held)


class BriefingRefused(ValueError):
    """The briefing would describe what cannot be known, or leave out what was asked for; nothing is written."""


def gather(command: BuildBriefing, run: RunContext, day: date) -> briefing.BriefingInput:
    """Everything the briefing of session `day` shows, read through the ledger."""
    last = calendar.last_closed_session(calendar.wall_clock())
    if day > last:
        raise BriefingRefused(f"{day} has not closed yet (the last closed session is {last}): no briefing")
    path = Path(command.portfolio) if command.portfolio else run.home.config / "portfolio.json"
    if command.portfolio and not path.exists():
        raise BriefingRefused(f"{path}: the portfolio file this briefing was asked for is gone; the {day} "
                              "briefing is not rewritten without it")
    portfolio, note = _portfolio(path)
    held = sorted({p.symbol for p in portfolio.positions}) if portfolio else []
    symbols = sorted(set(command.symbols) | set(held))
    analysis = None
    found: list[limits.Breach] = []
    if portfolio is not None:
        chains = quotes.latest_chains(run.query, held, day)
        closes = quotes.latest_closes(run.query, [s for s in held if s not in chains], day)
        analysis = analyze.analyze_portfolio(portfolio, chains, day, spots=closes)
        found = limits.breaches(analysis, portfolio.risk_profile, currency=portfolio.base_currency)
    contracts = {sym.compact for _, sym, _ in option_legs(portfolio)} if portfolio else set()
    # only the rows flow_highlights can show: building/unwinding, and the held contracts (not all ~100k)
    flow_rows = flow_candidates(run.query, symbols, day, sorted(contracts))
    notable, mine = briefing.flow_highlights(flow_rows, contracts)
    now = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)  # staleness relative to D, not the clock
    report = health_report(run.query, HealthOptions(now=now))
    return briefing.BriefingInput(
        as_of=day, symbols=tuple(symbols), portfolio_path=str(path), analysis=analysis,
        portfolio_note=note, currency=portfolio.base_currency if portfolio else "USD",
        derived=tuple(_rows(run.query, DERIVED_SQL, symbols, day)), flow=notable, held_flow=mine,
        health=briefing.health_summary(report, symbols),
        risk_profile=portfolio.risk_profile if portfolio else None, breaches=tuple(found),
    )


def build_briefing(command: BuildBriefing, run: RunContext) -> None:
    """Render each session's briefing, write its file, and emit BriefingBuilt with the same text."""
    days = command.days()
    failures: list[tuple[str, BaseException]] = []
    for day in days:
        run.check_stop()
        started = utc_now()
        try:
            data = gather(command, run, day)
            markdown = briefing.render(data)
            path = briefing_path(run.home.root, day)
            written = write_atomically(path, markdown)
        except Exception as exc:  # one session's failure never stops the others
            run.asset_failed(ASSET, str(day), exc, started)
            failures.append((str(day), exc))
            continue
        log.info("briefing %s %s (%d bytes)", path, "written" if written else "unchanged", len(markdown))
        run.emit(BriefingBuilt(run_id=run.run_id, as_of=day, path=str(path), markdown=markdown,
                               symbols=list(data.symbols), started_at=started, ended_at=utc_now()))
    raise_if_partitions_failed(failures, len(days), "briefings")


def after_derived(event: RunFinished, bus: Bus) -> None:
    """Chain: a finished derived run sends one BuildBriefing for the sessions it covered."""
    send_next_step(bus, event, BRIEFING)


HANDLERS = {BuildBriefing: build_briefing}
REACTIONS = {RunFinished: after_derived}

if __name__ == "__main__":
    main("briefing", HANDLERS, REACTIONS)
