"""Starting, stopping and inspecting the oh processes through supervisord."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bus.home import Home

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "supervisord.conf"


def program_names() -> list[str]:
    """The programs supervisord.conf lists, in file order."""
    return [
        line.strip()[len("[program:") : -1]
        for line in CONF.read_text().splitlines()
        if line.strip().startswith("[program:")
    ]


def environment(home: Home) -> dict[str, str]:
    """The environment supervisord and its programs run with (one home, its sockets, this Python)."""
    env = dict(os.environ)
    env.update(OH_HOME=str(home.root), OH_SOCKET_DIR=str(home.sockets), OH_PYTHON=sys.executable)
    return env


def _tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def is_running(home: Home) -> bool:
    """True if a supervisord for this home answers on its socket."""
    return ctl(home, "pid").returncode == 0


def start(home: Home) -> subprocess.CompletedProcess[str]:
    """Start supervisord (it daemonizes and starts every program)."""
    home.ensure()
    return subprocess.run(
        [_tool("supervisord"), "-c", str(CONF)], env=environment(home), capture_output=True, text=True, cwd=REPO
    )


def ctl(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """Run supervisorctl against this home's supervisord."""
    return subprocess.run(
        [_tool("supervisorctl"), "-c", str(CONF), *args], env=environment(home), capture_output=True, text=True, cwd=REPO
    )


def program_states(home: Home) -> dict[str, str]:
    """`{program: 'RUNNING pid 123, uptime 0:00:05'}` as supervisorctl reports it."""
    result = ctl(home, "status")
    states: dict[str, str] = {}
    for line in result.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            states[parts[0]] = parts[1].strip()
    return states


def supervisord_pid(home: Home) -> int | None:
    """The pid in supervisord's pidfile for this home, if any."""
    try:
        return int((home.sockets / "supervisord.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
