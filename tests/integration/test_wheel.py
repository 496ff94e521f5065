"""Installable anywhere: the wheel alone runs `oh up`, an `oh emit ... --wait` and `oh down`, from another directory.

The checkout is copied aside and built into a wheel (pip, build isolation, as `pip install .` and `pipx install .`
do); the wheel is installed (`--no-deps`) into a brand-new venv that sees, besides it, only the distributions its
own requirements name, and theirs, in turn (the wheel's `Requires-Dist` without extras, with the extras those name,
taken from this suite's venv, so at the versions requirements-dev.lock pins; linked into one directory the venv adds
to its path: no dev tool, no Dagster, no editable checkout); `pip check` says the wheel's dependency metadata is met
by them. Then, from an unrelated directory, with no PYTHONPATH and the checkout nowhere on sys.path, that venv's
`oh` starts every service under supervisord, ingests a week of sim candles and stops everything. Every service must
run the installed code (their command lines name the new venv's Python, `oh` imports from its site-packages).

Protects: a file `oh up` needs that is not in the wheel (supervisord.conf was not), a path relative to the
checkout, a dependency missing from pyproject (the venv holds only what pyproject's dependencies bring), dependency
bounds the locked versions do not meet (`pip check`). Not shown here: that pip resolves those dependencies from an
index (it resolved them for this suite's venv, with the same lock). One test, in its own temp dirs; linking the
dependencies instead of installing ~100 packages saves pip ~20 CPU-s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devtools.processes import REPO

pytestmark = [pytest.mark.integration, pytest.mark.wheel]

SKIP = shutil.ignore_patterns(".git", ".venv", "data", "dist", "build", "*.egg-info", "__pycache__", ".pytest_cache",
                              ".hypothesis", "node_modules")


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _requirements(declared: list[str], extras: frozenset[str]) -> list[Requirement]:
    """Of `Requires-Dist` lines, those that apply with `extras` asked for, on this platform."""
    wanted = []
    for line in declared:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in {"", *extras}):
            wanted.append(req)
    return wanted


def link_dependencies(wheel: Path, target: Path) -> list[str]:
    """Link into `target` every distribution of this venv that the wheel's requirements (no extras) bring, their
    requirements in turn (with the extras named): each one's top-level modules and its dist-info, so `target` holds
    what installing the wheel's dependencies would, at this venv's (the lock's) versions. Returns their names."""
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        todo = _requirements(Parser().parsestr(archive.read(name).decode()).get_all("Requires-Dist", []), frozenset())
    seen: dict[str, frozenset[str]] = {}
    target.mkdir()
    while todo:
        req = todo.pop()
        key, extras = canonicalize_name(req.name), frozenset(req.extras)
        if key in seen and extras <= seen[key]:
            continue
        dist = metadata.distribution(req.name)  # missing from this venv: the lock does not cover a dependency
        assert req.specifier.contains(dist.version, prereleases=True), f"{req} but this venv has {dist.version}"
        if key not in seen:
            for top in sorted({f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}):
                if not (target / top).exists():
                    (target / top).symlink_to(dist.locate_file(top))
        seen[key] = seen.get(key, frozenset()) | extras
        todo.extend(_requirements(dist.requires or [], seen[key]))
    return sorted(seen)


@pytest.mark.timeout(1200)
def test_the_wheel_runs_up_emit_and_down_from_another_directory(tmp_path: Path) -> None:
    """Build, install into a fresh venv, then `oh --version`, `oh up`, `oh emit ingest-candles --wait`, `oh status
    --json` (every service running the installed code) and `oh down`, all from a directory outside the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "OH_SOCKET_DIR", "PYTHONHOME")}
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=SKIP)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)], cwd=tmp_path, env=env)
    [wheel] = dist.glob("options_helper-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=env)
    python, oh = venv / "bin" / "python", venv / "bin" / "oh"
    linked = link_dependencies(wheel, tmp_path / "deps")
    assert {"pyzmq", "duckdb", "supervisor", "panel"} <= set(linked) and not {"pytest", "dagster"} & set(linked)
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path,
                        env=env).stdout.strip())
    (purelib / "oh_test_dependencies.pth").write_text(f"import site; site.addsitedir({str(tmp_path / 'deps')!r})\n")
    # this suite's pip installs into the new venv (`--python`); --no-compile: Python writes byte code on first import
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    _run([*pip, "install", "-q", "--no-deps", "--no-compile", str(wheel)], cwd=tmp_path, env=env)
    _run([*pip, "check"], cwd=tmp_path, env=env)  # every requirement of every distribution it sees is met

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env.update(OH_HOME=str(tmp_path / "home"), OH_UI_PORT="0", OH_CALENDAR_CACHE=str(tmp_path / "calendar"))
    where = _run([str(python), "-c", "import oh, services, oh.adapters.supervisor as s; print(oh.__file__); "
                  "print(services.__file__); print(s.conf_text().count('[program:')); import importlib.util as u; "
                  "print(u.find_spec('pytest') is None and u.find_spec('dagster') is None)"], cwd=elsewhere, env=env)
    oh_file, services_file, programs, isolated = where.stdout.split()
    site = str(venv / "lib")
    assert oh_file.startswith(site) and services_file.startswith(site), where.stdout
    assert int(programs) > 5
    assert isolated == "True", "the venv sees more than the wheel's dependencies"
    assert _run([str(oh), "--version"], cwd=elsewhere, env=env).stdout.strip().startswith("oh ")

    try:
        _run([str(oh), "up", "--timeout", "180"], cwd=elsewhere, env=env, timeout=300)
        emitted = _run([str(oh), "emit", "ingest-candles", "--symbols", "SPY,AAPL", "--start", "2025-03-03",
                        "--end", "2025-03-07", "--wait"], cwd=elsewhere, env=env)
        assert "ingest_candles succeeded" in emitted.stdout and "10 rows" in emitted.stdout, emitted.stdout
        status = json.loads(_run([str(oh), "status", "--json"], cwd=elsewhere, env=env).stdout)
        assert status["all_up"] and status["supervisord"]["running"]
        for service in status["services"]:
            assert service["managed_by"] == "supervisord", service
            cmdline = Path(f"/proc/{service['pid']}/cmdline").read_bytes().split(b"\0")
            assert cmdline[0].decode() == str(python), (service["service"], cmdline)
            cwd = Path(f"/proc/{service['pid']}/cwd").resolve()
            assert cwd == Path(env["OH_HOME"]).resolve(), (service["service"], cwd)
        counted = _run([str(oh), "query", "SELECT count(*) AS n FROM candles_daily", "-f", "json"], cwd=elsewhere,
                       env=env)
        assert json.loads(counted.stdout) == [{"n": 10}]
    finally:
        down = subprocess.run([str(oh), "down"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and "oh is down" in down.stdout, down.stdout + down.stderr
    assert not list(elsewhere.iterdir()), "oh wrote into the directory it was run from"
