"""Odd but legal inputs at the CLI's edges: nested query results as CSV, a portfolio file nested 100k deep.

Each is driven through the real `oh` command, with the ledger up (the query goes through its endpoint)
and down (the file is read directly), and must give an answer or one clear line, never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.home import Home
from devtools.processes import Service, wait_for_ledger
from tests.integration.conftest import run_oh

pytestmark = pytest.mark.integration

NESTED = ("SELECT 1 AS n, [1, 2] AS ints, ['a', NULL] AS texts, []::INTEGER[] AS empty, NULL::INTEGER[] AS missing, "
          "[[1], [2, 3]] AS nested, {'k': 1, 'days': [DATE '2025-06-06']} AS record, MAP([1], ['x']) AS mapping, "
          "[{'s': 'AAPL', 'q': 1.5}] AS structs")


@pytest.fixture(params=["ledger-up", "ledger-down"])
def ledger(request: pytest.FixtureRequest, home: Home) -> Iterator[str]:
    """Run each query through the ledger's endpoint, or with no ledger (the file opened read-only)."""
    assert run_oh("db", "init").returncode == 0
    if request.param == "ledger-down":
        yield request.param
        return
    service = Service(home, "ledger").start()
    wait_for_ledger(home)
    yield request.param
    service.stop()


def test_csv_writes_list_struct_and_map_columns_as_json_cells(ledger: str) -> None:
    """`oh query --format csv` on list, struct and map columns: one row, each nested cell the JSON that
    `--format json` shows for it, NULL an empty cell (it used to crash in Arrow's CSV writer)."""
    as_csv = run_oh("query", NESTED, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    header, row = list(csv.reader(io.StringIO(as_csv.stdout)))
    cells = dict(zip(header, row, strict=True))
    as_json = run_oh("query", NESTED, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    [record] = json.loads(as_json.stdout)
    assert cells["n"] == "1" and cells["missing"] == ""
    for name in ("ints", "texts", "empty", "nested", "record", "mapping", "structs"):
        assert json.loads(cells[name]) == record[name], name
    assert json.loads(cells["record"]) == {"k": 1, "days": ["2025-06-06"]}


@pytest.mark.parametrize("command", [("portfolio", "list", "--portfolio"), ("portfolio", "analyze", "--portfolio"),
                                     ("live", "start", "--portfolio")])
@pytest.mark.parametrize("nesting", ["[", '{"positions": ['])
def test_a_portfolio_nested_100k_deep_is_one_line_and_exit_2(home: Home, tmp_path: Path,
                                                             command: tuple[str, ...], nesting: str) -> None:
    """A portfolio file of 100k nested brackets: every command that reads it exits 2 with one line naming the
    file, and sends nothing."""
    path = tmp_path / "deep.json"
    path.write_text(nesting + "[" * 100_000)
    result = run_oh(*command, str(path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "nested" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout
