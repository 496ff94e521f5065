"""devtools/child_cpu.py: the CPU of children the fork server does not log is charged to what ran meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from devtools.child_cpu import MARK, ChildCpu

BURN = 0.6  # CPU seconds each script spends (process time, not wall: the box may be busy)
CHILD = f"import time\nwhile time.process_time() < {BURN}: pass\n"
# Leaves its parent as a daemon does (double fork, as supervisord under `oh up`), then burns the same.
DAEMON = (
    "import os, sys, time\n"
    "if os.fork(): sys.exit(0)\n"
    "os.setsid()\n"
    "if os.fork(): sys.exit(0)\n"
    "open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\n"
    "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
    f"while time.process_time() < {BURN}: pass\n"
)


def _ended(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def test_a_reaped_child_and_a_daemon_are_charged_once_to_the_label_they_ran_under(tmp_path: Path) -> None:
    """What the cpu report's `child ...` rows rest on: a child this process reaps is charged once (live while
    it runs, the rest when reaped; not twice) to the label it ran under; a daemon that left its parent is
    still charged (it carries the mark), by its kind; the label before gets none of either."""
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "daemon.py").write_text(DAEMON)
    children = ChildCpu()
    try:
        assert os.environ[MARK] == str(os.getpid())
        children.boundary("before")
        children.boundary("burning")
        child = subprocess.Popen([sys.executable, str(tmp_path / "child.py")])
        while child.poll() is None:
            children.boundary("burning")  # samples while it runs: counted live, then reaped
            time.sleep(0.05)
        pid_file = tmp_path / "daemon.pid"
        subprocess.run([sys.executable, str(tmp_path / "daemon.py"), str(pid_file)], check=True)
        while not pid_file.exists():
            time.sleep(0.02)
        daemon = int(pid_file.read_text())
        while not _ended(daemon):
            children.boundary("burning")
            time.sleep(0.05)
        children.boundary("after")
        charged = children.charged()
    finally:
        children.stop()
        os.environ.pop(MARK, None)
    assert not [key for key in charged if key[0] == "before"]
    burning = {kind: cpu for (label, kind), cpu in charged.items() if label == "burning"}
    assert burning.get("python child.py", 0) > 0 and burning.get("python daemon.py", 0) > 0, charged
    child_total = burning["python child.py"] + burning.get("reaped", 0.0)
    assert BURN <= child_total < 2 * BURN, charged  # once, never counted live and again when reaped
    assert burning["python daemon.py"] <= BURN * 1.5, charged
