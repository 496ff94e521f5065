"""Every file the installed packages read beside their code is in the wheel.

Protects: a file added to panel_app/static or panel_app/templates (or the adapters' supervisord.conf) that the
code reads at run time but `[tool.setuptools.package-data]` does not ship: in a checkout (and the editable
install) it is there, in an installed wheel `oh ui` stopped at start. That was seen once, only in
tests/integration/test_wheel.py (a minute of `oh up` from a built wheel): panel_app/static/oh_layout.js.
"""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# folders whose files are read at run time, never imported: every file in them must be shipped
DATA_FOLDERS = {"panel_app": ("static", "templates")}


def _shipped() -> dict[str, list[str]]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]


def test_every_file_of_the_dashboards_data_folders_is_shipped() -> None:
    shipped = _shipped()
    for package, folders in DATA_FOLDERS.items():
        root = REPO / package.replace(".", "/")
        for folder in folders:
            files = [p.relative_to(root).as_posix() for p in (root / folder).rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts]
            assert files, f"{package}/{folder} is empty: the list above is out of date"
            missing = [f for f in files if not any(fnmatch(f, pattern) for pattern in shipped[package])]
            assert not missing, f"not in {package}'s package-data, so not in the wheel: {missing}"


def test_the_supervisord_conf_oh_up_reads_is_shipped() -> None:
    assert (REPO / "oh/adapters/supervisord.conf").is_file()
    assert "supervisord.conf" in _shipped()["oh.adapters"]
