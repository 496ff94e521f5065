"""oh.domain.limits: the risk profile's limits judged against a snapshot analysis and against live marks,
with the limit and the breach in words. Expected values are worked out by hand from the positions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from contracts.live import Quote
from oh.domain.analyze import StressSpec, analyze_portfolio
from oh.domain.limits import breaches
from oh.domain.marks import mark_portfolio
from oh.domain.portfolio import RiskProfile, from_data

AS_OF = date(2025, 6, 3)
FLAT = StressSpec((), (), 0)


def book(*positions: dict[str, Any], cash: float, **risk: float) -> Any:
    return from_data({"cash": cash, "risk_profile": risk, "positions": list(positions)})


def stock(pid: str, symbol: str, quantity: float, cost: float = 100.0) -> dict[str, Any]:
    return {"type": "stock", "id": pid, "symbol": symbol, "quantity": quantity, "cost_basis": cost}


def analysis(portfolio: Any, spots: dict[str, float]) -> Any:
    return analyze_portfolio(portfolio, {}, AS_OF, FLAT, spots=spots)


def test_a_book_within_its_limits_has_no_breach() -> None:
    """5 positions of $2,000 with $90,000 cash: each 2% of $100,000, net delta 10%: nothing flagged."""
    portfolio = book(*(stock(f"s{i}", s, 10) for i, s in enumerate(("AAA", "BBB", "CCC", "DDD", "EEE"))), cash=90_000)
    result = analysis(portfolio, dict.fromkeys(("AAA", "BBB", "CCC", "DDD", "EEE"), 200.0))
    assert result.totals.net_liq == pytest.approx(100_000)
    assert breaches(result, portfolio.risk_profile) == []


def test_position_size_and_net_delta_are_flagged_in_words() -> None:
    """100 shares at $200 with $5,000 cash: net liq $25,000; the position is 80% of it (limit 10%) and its
    delta dollars ($20,000) are 80% too (limit 50%). The larger excess comes first."""
    portfolio = book(stock("spy-shares", "SPY", 100), cash=5_000)
    found = breaches(analysis(portfolio, {"SPY": 200.0}), portfolio.risk_profile)
    assert [(b.limit, b.subject) for b in found] == [("max_position_pct", "spy-shares"),
                                                    ("max_portfolio_delta_pct", "portfolio")]
    size, delta = found
    assert size.value_pct == pytest.approx(80.0) and size.limit_pct == 10.0 and size.excess == pytest.approx(70.0)
    assert size.text == ("spy-shares is 80.0% of net liq ($20,000.00 of $25,000.00); the limit is 10.0% "
                         "(max_position_pct)")
    assert size.label == "Position size"
    assert delta.value_pct == pytest.approx(80.0) and delta.amount == pytest.approx(20_000)
    assert delta.text == ("Net delta is +$20,000.00, 80.0% of net liq ($25,000.00); the limit is 50.0% "
                          "(max_portfolio_delta_pct)")
    assert delta.label == "Net delta"


def test_shorts_count_by_size_and_the_profile_sets_the_limits() -> None:
    """A short of 50 shares at $100 is a $5,000 position (what closing it costs) whatever its sign; with
    $55,000 cash net liq is $50,000, so it is 10%: over a 8% limit, within a 12% one. Its delta is -$5,000,
    10% of net liq: over a 5% delta limit, and the text keeps the sign."""
    tight = book(stock("short", "XYZ", -50), cash=55_000, max_position_pct=8.0, max_portfolio_delta_pct=5.0)
    found = breaches(analysis(tight, {"XYZ": 100.0}), tight.risk_profile)
    assert {b.limit: round(b.value_pct, 6) for b in found} == {"max_position_pct": 10.0, "max_portfolio_delta_pct": 10.0}
    assert "Net delta is -$5,000.00" in next(b.text for b in found if b.limit == "max_portfolio_delta_pct")
    loose = book(stock("short", "XYZ", -50), cash=55_000, max_position_pct=12.0, max_portfolio_delta_pct=50.0)
    assert breaches(analysis(loose, {"XYZ": 100.0}), loose.risk_profile) == []


def test_exactly_at_the_limit_is_not_a_breach() -> None:
    """10 shares at $100 with $9,000 cash: the position is exactly 10% of $10,000 (the default limit)."""
    portfolio = book(stock("edge", "EDG", 10), cash=9_000, max_portfolio_delta_pct=50.0)
    assert breaches(analysis(portfolio, {"EDG": 100.0}), portfolio.risk_profile) == []


def test_unvalued_positions_are_not_judged_and_a_non_positive_net_liq_says_so() -> None:
    """A position without a price is left out; a book whose net liq is negative gets one line saying the
    limits cannot be judged (a percentage of a negative number means nothing)."""
    portfolio = book(stock("priced", "AAA", 1), stock("unpriced", "BBB", 1000), cash=99_900)
    result = analysis(portfolio, {"AAA": 100.0})
    assert not result.positions[1].complete
    assert breaches(result, portfolio.risk_profile) == []
    broke = book(stock("short", "AAA", -100), cash=1_000)
    found = breaches(analysis(broke, {"AAA": 100.0}), broke.risk_profile)
    assert [b.limit for b in found] == ["net_liq"]
    assert found[0].text.startswith("Net liquidation value is -$9,000.00, not positive")


def test_options_value_the_premium_and_the_delta_from_the_chain() -> None:
    """An option position is sized by its market value (premium x 100 x contracts), not its notional."""
    from tests.unit.test_analyze import LONG_CALL, chain

    portfolio = from_data({"cash": 1_000.0, "positions": [LONG_CALL]})
    result = analyze_portfolio(portfolio, {"SPY": chain()}, AS_OF, FLAT)
    value = result.positions[0].market_value
    net_liq = 1_000.0 + value
    found = {b.limit: b for b in breaches(result, portfolio.risk_profile)}
    assert found["max_position_pct"].value_pct == pytest.approx(100 * value / net_liq)
    assert found["max_portfolio_delta_pct"].value_pct == pytest.approx(
        100 * abs(result.totals.exposure.delta_dollars) / net_liq)


def _quote(symbol: str, bid: float, ask: float, at: float) -> Quote:
    return Quote(symbol, "stock", bid, ask, 0.0, 1, 1, at, at)  # type: ignore[arg-type]


def test_live_marks_need_the_cash_and_judge_position_size_only() -> None:
    """Marks carry no cash (pass it) and no Greeks (the delta limit is not judged on them)."""
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC).timestamp()
    portfolio = book(stock("aapl", "AAPL", 100), stock("msft", "MSFT", 1), cash=10_000)
    marks = mark_portfolio(portfolio, {"AAPL": _quote("AAPL", 199.9, 200.1, now),
                                       "MSFT": _quote("MSFT", 399.9, 400.1, now)}, now=now + 1)
    with pytest.raises(TypeError, match="cash"):
        breaches(marks, portfolio.risk_profile)
    found = breaches(marks, portfolio.risk_profile, cash=portfolio.cash)
    net_liq = 10_000 + 100 * 200.0 + 400.0
    assert [(b.limit, b.subject) for b in found] == [("max_position_pct", "aapl")]
    assert found[0].value_pct == pytest.approx(100 * 20_000 / net_liq)
    assert "aapl is 65.8% of net liq ($20,000.00 of $30,400.00)" in found[0].text


def test_the_default_profile_is_the_files_default() -> None:
    """A portfolio without a risk_profile is judged against RiskProfile()'s 10% / 50%."""
    assert (RiskProfile().max_position_pct, RiskProfile().max_portfolio_delta_pct) == (10.0, 50.0)
