"""oh.domain.units: numbers in trader units, and the dashboard's chart ticks (panel_app/axes.py) reading
exactly like them: the tick formatters' JavaScript runs in node against the Python functions."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from datetime import date, datetime

import pytest

from oh.domain import units


def test_money_counts_and_percentages() -> None:
    """Separators, K/M/B, no decimals on counts, fractions and points as %, a missing value never 0."""
    assert units.money(1234.5) == "$1,234.50"
    assert units.money(-410) == "-$410.00"
    assert units.money(110_500, compact=True) == "$110.5K"
    assert units.money(1_250_000, compact=True, compact_digits=2) == "$1.25M"
    assert units.money(3.4e9, compact=True) == "$3.4B"
    assert units.money(5, sign=True) == "+$5.00"
    assert units.count(2765.0) == "2,765"
    assert units.count(12_345, compact=True) == "12.3K"
    assert units.pct(0.2979) == "29.8%" and units.pct_points(4.2) == "4.2%"
    for missing in (None, math.nan, math.inf, "x"):
        assert units.money(missing) == units.MISSING and units.count(missing) == units.MISSING


def test_plurals() -> None:
    assert [units.plural(n, "gap") for n in (0, 1, 2)] == ["0 gaps", "1 gap", "2 gaps"]
    assert units.plural(1, "expiry", "expiries") == "1 expiry" and units.plural(30, "expiry", "expiries") == "30 expiries"
    assert units.plural(2765, "contract") == "2,765 contracts"


def test_a_contract_in_words() -> None:
    """A single leg reads as symbol, strike, right and expiry (not `SPY +1, 25 DTE`)."""
    assert units.contract("SPY", date(2026, 1, 16), "put", 450.0) == "SPY 450 put 2026-01-16"
    assert units.contract("AAPL", date(2026, 1, 16), "C", 252.5, 2) == "+2 AAPL 252.5 call 2026-01-16"
    assert units.contract("BRK.B", date(2026, 3, 20), "P", 1250, -1) == "-1 BRK.B 1,250 put 2026-03-20"


def test_show_picks_each_columns_unit() -> None:
    """Column names decide the unit; unknown columns: whole numbers as counts, dates as ISO days."""
    assert units.show("iv", 0.2979) == "29.8%"
    assert units.show("expected_move_pct", 3.47) == "3.5%"
    assert units.show("d_oi_notional", 186_700_000) == "$186.7M"
    assert units.show("d_oi_notional", 562_557.0) == "$562.6K"
    assert units.show("d_oi_notional", 44_786.7) == "$44,787"
    assert units.show("d_oi_notional", -12.5) == "-$12.50"
    assert units.show("open_interest", 2765.0) == "2,765"
    assert units.show("strike", 80.0) == "80" and units.show("put_call", "P") == "put"
    assert units.show("skew_25d_pts", 5.331) == "5.33 pts"
    assert units.show("duration_ms", 3259) == "3,259"
    assert units.show("session_date", date(2026, 12, 4)) == "2026-12-04"
    assert units.show("started_at", datetime(2026, 12, 4, 12, 50, 30)) == "2026-12-04 12:50:30"
    assert units.show("anything", None) == units.MISSING
    assert units.show("ratio_unknown", 0.000012345) == "1.234e-05"
    assert units.label("d_oi_notional") == "ΔOI notional ($)" and units.label("some_new_column") == "Some new column"


TICKS = [0, 1, 12, 250, 999, 1000, 1500, 12_500, 110_500, 250_000, 1_000_000, 1_250_000, 2e7, 1e8, 3.4e9,
         -5, -1500, -2_500_000, 0.5, 2.25, -0.5, 1.5, 2.5, -1.5, -2.5, 0.4999]


def _node(body: str, values: list[float]) -> list[str]:
    script = f"const f = new Function('tick', {json.dumps(body)}); console.log(JSON.stringify({json.dumps(values)}.map(f)));"
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(done.stdout))


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the tick formatters' JavaScript")
def test_chart_ticks_read_like_the_tables() -> None:
    """The compact money and count tick formatters give exactly units.money / units.count's text."""
    axes = pytest.importorskip("panel_app.axes")
    assert _node(axes.money_js(), TICKS) == [units.money(v, compact=True, compact_digits=2) for v in TICKS]
    assert _node(axes.count_js(), TICKS) == [units.count(v, compact=True, compact_digits=2) for v in TICKS]
    assert _node(axes.money_js("EUR"), [1_500_000]) == ["€1.5M"]
    assert _node(axes.PERCENT_OF_FRACTION_JS, [0.25, 0.225, 0.3]) == ["25%", "22.5%", "30%"]
