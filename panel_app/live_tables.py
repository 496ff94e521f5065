"""The live page's tables: marks in trader units, the fills and stream health, as rows and HTML.

Formatting only: every number comes from `oh.domain.marks` (positions, structures' net mark and PnL,
legs) or from the worker's LiveStatus, and is written through `oh.domain.units` (money with
separators, signed PnL, percentages, counts; a missing value is units.MISSING, never 0 or blank).
Options are named the way a trader reads them: `AAPL 18 Dec 26 250 call` (underlying, expiry,
strike, right); a structure is `SPY put vertical 18 Dec 26 490/500`, its legs listed below it. A
warning that names a contract's OCC symbol names it in those words instead.

The grid that shows these rows in the browser, patched cell by cell, is panel_app.live_grid.

Each row carries the feed time of the newest quote it was marked with, as `data-ts` on the
"quote at" cell (seconds since the epoch): the browser benchmark reads it to measure how old a
value is when it reaches the page (the canvas columns are drawn in the same task, before it reads).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from contracts.live import LiveStatus, Quote
from oh.domain import units
from oh.domain.marks import LegMark, PortfolioMarks, PositionMark
from oh.domain.osi import BadOptionSymbol, parse_osi

# (field, header): the field is the cell's data-field (what tests and the benchmark read), the header is shown.
# What a trader reads first comes first (on a phone the first four or five fit, the rest scroll in the card).
POSITION_COLUMNS = (("position", "Position"), ("contract", "Contract"), ("qty", "Qty"), ("mark", "Mark"),
                    ("pnl", "PnL"), ("pnl %", "PnL %"), ("value", "Value"), ("dte", "DTE"), ("spread", "Spread"),
                    ("age", "Quote age"), ("quote", "Quote"), ("warnings", "Warnings"), ("quote at", "Quote at (UTC)"))
LEG_COLUMNS = (("position", "Position"), ("leg", "Leg"), ("qty", "Qty"), ("mark", "Mark"), ("pnl", "PnL"),
               ("bid", "Bid"), ("ask", "Ask"), ("spread", "Spread"), ("age", "Quote age"), ("quote", "Quote"),
               ("warnings", "Warnings"), ("quote at", "Quote at (UTC)"))
QUOTE_STATES = {"live": "oh-q-ok", "stale": "oh-q-stale", "no quote": "oh-q-none"}  # "quote" cell text -> class
NUMERIC_COLUMNS = ("qty", "mark", "value", "pnl", "pnl %", "dte", "spread", "age", "bid", "ask", "price")
# The moving numbers: drawn on a canvas over the grid, not written as DOM text (panel_app.live_canvas; each frame of
# marks changes ~600 of them, and chromium's layout, paint and raster of as many DOM cells cost ~1.4x the canvas's CPU).
# They must be side by side in each table (the canvas is opaque and covers them as one block): hence DTE, between value
# and spread.
CANVAS_COLUMNS = ("mark", "pnl", "pnl %", "value", "dte", "spread", "bid", "ask")
# One palette for the CSS and the canvas: a PnL's sign and a quote's state.
PALETTE = {"pos": "#1e7b34", "neg": "#c62828", "q-ok": "#1e7b34", "q-stale": "#c62828", "q-none": "#777"}
KIND_WORDS = {"iron_condor": "iron condor"}
# The grids' borders are separate, not collapsed as oh.css has every .oh-table's: each cell draws its own bottom
# line, the same pixels (a screenshot of both is identical). Collapsed, the table's borders are the table's to
# paint, and a frame of marks made chromium raster the tables' tiles at ~1.6 times the CPU (bench/README.md).
# `.oh-sr`: a canvas cell's text for a screen reader, copying and the tests (kept current once a second), not shown.
CELL_CSS = f"""
.oh-q-ok {{ color:{PALETTE["q-ok"]}; }} .oh-q-stale {{ color:{PALETTE["q-stale"]}; font-weight:600; }}
.oh-q-none {{ color:{PALETTE["q-none"]}; }}
.oh-scroll {{ overflow-x:auto; max-width:100%; -webkit-overflow-scrolling:touch; contain:content; position:relative; }}
table.oh-grid {{ border-collapse:separate; border-spacing:0; }}
table.oh-grid td.oh-num, table.oh-grid th.oh-num {{ text-align:right; font-variant-numeric:tabular-nums; }}
table.oh-grid td.oh-neg {{ color:{PALETTE["neg"]}; }} table.oh-grid td.oh-pos {{ color:{PALETTE["pos"]}; }}
table.oh-grid th {{ white-space:normal; vertical-align:bottom; }}
table.oh-grid th.oh-cv {{ box-sizing:border-box; }}
table.oh-grid td[data-field="warnings"] {{ white-space:normal; min-width:10em; }}
canvas.oh-grid-canvas {{ position:absolute; left:0; top:0; pointer-events:none; }}
.oh-sr {{ position:absolute; width:1px; height:1px; margin:-1px; padding:0; overflow:hidden; clip:rect(0 0 0 0);
  clip-path:inset(50%); white-space:nowrap; border:0; }}
@media (max-width: 600px) {{  /* a phone: the contract says what the row is; the id column would push the numbers out */
  table.oh-grid [data-field="position"] {{ display:none; }}
  table.oh-grid td[data-field="contract"], table.oh-grid td[data-field="leg"] {{ white-space:normal; min-width:8em; }}
}}
"""

Row = tuple[str, ...]


# ---------------------------------------------------------------- trader words for contracts and numbers
@lru_cache(maxsize=4096)
def expiry_text(expiry: date) -> str:
    """`18 Dec 26`: the way brokers print an option's expiry."""
    return f"{expiry.day} {expiry:%b %y}"


@lru_cache(maxsize=4096)
def strike_text(strike: float) -> str:
    """`250`, `252.5`, `1,250`: a strike without trailing zeros."""
    return f"{strike:,.2f}".rstrip("0").rstrip(".")


@lru_cache(maxsize=4096)
def option_text(underlying: str, expiry: date | None, right: str | None, strike: float | None) -> str:
    """`AAPL 18 Dec 26 250 call`: underlying, expiry, strike and right of one contract."""
    if expiry is None or right is None or strike is None:
        return underlying
    return f"{underlying} {expiry_text(expiry)} {strike_text(strike)} {right}"


def _joined(values: Iterable[str]) -> str:
    return "/".join(dict.fromkeys(values))


def contract_text(p: PositionMark) -> str:
    """What a position holds in words: `AAPL` shares, `AAPL 18 Dec 26 250 call`, `SPY put vertical 18 Dec 26 490/500`."""
    if p.type == "stock":
        return f"{p.symbol} shares"
    if p.type == "option" and p.legs:
        leg = p.legs[0]
        return option_text(p.symbol, leg.expiry, leg.right, leg.strike)
    legs = [leg for leg in p.legs if leg.expiry is not None]
    rights = {leg.right for leg in legs}
    kind = KIND_WORDS.get(p.structure_kind or "", (p.structure_kind or "structure").replace("_", " "))
    if len(rights) == 1 and kind not in ("straddle", "strangle"):
        kind = f"{rights.pop()} {kind}"
    expiries = _joined(expiry_text(e) for e in sorted({leg.expiry for leg in legs if leg.expiry is not None}))
    strikes = _joined(strike_text(s) for s in sorted({leg.strike for leg in legs if leg.strike is not None}))
    return " ".join(part for part in (p.symbol, kind, expiries, strikes) if part)


def leg_text(leg: LegMark) -> str:
    """One leg of a structure in words (`SPY 18 Dec 26 500 put`)."""
    return option_text(leg.underlying, leg.expiry, leg.right, leg.strike)


def _words(warnings: Sequence[str], legs: Sequence[LegMark]) -> str:
    """A position's warnings in one line, each OCC symbol of its legs replaced by the leg in words."""
    out = []
    for warning in warnings:
        for leg in legs:
            if leg.kind == "option" and leg.symbol in warning:
                warning = warning.replace(leg.symbol, leg_text(leg))
        out.append(warning)
    return "; ".join(out)


def quantity_text(value: float) -> str:
    """Signed shares or contracts: `+10`, `-2`."""
    return units.number(value, 0, sign=True) if value else "0"


def age_text(value: float | None) -> str:
    """How old a quote is: `<1s`, `12s`, `3m 05s` (whole seconds: a tenth would rewrite every row at
    every marking for nothing a trader acts on)."""
    if value is None or not math.isfinite(value):
        return units.MISSING
    if value < 1:
        return "<1s"
    if value < 60:
        return f"{int(value)}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m {seconds:02d}s"


def _quote_state(has_mark: bool, stale: bool, age: float | None) -> str:
    if age is None and not has_mark:
        return "no quote"
    return "stale" if stale else "live"


def _quote_at(stamp: float) -> str:
    """The feed time of a row's newest quote, seconds since the epoch to the microsecond ("0": none); the
    grid shows it as HH:MM:SS UTC and keeps the number as the cell's `data-ts`."""
    return f"{stamp:.6f}" if stamp > 0 else "0"


def _newest(symbols: Iterable[str], quotes: Mapping[str, Quote]) -> float:
    stamps = [q.ts_feed if q.ts_feed > 0 else q.ts_recv for s in symbols if (q := quotes.get(s)) is not None]
    return max(stamps, default=0.0)


def position_rows(marks: PortfolioMarks, quotes: Mapping[str, Quote]) -> list[Row]:
    """One display row per position: structures show their net mark and net PnL per structure."""
    rows = []
    for p in marks.positions:
        rows.append((
            p.position_id, contract_text(p), quantity_text(p.quantity), units.price(p.mark),
            units.money(p.pnl, sign=True), units.pct(p.pnl_pct, sign=True), units.money(p.value), units.count(p.dte),
            units.pct(p.spread_pct), age_text(p.age), _quote_state(p.mark is not None, p.stale, p.age),
            _words(p.warnings, p.legs), _quote_at(_newest((leg.symbol for leg in p.legs), quotes)),
        ))
    return rows


def leg_rows(marks: PortfolioMarks, quotes: Mapping[str, Quote]) -> list[Row]:
    """One display row per leg of every structure (single positions are whole rows above)."""
    rows = []
    for p in marks.positions:
        if p.type != "structure":
            continue
        for leg in p.legs:
            rows.append((
                p.position_id, leg_text(leg), quantity_text(leg.quantity), units.price(leg.mark),
                units.money(leg.pnl, sign=True), units.price(leg.bid), units.price(leg.ask), units.pct(leg.spread_pct),
                age_text(leg.age), _quote_state(leg.mark is not None, leg.stale, leg.age), "; ".join(leg.warnings),
                _quote_at(_newest([leg.symbol], quotes)),
            ))
    return rows


def summary_html(marks: PortfolioMarks, quoted: int, marking: int = 0) -> str:
    """The cards above the tables: value and PnL of the marked positions, how many are marked and stale.
    `marking` (the marker's number of this marking) is kept as `data-marking`, for tests."""
    total = len(marks.positions)
    cards = [("Value (marked)", units.money(marks.value)), ("PnL (marked)", units.money(marks.pnl, sign=True)),
             ("Marked", f"{units.count(marks.marked)} of {units.plural(total, 'position')}"),
             ("Stale", units.plural(marks.stale, "position")), ("Symbols quoted", units.count(quoted))]
    inner = "".join(f'<div class="oh-card"><div class="oh-card-k">{k}</div><div class="oh-card-v">{v}</div></div>'
                    for k, v in cards)
    return f'<div class="oh-cards oh-live-summary" data-marking="{marking}">{inner}</div>'


# ---------------------------------------------------------------- fills
FILL_COLUMNS = (("ts", "Time (UTC)"), ("symbol", "Contract"), ("event", "Event"), ("side", "Side"), ("qty", "Qty"),
                ("price", "Price"), ("order_id", "Order"))


def symbol_text(symbol: str) -> str:
    """A fill's symbol in words: an OCC option symbol becomes `AAPL 18 Dec 26 250 call`; a stock stays itself."""
    if len(symbol) <= 15:
        return symbol
    try:
        sym = parse_osi(symbol)
    except BadOptionSymbol:
        return symbol
    return option_text(sym.root, sym.expiry, "call" if sym.right == "C" else "put", float(sym.strike))


def fills_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """Recent fills and order updates (newest first) as a small table that scrolls inside its card."""
    body = []
    for row in rows:
        ts = row.get("ts")
        when = f"{ts:%Y-%m-%d %H:%M:%S}" if isinstance(ts, datetime) else html.escape(str(ts or ""))
        cells = (when, html.escape(symbol_text(str(row.get("symbol") or ""))), html.escape(str(row.get("event") or "")),
                 html.escape(str(row.get("side") or "")), units.count(row.get("qty")), units.price(row.get("price")),
                 html.escape(str(row.get("order_id") or "")))
        body.append("<tr>" + "".join(f'<td class="oh-num">{c}</td>' if field in NUMERIC_COLUMNS
                                     else f"<td>{c}</td>" for (field, _), c in zip(FILL_COLUMNS, cells, strict=True))
                    + "</tr>")
    head = "".join(f'<th class="oh-num">{h}</th>' if f in NUMERIC_COLUMNS else f"<th>{h}</th>"
                   for f, h in FILL_COLUMNS)
    return (f'<style>{CELL_CSS}</style><div class="oh-scroll"><table class="oh-table oh-grid oh-live-fills">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


# ---------------------------------------------------------------- stream health
def _ago(now: float, then: float | None) -> str:
    return "never" if then is None else f"{age_text(max(now - then, 0.0))} ago"


def health_html(status: LiveStatus, now: float, lost: int) -> str:
    """Stream health per stream (state, last event age, reconnects, last error in words) and the counters."""
    title = f"live_stream: <b>{html.escape(status.state)}</b>"
    if status.provider:
        title += (f" ({html.escape(status.provider)}, {units.plural(status.stocks, 'stock')}, "
                  f"{units.plural(status.options, 'option contract')})")
    if status.state == "idle" and status.streams:
        title += " · streams stopped; marks below are the last quotes received"
    rows = []
    for s in status.streams:
        css = "oh-stream-bad" if s.state in ("error", "reconnecting") else ""
        retry = f"in {s.next_retry_in:.1f}s" if s.next_retry_in is not None else ""
        rows.append(
            f'<tr class="oh-stream {css}" data-stream="{html.escape(s.name)}" data-state="{html.escape(s.state)}">'
            f"<td>{html.escape(s.name)}</td><td>{html.escape(s.state)}</td><td>{_ago(now, s.last_event)}</td>"
            f'<td class="oh-num">{units.count(s.events)}</td><td class="oh-num">{units.count(s.reconnects)}</td>'
            f"<td>{retry}</td><td>{html.escape(s.last_error or '')}</td></tr>")
    table = ""
    if rows:
        head = "".join(f'<th class="oh-num">{h}</th>' if h in ("Events", "Reconnects") else f"<th>{h}</th>"
                       for h in ("Stream", "State", "Last event", "Events", "Reconnects", "Next retry", "Last error"))
        table = (f'<div class="oh-scroll"><table class="oh-table oh-grid"><thead><tr>{head}</tr></thead>'
                 f'<tbody>{"".join(rows)}</tbody></table></div>')
    c = status.counters
    counters = (f'<div class="oh-more">received {units.count(c.received)}, conflated {units.count(c.conflated)}, '
                f"dropped {units.count(c.dropped)}; published {units.count(c.quotes)} quotes in "
                f"{units.plural(c.batches, 'batch', 'batches')}; fills journaled {units.count(c.fills)}; "
                f"batches lost by this dashboard {units.count(lost)}</div>")
    error = f'<div class="oh-stale">error: {html.escape(status.last_error)}</div>' if status.last_error else ""
    warnings = "".join(f'<div class="oh-more">warning: {html.escape(w)}</div>' for w in status.plan_warnings)
    return (f'<div class="oh-live-health" data-state="{html.escape(status.state)}" data-pid="{status.pid}">'
            f"<style>{CELL_CSS}</style><div>{title}</div>{table}{counters}{error}{warnings}</div>")
