"""The CPU of a process's children that nobody else logs, charged to what the process was doing meanwhile.

devtools/cpu_report.py uses it to charge each test the CPU of the processes its pytest worker started other
than through the fork server: chromium (browser, renderers, GPU process; session-scoped, so alive across
many tests), playwright's driver, supervisord and what it starts under `oh up` (a daemon:
it leaves its parent, so no exit status of it reaches us), Dagster's step processes, pip.

Contract:
- `ChildCpu()` marks this process's environment (`OH_TEST_CPU_OWNER=<pid>`, inherited by every child
  that keeps its parent's environment) and takes a baseline. Ours are: the descendants of this process,
  and any process carrying our mark (a daemon that left its parent) with its descendants; never the tree
  below a fork server (`python -m devtools.forkserver`, which logs its own children; its forked children
  keep its command line), though a server's own CPU counts (kind `forkserver`). Use it in the process that
  runs the tests, not in xdist's controller (its descendants are the workers, each counting its own).
- `sample()` reads /proc/PID/stat of ours and charges each one's CPU growth since the last sample (user +
  system, its own plus its reaped children's) to `(current label, kind)`. A process that ended was reaped
  by its parent: what we had counted of it is taken off its parent's growth (which now holds all of it);
  if the parent is this process, off the growth of `RUSAGE_CHILDREN`, which `boundary()` charges as kind
  `reaped` (children that ended before any sample saw them).
- `boundary(label, sample)` charges everything from now on to `label`; with `sample` it first samples
  and charges the reaped CPU to the label before. A thread samples once a second (`start()`), so a
  daemon that starts and ends inside one label is seen; what it spends after its last sample is lost
  (nothing of ours reaps it). A sample reads /proc/PID/stat of ours only (a process found foreign is
  not read again), about a millisecond.
- `charged()` is CPU seconds by (label, kind).
"""

from __future__ import annotations

import os
import resource
import threading
from collections import defaultdict

MARK = "OH_TEST_CPU_OWNER"
_TICK = os.sysconf("SC_CLK_TCK")
_EVERY = 1.0  # seconds between samples
_Key = tuple[int, int]  # (pid, start time in ticks): a pid is reused, the pair is not


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stat(pid: int) -> tuple[int, int, float, float] | None:
    """(ppid, start, own CPU, own + reaped children's CPU) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2:].split()
    own = (int(fields[11]) + int(fields[12])) / _TICK
    reaped = (int(fields[13]) + int(fields[14])) / _TICK
    return int(fields[1]), int(fields[19]), own, own + reaped


def _marked(pid: int, mark: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return mark in environ.read().split(b"\0")
    except OSError:
        return False


def _kind(pid: int) -> str:
    """What a process is, from its command line: chromium's process type, a module, a program's name."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]
    except OSError:
        return "?"
    if not argv:
        return "?"
    if len(argv) == 1 and " " in argv[0]:  # a process that set its title (chromium's children): one string
        argv = argv[0].split()
    program = os.path.basename(argv[0])
    if "chrom" in program or "headless_shell" in program:
        kind = next((arg.split("=", 1)[1] for arg in argv if arg.startswith("--type=")), "browser")
        return f"chromium {kind}"
    if program == "node" or program.startswith("node "):
        return "playwright driver"
    if any("supervisord" in os.path.basename(arg) for arg in argv[:3]):
        return "supervisord"
    if program.startswith("python"):
        if "-m" in argv[:-1]:
            module, rest = argv[argv.index("-m") + 1], argv[argv.index("-m") + 2:]
            if module == "devtools.forkserver":
                return "forkserver"
            name = f"oh {rest[0]}" if module == "oh.cli" and rest else module
            if argv[1:2] == ["-S"] and "oh-fork-" in argv[2]:  # devtools/service_shim.py: the service is forked
                return f"shim {name}"
            return f"{name} (fresh)"
        if "-c" in argv:
            return "python -c"
        script = next((os.path.basename(arg) for arg in argv[1:] if not arg.startswith("-")), "")
        return f"python {script}".strip()
    return program


class ChildCpu:
    """CPU seconds of our other children by (label, kind); see the module docstring."""

    def __init__(self) -> None:
        self._me = os.getpid()
        self._mark = f"{MARK}={self._me}".encode()
        os.environ[MARK] = str(self._me)
        self._lock = threading.Lock()
        self._label = ""
        self._last: dict[_Key, float] = {}
        self._parent: dict[_Key, _Key | None] = {}  # None: this process
        self._marked: dict[_Key, bool] = {}
        self._foreign: set[int] = set()
        self._kinds: dict[_Key, str] = {}
        self._charged: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._reaped_counted = 0.0  # what was counted live of children this process reaped
        self._reaped_mark = _children_cpu()
        self._stop = threading.Event()
        self._sample()
        self._charged.clear()  # the baseline: what ours had spent before is nobody's

    def start(self) -> None:
        threading.Thread(target=self._run, name="child-cpu", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(_EVERY):
            with self._lock:
                self._sample()

    def boundary(self, label: str, sample: bool = True) -> None:
        """Charge everything from now on to `label`. With `sample`, first charge what ours spent so far (and
        what this process reaped) to the current label; without, that goes to `label` at the next sample."""
        with self._lock:
            if sample:
                self._sample()
                now = _children_cpu()
                self._charged[(self._label, "reaped")] += max(0.0, now - self._reaped_mark - self._reaped_counted)
                self._reaped_mark, self._reaped_counted = now, 0.0
            self._label = label

    def charged(self) -> dict[tuple[str, str], float]:
        with self._lock:
            return {key: cpu for key, cpu in self._charged.items() if cpu > 0}

    def _read(self) -> dict[int, tuple[int, int, float, float]]:
        """The stat of every process that is, or may become, ours; a process once found foreign (neither in
        our trees nor marked) is remembered by pid and not read again while it lives."""
        pids = {int(name) for name in os.listdir("/proc") if name.isdigit()}
        self._foreign &= pids
        procs = {}
        for pid in pids - self._foreign:
            stat = _stat(pid)
            if stat is not None:
                procs[pid] = stat
        return procs

    def _ours(self, procs: dict[int, tuple[int, int, float, float]]) -> tuple[set[int], set[int]]:
        """Ours (own CPU and reaped children's), and the fork servers among them (own CPU only: a server logs
        its children itself, and its forked children keep its command line, so its whole tree is left out)."""
        children: defaultdict[int, list[int]] = defaultdict(list)
        for pid, (ppid, *_rest) in procs.items():
            children[ppid].append(pid)
        ours: set[int] = set()
        servers: set[int] = set()

        def walk(root: int) -> None:
            todo = [root]
            while todo:
                pid = todo.pop()
                if pid in ours or pid in servers:
                    continue
                if self._kind((pid, procs[pid][1])) == "forkserver":
                    servers.add(pid)
                    continue
                ours.add(pid)
                todo.extend(children.get(pid, ()))

        walk(self._me)
        ours.discard(self._me)
        below_servers = set().union(*(_tree_of(pid, children) for pid in servers)) if servers else set()
        for pid, (_ppid, start, *_rest) in procs.items():
            if pid in ours or pid in below_servers or pid == self._me:
                continue
            key = (pid, start)
            if key not in self._marked:
                self._marked[key] = _marked(pid, self._mark)
            if self._marked[key] and self._kind(key) != "forkserver":
                walk(pid)
        for pid, (_ppid, start, *_rest) in procs.items():  # after every walk: a daemon's child is ours, marked or not
            if pid not in ours and pid not in servers and pid not in below_servers and pid != self._me \
                    and not self._marked.get((pid, start), True):
                self._foreign.add(pid)
        return ours, servers

    def _sample(self) -> None:
        procs = self._read()
        ours, servers = self._ours(procs)
        keys = {pid: (pid, procs[pid][1]) for pid in procs}
        pending: defaultdict[_Key, float] = defaultdict(float)  # to take off a parent: its reaped child's count
        for key in sorted(set(self._last) - {keys[pid] for pid in ours | servers},
                          key=lambda key: -self._parent_depth(key)):
            counted = self._last.pop(key) + pending.pop(key, 0.0)
            parent = self._parent.pop(key, None)
            if parent is None:
                self._reaped_counted += counted
            elif parent in self._last:
                pending[parent] += counted
        for pid in ours | servers:
            ppid, start, own, total = procs[pid]
            key = (pid, start)
            kind, cpu = ("forkserver", own) if pid in servers else (self._kind(key), total)
            self._parent[key] = None if ppid == self._me else keys.get(ppid)
            growth = cpu - self._last.get(key, 0.0) - pending.pop(key, 0.0)
            self._last[key] = cpu
            if growth > 0:
                self._charged[(self._label, kind)] += growth

    def _kind(self, key: _Key) -> str:
        """A process's kind, named again while it runs as python (a fork may yet exec something else)."""
        kind = self._kinds.get(key)
        if kind is None:
            kind = _kind(key[0])
            if not kind.startswith("python"):
                self._kinds[key] = kind
        return kind

    def _parent_depth(self, key: _Key) -> int:
        depth, parent = 0, self._parent.get(key)
        while parent is not None and depth < 64:
            depth, parent = depth + 1, self._parent.get(parent)
        return depth


def _tree_of(root: int, children: dict[int, list[int]]) -> set[int]:
    """root and every descendant of it."""
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found
