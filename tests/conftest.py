"""Fixtures shared by every test: each test gets its own OH_HOME (never ./data)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.home import Home


@pytest.fixture(scope="session", autouse=True)
def calendar_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the calendar cache inside the test session's temp dir (inherited by child processes)."""
    import os

    path = tmp_path_factory.mktemp("calendar-cache")
    previous = os.environ.get("OH_CALENDAR_CACHE")
    os.environ["OH_CALENDAR_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("OH_CALENDAR_CACHE", None)
    else:
        os.environ["OH_CALENDAR_CACHE"] = previous


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A fresh OH_HOME in a temp dir, exported to child processes through the environment."""
    monkeypatch.setenv("OH_HOME", str(tmp_path / "oh_home"))
    monkeypatch.setenv("OH_UI_PORT", "0")  # `oh up` starts the dashboard too: never on the user's 5006
    monkeypatch.delenv("OH_SOCKET_DIR", raising=False)
    monkeypatch.delenv("OH_FSYNC", raising=False)
    monkeypatch.delenv("OH_BUS", raising=False)  # the local ipc bus unless a test says otherwise
    monkeypatch.delenv("OH_BUS_KEYS", raising=False)
    home = Home.from_env().ensure()
    yield home
    if home.sockets.parent != home.root:
        shutil.rmtree(home.sockets, ignore_errors=True)
