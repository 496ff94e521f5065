"""Numbers in trader units, one way everywhere: the dashboard's pages and charts and the CLI's tables.

- money: `$1,234.56`, `-$410.00`; compact for big amounts and chart axes: `$110.5K`, `$1.2M`, `$3.4B`;
- counts: `2,765` (never `2,765.0`), compact `12.3K`; `plural(1, "gap")` is `1 gap`;
- percentages from fractions: IV 0.2979 is `29.8%`, a return -0.0125 is `-1.3%`; from points
  (an expected move stored as 4.2 meaning 4.2%) use `pct_points`;
- prices: `412.35` (two decimals, thousands separators);
- numbers of no known unit (`oh query` tables): `decimal(0.29793)` is `0.2979`, never `0.00`;
- column names in words: `label("d_oi_notional")` is `ΔOI notional ($)`;
- one option contract in words: `contract("SPY", date(2026, 1, 16), "put", 450)` is `SPY 450 put 2026-01-16`;
- dates as ISO days, timestamps as `2026-01-16 14:30:05` (UTC, as stored);
- `show(column, value)` picks the column's unit (KINDS); `kind(column)` names it, so a chart's axis
  (panel_app/axes.py builds Bokeh tick formatters from SUFFIXES and CURRENCY_SYMBOLS) reads like
  the table beside it.

Missing values (None, NaN, inf) are shown as MISSING, never as 0 or `nan`. Pure: no I/O.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

MISSING = "—"
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "C$", "AUD": "A$", "CHF": "CHF "}
_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
SUFFIXES = _SUFFIXES  # (threshold, suffix), largest first: what compact numbers divide by


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _scaled(number: float, digits: int) -> str:
    """`1.2M` for 1,234,567 (and `950` below a thousand), sign-less."""
    size = abs(number)
    for threshold, suffix in _SUFFIXES:
        if size >= threshold * (1 - 0.5 * 10 ** -digits / 1000):
            text = f"{size / threshold:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{size / threshold:,.0f}"
            return f"{text}{suffix}"
    return f"{size:,.{digits}f}".rstrip("0").rstrip(".") if digits and size != int(size) else f"{size:,.0f}"


def money(value: Any, currency: str = "USD", *, compact: bool = False, sign: bool = False, digits: int = 2,
          compact_digits: int = 1) -> str:
    """`$1,234.56`; with `compact`, `$1.2M` (`compact_digits` decimals at most); with `sign`, `+$5.00` for gains."""
    number = _finite(value)
    if number is None:
        return MISSING
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    body = _scaled(number, compact_digits) if compact else f"{abs(number):,.{digits}f}"
    lead = "-" if number < 0 and body.strip("0.,KMBT") else ("+" if sign and number > 0 else "")
    return f"{lead}{symbol}{body}"


def count(value: Any, *, compact: bool = False, compact_digits: int = 1) -> str:
    """`2,765`; with `compact`, `12.3K` (`compact_digits` decimals at most)."""
    number = _finite(value)
    if number is None:
        return MISSING
    if compact:
        whole = round(number)  # half to even, as the chart ticks (panel_app/axes.py) round
        return ("-" if whole < 0 else "") + _scaled(whole, compact_digits)
    return f"{round(number):,d}"


def number(value: Any, digits: int = 2, *, sign: bool = False) -> str:
    """`1,234.57`; with `sign`, `+0.35` for positive values."""
    numeric = _finite(value)
    if numeric is None:
        return MISSING
    return f"{numeric:+,.{digits}f}" if sign else f"{numeric:,.{digits}f}"


def decimal(value: Any, significant: int = 4) -> str:
    """A number of no known unit, readable and never rounded to nothing: `1,234.57` from 1 up, and below 1
    at least `significant` significant digits (`0.2979`, `0.0001235`); `0` is `0`."""
    numeric = _finite(value)
    if numeric is None:
        return MISSING
    size = abs(numeric)
    if size >= 1 or size == 0:
        return number(numeric) if size else "0"
    if size < 1e-9:
        return f"{numeric:.{significant - 1}e}"
    places = significant - 1 - math.floor(math.log10(size))
    return f"{numeric:.{places}f}"


def price(value: Any) -> str:
    """An option or stock price: two decimals with thousands separators."""
    return number(value, 2)


def pct(fraction: Any, digits: int = 1, *, sign: bool = False) -> str:
    """A fraction as a percentage: 0.2979 is `29.8%` (IV, returns, shares)."""
    numeric = _finite(fraction)
    if numeric is None:
        return MISSING
    return f"{100 * numeric:+.{digits}f}%" if sign else f"{100 * numeric:.{digits}f}%"


def pct_points(points: Any, digits: int = 1, *, sign: bool = False) -> str:
    """A value already in percent points: 4.2 is `4.2%` (expected move, IV rank)."""
    numeric = _finite(points)
    if numeric is None:
        return MISSING
    return f"{numeric:+.{digits}f}%" if sign else f"{numeric:.{digits}f}%"


def plural(n: int, noun: str, many: str | None = None) -> str:
    """`1 partition`, `2 partitions`, `1 gap`; `many` for irregular nouns (`plural(2, "entry", "entries")`)."""
    return f"{n:,d} {noun if n == 1 else (many or noun + 's')}"


# Column names in words, for chart titles, legends, axes and table headers.
LABELS: dict[str, str] = {
    "d_oi": "ΔOI (contracts)",
    "d_oi_notional": "ΔOI notional ($)",
    "oi_before": "OI before",
    "oi_today": "OI today",
    "open_interest": "Open interest",
    "volume": "Volume",
    "volume_notional": "Volume notional ($)",
    "volume_oi_ratio": "Volume / OI",
    "delta_notional": "Delta notional ($)",
    "put_call": "Put / call",
    "right": "Put / call",
    "strike": "Strike",
    "expiry": "Expiry",
    "label": "Flow",
    "spot": "Spot",
    "close": "Close",
    "mark": "Mark",
    "iv": "IV",
    "atm_iv": "ATM IV",
    "atm_iv_30d": "30-day ATM IV",
    "rv_20": "20-day realized vol",
    "rv_60": "60-day realized vol",
    "iv_rv_20": "IV / 20-day RV",
    "iv_rv_60": "IV / 60-day RV",
    "iv_rank": "IV rank",
    "iv_percentile": "IV percentile",
    "pcr_oi": "Put/call OI ratio",
    "pcr_volume": "Put/call volume ratio",
    "expected_move_pct": "Expected move",
    "skew_25d_pts": "25-delta skew (pts)",
    "term_slope_pts": "Term slope (pts)",
    "call_wall": "Call wall",
    "put_wall": "Put wall",
    "gamma_peak_strike": "Gamma peak strike",
    "max_pain": "Max pain",
    "net_gex": "Net gamma exposure ($ per 1%)",
    "net_liq": "Net liquidation value",
    "pnl": "PnL",
    "session_date": "Session",
    "snapshot_date": "Session",
    "date": "Date",
    "symbol": "Symbol",
    "underlying": "Underlying",
    "open": "Open",
    "high": "High",
    "low": "Low",
    "bid": "Bid",
    "ask": "Ask",
    "last": "Last",
    "delta": "Delta",
    "gamma": "Gamma",
    "vega": "Vega",
    "theta": "Theta",
    "dte": "DTE",
    "contracts": "Contracts",
    "sessions": "Sessions",
    "rows": "Rows",
    "market_value": "Market value",
    "cost_basis": "Cost basis",
    "pnl_pct": "PnL %",
    "spread_pct": "Spread",
    "from_date": "From",
    "to_date": "To",
    "row_key": "Row",
    "window_sessions": "Window (sessions)",
    "group_by": "Group by",
    "value": "Value",
    "contract": "Contract",
    "columns": "Columns",
    "job_name": "Job",
    "status": "Status",
    "candles_daily": "Daily candles",
    "options_bars": "Option bars",
    "options_snapshot_file": "Option chain snapshots",
    "options_flow": "Options flow",
    "derived_metrics": "Derived metrics",
}

# How each column's values read (see `show`): money (compact from $100K), fraction (a percentage of 1),
# points (already in percent), count, price, strike, right (call/put), ratio, vol_points.
KINDS: dict[str, str] = {
    "d_oi_notional": "money", "volume_notional": "money", "delta_notional": "money", "net_gex": "money",
    "net_liq": "money", "pnl": "money",
    "iv": "fraction", "atm_iv": "fraction", "atm_iv_30d": "fraction", "rv_20": "fraction", "rv_60": "fraction",
    "expected_move_pct": "points", "iv_rank": "points", "iv_percentile": "points",
    "d_oi": "count", "oi_before": "count", "oi_today": "count", "open_interest": "count", "volume": "count",
    "rows": "count",
    "spot": "price", "close": "price", "mark": "price", "strike": "strike", "call_wall": "strike",
    "put_wall": "strike", "gamma_peak_strike": "strike", "max_pain": "strike", "put_call": "right", "right": "right",
    "open": "price", "high": "price", "low": "price", "bid": "price", "ask": "price", "last": "price",
    "market_value": "money", "cost_basis": "money", "value": "money",
    "pnl_pct": "points", "spread_pct": "points",
    "contracts": "count", "sessions": "count", "dte": "count", "failures": "count", "columns": "count",
    "window_sessions": "count",
    "pcr_oi": "ratio", "pcr_volume": "ratio", "volume_oi_ratio": "ratio", "iv_rv_20": "ratio", "iv_rv_60": "ratio",
    "skew_25d_pts": "vol_points", "term_slope_pts": "vol_points",
}


def kind(column: str) -> str:
    """How a column's values read: money, fraction, points, count, price, strike, right, ratio, vol_points, or number."""
    return KINDS.get(column, "number")


def label(column: str) -> str:
    """A column's name in words (`d_oi_notional` -> `ΔOI notional ($)`); unknown names made readable."""
    return LABELS.get(column, column.replace("_", " ").capitalize())


def show(column: str, value: Any, currency: str = "USD") -> str:
    """One value of `column` in its units (KINDS); other columns: whole numbers as counts, dates as ISO
    days, timestamps to the second, other numbers with `auto_number`, text as it is."""
    unit = KINDS.get(column)
    if value is None:
        return MISSING
    if unit == "money":
        size = abs(_finite(value) or 0)
        return money(value, currency, compact=size >= 1e5, digits=0 if size >= 1e3 else 2)
    if unit == "fraction":
        return pct(value)
    if unit == "points":
        return pct_points(value)
    if unit == "count":
        return count(value)
    if unit == "price":
        return price(value)
    if unit == "strike":
        return strike(value)
    if unit == "right":
        return right(value)
    if unit == "ratio":
        return number(value, 2)
    if unit == "vol_points":
        return MISSING if _finite(value) is None else f"{number(value, 2)} pts"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return count(value)
    if isinstance(value, float):
        return auto_number(value)
    if isinstance(value, datetime | date):
        return when(value)
    return str(value)


def auto_number(value: Any) -> str:
    """A number of unknown unit: `1,234.57`, `0.2979`, `1.23e-05` (never `nan`)."""
    numeric = _finite(value)
    if numeric is None:
        return MISSING
    if numeric == 0 or abs(numeric) >= 1:
        return f"{numeric:,.2f}"
    return f"{numeric:.4g}"


def when(value: Any) -> str:
    """A date as `2026-01-16`; a timestamp as `2026-01-16 14:30:05` (or the day alone at midnight)."""
    if value is None:
        return MISSING
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return f"{value:%Y-%m-%d}"
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def strike(value: Any) -> str:
    """A strike as listed: `450`, `452.5`, `1,250` (no trailing zeros)."""
    numeric = _finite(value)
    if numeric is None:
        return MISSING
    return f"{numeric:,.3f}".rstrip("0").rstrip(".")


RIGHT_WORDS = {"C": "call", "P": "put", "call": "call", "put": "put", "CALL": "call", "PUT": "put"}


def right(value: Any) -> str:
    """An option right in words: `C`/`call` -> `call`, `P`/`put` -> `put`."""
    return RIGHT_WORDS.get(str(value), str(value))


def contract(symbol: str, expiry: date | None, side: Any, strike_price: Any, quantity: float | None = None) -> str:
    """One option contract in words: `SPY 450 put 2026-01-16`; with `quantity`, `+2 SPY 450 put 2026-01-16`
    (signed contracts: + long, - short)."""
    text = f"{symbol} {strike(strike_price)} {right(side)} {when(expiry)}"
    if quantity is None:
        return text
    return f"{quantity:+,.0f} {text}"
