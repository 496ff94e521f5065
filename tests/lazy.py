"""Modules imported on first use, for test modules whose heavy imports only their own tests need.

Every xdist worker collects the whole suite (xdist insists that each collects the same tests), so a module
that a test module imports at its top is imported by every worker, whichever worker then runs its tests:
Dagster (~1.3 CPU-s) five times over for the one worker that runs its tests. `lazy("dagster")` is a stand-in
that imports the module on the first read of one of its public attributes, so collecting costs nothing and
the tests read `dg.AssetKey` as before.

Only public names load it: collection probes every global of a module or conftest for pytest's own
attributes (`__wrapped__`, `_mock_name`, `_fixture_function_marker`, ...), and those find nothing here, as
they would on the module. Not put in `sys.modules`: `import dagster` elsewhere imports it as usual.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """A module by name, imported when one of its public attributes is first read."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy(name: str) -> Any:
    """`name`, imported when one of its public attributes is first read (typed Any, as the module's names are)."""
    return LazyModule(name)
