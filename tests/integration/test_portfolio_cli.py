"""`oh portfolio`: CRUD through the sub-app (and the real `oh` script when registered); reads never write."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bus.home import Home
from devtools import forkserver
from devtools.paths import OH
from oh.adapters.portfolio_file import load
from oh.cli.portfolio import portfolio_app
from oh.domain.portfolio import Structure, option_legs

runner = CliRunner()

IC_LEGS = [
    "2026-05-15:put:400:+1:1.20", "2026-05-15:put:410:-1:2.30",
    "2026-05-15:call:470:-1:2.00", "2026-05-15:call:480:+1:1.00",
]


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(portfolio_app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ") and "Traceback" not in output
    return lines[0]


@pytest.fixture
def filled(home: Home) -> Path:
    """The default portfolio with a stock, a single leg, a vertical and an iron condor."""
    path = home.config / "portfolio.json"
    assert invoke("init", "--cash", "10000")[0] == 0
    assert invoke("add-position", "--symbol", "msft", "--quantity", "50", "--cost", "402.5")[0] == 0
    assert invoke("add-position", "--symbol", "AAPL", "--quantity", "-2", "--cost", "4.10",
                  "--expiry", "2026-03-20", "--right", "call", "--strike", "150")[0] == 0
    assert invoke("add-spread", "--symbol", "SPY", "--kind", "vertical", "--id", "spy-bps",
                  "--leg", "2026-04-17:put:500:-1:6.40", "--leg", "2026-04-17:put:490:+1:5.15")[0] == 0
    args = ["add-spread", "--symbol", "QQQ", "--kind", "iron_condor", "--net-debit", "-2.1"]
    for leg in IC_LEGS:
        args += ["--leg", leg]
    assert invoke(*args)[0] == 0
    return path


def test_crud_round_trip(filled: Path) -> None:
    p = load(filled)
    assert p.cash == 10000
    assert [pos.id for pos in p.positions] == ["msft", "aapl-260320c150", "spy-bps", "qqq-iron-condor"]
    vertical = p.positions[2]
    assert isinstance(vertical, Structure) and vertical.net_debit == pytest.approx(-1.25)  # from the legs
    legs = option_legs(p)
    assert [(pid, sym.compact, qty) for pid, sym, qty in legs] == [
        ("aapl-260320c150", "AAPL260320C00150000", -2),
        ("spy-bps", "SPY260417P00500000", -1),
        ("spy-bps", "SPY260417P00490000", 1),
        ("qqq-iron-condor", "QQQ260515P00400000", 1),
        ("qqq-iron-condor", "QQQ260515P00410000", -1),
        ("qqq-iron-condor", "QQQ260515C00470000", -1),
        ("qqq-iron-condor", "QQQ260515C00480000", 1),
    ]
    code, out = invoke("remove", "spy-bps")
    assert code == 0 and "removed spy-bps" in out
    assert [pos.id for pos in load(filled).positions] == ["msft", "aapl-260320c150", "qqq-iron-condor"]
    code, out = invoke("remove", "spy-bps")
    assert code == 2 and "no position with id 'spy-bps'" in one_line_error(out)


def test_generated_ids_stay_unique(filled: Path) -> None:
    assert invoke("add-position", "--symbol", "MSFT", "--quantity", "5", "--cost", "410")[0] == 0
    assert [pos.id for pos in load(filled).positions][-1] == "msft-2"
    before = snapshot(filled)
    code, out = invoke("add-position", "--symbol", "MSFT", "--quantity", "5", "--cost", "410", "--id", "msft")
    assert code == 2 and "already exists" in one_line_error(out)
    assert snapshot(filled) == before


def test_list_shows_structure_legs_and_never_writes(filled: Path) -> None:
    before = snapshot(filled)
    code, out = invoke("list")
    assert code == 0
    for text in ("qqq-iron-condor", "iron_condor", "QQQ260515C00470000", "SPY260417P00490000", "msft", "10,000.00"):
        assert text in out
    code, out = invoke("list", "--json")
    assert code == 0
    data = json.loads(out)
    assert [pos["type"] for pos in data["positions"]] == ["stock", "option", "structure", "structure"]
    assert out.encode() == filled.read_bytes()
    code, out = invoke("analyze")
    assert code == 2 and "snapshot-options" in one_line_error(out)
    assert snapshot(filled) == before


def test_init_refuses_to_overwrite_without_force(filled: Path) -> None:
    before = snapshot(filled)
    code, out = invoke("init")
    assert code == 2 and "--force" in one_line_error(out)
    assert snapshot(filled) == before
    assert invoke("init", "--force")[0] == 0
    assert load(filled).positions == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["add-position", "--symbol", "A,B", "--quantity", "1", "--cost", "1"], "--symbol takes one ticker"),
        (["add-position", "--symbol", "$$", "--quantity", "1", "--cost", "1"], "malformed symbol"),
        (["add-position", "--symbol", "X", "--quantity", "0", "--cost", "1"], "quantity must be non-zero"),
        (["add-position", "--symbol", "X", "--quantity", "1", "--cost", "1", "--expiry", "2026-03-20"],
         "missing --right, --strike"),
        (["add-position", "--symbol", "X", "--quantity", "1", "--cost", "1", "--expiry", "soon",
          "--right", "call", "--strike", "5"], "--expiry 'soon' is not a date"),
        (["add-position", "--symbol", "X", "--quantity", "1", "--cost", "1", "--expiry", "2026-03-20",
          "--right", "up", "--strike", "5"], "--right 'up' must be call or put"),
        (["add-position", "--symbol", "X", "--quantity", "1", "--cost", "1", "--expiry", "2026-03-20",
          "--right", "put", "--strike", "-5"], "strike must be > 0, got -5"),
        (["add-position", "--symbol", "X", "--quantity", "1.5", "--cost", "1", "--expiry", "2026-03-20",
          "--right", "put", "--strike", "5"], "whole number of contracts"),
        (["add-spread", "--symbol", "X", "--kind", "butterfly", "--leg", "2026-03-20:call:1:+1:1"], "--kind 'butterfly'"),
        (["add-spread", "--symbol", "X", "--kind", "custom", "--leg", "2026-03-20:call:1:+1:1"],
         "legs must hold at least 2 legs"),
        (["add-spread", "--symbol", "X", "--kind", "vertical", "--leg", "2026-03-20:call:1"], "--leg 1"),
        (["add-spread", "--symbol", "X", "--kind", "vertical", "--leg", "2026-03-20:call:1:+1:1",
          "--leg", "2026-03-20:call:2:x:1"], "--leg 2 '2026-03-20:call:2:x:1': quantity 'x'"),
        (["add-spread", "--symbol", "X", "--kind", "vertical", "--leg", "2026-03-20:call:1:+1:1",
          "--leg", "2026-03-20:call:2:0:1"], "legs[1]: quantity must be non-zero"),
        (["add-spread", "--symbol", "X", "--kind", "calendar", "--leg", "2026-03-20:call:1:+1:1",
          "--leg", "2026-03-20:call:2:-1:1"], "kind 'calendar' does not fit the legs"),
        (["remove", "nope"], "no position with id 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_leaves_the_file(filled: Path, args: list[str], expected: str) -> None:
    before = snapshot(filled)
    code, out = invoke(*args)
    assert code == 2
    assert expected in one_line_error(out)
    assert snapshot(filled) == before


def test_missing_file_is_one_line(home: Home) -> None:
    for args in (["list"], ["analyze"], ["remove", "x"], ["add-position", "--symbol", "X", "--quantity", "1", "--cost", "1"]):
        code, out = invoke(*args)
        assert code == 2 and "oh portfolio init" in one_line_error(out)
    assert not (home.config / "portfolio.json").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "malformed JSON at line 1 column 2"),
        ('{"cash": "lots"}', 'cash must be a number, got a string "lots"'),
        ('{"positions": [{"type": "option", "id": "spy-put", "symbol": "SPY", "expiry": "2026-03-20", '
         '"right": "put", "strike": -5, "quantity": 1, "cost_basis": 1}]}',
         'positions[0] (id "spy-put"): strike must be > 0, got -5'),
    ],
)
def test_malformed_file_errors_name_the_field_and_no_command_rewrites_it(home: Home, text: str, expected: str) -> None:
    path = home.config / "portfolio.json"
    path.write_text(text)
    before = snapshot(path)
    for args in (["list"], ["list", "--json"], ["analyze"], ["remove", "spy-put"],
                 ["add-position", "--symbol", "X", "--quantity", "1", "--cost", "1"]):
        code, out = invoke(*args)
        assert code == 2, args
        assert expected in one_line_error(out)
    assert snapshot(path) == before


def test_portfolio_option_points_elsewhere(home: Home, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "mine.json"
    assert invoke("init", "--portfolio", str(path), "--cash", "5")[0] == 0
    assert invoke("add-position", "--portfolio", str(path), "--symbol", "BRK.B", "--quantity", "1",
                  "--cost", "400", "--expiry", "2026-03-20", "--right", "p", "--strike", "400")[0] == 0
    assert option_legs(load(path))[0][1].compact == "BRKB260320P00400000"
    assert not (home.config / "portfolio.json").exists()


def _run_oh(*args: str) -> subprocess.CompletedProcess[str]:
    return forkserver.run([OH, *args], timeout=120, cwd=os.getcwd(), env=dict(os.environ))


def test_through_the_real_oh_script(home: Home) -> None:
    if _run_oh("portfolio", "--help").returncode != 0:
        pytest.skip("`oh portfolio` is not registered in oh/cli/main.py yet")
    path = home.config / "portfolio.json"
    assert _run_oh("portfolio", "init").returncode == 0
    args = ["portfolio", "add-spread", "--symbol", "QQQ", "--kind", "iron_condor"]
    for leg in IC_LEGS:
        args += ["--leg", leg]
    assert _run_oh(*args).returncode == 0
    before = snapshot(path)
    listed = _run_oh("portfolio", "list", "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["positions"][0]["legs"]) == 4
    bad = _run_oh("portfolio", "add-position", "--symbol", "X", "--quantity", "0", "--cost", "1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "quantity must be non-zero" in bad.stderr
    analyze = _run_oh("portfolio", "analyze")
    assert analyze.returncode == 2 and "snapshot-options" in analyze.stderr
    assert snapshot(path) == before
