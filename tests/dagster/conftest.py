"""Fixtures of the Dagster tests: a DAGSTER_HOME per test, and the real stack (ledger and every worker).

Skipped as a whole when the `dagster` extra is not installed (`pip install -e '.[dagster]'`). Dagster and
`oh_dagster` are imported on first use here and in the test modules (tests/lazy.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.home import Home
from tests.dagster.paths import start_stack
from tests.lazy import lazy
from tests.scenarios.harness import BusHarness

if importlib.util.find_spec("dagster") is None:
    pytest.skip("the dagster extra is not installed", allow_module_level=True)

dg = lazy("dagster")  # imported by the worker that runs these tests, not by every worker that collects them


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DAGSTER_HOME (telemetry off), exported to the step processes through the environment."""
    path = tmp_path / "dagster_home"
    path.mkdir()
    (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    return path


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    """The DagsterInstance of this test's DAGSTER_HOME."""
    with dg.DagsterInstance.get() as dagster_instance:
        yield dagster_instance


@pytest.fixture
def stack(home: Home) -> Iterator[BusHarness]:
    """The ledger and every worker for this test's OH_HOME."""
    harness = start_stack(home)
    yield harness
    harness.close()
