"""Numbers in trader units, one way everywhere: the dashboard's pages and charts and the CLI's tables.

- money: `$1,234.56`, `-$410.00`; compact for big amounts and chart axes: `$110.5K`, `$1.2M`, `$3.4B`;
- counts: `2,765` (never `2,765.0`), compact `12.3K`; `plural(1, "gap")` is `1 gap`;
- percentages from fractions: IV 0.2979 is `29.8%`, a return -0.0125 is `-1.3%`; from points
  (an expected move stored as 4.2 meaning 4.2%) use `pct_points`;
- prices: `412.35` (two decimals, thousands separators);
- numbers of no known unit (`oh query` tables): `decimal(0.29793)` is `0.2979`, never `0.00`;
- column names in words: `label("d_oi_notional")` is `ΔOI notional ($)`.

Missing values (None, NaN, inf) are shown as MISSING, never as 0 or `nan`. Pure: no I/O.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "C$", "AUD": "A$", "CHF": "CHF "}
_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


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


def money(value: Any, currency: str = "USD", *, compact: bool = False, sign: bool = False, digits: int = 2) -> str:
    """`$1,234.56`; with `compact`, `$1.2M` (one decimal); with `sign`, `+$5.00` for gains."""
    number = _finite(value)
    if number is None:
        return MISSING
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    body = _scaled(number, 1) if compact else f"{abs(number):,.{digits}f}"
    lead = "-" if number < 0 and body.strip("0.,KMBT") else ("+" if sign and number > 0 else "")
    return f"{lead}{symbol}{body}"


def count(value: Any, *, compact: bool = False) -> str:
    """`2,765`; with `compact`, `12.3K`."""
    number = _finite(value)
    if number is None:
        return MISSING
    if compact:
        return ("-" if number < 0 else "") + _scaled(round(number), 1)
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
}

# How each column's values read (see `show`): money, fraction (a percentage of 1), points, count, price.
KINDS: dict[str, str] = {
    "d_oi_notional": "money", "volume_notional": "money", "delta_notional": "money", "net_gex": "money",
    "net_liq": "money", "pnl": "money",
    "iv": "fraction", "atm_iv": "fraction", "atm_iv_30d": "fraction", "rv_20": "fraction", "rv_60": "fraction",
    "expected_move_pct": "points", "iv_rank": "points", "iv_percentile": "points",
    "d_oi": "count", "oi_before": "count", "oi_today": "count", "open_interest": "count", "volume": "count",
    "rows": "count",
    "spot": "price", "close": "price", "mark": "price", "strike": "price", "call_wall": "price",
    "put_wall": "price", "gamma_peak_strike": "price", "max_pain": "price",
}


def label(column: str) -> str:
    """A column's name in words (`d_oi_notional` -> `ΔOI notional ($)`); unknown names made readable."""
    return LABELS.get(column, column.replace("_", " ").capitalize())


def show(column: str, value: Any, currency: str = "USD") -> str:
    """One value of `column` in its units (KINDS), or a plain number/text for columns not listed."""
    kind = KINDS.get(column)
    if kind == "money":
        return money(value, currency, compact=abs(_finite(value) or 0) >= 1e6)
    if kind == "fraction":
        return pct(value)
    if kind == "points":
        return pct_points(value)
    if kind == "count":
        return count(value)
    if kind == "price":
        return price(value)
    if isinstance(value, float):
        return number(value)
    return MISSING if value is None else str(value)
