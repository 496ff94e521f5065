"""The suite's own scheduling (tests/conftest.py): each test module is one xdist work unit, so a module-scoped
stack is built once, on one worker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    IMPORTED_AT_COLLECTION,
    LONGEST_FIRST,
    WAITING,
    pytest_collection_modifyitems,
    work_unit,
)

REPO = Path(__file__).resolve().parents[2]


def test_a_parameter_holding_a_double_colon_stays_in_its_module() -> None:
    """xdist's loadscope cut a test id at its last "::", so `[::1]` or `fe80::1` made a unit of its own and built
    its module's stack (and a chromium) again on another worker; the module is the unit, whatever the id holds."""
    module = "tests/ui/test_live_channel.py"
    ids = [f"{module}::test_refused[http://[::1]:{{port}}]", f"{module}::test_refused[null]",
           f"{module}::test_loopback[fe80::1]", f"{module}::test_loopback[[::]]"]
    assert {work_unit(nodeid) for nodeid in ids} == {module}


def test_modules_that_share_a_session_stack_are_one_unit() -> None:
    """The modules reading tests/ui's `populated` stack run on one worker, which builds it once."""
    populated = ("tests/ui/test_dashboard_browser.py", "tests/ui/test_dashboard_layout.py")
    assert {work_unit(f"{module}::test_x[a]") for module in populated} == {"tests/ui::populated"}
    assert work_unit("tests/unit/test_journal.py::test_x") == "tests/unit/test_journal.py"


@dataclass
class _Item:
    path: Path


def test_the_waiting_modules_are_one_unit_handed_out_first() -> None:
    """The modules that mostly wait run one after another on one worker, from the start, while the others keep the
    cores busy: one unit, first in the order xdist hands units out, every one of them a module that exists (a
    renamed one would silently go back to the shared order)."""
    assert {work_unit(f"{module}::test_x") for module in WAITING} == {"waiting"}
    assert all((REPO / module).is_file() for module in (*WAITING, *LONGEST_FIRST))
    others = ["tests/ui/test_live_page.py", "tests/integration/test_read_path_attack.py", "tests/unit/test_journal.py"]
    items = [_Item(REPO / module) for module in [*others, *reversed(WAITING)]]
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    order = [item.path.relative_to(REPO).as_posix() for item in items]
    assert order[:len(WAITING)] == list(WAITING)
    assert order[len(WAITING):] == ["tests/integration/test_read_path_attack.py", "tests/ui/test_live_page.py",
                                    "tests/unit/test_journal.py"]


def test_collecting_the_suite_imports_neither_dagster_nor_panel(pytestconfig: pytest.Config) -> None:
    """Each of `make test`'s workers collects every test module; one that imports Dagster or Panel at its top makes
    each worker pay for it (tests/conftest.py, SPARED_AT_COLLECTION). What this worker had imported when its
    collection ended (run alone, this module's collection: nothing to find)."""
    assert pytestconfig.stash[IMPORTED_AT_COLLECTION] == set()
