"""oh.domain.briefing: the Markdown is a pure function of its input (same data, same bytes, whatever the row order),
says "Not financial advice" first, and shows the portfolio (or why not), derived highlights, flow and health."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from oh.domain.analyze import analyze_portfolio
from oh.domain.briefing import (
    BriefingInput,
    HealthSummary,
    flow_highlights,
    health_line,
    health_summary,
    render,
)
from oh.domain.portfolio import from_data
from tests.unit.test_analyze import AS_OF, BULL_PUT, CONDOR, LONG_CALL, chain

DERIVED = [
    {"symbol": "SPY", "spot": 100.0, "atm_iv": 0.25, "iv_rank": 91.0, "iv_percentile": 95.0, "expected_move_pct": 3.2,
     "pcr_oi": 1.1, "call_wall": 110.0, "put_wall": 90.0},
    {"symbol": "AAPL", "spot": 200.0, "atm_iv": 0.30, "iv_rank": 12.0, "iv_percentile": 10.0, "expected_move_pct": 4.5,
     "pcr_oi": 0.8, "call_wall": 220.0, "put_wall": 180.0},
    {"symbol": "MSFT", "spot": 400.0, "atm_iv": 0.22, "iv_rank": None, "iv_percentile": None, "expected_move_pct": 2.0,
     "pcr_oi": 0.9, "call_wall": 420.0, "put_wall": 380.0},
]


def flow_row(symbol: str, contract: str, d_oi: int, notional: float, label: str) -> dict[str, Any]:
    return {"symbol": symbol, "row_key": contract, "put_call": contract[-9], "expiry": date(2025, 7, 18),
            "strike": 100.0, "d_oi": d_oi, "d_oi_notional": notional, "volume": 50, "label": label}


FLOW = [
    flow_row("SPY", "SPY250718C00110000", -300, -90_000.0, "unwinding"),
    flow_row("SPY", "SPY250718P00095000", 500, 150_000.0, "building"),
    flow_row("AAPL", "AAPL250718C00200000", 400, 150_000.0, "building"),  # ties SPY's notional: AAPL sorts first
    flow_row("SPY", "SPY250718P00090000", 5, 1_000.0, "churn"),  # not notable, but held
]


def data(portfolio: bool = True, derived: list[dict[str, Any]] = DERIVED, flow: list[dict[str, Any]] = FLOW,
         note: str | None = None) -> BriefingInput:
    analysis = None
    if portfolio:
        analysis = analyze_portfolio(from_data({"cash": 5000, "positions": [LONG_CALL, BULL_PUT, CONDOR]}),
                                     {"SPY": chain()}, AS_OF)
    held = {"SPY250718P00095000", "SPY250718P00090000"} if portfolio else set()
    notable, mine = flow_highlights(flow, held)
    return BriefingInput(as_of=AS_OF, symbols=("AAPL", "MSFT", "SPY"), portfolio_path="/home/me/portfolio.json",
                         analysis=analysis, portfolio_note=note, derived=tuple(derived), flow=notable, held_flow=mine,
                         health=HealthSummary(through=AS_OF))


def test_same_input_same_bytes_whatever_the_row_order() -> None:
    """Idempotence rests on this: rendering twice, or from shuffled query rows, gives identical text."""
    text = render(data())
    shuffled_derived, shuffled_flow = DERIVED[:], FLOW[:]
    random.Random(7).shuffle(shuffled_derived)
    random.Random(7).shuffle(shuffled_flow)
    assert render(data(derived=shuffled_derived, flow=shuffled_flow)) == text == render(data())
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert str(date.today()) not in text  # no wall-clock date inside the body


def test_header_says_not_financial_advice_first_and_lists_symbols() -> None:
    """The title carries the as-of date, the disclaimer follows at once, then the symbols and the health line."""
    lines = render(data()).splitlines()
    assert lines[0] == "# Briefing 2025-06-03"
    assert "Not financial advice" in lines[2]
    assert "Symbols: AAPL, MSFT, SPY (portfolio: SPY)" in lines
    assert any(line.startswith("**Data health:** all datasets fresh through 2025-06-03") for line in lines)


def test_portfolio_section_shows_positions_legs_greeks_and_stress() -> None:
    """Single legs and structures (with each leg's OCC symbol) appear with PnL, Greeks and both stress grids."""
    text = render(data())
    for needle in ("## Portfolio", "| call | option |", "| bps | vertical |", "| ic | iron_condor |",
                   "SPY250718P00085000", "### Greeks (share and dollar terms)", "### Stress PnL today",
                   "### Stress PnL in 7 days", "### Stress PnL by position", "net liq"):
        assert needle in text, needle


def test_missing_or_malformed_portfolio_is_said_and_the_rest_is_written() -> None:
    """No portfolio: the section says why; derived and flow are still there; no held-contracts table."""
    text = render(data(portfolio=False, note="No portfolio file: this briefing has no portfolio section."))
    assert "No portfolio file: this briefing has no portfolio section." in text
    assert "## Derived highlights" in text and "## Notable flow" in text
    assert "On contracts you hold" not in text
    bad = render(data(portfolio=False, note="The portfolio file could not be read: positions[1] (id \"x\"): strike "
                                            "must be > 0, got -5"))
    assert "positions[1] (id \"x\"): strike must be > 0, got -5" in bad


def test_derived_highlights_name_iv_rank_extremes_and_big_moves() -> None:
    """IV rank >= 80 and <= 20 are named, unknown ranks counted, the largest expected moves listed in order."""
    text = render(data())
    assert "- IV rank >= 80: SPY (91)" in text
    assert "- IV rank <= 20: AAPL (12)" in text
    assert "- IV rank not yet known for 1 of 3 symbols" in text
    assert "- Largest expected moves: AAPL ±4.5%, SPY ±3.2%, MSFT ±2.0%" in text
    assert "No derived metrics for 2025-06-03." in render(data(derived=[]))


def test_flow_highlights_rank_by_notional_and_flag_held_contracts() -> None:
    """Only building/unwinding rows are notable, ordered by |d_oi_notional| then symbol; held contracts are listed
    whatever their label."""
    notable, mine = flow_highlights(FLOW, {"SPY250718P00090000"})
    assert [n.contract for n in notable] == ["AAPL250718C00200000", "SPY250718P00095000", "SPY250718C00110000"]
    assert [(m.contract, m.label, m.held) for m in mine] == [("SPY250718P00090000", "churn", True)]
    text = render(data())
    assert "### On contracts you hold" in text and "| SPY | SPY250718P00095000 | building | +500 | +150,000 | 50 | yes |" in text


def test_health_summary_words_stale_failed_and_gaps_for_the_briefing_symbols() -> None:
    """Stale watermarks (not the briefing's own), failed latest runs, failed checks and gaps make one line."""
    report = {
        "expected_through": AS_OF,
        "watermarks": [
            {"asset_key": "candles_daily", "scope_key": "SPY", "stale": True, "staleness_sessions": 3},
            {"asset_key": "candles_daily", "scope_key": "TSLA", "stale": True, "staleness_sessions": 9},  # not ours
            {"asset_key": "briefing_markdown", "scope_key": "ALL", "stale": True, "staleness_sessions": 2},
            {"asset_key": "options_flow", "scope_key": "AAPL", "stale": False, "staleness_sessions": 0},
        ],
        "latest_runs": [{"job_name": "ingest_candles", "status": "failed"}, {"job_name": "compute_flow", "status": "success"}],
        "failed_checks": [{"check_name": "snapshot_crossed_quotes", "asset_key": "options_snapshot_file",
                           "partition_key": "SPY|2025-06-03"}] * 2,
        "gaps": [{"asset_key": "candles_daily", "symbol": "AAPL", "sessions": 2, "start": date(2025, 5, 1)}],
    }
    summary = health_summary(report, ["AAPL", "SPY"])
    assert summary.stale == ("candles_daily SPY (3 sessions behind)",)
    assert summary.failed_runs == ("ingest_candles (failed)",)
    assert summary.failed_checks == ("snapshot_crossed_quotes on options_snapshot_file",)
    line = health_line(summary)
    assert line.startswith("**Data health:** stale: candles_daily SPY") and "failed runs: ingest_candles" in line
    assert "gaps: candles_daily AAPL (2 sessions from 2025-05-01)" in line and "`oh db health`" in line
    assert "all datasets fresh" in health_line(health_summary({"expected_through": AS_OF}))
