"""The Procfile (honcho) and the packaged supervisord.conf (`oh up`) start the same programs the same way.

Protects: a service added to one list and forgotten in the other (it would run under one launcher
only), a Procfile line that runs a bare `python` (not the venv's, or none at all), and a
supervisord.conf that `oh up` cannot find in an installed package.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from oh.adapters import supervisor

REPO = Path(__file__).resolve().parents[2]


def _procfile() -> dict[str, str]:
    entries = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def _conf() -> configparser.RawConfigParser:
    conf = configparser.RawConfigParser()
    conf.read_string(supervisor.conf_text())
    return conf


def _module(command: str) -> str:
    """What a command runs: `-m services.ledger` -> `services.ledger`, with any arguments after it."""
    match = re.search(r"\s-m\s+(.+)$", command)
    assert match, f"{command!r} does not run a module with -m"
    return " ".join(match.group(1).split())


def test_procfile_and_supervisord_list_the_same_programs_in_the_same_order() -> None:
    """Every program of supervisord.conf is in the Procfile and the other way round, ledger first in both."""
    procfile = list(_procfile())
    assert procfile == supervisor.program_names()
    assert procfile[0] == "ledger"


def test_each_program_runs_the_same_module_under_both() -> None:
    """The Procfile line and the [program:x] command of each program run the same `python -m` module and args."""
    conf = _conf()
    for name, command in _procfile().items():
        assert _module(command) == _module(conf[f"program:{name}"]["command"]), name


def test_no_bare_python_in_the_procfile() -> None:
    """A Procfile command never starts with a bare `python`/`python3` from PATH: it runs $OH_PYTHON, else the venv's."""
    for name, command in _procfile().items():
        interpreter = command.split()[0]
        assert not re.fullmatch(r"python[0-9.]*", interpreter), f"{name}: bare {interpreter}"
        assert "OH_PYTHON" in interpreter and ".venv/bin/python" in interpreter, f"{name}: {interpreter}"


def test_supervisord_programs_run_in_the_home_not_the_checkout() -> None:
    """Every program (and supervisord) runs in OH_HOME: nothing depends on the checkout or site-packages layout."""
    conf = _conf()
    assert conf["supervisord"]["directory"] == "%(ENV_OH_HOME)s"
    for section in conf.sections():
        if section.startswith("program:"):
            assert conf[section]["directory"] == "%(ENV_OH_HOME)s", section
            assert conf[section]["command"].startswith("%(ENV_OH_PYTHON)s "), section
    assert "%(here)s" not in supervisor.conf_text()


def test_the_conf_is_package_data_of_oh_adapters() -> None:
    """supervisord.conf is found through importlib.resources next to the adapter, and pyproject ships it."""
    with supervisor.conf_path() as path:
        assert path.is_file() and path.parent == Path(supervisor.__file__).parent
    assert '"oh.adapters" = ["supervisord.conf"]' in (REPO / "pyproject.toml").read_text()
