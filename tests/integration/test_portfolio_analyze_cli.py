"""`oh portfolio analyze` on real stored snapshots (sim market): a single leg, a vertical and an iron condor
analyze with the right signs and the chain's own quotes, with the ledger up or down; a bad field is an error
naming it; the file is never touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from bus.home import Home
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.sim.options import option_chain
from oh.domain.pricing import mark_price
from tests.integration.conftest import Stack, run_oh, shared_home

pytestmark = pytest.mark.integration

DAY = date(2025, 6, 3)
EXPIRY = "2025-07-18"


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The ledger and snapshot worker, with SPY's chain of DAY stored: once for the module, whose tests only read
    the warehouse (each writes its own portfolio file); the one that stops the ledger runs last."""
    with shared_home(tmp_path_factory.mktemp("stored")) as home:
        stack = Stack(home)
        snapshot = Service(home, "snapshot")
        try:
            stack.start_ledger()
            snapshot.start()
            wait_for_heartbeat(home, "snapshot")
            result = run_oh("emit", "snapshot-options", "--symbols", "SPY", "--as-of", str(DAY), "--wait")
            assert result.returncode == 0, result.stderr
            yield stack
        finally:
            if snapshot.proc is not None and snapshot.proc.poll() is None:
                snapshot.stop()
            stack.stop()


def build_portfolio() -> Path:
    """Through the CLI: a long call, a bull put vertical and a short iron condor on SPY, all listed on DAY (in a new
    portfolio file: an earlier test's, in the module's shared home, is removed first)."""
    (Home.from_env().config / "portfolio.json").unlink(missing_ok=True)
    steps = [
        ["init", "--cash", "10000"],
        ["add-position", "--symbol", "SPY", "--quantity", "2", "--cost", "11", "--expiry", EXPIRY, "--right", "call",
         "--strike", "130", "--id", "call"],
        ["add-spread", "--symbol", "SPY", "--kind", "vertical", "--id", "bps",
         "--leg", f"{EXPIRY}:put:125:-1:8.5", "--leg", f"{EXPIRY}:put:115:+1:5.2"],
        ["add-spread", "--symbol", "SPY", "--kind", "iron_condor", "--id", "ic", "--net-debit", "-2",
         "--leg", f"{EXPIRY}:put:110:+1:4", "--leg", f"{EXPIRY}:put:120:-1:6.6",
         "--leg", f"{EXPIRY}:call:145:-1:5.5", "--leg", f"{EXPIRY}:call:155:+1:3"],
    ]
    for args in steps:
        result = run_oh("portfolio", *args)
        assert result.returncode == 0, result.stderr
    return Home.from_env().config / "portfolio.json"


def sim_marks() -> dict[str, float]:
    chain = option_chain("SPY", DAY)
    marks = mark_price(chain["bid"].to_numpy(), chain["ask"].to_numpy(), chain["last"].to_numpy())
    return dict(zip(chain["contract_symbol"].to_pylist(), marks.tolist(), strict=True))


def state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def analyze_json(*extra: str) -> dict:  # type: ignore[type-arg]
    result = run_oh("portfolio", "analyze", "--as-of", str(DAY), "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_single_leg_vertical_and_condor_analyze_with_correct_signs(stored: Stack) -> None:
    """Marks are the stored chain's mid (mark rule), PnL = value - cost basis with signed quantities, and the
    Greeks have the textbook signs: long call +delta +vega -theta; bull put +delta +theta -vega; condor -vega
    +theta. The file is unchanged byte for byte (and not even rewritten)."""
    path = build_portfolio()
    before = state(path)
    data = analyze_json()
    marks = sim_marks()
    by_id = {p["id"]: p for p in data["positions"]}
    assert list(by_id) == ["call", "bps", "ic"] and data["as_of"] == str(DAY)
    for position in by_id.values():
        assert position["complete"] and position["dte"] == (date(2025, 7, 18) - DAY).days
        for leg in position["legs"]:
            assert leg["mark"] == pytest.approx(marks[leg["contract"]])
            assert leg["pnl"] == pytest.approx(leg["quantity"] * 100 * (leg["mark"] - leg["cost"]))
    call, bps, ic = by_id["call"]["exposure"], by_id["bps"]["exposure"], by_id["ic"]["exposure"]
    assert call["delta_shares"] > 0 and call["vega_dollars"] > 0 and call["theta_dollars"] < 0
    assert bps["delta_shares"] > 0 and bps["theta_dollars"] > 0 and bps["vega_dollars"] < 0
    assert ic["vega_dollars"] < 0 and ic["theta_dollars"] > 0
    assert by_id["bps"]["cost_basis"] == pytest.approx(-330.0) and by_id["ic"]["cost_basis"] == pytest.approx(-200.0)
    assert by_id["call"]["pnl"] == pytest.approx(2 * 100 * (marks["SPY250718C00130000"] - 11))
    assert data["totals"]["pnl"] == pytest.approx(sum(p["pnl"] for p in by_id.values()))
    assert len(data["stress"]) == 18 and data["spec"] == {"spot_shocks_pct": [-5.0, 5.0], "vol_shocks_pts": [-5.0, 5.0],
                                                          "days_forward": 7}
    custom = analyze_json("--spot-shocks", "10", "--vol-shocks", "+3", "--days", "2")
    assert {(s["scenario"]["spot_pct"], s["scenario"]["vol_pts"], s["scenario"]["days"]) for s in custom["stress"]} == {
        (s, v, d) for s in (-10.0, 0.0, 10.0) for v in (0.0, 3.0) for d in (0, 2)}
    assert state(path) == before


def test_a_bad_field_is_named_and_the_file_left_alone(stored: Stack) -> None:
    """A strike of -5 in the file: exit 2, one line naming the position and the field; the file keeps its bytes."""
    path = build_portfolio()
    data = json.loads(path.read_text())
    data["positions"][1]["legs"][0]["strike"] = -5
    path.write_text(json.dumps(data))
    before = state(path)
    result = run_oh("portfolio", "analyze", "--as-of", str(DAY))
    assert result.returncode == 2
    assert 'positions[1] (id "bps"): legs[0]: strike must be > 0, got -5' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert state(path) == before


def test_an_underlying_without_a_snapshot_says_how_to_get_one(stored: Stack) -> None:
    """A QQQ position with no QQQ snapshot: exit 2 and the command that fixes it; a date before any snapshot too."""
    build_portfolio()
    run_oh("portfolio", "add-position", "--symbol", "QQQ", "--quantity", "1", "--cost", "3", "--expiry", EXPIRY,
           "--right", "put", "--strike", "400")
    result = run_oh("portfolio", "analyze", "--as-of", str(DAY))
    assert result.returncode == 2
    assert "no option-chain snapshot of QQQ on or before 2025-06-03: run `oh emit snapshot-options --symbols QQQ`" in result.stderr
    early = run_oh("portfolio", "analyze", "--as-of", "2025-06-02")
    assert early.returncode == 2 and "--symbols QQQ,SPY" in early.stderr


def test_tables_and_the_ledger_down_path_read_the_same_data(stored: Stack) -> None:
    """The readable output names every position and stress table; with the ledger stopped the warehouse file is
    read directly and the JSON is identical. (Last in the module: it stops the shared ledger.)"""
    build_portfolio()
    up = analyze_json()
    result = run_oh("portfolio", "analyze", "--as-of", str(DAY))
    assert result.returncode == 0, result.stderr
    for needle in ("call", "bps", "ic", "SPY250718P00115000", "Stress PnL today", "Stress PnL in 7 days",
                   "theta $/day", "net liq", "not financial advice"):
        assert needle in result.stdout, needle
    stored.ledger.stop()
    assert analyze_json() == up
