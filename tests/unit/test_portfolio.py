"""The portfolio model: round trips, every leg flattened with its sign and OCC symbol, errors name field and position."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from oh.adapters.portfolio_file import default_path, load, save
from oh.domain.osi import OptionSymbol
from oh.domain.portfolio import (
    OptionPosition,
    Portfolio,
    PortfolioError,
    RiskProfile,
    StockPosition,
    Structure,
    dumps,
    loads,
    option_legs,
    underlyings,
)

EXAMPLE: dict[str, Any] = {
    "version": 1,
    "cash": 25000.0,
    "base_currency": "USD",
    "risk_profile": {"max_position_pct": 10, "max_portfolio_delta_pct": 40, "stress_spot_pct": 5,
                     "stress_vol_points": 5, "stress_days": 7},
    "positions": [
        {"type": "stock", "id": "msft", "symbol": "MSFT", "quantity": 50, "cost_basis": 402.5},
        {"type": "option", "id": "aapl-call", "symbol": "AAPL", "expiry": "2026-03-20", "right": "call",
         "strike": 150, "quantity": 2, "cost_basis": 4.10},
        {"type": "structure", "id": "spy-bull-put", "symbol": "SPY", "kind": "vertical", "net_debit": -1.25,
         "legs": [
             {"expiry": "2026-04-17", "right": "put", "strike": 500, "quantity": -1, "cost": 6.40},
             {"expiry": "2026-04-17", "right": "put", "strike": 490, "quantity": 1, "cost": 5.15},
         ]},
        {"type": "structure", "id": "qqq-ic", "symbol": "QQQ", "kind": "iron_condor", "net_debit": -2.1,
         "legs": [
             {"expiry": "2026-05-15", "right": "put", "strike": 400, "quantity": 1, "cost": 1.2},
             {"expiry": "2026-05-15", "right": "put", "strike": 410, "quantity": -1, "cost": 2.3},
             {"expiry": "2026-05-15", "right": "call", "strike": 470, "quantity": -1, "cost": 2.0},
             {"expiry": "2026-05-15", "right": "call", "strike": 480.5, "quantity": 1, "cost": 1.0},
         ]},
    ],
}


def _text(data: Any) -> str:
    return json.dumps(data)


def _error(data: Any) -> str:
    with pytest.raises(PortfolioError) as info:
        loads(_text(data))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_example_loads_and_flattens_every_leg_with_sign_and_occ_symbol() -> None:
    p = loads(_text(EXAMPLE))
    assert isinstance(p.positions[0], StockPosition)
    assert isinstance(p.positions[1], OptionPosition)
    assert isinstance(p.positions[2], Structure) and isinstance(p.positions[3], Structure)
    legs = option_legs(p)
    assert [(pid, sym.padded, qty) for pid, sym, qty in legs] == [
        ("aapl-call", "AAPL  260320C00150000", 2),
        ("spy-bull-put", "SPY   260417P00500000", -1),
        ("spy-bull-put", "SPY   260417P00490000", 1),
        ("qqq-ic", "QQQ   260515P00400000", 1),
        ("qqq-ic", "QQQ   260515P00410000", -1),
        ("qqq-ic", "QQQ   260515C00470000", -1),
        ("qqq-ic", "QQQ   260515C00480500", 1),
    ]
    assert legs[0][1] == OptionSymbol("AAPL", date(2026, 3, 20), "C", Decimal("150"))
    assert underlyings(p) == ["AAPL", "MSFT", "QQQ", "SPY"]
    assert p.risk_profile == RiskProfile(10, 40, 5, 5, 7)


def test_round_trip_through_file_is_stable(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "portfolio.json"
    p = loads(_text(EXAMPLE))
    save(path, p)
    first = path.read_bytes()
    assert load(path) == p
    save(path, load(path))
    assert path.read_bytes() == first == dumps(p)
    assert first.endswith(b"\n") and b'\n  "positions": [' in first
    assert [f.name for f in path.parent.iterdir()] == ["portfolio.json"]  # no temp file left behind


def test_minimal_file_gets_defaults() -> None:
    p = loads("{}")
    assert p == Portfolio(version=1, cash=0.0, base_currency="USD", risk_profile=RiskProfile(), positions=[])
    assert option_legs(p) == [] and underlyings(p) == []


def test_net_debit_defaults_to_the_legs_premiums() -> None:
    data = copy.deepcopy(EXAMPLE)
    del data["positions"][2]["net_debit"]
    structure = loads(_text(data)).positions[2]
    assert isinstance(structure, Structure) and structure.net_debit == pytest.approx(-1.25)


def test_every_structure_kind_loads() -> None:
    e1, e2 = "2026-03-20", "2026-04-17"
    shapes = {
        "vertical": [(e1, "call", 100, 1), (e1, "call", 110, -1)],
        "calendar": [(e1, "call", 100, -1), (e2, "call", 100, 1)],
        "diagonal": [(e1, "put", 95, -1), (e2, "put", 90, 1)],
        "straddle": [(e1, "call", 100, -1), (e1, "put", 100, -1)],
        "strangle": [(e1, "call", 110, 1), (e1, "put", 90, 1)],
        "custom": [(e1, "call", 100, 1), (e1, "call", 110, -2)],
    }
    for kind, legs in shapes.items():
        raw = {"positions": [{"type": "structure", "id": kind, "symbol": "XYZ", "kind": kind, "net_debit": 1,
                              "legs": [{"expiry": e, "right": r, "strike": k, "quantity": q, "cost": 1}
                                       for e, r, k, q in legs]}]}
        p = loads(_text(raw))
        assert [qty for _, _, qty in option_legs(p)] == [q for *_, q in legs]


def _with(index: int, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    for key, value in changes.items():
        if value is _DROP:
            del data["positions"][index][key]
        else:
            data["positions"][index][key] = value
    return data


def _with_leg(index: int, leg: int, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    data["positions"][index]["legs"][leg].update(changes)
    return data


_DROP = object()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_with(1, strike=-5), 'positions[1] (id "aapl-call"): strike must be > 0, got -5'),
        (_with(1, quantity=0), 'positions[1] (id "aapl-call"): quantity must be non-zero'),
        (_with(1, quantity=1.5), 'positions[1] (id "aapl-call"): quantity must be a whole number'),
        (_with(1, expiry="2026-02-30"), 'positions[1] (id "aapl-call"): expiry must be a date'),
        (_with(1, expiry=20260320), 'positions[1] (id "aapl-call"): expiry must be a string'),
        (_with(1, right="C"), 'positions[1] (id "aapl-call"): right must be "call" or "put"'),
        (_with(1, strike="150"), 'positions[1] (id "aapl-call"): strike must be a number, got a string "150"'),
        (_with(1, strike=150.0001), 'positions[1] (id "aapl-call"): not a listed option contract'),
        (_with(1, colour="red"), "positions[1] (id \"aapl-call\"): unknown field 'colour'"),
        (_with(1, cost_basis=_DROP), "positions[1] (id \"aapl-call\"): missing field 'cost_basis'"),
        (_with(0, quantity=0), 'positions[0] (id "msft"): quantity must be non-zero'),
        (_with(0, symbol="not a ticker"), 'positions[0] (id "msft"): symbol must be a ticker'),
        (_with(0, type="bond"), 'positions[0] (id "msft"): type must be one of stock, option, structure'),
        (_with(0, id="aapl-call"), "positions[1] (id \"aapl-call\"): id 'aapl-call' is already used by positions[0]"),
        (_with(0, id=_DROP), "positions[0]: missing field 'id'"),
        (_with(2, kind="butterfly"), 'positions[2] (id "spy-bull-put"): kind must be one of vertical'),
        (_with(2, legs=[EXAMPLE["positions"][2]["legs"][0]]),
         'positions[2] (id "spy-bull-put"): legs must hold at least 2 legs'),
        (_with(2, legs="two"), 'positions[2] (id "spy-bull-put"): legs must be a list'),
        (_with(2, net_debit="cheap"), 'positions[2] (id "spy-bull-put"): net_debit must be a number'),
        (_with_leg(3, 2, strike=-5), 'positions[3] (id "qqq-ic"): legs[2]: strike must be > 0, got -5'),
        (_with_leg(3, 1, quantity=0), 'positions[3] (id "qqq-ic"): legs[1]: quantity must be non-zero'),
        (_with_leg(3, 0, expiry="soon"), 'positions[3] (id "qqq-ic"): legs[0]: expiry must be a date'),
        (_with_leg(3, 0, symbol="IWM"), 'positions[3] (id "qqq-ic"): legs[0]: symbol "IWM" differs'),
        (_with_leg(3, 0, delta=0.3), "positions[3] (id \"qqq-ic\"): legs[0]: unknown field 'delta'"),
        (_with_leg(3, 0, right="call"), 'positions[3] (id "qqq-ic"): kind \'iron_condor\' does not fit the legs'),
        (_with_leg(2, 1, strike=500), 'positions[2] (id "spy-bull-put"): legs[1]: the same contract as legs[0]'),
        (_with_leg(2, 1, expiry="2026-05-15"), 'positions[2] (id "spy-bull-put"): kind \'vertical\' does not fit'),
    ],
)
def test_position_errors_name_position_and_field(data: Any, expected: str) -> None:
    assert _error(data).startswith(expected)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], "the portfolio must be a JSON object, got a list"),
        ({"cash": "lots"}, 'cash must be a number, got a string "lots"'),
        ({"cash": True}, "cash must be a number, got a boolean"),
        ({"version": 2}, "version must be 1"),
        ({"base_currency": "dollars"}, "base_currency must be a 3-letter"),
        ({"positions": {}}, "positions must be a list, got an object"),
        ({"positions": [7]}, "positions[0]: must be an object, got a number"),
        ({"owner": "me"}, "unknown field 'owner'"),
        ({"risk_profile": {"max_position_pct": 0}}, "risk_profile: max_position_pct must be > 0 and <= 100, got 0"),
        ({"risk_profile": {"stress_days": "week"}}, "risk_profile: stress_days must be a whole number"),
        ({"risk_profile": {"leverage": 2}}, "risk_profile: unknown field 'leverage'"),
        ({"risk_profile": []}, "risk_profile: must be an object, got a list"),
    ],
)
def test_top_level_errors_name_the_field(data: Any, expected: str) -> None:
    assert _error(data).startswith(expected)


@pytest.mark.parametrize("text", ["{", '{"cash": 1,}', "", '{"cash": NaN}', "\xff"])
def test_malformed_json_is_one_line(text: str) -> None:
    with pytest.raises(PortfolioError) as info:
        loads(text.encode("latin-1"))
    assert str(info.value).startswith("malformed JSON") and "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000, '{"positions": ' + "[" * 100_000,
                                  '{"positions": [' + '{"x": [' * 50_000])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_deeply_nested_json_is_one_line_not_a_traceback(text: str, as_bytes: bool) -> None:
    """100k nested brackets hit the JSON parser's recursion guard: the user gets one line, not a RecursionError."""
    with pytest.raises(PortfolioError) as info:
        loads(text.encode() if as_bytes else text)
    assert str(info.value).startswith("malformed JSON") and "nested" in str(info.value)


def test_load_names_the_file_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "portfolio.json"
    with pytest.raises(PortfolioError, match="no portfolio file"):
        load(path)
    path.write_text(_text(_with(1, strike=-5)))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    with pytest.raises(PortfolioError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: positions[1]")
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_save_refuses_an_invalid_portfolio_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "portfolio.json"
    save(path, loads(_text(EXAMPLE)))
    before = path.read_bytes()
    bad = Portfolio(positions=[StockPosition(id="x", symbol="X", quantity=0, cost_basis=1)])
    with pytest.raises(PortfolioError, match=r'positions\[0\] \(id "x"\): quantity must be non-zero'):
        save(path, bad)
    assert path.read_bytes() == before


def test_default_path_is_under_home_config(home: Home) -> None:
    assert default_path() == home.config / "portfolio.json"
