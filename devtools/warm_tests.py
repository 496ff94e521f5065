"""Write the suite's byte code once before `make test` starts its xdist workers, so they load it instead of each making it.

In a clean clone (`.ci/run`) nothing is compiled yet: each of the 4 workers, all at once, compiled our ~270 modules,
rewrote the ~150 test modules' asserts (pytest's rewritten `*-pytest-<version>.pyc`) and, in a fresh venv, the
asserts of the pytest plugins' own modules (hypothesis, anyio, xdist, ...): ~7.5 CPU-s of each worker's collection
(13 CPU-s cold, 5.5 warm), ~30 CPU-s of the suite. This does that work once, in ~5 CPU-s:

1. a pytest session that collects one small module: pytest loads its plugins (rewriting their modules as it
   imports them) and tests/conftest.py, and writes their byte code as every worker's session would;
2. `compileall` of our packages (the byte code the import system writes, timestamp-checked as usual);
3. each test module and conftest.py rewritten by pytest's own rewriter and written where, and as, pytest's
   import hook writes it (a checked-hash pyc, `_pytest.assertion.rewrite`), without importing the module.

Contract: writes only byte-code caches (`__pycache__/`), never runs a test, and never fails `make test`: byte code
is a cache, a worker that finds none makes its own. Step 3 uses pytest's private rewrite functions (pytest is pinned
by requirements-dev.lock); if they change shape, it falls back to a whole `pytest --collect-only` (~13 CPU-s, the
same caches) and says so. On a tree already warm it writes nothing again (~0.7 s: the probe's session).
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from devtools.paths import REPO

PACKAGES = ("bus", "contracts", "devtools", "oh", "oh_dagster", "panel_app", "services", "tests")
PROBE = "tests/unit/test_suite_units.py"  # a small module: its session loads every plugin and tests/conftest.py


def test_modules(root: Path) -> list[Path]:
    """The files pytest rewrites under `root`: test_*.py (the ini's python_files) and conftest.py."""
    return sorted(p for p in root.rglob("*.py")
                  if "__pycache__" not in p.parts and (p.name.startswith("test_") or p.name == "conftest.py"))


def rewrite(paths: list[Path]) -> None:
    """Write pytest's rewritten byte code of each path (pytest's own rewriter; its import hook then loads it), unless
    the pyc there is already that of the source (its header: the magic, the checked-hash flags and the source's hash,
    as pytest's `_read_pyc` checks it)."""
    from _pytest.assertion import rewrite as pytest_rewrite

    for path in paths:
        cache = pytest_rewrite.get_cache_dir(path)
        pyc = cache / (path.name[:-3] + pytest_rewrite.PYC_TAIL)
        header = importlib.util.MAGIC_NUMBER + b"\x03\x00\x00\x00" + importlib.util.source_hash(path.read_bytes())[:8]
        try:
            with open(pyc, "rb") as existing:
                if existing.read(16) == header:
                    continue
        except OSError:
            pass
        source_hash, code = pytest_rewrite._rewrite_test(path, None)  # type: ignore[arg-type]  # no config: the ini sets no rewrite option
        cache.mkdir(exist_ok=True)
        partial = pyc.with_name(f"{pyc.name}.{__name__}")
        with open(partial, "wb") as out:
            pytest_rewrite._write_pyc_fp(out, source_hash, code)
        partial.replace(pyc)  # atomic, as pytest writes it: a reader sees the old pyc or the whole new one


def _collect(*args: str) -> subprocess.Popen[bytes]:
    """A pytest session that only collects `args` (all of tests/ when none), writing byte code whatever the environment
    says; started, not waited for."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    return subprocess.Popen([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL)


def main() -> int:
    sys.dont_write_bytecode = False
    probe = _collect(PROBE)  # beside steps 2 and 3 (its files are the plugins' and tests/conftest.py's, not theirs)
    for package in PACKAGES:
        compileall.compile_dir(REPO / package, quiet=1)
    try:
        rewrite(test_modules(REPO / "tests"))
    except (AttributeError, ImportError, TypeError) as error:
        print(f"devtools.warm_tests: pytest's rewriter changed ({error!r}); collecting the whole suite instead")
        _collect().wait()
    probe.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
