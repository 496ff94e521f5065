"""The daily briefing as Markdown, rendered from plain data (pure: no sockets, no files, no clock).

`render(BriefingInput) -> str` is the whole job of this module; the briefing worker
(services/briefing.py) gathers the data. The text depends on nothing but its input: no wall-clock
time, and every list in a fixed order (ties broken by symbol and contract), so the same data gives
the same bytes, which is what makes re-running a briefing a no-op. Sections, in order:

1. title, "Not financial advice", the symbols covered, and the data-health line;
2. the portfolio (breached risk limits first, in words, then positions with PnL, Greeks, stress grids,
   warnings), or why it is missing;
3. derived highlights (IV rank extremes, the largest expected moves) and the derived table;
4. notable flow: the contracts you hold, then the largest open-interest changes.

Helpers that turn query results into the input: `flow_highlights`, `health_summary`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from contracts.events import RUN_FAILED
from oh.domain import analyze_tables as tables
from oh.domain.analyze import PortfolioAnalysis
from oh.domain.limits import Breach
from oh.domain.portfolio import RiskProfile
from oh.domain.units import pct_points, plural

IV_RANK_HIGH = 80.0  # IV rank at or above this is an "extreme high"
IV_RANK_LOW = 20.0  # ... at or below this an "extreme low"
BIG_MOVES = 3  # how many of the largest expected moves to name
FLOW_ROWS = 10  # how many of the largest open-interest changes to list
HEALTH_NAMES = 6  # how many stale/failed names the health line spells out before "and N more"
NOTABLE_LABELS = ("building", "unwinding")


@dataclass(frozen=True)
class FlowHighlight:
    """One contract's open-interest change for the session (an `options_flow` contract row)."""

    symbol: str
    contract: str
    right: str
    expiry: date | None
    strike: float
    d_oi: int | None
    d_oi_notional: float
    volume: int | None
    label: str
    held: bool = False


@dataclass(frozen=True)
class HealthSummary:
    """The data-health line's parts: stale datasets, failed runs, failed checks and gaps (already worded)."""

    stale: tuple[str, ...] = ()
    failed_runs: tuple[str, ...] = ()
    failed_checks: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()
    through: date | None = None


@dataclass(frozen=True)
class BriefingInput:
    """Everything one briefing shows. `analysis` None means no portfolio section; `portfolio_note` says why."""

    as_of: date
    symbols: tuple[str, ...]
    portfolio_path: str
    analysis: PortfolioAnalysis | None
    portfolio_note: str | None = None
    currency: str = "USD"
    derived: tuple[Mapping[str, Any], ...] = ()
    flow: tuple[FlowHighlight, ...] = ()
    held_flow: tuple[FlowHighlight, ...] = ()
    health: HealthSummary = field(default_factory=HealthSummary)
    risk_profile: RiskProfile | None = None  # the limits judged (None: not judged)
    breaches: tuple[Breach, ...] = ()  # oh.domain.limits.breaches of the analysis, largest first


# ------------------------------------------------------------------------------------- helpers


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _text_table(table: tables.TextTable, level: str = "###") -> list[str]:
    return [f"{level} {table.title}", "", *_table(table.header, table.rows, table.numeric), ""]


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:HEALTH_NAMES])
    return shown + (f" and {len(items) - HEALTH_NAMES} more" if len(items) > HEALTH_NAMES else "")


def flow_highlights(rows: Iterable[Mapping[str, Any]], held: set[str], limit: int = FLOW_ROWS
                    ) -> tuple[tuple[FlowHighlight, ...], tuple[FlowHighlight, ...]]:
    """(largest building/unwinding changes by |d_oi_notional|, every row on a held contract) from flow rows.

    Rows are `options_flow` contract rows (columns symbol, row_key, put_call, expiry, strike, d_oi,
    d_oi_notional, volume, label). Ties are broken by symbol then contract, so the order is stable.
    """
    items = [FlowHighlight(str(r["symbol"]), str(r["row_key"]), str(r.get("put_call") or ""), r.get("expiry"),
                           _num(r.get("strike")), r.get("d_oi"), _num(r.get("d_oi_notional")), r.get("volume"),
                           str(r.get("label") or "unknown"), str(r["row_key"]) in held) for r in rows]
    notable = [i for i in items if i.label in NOTABLE_LABELS and math.isfinite(i.d_oi_notional)]
    notable.sort(key=lambda i: (-abs(i.d_oi_notional), i.symbol, i.contract))
    mine = sorted((i for i in items if i.held), key=lambda i: (i.symbol, i.contract))
    return tuple(notable[:limit]), tuple(mine)


def health_summary(report: Mapping[str, Any], symbols: Sequence[str] | None = None,
                   skip_assets: Sequence[str] = ("briefing_markdown",)) -> HealthSummary:
    """Word an `oh.read.health.health_report` for one line: stale watermarks, failed latest runs, failed checks, gaps.

    `symbols` (when given) limits the per-symbol parts to them; scope `ALL` always counts.
    """
    def relevant(scope: Any) -> bool:
        return symbols is None or scope in ("ALL", None) or scope in symbols

    stale = sorted(f"{w['asset_key']} {w['scope_key']} ({plural(w['staleness_sessions'], 'session')} behind)"
                   for w in report.get("watermarks", ()) if w.get("stale") and w["asset_key"] not in skip_assets
                   and relevant(w.get("scope_key")))
    failed = sorted(f"{r['job_name']} ({r['status']})" for r in report.get("latest_runs", ())
                    if r.get("status") in RUN_FAILED)
    checks = sorted({f"{c['check_name']} on {c['asset_key']}" for c in report.get("failed_checks", ())
                     if relevant((c.get("partition_key") or "ALL").split("|")[0])})
    gaps = sorted(f"{g['asset_key']} {g['symbol']} ({plural(g['sessions'], 'session')} from {g['start']})"
                  for g in report.get("gaps", ()) if relevant(g.get("symbol")))
    return HealthSummary(tuple(stale), tuple(failed), tuple(checks), tuple(gaps), report.get("expected_through"))


def health_line(health: HealthSummary) -> str:
    """One sentence: everything fresh, or what is stale, failed or missing."""
    parts = []
    if health.stale:
        parts.append(f"stale: {_names(health.stale)}")
    if health.failed_runs:
        parts.append(f"failed runs: {_names(health.failed_runs)}")
    if health.failed_checks:
        parts.append(f"failed checks: {_names(health.failed_checks)}")
    if health.gaps:
        parts.append(f"gaps: {_names(health.gaps)}")
    through = f" through {health.through}" if health.through else ""
    if not parts:
        return f"**Data health:** all datasets fresh{through}; no failed runs, checks or gaps."
    return f"**Data health:** {'; '.join(parts)} (see `oh db health`)."


# ------------------------------------------------------------------------------------- sections


def _portfolio(data: BriefingInput) -> list[str]:
    lines = ["## Portfolio", "", f"File: `{data.portfolio_path}`", ""]
    analysis = data.analysis
    if analysis is None:
        return [*lines, data.portfolio_note or "No portfolio.", ""]
    lines += [tables.summary_line(analysis, data.currency), ""]
    lines += _limits(data)
    if data.portfolio_note:
        lines += [data.portfolio_note, ""]
    if not analysis.positions:
        return [*lines, "No positions.", ""]
    lines += _text_table(tables.positions_table(analysis))
    lines += _text_table(tables.greeks_table(analysis))
    for stress in tables.stress_tables(analysis):
        lines += _text_table(stress)
    lines += _text_table(tables.stress_by_position_table(analysis))
    warnings = tables.warning_lines(analysis)
    if warnings:
        lines += ["Warnings:", "", *(f"- {w}" for w in warnings), ""]
    return lines


def _limits(data: BriefingInput) -> list[str]:
    """Every breached risk-profile limit in words, or that the book is within them."""
    profile = data.risk_profile
    if profile is None:
        return []
    if not data.breaches:
        return [f"**Risk limits:** within the risk profile (each position at most {pct_points(profile.max_position_pct)} "
                f"of net liq, net delta at most {pct_points(profile.max_portfolio_delta_pct)}).", ""]
    return [f"**Risk limits: {plural(len(data.breaches), 'breach', 'breaches')}**", "",
            *(f"- {breach.text}" for breach in data.breaches), ""]


def _derived(data: BriefingInput) -> list[str]:
    lines = ["## Derived highlights", ""]
    rows = sorted(data.derived, key=lambda r: str(r["symbol"]))
    if not rows:
        return [*lines, f"No derived metrics for {data.as_of}.", ""]
    rank = [(str(r["symbol"]), _num(r.get("iv_rank"))) for r in rows]
    high = [f"{s} ({v:.0f})" for s, v in sorted(rank, key=lambda x: (-x[1], x[0])) if v >= IV_RANK_HIGH]
    low = [f"{s} ({v:.0f})" for s, v in sorted(rank, key=lambda x: (x[1], x[0])) if v <= IV_RANK_LOW]
    moves = sorted(((str(r["symbol"]), _num(r.get("expected_move_pct"))) for r in rows), key=lambda x: (-x[1], x[0]))
    moves = [(s, v) for s, v in moves if math.isfinite(v)][:BIG_MOVES]
    lines.append(f"- IV rank >= {IV_RANK_HIGH:g}: {', '.join(high) or 'none'}")
    lines.append(f"- IV rank <= {IV_RANK_LOW:g}: {', '.join(low) or 'none'}")
    known = sum(math.isfinite(v) for _, v in rank)
    if known < len(rank):
        lines.append(f"- IV rank not yet known for {len(rank) - known} of {plural(len(rank), 'symbol')} (it needs 20 prior sessions)")
    lines.append(f"- Largest expected moves: {', '.join(f'{s} ±{v:.1f}%' for s, v in moves) or 'none'}")
    lines.append("")
    header = ("symbol", "spot", "ATM IV", "IV rank", "IV pctl", "exp. move", "P/C OI", "call wall", "put wall")
    body = [(str(r["symbol"]), tables.number(_num(r.get("spot"))), tables.pct(_num(r.get("atm_iv")) * 100, False),
             tables.number(_num(r.get("iv_rank")), 0), tables.number(_num(r.get("iv_percentile")), 0),
             tables.pct(_num(r.get("expected_move_pct")), False), tables.number(_num(r.get("pcr_oi"))),
             tables.number(_num(r.get("call_wall")), 1), tables.number(_num(r.get("put_wall")), 1)) for r in rows]
    return [*lines, *_table(header, body, (False, *(True,) * 8)), ""]


def _flow_rows(items: Sequence[FlowHighlight]) -> list[str]:
    header = ("symbol", "contract", "label", "ΔOI", "ΔOI notional", "volume", "held")
    body = [(i.symbol, i.contract, i.label, "n/a" if i.d_oi is None else f"{i.d_oi:+,d}", tables.whole(i.d_oi_notional),
             "n/a" if i.volume is None else f"{i.volume:,d}", "yes" if i.held else "") for i in items]
    return _table(header, body, (False, False, False, True, True, True, False))


def _flow(data: BriefingInput) -> list[str]:
    lines = ["## Notable flow", ""]
    if data.analysis is not None and data.analysis.positions:
        lines += ["### On contracts you hold", ""]
        lines += [*_flow_rows(data.held_flow), ""] if data.held_flow else [f"No flow rows for held contracts on {data.as_of}.", ""]
    lines += [f"### Largest open-interest changes ({' / '.join(NOTABLE_LABELS)})", ""]
    if not data.flow:
        return [*lines, f"No building or unwinding flow stored for {data.as_of}.", ""]
    return [*lines, *_flow_rows(data.flow), ""]


def render(data: BriefingInput) -> str:
    """The whole briefing as Markdown text ending in one newline (deterministic: see the module docstring)."""
    portfolio_symbols = sorted({p.symbol for p in data.analysis.positions}) if data.analysis else []
    held = f" (portfolio: {', '.join(portfolio_symbols)})" if portfolio_symbols else ""
    lines = [
        f"# Briefing {data.as_of}", "",
        "> Not financial advice. A summary of stored market data; it never places orders.", "",
        f"Symbols: {', '.join(data.symbols) or 'none'}{held}", "",
        health_line(data.health), "",
        *_portfolio(data), *_derived(data), *_flow(data),
    ]
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"
