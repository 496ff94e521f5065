"""Where the test suite's CPU goes: a pytest plugin that logs it, and a report that sums it.

Contract:
- Plugin (`pytest -p devtools.cpu_report`, with `OH_TEST_CPU_LOG=<dir>` set; does nothing without it):
  each pytest process (each xdist worker, and the controller) writes `<dir>/pytest-<worker>.tsv`,
  one line per test: `pytest`, the test id, the process's own CPU seconds in that test (user +
  system: setup, call and teardown), and the wall seconds; then one line `pytest-collect` for the
  CPU the process spent before its first test (start-up, imports, collection) and one
  `pytest-reaped` for the CPU of the children it reaped itself (chromium, plain subprocesses, its
  fork server), over the whole session.
- The fork server (devtools/forkserver.py) writes the same columns per forked child, the child's
  kind (module or `oh` subcommand) first, in `<dir>/forkserver-<pid>.tsv`.
- Report (`python -m devtools.cpu_report DIR`): CPU seconds, count and wall by kind, and CPU
  seconds by test module (the tests' own plus their forked children's), largest first.

Only the CPU of processes someone reaped is counted: a daemon nobody waits for (supervisord's
children under `oh up`) is not; a cgroup's CPU total (cpuacct) of the whole run catches those.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

_rows: list[tuple[str, str, float, float]] = []
_first_test_cpu: list[float] = []


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    cpu, wall = _self_cpu(), time.monotonic()
    if not _first_test_cpu:
        _first_test_cpu.append(cpu)
    yield
    _rows.append(("pytest", item.nodeid, _self_cpu() - cpu, time.monotonic() - wall))


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("OH_TEST_CPU_LOG")
    if not out:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = [*_rows, ("pytest-collect", "", _first_test_cpu[0] if _first_test_cpu else _self_cpu(), 0.0),
            ("pytest-reaped", "", children.ru_utime + children.ru_stime, 0.0)]
    with (Path(out) / f"pytest-{worker}.tsv").open("w") as log:
        for kind, test, cpu, wall in rows:
            log.write(f"{kind}\t{test}\t{cpu:.3f}\t{wall:.3f}\n")


def _report(directory: Path, top: int = 40) -> str:
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    by_module: dict[str, float] = defaultdict(float)
    by_module_kind: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for path in sorted(directory.glob("*.tsv")):
        for line in path.read_text().splitlines():
            kind, test, cpu_text, wall_text = line.split("\t")
            cpu, wall = float(cpu_text), float(wall_text)
            entry = by_kind[kind]
            entry[0] += cpu
            entry[1] += 1
            entry[2] += wall
            module = test.split("::", 1)[0] or "(outside a test)"
            by_module[module] += cpu
            by_module_kind[module][kind] += cpu
    total = sum(entry[0] for entry in by_kind.values())
    lines = [f"total {total:.1f} CPU-s", "", f"{'kind':<34}{'CPU-s':>9}{'count':>7}{'CPU-s each':>11}{'wall-s':>9}"]
    for kind, (cpu, count, wall) in sorted(by_kind.items(), key=lambda pair: -pair[1][0]):
        lines.append(f"{kind:<34}{cpu:>9.1f}{count:>7.0f}{cpu / count:>11.3f}{wall:>9.1f}")
    lines += ["", f"{'module':<62}{'CPU-s':>8}  largest kinds"]
    for module, cpu in sorted(by_module.items(), key=lambda pair: -pair[1])[:top]:
        kinds = sorted(by_module_kind[module].items(), key=lambda pair: -pair[1])[:3]
        detail = ", ".join(f"{kind} {value:.1f}" for kind, value in kinds)
        lines.append(f"{module:<62}{cpu:>8.1f}  {detail}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_report(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40))
