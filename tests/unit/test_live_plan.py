"""The subscription plan: underlyings, every leg, provider spellings, the contract cap, expired contracts."""

from __future__ import annotations

from datetime import date

import pytest

from oh.domain.live_plan import build_plan, option_symbol, stock_symbol
from oh.domain.osi import OptionSymbol
from oh.domain.portfolio import from_data

EXP = "2030-01-18"


def option(pid: str, symbol: str, strike: float, right: str = "call", expiry: str = EXP) -> dict[str, object]:
    return {"type": "option", "id": pid, "symbol": symbol, "expiry": expiry, "right": right, "strike": strike,
            "quantity": 1, "cost_basis": 1.0}


def condor(pid: str, symbol: str, base: float) -> dict[str, object]:
    legs = [("put", base, 1), ("put", base + 10, -1), ("call", base + 70, -1), ("call", base + 80, 1)]
    return {"type": "structure", "id": pid, "symbol": symbol, "kind": "iron_condor",
            "legs": [{"expiry": EXP, "right": r, "strike": k, "quantity": q, "cost": 1.0} for r, k, q in legs]}


def vertical(pid: str, symbol: str, low: float, high: float) -> dict[str, object]:
    return {"type": "structure", "id": pid, "symbol": symbol, "kind": "vertical",
            "legs": [{"expiry": EXP, "right": "put", "strike": high, "quantity": -1, "cost": 2.0},
                     {"expiry": EXP, "right": "put", "strike": low, "quantity": 1, "cost": 1.0}]}


PORTFOLIO = from_data({"positions": [
    {"type": "stock", "id": "msft", "symbol": "MSFT", "quantity": 10, "cost_basis": 400},
    option("aapl-c", "AAPL", 250),
    condor("qqq-ic", "QQQ", 400),
    vertical("spy-v", "SPY", 490, 500),
    option("spy-p500", "SPY", 500, "put"),  # the same contract as a vertical leg
    {"type": "stock", "id": "brk", "symbol": "BRK-B", "quantity": 5, "cost_basis": 400},
]})


def test_stocks_are_the_unique_underlyings_and_options_every_leg_once() -> None:
    plan = build_plan(PORTFOLIO)
    assert plan.stocks == ("AAPL", "BRK-B", "MSFT", "QQQ", "SPY")
    assert plan.options == (
        "AAPL300118C00250000",
        "QQQ300118P00400000", "QQQ300118P00410000", "QQQ300118C00470000", "QQQ300118C00480000",
        "SPY300118P00500000", "SPY300118P00490000",
    )
    assert plan.warnings == () and plan.cut == () and plan.fills
    assert plan.options_by_position["spy-p500"] == ("SPY300118P00500000",)
    assert plan.options_by_position["msft"] == ()
    assert plan.kind_of("QQQ") == "stock" and plan.kind_of("AAPL300118C00250000") == "option"
    assert plan.kind_of("TSLA") is None
    assert plan.symbols == plan.stocks + plan.options


def test_provider_spellings() -> None:
    assert stock_symbol("BRK-B", "alpaca") == "BRK.B" and stock_symbol("BRK.B", "alpaca") == "BRK.B"
    assert stock_symbol("BRK-B", "sim") == "BRK-B"
    contract = OptionSymbol("BRKB", date(2030, 1, 18), "C", 400)
    assert option_symbol(contract, "alpaca") == "BRKB300118C00400000"
    assert "BRK.B" in build_plan(PORTFOLIO, provider="alpaca").stocks
    with pytest.raises(ValueError, match="unknown live provider"):
        build_plan(PORTFOLIO, provider="yahoo")


def test_the_cap_cuts_whole_positions_in_file_order_and_names_them() -> None:
    plan = build_plan(PORTFOLIO, max_option_contracts=3)
    # the call (1) fits; the condor (4) does not and is cut whole; the vertical (2) still fits;
    # the lone put is a vertical leg already planned, so it costs nothing
    assert plan.options == ("AAPL300118C00250000", "SPY300118P00500000", "SPY300118P00490000")
    assert plan.cut == ("QQQ300118P00400000", "QQQ300118P00410000", "QQQ300118C00470000", "QQQ300118C00480000")
    (warning,) = plan.warnings
    assert "capped at 3" in warning and "4 contracts of 1 positions" in warning and "qqq-ic (4 contracts)" in warning
    assert "--max-option-contracts" in warning


def test_cap_zero_and_switches() -> None:
    none = build_plan(PORTFOLIO, max_option_contracts=0)
    assert none.options == () and len(none.cut) == 7 and "aapl-c (1 contract)" in none.warnings[0]
    assert build_plan(PORTFOLIO, options=False).options == () and build_plan(PORTFOLIO, options=False).warnings == ()
    assert build_plan(PORTFOLIO, stocks=False).stocks == ()
    assert not build_plan(PORTFOLIO, fills=False).fills
    with pytest.raises(ValueError, match="0 or more"):
        build_plan(PORTFOLIO, max_option_contracts=-1)


def test_many_cut_positions_are_summarized() -> None:
    many = from_data({"positions": [option(f"c{k}", "AAPL", 100 + k) for k in range(12)]})
    plan = build_plan(many, max_option_contracts=2)
    assert len(plan.options) == 2 and len(plan.cut) == 10
    assert "and 2 more" in plan.warnings[0] and "c2 (1 contract)" in plan.warnings[0]


def test_expired_contracts_are_left_out_with_a_warning() -> None:
    mixed = from_data({"positions": [option("old", "AAPL", 150, expiry="2025-01-17"), option("new", "AAPL", 150)]})
    plan = build_plan(mixed, today=date(2026, 11, 23))
    assert plan.options == ("AAPL300118C00150000",) and plan.expired == ("AAPL250117C00150000",)
    assert "1 expired option contracts not streamed: AAPL250117C00150000" in plan.warnings
    assert build_plan(mixed).options == ("AAPL250117C00150000", "AAPL300118C00150000")  # no today: no filter


def test_an_empty_portfolio_plans_nothing() -> None:
    plan = build_plan(from_data({}))
    assert plan.symbols == () and plan.warnings == ()
