"""Where the test suite's CPU goes: a pytest plugin that logs it, and a report that sums it.

Contract:
- Plugin (`pytest -p devtools.cpu_report`, with `OH_TEST_CPU_LOG=<dir>` set; does nothing without it):
  each pytest process (each xdist worker, and the controller) writes `<dir>/pytest-<worker>.tsv`,
  one line per test: `pytest`, the test id, the process's own CPU seconds in that test (user +
  system: setup, call and teardown), and the wall seconds; then one line `pytest-collect` for the
  CPU the process spent before its first test (start-up, imports, collection).
- The same file charges each test the CPU of the processes the pytest process started other than
  through the fork server (chromium and its renderers, playwright's driver, supervisord and the
  shims it starts under `oh up` (devtools/service_shim.py; the services themselves are forked), Dagster's
  step processes, pip), one line per kind
  (`child <kind>`): the growth, while the test ran, of each such live process's CPU (its own plus
  that of the children it reaped, /proc/PID/stat), sampled at the test's start and end and once a
  second in between, plus the growth of this process's own reaped children's CPU
  (`RUSAGE_CHILDREN`) less what was already counted of them. "Such a process" is a descendant of
  the pytest process, or of a process that left its parent (a daemon: supervisord) and carries this
  process's mark in its environment (`OH_TEST_CPU_OWNER`); never the fork server's tree (the server
  logs those itself). So a session-scoped chromium is charged to the tests that used it, as they
  used it. Exact at module boundaries (sampled at each module's first test), within a module to
  about a second (between samples, a test's children's CPU may land on the next test of its module);
  what follows the last test is charged to "" (outside a test). What is lost: the last second of a
  daemon's CPU when it ends and nothing of ours reaps it. The sampling costs about 1 ms a second.
- The fork server (devtools/forkserver.py) writes the same columns per forked child, the child's
  kind (module or `oh` subcommand) first, in `<dir>/forkserver-<pid>.tsv`.
- The same plugin writes `<dir>/timeline-<worker>.tsv`: per test, its id and its start and end (epoch
  seconds), so the schedule (which module ran when, on which worker, and which ran last, alone) can be
  drawn (`devtools/schedule_report.py`).
- Report (`python -m devtools.cpu_report DIR`): CPU seconds, count and wall by kind, and CPU
  seconds by test module (the tests' own plus their children's), largest first.

A cgroup's CPU total (cpuacct, `cgcpu.sh`) of the whole run is the check: what it has beyond the
report's total is CPU nothing here saw.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from devtools.child_cpu import ChildCpu

_rows: list[tuple[str, str, float, float]] = []
_first_test_cpu: list[float] = []
_children: list[ChildCpu] = []
_last_test = [""]
_timeline: list[tuple[str, float, float]] = []


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_configure(config: pytest.Config) -> None:
    controller = not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))
    if os.environ.get("OH_TEST_CPU_LOG") and not _children and not controller:  # the workers count their own
        _children.append(ChildCpu())
        _children[0].start()


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    cpu, wall, start = _self_cpu(), time.monotonic(), time.time()
    if not _first_test_cpu:
        _first_test_cpu.append(cpu)
    for children in _children:  # a sample at each module's first test: the report is by module
        children.boundary(item.nodeid, sample=_module(item.nodeid) != _module(_last_test[0]))
    _last_test[0] = item.nodeid
    yield
    _rows.append(("pytest", item.nodeid, _self_cpu() - cpu, time.monotonic() - wall))
    _timeline.append((item.nodeid, start, time.time()))


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("OH_TEST_CPU_LOG")
    if not out:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    rows = [*_rows, ("pytest-collect", "", _first_test_cpu[0] if _first_test_cpu else _self_cpu(), 0.0)]
    for children in _children:
        children.boundary("")
        children.stop()
        rows += [(f"child {kind}", test, cpu, 0.0) for (test, kind), cpu in children.charged().items()]
    with (Path(out) / f"pytest-{worker}.tsv").open("w") as log:
        for kind, test, cpu, wall in rows:
            kind, test = (" ".join(text.split()) for text in (kind, test))  # one line, no stray tab
            log.write(f"{kind}\t{test}\t{cpu:.3f}\t{wall:.3f}\n")
    if _timeline:
        with (Path(out) / f"timeline-{worker}.tsv").open("w") as log:
            for test, start, end in _timeline:
                log.write(f"{' '.join(test.split())}\t{start:.3f}\t{end:.3f}\n")


def _report(directory: Path, top: int = 40) -> str:
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    by_module: dict[str, float] = defaultdict(float)
    by_module_kind: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for path in sorted(directory.glob("*.tsv")):
        if path.name.startswith("timeline-"):
            continue
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
    children = {module: {kind: cpu for kind, cpu in kinds.items() if kind.startswith("child ")}
                for module, kinds in by_module_kind.items()}
    lines += ["", f"{'children not forked by the fork server, by module':<62}{'CPU-s':>8}  largest kinds"]
    for module, kinds in sorted(children.items(), key=lambda pair: -sum(pair[1].values()))[:top]:
        if kinds:
            largest = sorted(kinds.items(), key=lambda pair: -pair[1])[:4]
            detail = ", ".join(f"{kind[6:]} {value:.1f}" for kind, value in largest)
            lines.append(f"{module:<62}{sum(kinds.values()):>8.1f}  {detail}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_report(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40))
