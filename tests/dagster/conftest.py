"""Fixtures of the Dagster tests: a DAGSTER_HOME per test, and the real stack (ledger and every worker).

Skipped as a whole when the `dagster` extra is not installed (`pip install -e '.[dagster]'`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("dagster")

import dagster as dg

from bus.home import Home
from tests.dagster.paths import start_stack
from tests.scenarios.harness import BusHarness


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
