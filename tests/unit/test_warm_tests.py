"""devtools/warm_tests.py, which `make test` runs before the xdist workers: the rewritten byte code it writes is the
byte code pytest itself loads (so the workers skip rewriting), and it picks the files pytest rewrites."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devtools import warm_tests

FAILING = "def test_x():\n    numbers = [1]\n    assert numbers == [2]\n"


def test_pytest_loads_the_rewritten_byte_code_it_wrote_and_writes_none_of_its_own(tmp_path: Path) -> None:
    """After `rewrite`, a pytest session on the module reads the pyc as it is (same inode, bytes and mtime: pytest
    found it valid and did not rewrite), and its asserts are rewritten (the failure shows the compared values)."""
    module = tmp_path / "test_sample.py"
    module.write_text(FAILING)
    warm_tests.rewrite([module])
    [pyc] = (tmp_path / "__pycache__").glob("test_sample.*-pytest-*.pyc")
    before = (pyc.stat().st_ino, pyc.stat().st_mtime_ns, pyc.read_bytes())
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):  # the suite's own options (-p devtools.cpu_report) are not this session's
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                             str(module)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "assert [1] == [2]" in result.stdout, result.stdout
    assert (pyc.stat().st_ino, pyc.stat().st_mtime_ns, pyc.read_bytes()) == before


def test_the_files_rewritten_are_test_modules_and_conftests(tmp_path: Path) -> None:
    """test_*.py and conftest.py anywhere below, not helpers, nor anything in a __pycache__."""
    for name in ("test_a.py", "conftest.py", "sub/test_b.py", "sub/conftest.py", "sub/helpers.py", "sub/a_test.txt",
                 "__pycache__/test_c.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    found = [p.relative_to(tmp_path).as_posix() for p in warm_tests.test_modules(tmp_path)]
    assert found == ["conftest.py", "sub/conftest.py", "sub/test_b.py", "test_a.py"]
