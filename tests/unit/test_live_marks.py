"""Live marks: the mark rule, PnL and value per kind, structures' net mark, DTE, spread, and quote age
measured against the clock (a frozen feed turns stale)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contracts.live import Quote
from oh.domain.marks import book, mark_book, mark_portfolio
from oh.domain.portfolio import from_data

T = datetime(2026, 11, 23, 15, 0, tzinfo=UTC).timestamp()
TODAY = date(2026, 11, 23)
CALL = "AAPL261218C00250000"
PUT_HI, PUT_LO = "SPY261218P00500000", "SPY261218P00490000"

PORTFOLIO = from_data({"positions": [
    {"type": "stock", "id": "aapl", "symbol": "AAPL", "quantity": 10, "cost_basis": 180.0},
    {"type": "option", "id": "aapl-call", "symbol": "AAPL", "expiry": "2026-12-18", "right": "call", "strike": 250,
     "quantity": 2, "cost_basis": 4.00},
    {"type": "structure", "id": "spy-bull-put", "symbol": "SPY", "kind": "vertical", "net_debit": -1.25,
     "legs": [{"expiry": "2026-12-18", "right": "put", "strike": 500, "quantity": -1, "cost": 6.40},
              {"expiry": "2026-12-18", "right": "put", "strike": 490, "quantity": 1, "cost": 5.15}]},
]})


def q(symbol: str, bid: float, ask: float, last: float = 0.0, at: float = T, recv: float | None = None) -> Quote:
    kind = "stock" if len(symbol) < 8 else "option"
    return Quote(symbol, kind, bid, ask, last, 1, 1, at, at if recv is None else recv)  # type: ignore[arg-type]


QUOTES = {
    "AAPL": q("AAPL", 199.90, 200.10),
    CALL: q(CALL, 5.00, 5.20),
    "SPY": q("SPY", 510.0, 510.1),
    PUT_HI: q(PUT_HI, 4.90, 5.10),
    PUT_LO: q(PUT_LO, 3.95, 4.05),
}


def by_id(marks):  # type: ignore[no-untyped-def]
    return {p.position_id: p for p in marks.positions}


def test_stock_option_and_structure_marks_pnl_and_value() -> None:
    marks = mark_portfolio(PORTFOLIO, QUOTES, now=T + 1, today=TODAY)
    p = by_id(marks)
    stock = p["aapl"]
    assert stock.type == "stock" and stock.mark == pytest.approx(200.0)
    assert stock.value == pytest.approx(2000.0) and stock.pnl == pytest.approx(200.0)
    assert stock.pnl_pct == pytest.approx(200 / 1800) and stock.dte is None
    call = p["aapl-call"]
    assert call.mark == pytest.approx(5.10) and call.value == pytest.approx(5.10 * 2 * 100)
    assert call.pnl == pytest.approx((5.10 - 4.00) * 200) and call.pnl_pct == pytest.approx(1.10 / 4.00)
    assert call.dte == 25 and call.spread_pct == pytest.approx(0.20 / 5.10)
    assert call.underlying_price == pytest.approx(200.0)
    spread = p["spy-bull-put"]
    assert spread.type == "structure" and spread.structure_kind == "vertical"
    net = -1 * 5.00 + 1 * 4.00  # per share: short the 500 put at 5.00, long the 490 at 4.00
    assert spread.mark == pytest.approx(net) and spread.value == pytest.approx(net * 100)
    assert spread.pnl == pytest.approx((net - -1.25) * 100) and spread.pnl_pct == pytest.approx(25 / 125)
    assert spread.cost_value == pytest.approx(-125.0)
    short, long = spread.legs
    assert short.pnl == pytest.approx((5.00 - 6.40) * -100) and long.pnl == pytest.approx((4.00 - 5.15) * 100)
    assert marks.marked == 3 and marks.missing == 0 and marks.stale == 0
    assert marks.value == pytest.approx(2000 + 1020 - 100) and marks.pnl == pytest.approx(200 + 220 + 25)
    assert all(not pos.warnings for pos in marks.positions)
    rows = marks.rows()
    assert [r["position_id"] for r in rows] == ["aapl", "aapl-call", "spy-bull-put"] and "legs" not in rows[0]
    assert len(marks.leg_rows()) == 4 and marks.leg_rows()[2]["symbol"] == PUT_HI


def test_the_mark_rule_falls_back_to_last_then_ask_then_bid() -> None:
    def mark(quote: Quote) -> float | None:
        return by_id(mark_portfolio(PORTFOLIO, {CALL: quote}, now=T, today=TODAY))["aapl-call"].mark

    assert mark(q(CALL, 0.0, 5.2, last=5.05)) == pytest.approx(5.05)
    assert mark(q(CALL, 0.0, 5.2)) == pytest.approx(5.2)
    assert mark(q(CALL, 5.0, 0.0)) == pytest.approx(5.0)
    assert mark(q(CALL, 0.0, 0.0)) is None


def test_a_frozen_feed_turns_stale_against_the_clock() -> None:
    """The same quotes, never updated: fresh at 10 s, stale past 30 s, even though nothing newer came."""
    fresh = mark_portfolio(PORTFOLIO, QUOTES, now=T + 10, today=TODAY)
    assert fresh.stale == 0 and by_id(fresh)["aapl"].age == pytest.approx(10)
    frozen = mark_portfolio(PORTFOLIO, QUOTES, now=T + 45, today=TODAY)
    assert frozen.stale == 3
    p = by_id(frozen)
    assert p["aapl"].stale and p["aapl"].age == pytest.approx(45) and "stale quote (45s old)" in p["aapl"].warnings
    assert p["spy-bull-put"].stale and any("stale quote" in w for w in p["spy-bull-put"].warnings)
    assert p["aapl"].mark == pytest.approx(200.0)  # still marked, flagged stale
    custom = mark_portfolio(PORTFOLIO, QUOTES, now=T + 45, today=TODAY, stale_after=60)
    assert custom.stale == 0


def test_age_uses_receive_time_when_the_feed_gives_none() -> None:
    quotes = {"AAPL": q("AAPL", 1, 2, at=0.0, recv=T)}
    assert by_id(mark_portfolio(PORTFOLIO, quotes, now=T + 3, today=TODAY))["aapl"].age == pytest.approx(3)


def test_missing_quotes_and_a_missing_leg() -> None:
    quotes = {k: v for k, v in QUOTES.items() if k not in (CALL, PUT_LO)}
    marks = mark_portfolio(PORTFOLIO, quotes, now=T, today=TODAY)
    p = by_id(marks)
    assert p["aapl-call"].mark is None and p["aapl-call"].pnl is None and p["aapl-call"].warnings == ("no quote",)
    spread = p["spy-bull-put"]
    assert spread.mark is None and spread.value is None and spread.warnings == (f"missing leg quote: {PUT_LO}",)
    assert spread.legs[0].mark == pytest.approx(5.0)  # the leg that has a quote is still marked
    assert marks.marked == 1 and marks.missing == 2 and marks.value == pytest.approx(2000.0)


def test_wide_crossed_and_expired() -> None:
    quotes = dict(QUOTES, **{CALL: q(CALL, 2.0, 4.0), PUT_HI: q(PUT_HI, 5.2, 5.0)})
    p = by_id(mark_portfolio(PORTFOLIO, quotes, now=T, today=date(2026, 12, 19)))
    assert "wide spread (67%)" in p["aapl-call"].warnings and "expired" in p["aapl-call"].warnings
    assert p["aapl-call"].dte == -1
    assert f"{PUT_HI}: crossed quote" in p["spy-bull-put"].warnings
    assert by_id(mark_portfolio(PORTFOLIO, quotes, now=T, today=TODAY, wide_spread=0.8))["aapl-call"].warnings == ()


def test_dte_defaults_to_new_york_today_and_alpaca_spelling() -> None:
    late = datetime(2026, 11, 24, 2, 0, tzinfo=UTC).timestamp()  # still the 23rd in New York
    assert by_id(mark_portfolio(PORTFOLIO, QUOTES, now=late))["aapl-call"].dte == 25
    brk = from_data({"positions": [{"type": "stock", "id": "b", "symbol": "BRK-B", "quantity": 1, "cost_basis": 1}]})
    marks = mark_portfolio(brk, {"BRK.B": q("BRK.B", 1.0, 1.2)}, now=T, provider="alpaca")
    assert marks.positions[0].mark == pytest.approx(1.1)


def test_a_book_built_once_marks_the_same_as_mark_portfolio() -> None:
    """The live marker builds a portfolio's MarkBook once and marks it many times a second: the result is the
    same as mark_portfolio's, for any quotes (some missing, the underlying's spot from its own quote)."""
    built = book(PORTFOLIO, "sim")
    assert built.symbols == {"AAPL", CALL, "SPY", PUT_HI, PUT_LO}
    for quotes in (QUOTES, {k: v for k, v in QUOTES.items() if k != PUT_LO}, {}):
        assert mark_book(built, quotes, now=T + 2, today=TODAY) == mark_portfolio(PORTFOLIO, quotes, now=T + 2,
                                                                                   today=TODAY)
    assert by_id(mark_book(built, QUOTES, now=T, today=TODAY))["spy-bull-put"].underlying_price == pytest.approx(510.05)
