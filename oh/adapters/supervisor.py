"""Starting, stopping and inspecting the oh processes through supervisord's XML-RPC interface.

Contract:
- The programs are those `supervisord.conf` lists, in file order, ledger first. The file is package
  data of this package, found with importlib.resources: an installed wheel (`pip install .`,
  `pipx install .`) carries it, and nothing depends on the checkout or the current directory.
- `start` runs `python -m supervisor.supervisord -c <conf>` (this Python, so a venv or pipx install
  finds its own supervisor) with OH_HOME, OH_SOCKET_DIR and OH_PYTHON in the environment; it
  daemonizes, and every program runs in OH_HOME.
- Every question and order after that goes over supervisord's XML-RPC interface on the unix socket
  `<sockets>/supervisor.sock` (supervisor's own transport, with a timeout on each call): structured
  process info, no subprocess per question, no scraping of `supervisorctl` text.
- `stop_all` sends every worker its stop signal at once, waits for their pids to exit and for supervisord to
  report them stopped, then stops the ledger (so whatever a worker sent while stopping is journaled), then
  shuts supervisord down and waits for its pid to go. supervisord's own shutdown stops the programs one at a
  time (~0.4 s each).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bus.home import Home

CONF_NAME = "supervisord.conf"
LEDGER = "ledger"
RPC_TIMEOUT = 5.0  # seconds for one XML-RPC call
POLL_SECONDS = 0.05
RUNNING_STATES = frozenset({"RUNNING"})
STOPPED_STATES = frozenset({"STOPPED", "EXITED", "FATAL", "UNKNOWN"})


class SupervisorError(RuntimeError):
    """supervisord did not do what was asked (one line saying what)."""


@dataclass(frozen=True)
class Program:
    """One program as supervisord reports it (`supervisor.getAllProcessInfo`)."""

    name: str
    state: str  # RUNNING, STARTING, BACKOFF, STOPPING, STOPPED, EXITED, FATAL, UNKNOWN
    pid: int
    description: str  # supervisord's own words: `pid 123, uptime 0:00:05`, `Exited too quickly ...`

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES


def conf_text() -> str:
    """The text of the packaged supervisord.conf."""
    return resources.files(__package__).joinpath(CONF_NAME).read_text()


@contextmanager
def conf_path() -> Iterator[Path]:
    """A real path of the packaged supervisord.conf while the block runs (a plain file in any normal install)."""
    with resources.as_file(resources.files(__package__).joinpath(CONF_NAME)) as path:
        yield Path(path)


def program_names() -> list[str]:
    """The programs supervisord.conf lists, in file order."""
    return [
        line.strip()[len("[program:") : -1]
        for line in conf_text().splitlines()
        if line.strip().startswith("[program:")
    ]


def environment(home: Home) -> dict[str, str]:
    """The environment supervisord and its programs run with (one home, its sockets, this Python)."""
    env = dict(os.environ)
    env.update(OH_HOME=str(home.root), OH_SOCKET_DIR=str(home.sockets), OH_PYTHON=sys.executable)
    return env


def socket_path(home: Home) -> Path:
    return home.sockets / "supervisor.sock"


def _transport(path: Path, timeout: float) -> Any:
    """supervisor's XML-RPC transport over the unix socket, each connection bounded by `timeout` (imported
    here: `program_names` alone, which the dashboard uses, needs none of it)."""
    from supervisor.xmlrpc import SupervisorTransport, UnixStreamHTTPConnection

    class Connection(UnixStreamHTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(str(path))

    transport = SupervisorTransport(serverurl=f"unix://{path}")
    transport._get_connection = lambda: Connection("localhost")  # supervisor's own hook for the connection
    return transport


def rpc(home: Home, timeout: float = RPC_TIMEOUT) -> Any:
    """An XML-RPC proxy to this home's supervisord (`proxy.supervisor.getState()`, ...)."""
    import xmlrpc.client

    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=_transport(socket_path(home), timeout))


def _unreachable(exc: BaseException) -> bool:
    import xmlrpc.client

    return isinstance(exc, OSError | xmlrpc.client.ProtocolError | EOFError)


def state(home: Home) -> str | None:
    """supervisord's state (`RUNNING`, `SHUTDOWN`, ...), or None when none answers for this home."""
    if not socket_path(home).exists():
        return None
    try:
        return str(rpc(home, timeout=2.0).supervisor.getState()["statename"])
    except Exception as exc:
        if _unreachable(exc):
            return None
        raise


def is_running(home: Home) -> bool:
    """True if a supervisord for this home answers on its socket."""
    return state(home) is not None


def start(home: Home) -> subprocess.CompletedProcess[str]:
    """Start supervisord (it daemonizes, then starts every program, ledger first)."""
    home.ensure()
    with conf_path() as conf:
        return subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
            env=environment(home), capture_output=True, text=True, cwd=home.root,
        )


def programs(home: Home) -> dict[str, Program]:
    """Every program supervisord runs for this home ({} when it does not answer)."""
    if not socket_path(home).exists():
        return {}
    try:
        infos = rpc(home).supervisor.getAllProcessInfo()
    except Exception as exc:
        if _unreachable(exc):
            return {}
        raise
    return {
        info["name"]: Program(info["name"], str(info["statename"]), int(info["pid"]), str(info["description"]))
        for info in infos
    }


def supervisord_pid(home: Home) -> int | None:
    """The pid of this home's supervisord (from its pidfile), if any."""
    try:
        return int((home.sockets / "supervisord.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists (a zombie child counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _stop(proxy: Any, names: list[str]) -> None:
    """Send each program its stop signal now (no waiting); a program already stopped is fine."""
    import xmlrpc.client

    for name in names:
        try:
            proxy.supervisor.stopProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise SupervisorError(f"supervisord could not stop {name}: {fault.faultString}") from None


def _wait_exited(home: Home, pids: dict[str, int], deadline: float) -> list[str]:
    """Wait until every program has exited and supervisord has reaped it; the names left at the deadline.

    The pids are watched first (a signal-0 check per poll, no XML-RPC call), then supervisord is asked until it
    reports them stopped (once or twice: it reaps on its next loop). Without that second step, under load the next
    order (stop the ledger, shut down) could reach supervisord before it has seen the exit."""
    while True:
        left = [name for name, pid in pids.items() if pid and pid_alive(pid)]
        if not left:
            current = programs(home)
            left = [name for name in pids if name in current and current[name].state not in STOPPED_STATES]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL_SECONDS)


def stop_all(home: Home, timeout: float) -> None:
    """Stop every program (the workers together, then the ledger), then supervisord; raise SupervisorError
    if anything is still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pid = supervisord_pid(home)
    proxy = rpc(home)
    # every program not yet stopped (one in BACKOFF has no pid but would be started again), with its pid if any
    active = {name: p.pid for name, p in programs(home).items() if p.state not in STOPPED_STATES}
    workers = {name: worker_pid for name, worker_pid in active.items() if name != LEDGER}
    _stop(proxy, list(workers))
    left = _wait_exited(home, workers, deadline)
    if left:
        raise SupervisorError(f"still running after {timeout:g}s: {', '.join(left)}")
    if LEDGER in active:
        _stop(proxy, [LEDGER])
        if _wait_exited(home, {LEDGER: active[LEDGER]}, deadline):
            raise SupervisorError(f"the ledger is still running after {timeout:g}s")
    try:
        proxy.supervisor.shutdown()
    except Exception as exc:
        if not _unreachable(exc):
            raise
    while pid and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    if pid and pid_alive(pid):
        raise SupervisorError(f"supervisord (pid {pid}) still running after {timeout:g}s")
