"""Installable anywhere: the wheel alone runs `oh up`, an `oh emit ... --wait` and `oh down`, from another directory.

The checkout is copied aside and built into a wheel (pip, build isolation, as `pip install .` and `pipx install .`
do); the wheel is installed into a brand-new venv with its dependencies at the versions requirements-dev.lock pins;
then, from an unrelated directory, with no PYTHONPATH and the checkout nowhere on sys.path, that venv's `oh`
starts every service under supervisord, ingests a week of sim candles and stops everything. Every service must
run the installed code (their command lines name the new venv's Python, `oh` imports from its site-packages).

Protects: a file `oh up` needs that is not in the wheel (supervisord.conf was not), a path relative to the
checkout, a dependency missing from pyproject. One test (about a minute, most of it pip), in its own temp dirs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.processes import REPO

pytestmark = [pytest.mark.integration, pytest.mark.wheel]

SKIP = shutil.ignore_patterns(".git", ".venv", "data", "dist", "build", "*.egg-info", "__pycache__", ".pytest_cache",
                              ".hypothesis", "node_modules")


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


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
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env)
    python, oh = venv / "bin" / "python", venv / "bin" / "oh"
    # --no-compile: no bytecode for ~100 packages now (Python writes it on first import); it halves the install
    _run([str(python), "-m", "pip", "install", "-q", "--no-compile", "-c", str(REPO / "requirements-dev.lock"),
          str(wheel)], cwd=tmp_path, env=env, timeout=900)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env.update(OH_HOME=str(tmp_path / "home"), OH_UI_PORT="0", OH_CALENDAR_CACHE=str(tmp_path / "calendar"))
    where = _run([str(python), "-c", "import oh, services, oh.adapters.supervisor as s; print(oh.__file__); "
                  "print(services.__file__); print(s.conf_text().count('[program:'))"], cwd=elsewhere, env=env)
    oh_file, services_file, programs = where.stdout.split()
    site = str(venv / "lib")
    assert oh_file.startswith(site) and services_file.startswith(site), where.stdout
    assert int(programs) > 5
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
