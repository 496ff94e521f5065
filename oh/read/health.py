"""The health report behind `oh db health` and the dashboard's Health page.

It reads only `meta.*` and the data tables through a `read(sql, params)` callable, so the same
report comes from the running ledger or from the file opened read-only. Freshness is counted in
trading sessions: a dataset whose last candle is Friday is not stale on Monday morning.

"Now" is `HealthOptions.now` or the wall clock (oh.domain.calendar), the same clock that decides which
sessions providers serve: data is expected through the last session closed by then, and a watermark
dated after it is flagged `future` (no market has that data). Symbols the trader forgot (`oh symbols
forget`, `meta.forgotten_symbols`) leave freshness, gaps, coverage and the plan; they come back when
data for them is written after the forget (their watermark moves) or on `oh symbols remember`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from contracts.catalog import TRACKED
from contracts.events import RUN_FAILED
from oh.domain import calendar
from oh.domain.coverage import Gap, coverage_matrix, find_gaps
from oh.domain.planner import PlannedCommand, plan

Reader = Callable[[str, list[Any]], pa.Table]


@dataclass(frozen=True)
class HealthOptions:
    """What the report covers: lookback in days, row limits, the stale threshold in sessions, the clock."""

    days: int = 7
    limit: int = 50
    stale_days: int = 1
    gap_sessions: int = 30
    now: datetime | None = None
    coverage: bool = False


LATEST_RUNS = """
SELECT job_name, status, started_at, ended_at, duration_ms, run_id, triggered_by, error_message
FROM meta.ingestion_runs
QUALIFY row_number() OVER (PARTITION BY job_name ORDER BY started_at DESC) = 1
ORDER BY job_name
"""

FAILURE_GROUPS = """
SELECT job_name, error_type, error_stack_hash, count(*) AS failures, min(started_at) AS first_seen,
       max(started_at) AS last_seen, arg_max(error_message, started_at) AS last_message,
       arg_max(status, started_at) AS last_status
FROM meta.ingestion_runs
WHERE list_contains(?::VARCHAR[], status) AND started_at >= ?
GROUP BY job_name, error_type, error_stack_hash
ORDER BY failures DESC, last_seen DESC
LIMIT ?
"""

FAILED_CHECKS = """
SELECT checked_at, asset_key, partition_key, check_name, severity, message, metrics_json, run_id
FROM meta.asset_checks
WHERE status = 'fail' AND checked_at >= ?
ORDER BY checked_at DESC, check_name
LIMIT ?
"""

WATERMARKS = """
SELECT asset_key, scope_key, watermark_ts, updated_at, last_run_id
FROM meta.asset_watermarks ORDER BY asset_key, scope_key
"""

HAS_FORGOTTEN = "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = 'forgotten_symbols'"

# Forgotten, and no data written for them since (a later watermark update brings a symbol back).
FORGOTTEN = """
SELECT f.symbol, f.forgotten_at, f.reason FROM meta.forgotten_symbols f
WHERE NOT EXISTS (SELECT 1 FROM meta.asset_watermarks w WHERE w.scope_key = f.symbol AND w.updated_at > f.forgotten_at)
ORDER BY f.symbol
"""


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()




def forgotten_symbols(read: Reader) -> list[dict[str, Any]]:
    """The symbols retired from health now (forgotten, and nothing written for them since); [] on a warehouse
    made before symbols could be forgotten (opened read-only, it has no such table)."""
    if not read(HAS_FORGOTTEN, []).column(0)[0].as_py():
        return []
    return _rows(read(FORGOTTEN, []))


def _gaps(
    read: Reader, asset_key: str, window: np.ndarray, with_coverage: bool, forgotten: frozenset[str] = frozenset()
) -> tuple[list[Gap], pa.Table | None]:
    """Gaps of one dataset over the window: sessions missing since each symbol's first stored one (forgotten
    symbols left out)."""
    table, symbol_col, date_col = TRACKED[asset_key]
    firsts = read(f"SELECT {symbol_col} AS symbol, min({date_col}) AS first FROM {table} GROUP BY 1", [])
    stored = read(
        f"SELECT DISTINCT {symbol_col} AS symbol, {date_col} AS day FROM {table} WHERE {date_col} >= ? ORDER BY 1, 2",
        [window[0].astype(date)],
    )
    present: dict[str, np.ndarray] = {}
    if stored.num_rows:  # rows come sorted by symbol: split the dates at each new symbol
        symbols = stored.column("symbol").to_numpy(zero_copy_only=False)
        dates = stored.column("day").to_numpy(zero_copy_only=False).astype("datetime64[D]")
        names, starts = np.unique(symbols, return_index=True)
        order = np.argsort(starts)
        present = dict(zip(map(str, names[order]), np.split(dates, starts[order][1:]), strict=True))
    first_dates = {row["symbol"]: row["first"] for row in _rows(firsts) if row["symbol"] not in forgotten}
    expected = {symbol: window[window >= np.datetime64(first, "D")] for symbol, first in first_dates.items()}
    coverage = None
    if with_coverage:
        everyone = {symbol: present.get(symbol, window[:0]) for symbol in first_dates}
        coverage = coverage_matrix(window, everyone, first_dates)
    return find_gaps(asset_key, expected, present), coverage


def health_report(read: Reader, options: HealthOptions) -> dict[str, Any]:
    """Everything the trader asks first: latest runs, failures, freshness, failed checks, gaps, and the plan."""
    now = (options.now or calendar.wall_clock()).astimezone(UTC)
    since = (now - timedelta(days=options.days)).replace(tzinfo=None)
    expected_until = calendar.last_closed_session(now)
    forgotten = forgotten_symbols(read)
    retired = frozenset(row["symbol"] for row in forgotten)
    watermarks = []
    for row in _rows(read(WATERMARKS, [])):
        if row["scope_key"] in retired:
            continue
        day = row["watermark_ts"].date()
        stale = calendar.sessions_after(day, expected_until)
        ahead = calendar.sessions_after(expected_until, day)  # sessions past the last closed one: cannot be real
        watermarks.append({**row, "staleness_sessions": stale, "stale": stale > options.stale_days,
                           "future_sessions": ahead, "future": ahead > 0})
    window = calendar.last_sessions(expected_until, options.gap_sessions)
    gaps: list[Gap] = []
    coverage: dict[str, list[dict[str, Any]]] = {}
    for asset_key in TRACKED:
        found, matrix = _gaps(read, asset_key, window, options.coverage, retired) if len(window) else ([], None)
        gaps += found
        if matrix is not None:
            coverage[asset_key] = matrix.to_pylist()
    commands: list[PlannedCommand] = plan(gaps)
    report = {
        "as_of": now.replace(tzinfo=None),
        "expected_through": expected_until,
        "latest_runs": _rows(read(LATEST_RUNS, [])),
        "failure_groups": _rows(read(FAILURE_GROUPS, [list(RUN_FAILED), since, options.limit])),
        "watermarks": watermarks,
        "failed_checks": _rows(read(FAILED_CHECKS, [since, options.limit])),
        "gaps": [asdict(gap) for gap in gaps],
        "gap_window": {"sessions": len(window), "start": window[0].astype(date) if len(window) else None,
                       "end": expected_until},
        "plan": [{"command": str(c), "argv": c.argv(), **asdict(c)} for c in commands],
        "forgotten": forgotten,
    }
    if options.coverage:
        report["coverage"] = coverage
    return report
