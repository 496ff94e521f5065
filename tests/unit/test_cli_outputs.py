"""What the CLI prints, in-process: `oh query`'s encoders, `oh portfolio analyze`'s day and limits, the briefing's
limits, numbers for people. The warehouse is filled by the real handlers on the in-process ledger
(services/stack.py) and read back by the CLI as it does with no ledger running (the file, read-only).

Protects: `-f json` equal to what `json.dumps(table.to_pylist())` meant (values, NULL, NaN as null, ISO dates,
escapes, nested cells) at a fraction of its cost; `analyze` valuing as of the last closed session (on a Sunday,
Friday's DTE, the briefing's), not the calendar day; breached risk limits in words in `analyze` (table and
JSON) and in the briefing; `decimal` never rounding a small number to nothing.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bus.home import Home
from contracts import BuildBriefing, SnapshotOptions
from oh.adapters.portfolio_file import save
from oh.adapters.sim.options import option_chain
from oh.cli import formats
from oh.cli.main import app
from oh.domain import units
from oh.domain.portfolio import OptionPosition, Portfolio, RiskProfile, StockPosition
from services.stack import InProcessStack

FRIDAY = date(2025, 6, 6)
SUNDAY = datetime(2025, 6, 8, 15, 0, tzinfo=UTC)
runner = CliRunner()


def _mixed() -> pa.Table:
    return pa.table({
        "s": ["plain", 'quote " and \\ backslash', None, "line\nbreak\ttab\x01", "ünïcödé ✓"],
        "f": [0.1, float("nan"), None, 1e20, -0.0],
        "f32": pa.array([1.5, None, 0.25, float("inf"), 2.0], pa.float32()),
        "i": pa.array([1, 2, None, -4, 2**62], pa.int64()),
        "b": [True, False, None, True, False],
        "d": pa.array([date(2025, 1, 2), None, date(1999, 12, 31), date(2025, 6, 6), date(2000, 2, 29)]),
        "ts": pa.array([datetime(2025, 1, 2, 3, 4, 5, 6), None, datetime(2025, 1, 2), datetime(1970, 1, 1),
                        datetime(2025, 6, 6, 23, 59, 59)], pa.timestamp("us")),
        "tz": pa.array([datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)] * 5, pa.timestamp("us", tz="UTC")),
        "dec": pa.array([Decimal("1.20"), None, Decimal("-3.5"), Decimal("0"), Decimal("12345.67")], pa.decimal128(10, 2)),
        "l": pa.array([[1, 2], None, [], [3], [None]]),
        "st": pa.array([{"k": 1, "days": [date(2025, 6, 6)]}] * 4 + [None]),
        "dict": pa.array(["x", "y", "x", None, "z"]).dictionary_encode(),
        "nothing": pa.nulls(5),
    })


def _expected(table: pa.Table) -> list[dict[str, object]]:
    """What each value means in JSON: NaN/inf null, dates ISO, decimals numbers (the old json.dumps default=str
    wrote nan and 'Decimal' text, which were not JSON)."""
    def clean(value: object) -> object:
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, datetime):
            return value.replace(tzinfo=None).isoformat(timespec="microseconds")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value
    return [{k: clean(v) for k, v in row.items()} for row in table.to_pylist()]


def _timestamps_as_written(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    out = []
    for row in rows:
        row = dict(row)
        for key in ("ts", "tz"):
            if row[key] is not None:
                row[key] = str(row[key]).removesuffix("Z").ljust(26, "0")[:26]
        out.append(row)
    return out


@pytest.mark.parametrize("rows", [slice(0, 5), slice(2, 4), slice(0, 0)])
def test_json_is_every_value_of_every_type(rows: slice) -> None:
    """-f json parses back to every row's values (strings escaped, NULL null, NaN/inf null, ISO dates and times,
    decimals as numbers, nested cells as JSON, dictionary columns decoded), also for a slice of a table."""
    table = _mixed()[rows]
    out = io.BytesIO()
    formats.write_json(table, out)
    parsed = json.loads(out.getvalue())
    assert _timestamps_as_written(parsed) == _timestamps_as_written(_expected(table))
    assert out.getvalue().count(b"\n") == len(parsed) + 2 or not parsed  # one row per line


def test_csv_and_parquet_keep_the_values() -> None:
    """-f csv writes nested cells as the JSON -f json shows; -f parquet reads back as the same table."""
    table = _mixed()
    out = io.BytesIO()
    formats.write_parquet(table, out)
    back = pq.read_table(io.BytesIO(out.getvalue()))
    assert back.column("s").to_pylist() == table.column("s").to_pylist()
    assert back.column("st").to_pylist() == table.column("st").to_pylist()
    text = io.BytesIO()
    formats.write_csv(table.select(["s", "l", "st"]), text)
    assert '"[1,2]"' in text.getvalue().decode() and '"{""k"":1,""days"":[""2025-06-06""]}"' in text.getvalue().decode()


def test_table_cells_are_in_trader_units() -> None:
    """The people's table: IV as %, counts with separators, small numbers not rounded to 0.00, timestamps to the
    second, unknown text as is."""
    assert formats.cell("atm_iv", 0.29793340052) == "29.8%"
    assert formats.cell("iv_rank", 87.26) == "87.3%"
    assert formats.cell("n", 2765) == "2,765"
    assert formats.cell("gamma", 0.000123456) == "0.0001235"
    assert formats.cell("x", 0.29793340052) == "0.2979"
    assert formats.cell("spot", 412.3456) == "412.35"
    assert formats.cell("when", datetime(2025, 1, 2, 3, 4, 5, 6)) == "2025-01-02 03:04:05"
    assert formats.cell("ok", True) == "true" and formats.cell("missing", None) == ""
    assert units.decimal(0) == "0" and units.decimal(-0.5) == "-0.5000" and units.decimal(1234.5) == "1,234.50"
    assert units.decimal(float("nan")) == units.MISSING


# ------------------------------------------------------------------ analyze and the briefing, on stored chains
def _contract(day: date, right: str, near: float) -> tuple[date, float]:
    """A listed SPY contract of `right` about `near` x spot, 4-8 weeks out, on `day`."""
    chain = option_chain("SPY", day).to_pylist()
    spot = chain[0]["spot"]
    pick = min((c for c in chain if c["right"] == right[0].upper() and 28 <= (c["expiry"] - day).days <= 56),
               key=lambda c: abs(c["strike"] - near * spot))
    return pick["expiry"], pick["strike"]


@pytest.fixture
def stored(home: Home) -> Iterator[Home]:
    """SPY's chain of FRIDAY in the warehouse file (the real snapshot handler, in-process), no ledger running."""
    stack = InProcessStack(home, workers=["snapshot"], warehouse=home.warehouse)
    stack.run(SnapshotOptions(symbols=["SPY"], start=FRIDAY, end=FRIDAY, provider="sim"))
    stack.close()
    yield home


def _portfolio(home: Home, quantity: int, profile: RiskProfile) -> Path:
    expiry, strike = _contract(FRIDAY, "call", 1.0)
    path = home.config / "portfolio.json"
    save(path, Portfolio(cash=20_000.0, risk_profile=profile, positions=[
        OptionPosition(id="spy-call", symbol="SPY", expiry=expiry, right="call", strike=strike, quantity=quantity,
                       cost_basis=5.0),
        StockPosition(id="spy", symbol="SPY", quantity=10, cost_basis=500.0),
    ]))
    return path


def test_analyze_values_as_of_the_last_closed_session(stored: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Sunday, `analyze` without --as-of values as of Friday (the last closed session): the option's DTE is
    counted from Friday, as in Friday's briefing, not from the calendar day."""
    path = _portfolio(stored, 1, RiskProfile())
    monkeypatch.setattr("oh.domain.calendar.wall_clock", lambda: SUNDAY)
    result = runner.invoke(app, ["portfolio", "analyze", "--json", "--portfolio", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expiry, _ = _contract(FRIDAY, "call", 1.0)
    option = next(p for p in data["positions"] if p["id"] == "spy-call")
    assert data["as_of"] == FRIDAY.isoformat() and option["dte"] == (expiry - FRIDAY).days
    assert option["dte"] != (expiry - SUNDAY.date()).days


def test_analyze_flags_breached_limits_in_words(stored: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stock position worth more than max_position_pct of net liq: `analyze --json` lists the breach (limit,
    subject, percentages, one line of words) and the table prints it; within the limits it says so."""
    monkeypatch.setattr("oh.domain.calendar.wall_clock", lambda: SUNDAY)
    path = _portfolio(stored, 1, RiskProfile(max_position_pct=5.0, max_portfolio_delta_pct=1000.0))
    result = runner.invoke(app, ["portfolio", "analyze", "--json", "--portfolio", str(path)])
    assert result.exit_code == 0, result.output
    limits = json.loads(result.output)["limits"]
    assert limits["breached"] and limits["max_position_pct"] == 5.0
    [breach] = [b for b in limits["breaches"] if b["subject"] == "spy"]
    assert breach["limit"] == "max_position_pct" and breach["value_pct"] > 5.0
    assert breach["text"].startswith("spy is ") and "the limit is 5.0% (max_position_pct)" in breach["text"]
    table = runner.invoke(app, ["portfolio", "analyze", "--portfolio", str(path)])
    assert table.exit_code == 0 and f"limit breached: {breach['text']}" in " ".join(table.output.split())
    save(path, Portfolio(cash=1_000_000.0, risk_profile=RiskProfile(), positions=[]))
    calm = runner.invoke(app, ["portfolio", "analyze", "--portfolio", str(path)])
    assert calm.exit_code == 0 and "Risk limits: within the risk profile" in calm.output


def test_the_briefing_names_each_breached_limit(home: Home) -> None:
    """The briefing of a session whose portfolio breaches max_position_pct has a Risk limits line naming the
    position, its share and the limit; the same portfolio within its limits says so."""
    stack = InProcessStack(home, workers=["snapshot", "briefing"])
    try:
        stack.run(SnapshotOptions(symbols=["SPY"], start=FRIDAY, end=FRIDAY, provider="sim"))
        path = _portfolio(home, 1, RiskProfile(max_position_pct=5.0))
        stack.run(BuildBriefing(symbols=["SPY"], sessions=[FRIDAY], portfolio=str(path)))
        text = stack.query("SELECT markdown FROM briefings WHERE as_of = ?", [FRIDAY]).column(0)[0].as_py()
        assert "**Risk limits:" in text and "breach" in text
        assert any(line.startswith("- spy is ") and "(max_position_pct)" in line for line in text.splitlines())
        _portfolio(home, 1, RiskProfile(max_position_pct=100.0, max_portfolio_delta_pct=1000.0))
        stack.run(BuildBriefing(id="again", symbols=["SPY"], sessions=[FRIDAY], portfolio=str(path)))
        calm = stack.query("SELECT markdown FROM briefings WHERE as_of = ?", [FRIDAY]).column(0)[0].as_py()
        assert "**Risk limits:** within the risk profile" in calm
    finally:
        stack.close()


def test_decimal_is_pure_and_total() -> None:
    """`units.decimal` on every magnitude: no exponent from 1e-9 up, at least 4 significant digits below 1."""
    for value in (0.5, 0.05, 0.005, 1e-5, 1e-9 * 1.5):
        text = units.decimal(value)
        assert "e" not in text and math.isclose(float(text), value, rel_tol=1e-3), (value, text)
    assert "e" in units.decimal(1e-12)
    assert units.decimal(timedelta(1)) == units.MISSING
