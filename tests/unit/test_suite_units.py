"""The suite's own scheduling (tests/conftest.py): each test module is one xdist work unit, so a module-scoped
stack is built once, on one worker."""

from __future__ import annotations

from tests.conftest import SHARED_UNITS, work_unit


def test_a_parameter_holding_a_double_colon_stays_in_its_module() -> None:
    """xdist's loadscope cut a test id at its last "::", so `[::1]` or `fe80::1` made a unit of its own and built
    its module's stack (and a chromium) again on another worker; the module is the unit, whatever the id holds."""
    module = "tests/ui/test_live_channel.py"
    ids = [f"{module}::test_refused[http://[::1]:{{port}}]", f"{module}::test_refused[null]",
           f"{module}::test_loopback[fe80::1]", f"{module}::test_loopback[[::]]"]
    assert {work_unit(nodeid) for nodeid in ids} == {module}


def test_modules_that_share_a_session_stack_are_one_unit() -> None:
    """The modules reading tests/ui's `populated` stack run on one worker, which builds it once."""
    units = {work_unit(f"{module}::test_x[a]") for module in SHARED_UNITS}
    assert len(SHARED_UNITS) == 2 and len(units) == 1
    assert work_unit("tests/unit/test_journal.py::test_x") == "tests/unit/test_journal.py"
