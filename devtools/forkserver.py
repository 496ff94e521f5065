"""A fork server for the test suite: real `oh` processes without paying for Python's imports each time.

The suite starts more than a thousand processes (the ledger, the workers, `oh` CLI calls). Each one
spent 0.2-0.8 CPU seconds importing numpy, pyarrow, duckdb, zmq, typer and the rest before doing any
work: about a fifth of the suite's CPU on a 2-core box. The server imports those third-party
libraries once, and our own packages (OWN_PRELOAD: the `oh` CLI and every service, ~0.03-0.07 CPU-s of each
child), then forks one child per request; Panel and Bokeh's server (UI_PRELOAD, ~1 CPU-s) only
when it is first asked for a dashboard (`oh ui`), so only a server that forks one pays for them. Our modules
read no setting at import (every `OH_*` variable is read when it is used: tests/unit/test_import_reads_no_env.py),
so each child still sees its own environment. The module a child runs (`-m services.flow`) is dropped from
`sys.modules` first and runs fresh as `__main__`, as the interpreter's `-m` would run it.

A child sets the requested environment, working directory, argv and standard streams, then runs
`python -m MODULE` (`runpy`, as the interpreter's `-m` does) or the `oh` console script's `main()`,
and leaves through the interpreter's normal shutdown (atexit handlers, stream flushes, exit code). So
each child is a real process with its own pid, sockets, files and signals; only the imports are
shared.

Contract:
- Off unless `enable()` was called in this process (tests/conftest.py does, unless
  `OH_TEST_FORKSERVER=0`). Benchmarks never enable it: they measure real starts. When off, or when
  the server could not start single-threaded, `spawn` and `run` fall back to `subprocess`.
- `ForkedProcess` is the subset of `subprocess.Popen` the suite uses: `pid`, `returncode`, `poll`,
  `wait(timeout)`, `send_signal`, `terminate`, `kill`. The server reaps its children and reports each
  exit status (a negative signal number when killed, as Popen does) on that child's own socket.
- One server per client process, started on first use; it exits when the client goes away, and
  children outlive it as Popen's children outlive their parent.
- The server also listens on a unix socket of its own (a private temp dir) for `devtools/service_shim.py`,
  the interpreter supervisord runs under an `oh` command forked here (`oh up`, `oh demo`): each `oh`
  child gets that program as `sys.executable` and the socket's path in OH_TEST_FORKSERVER_SOCKET (unless
  its environment has OH_TEST_SERVICE_FORK=0), so supervisord's services are forked too. A shim's request
  is tethered: when the shim's end of the status socket closes before the child has ended (the shim was
  killed), the server kills the child.
- With `OH_TEST_CPU_LOG=<dir>` in the server's environment, it appends one tab-separated line per
  reaped child to `<dir>/forkserver-<pid>.tsv`: kind (the module, or `oh` and its subcommand), the
  test that started it (the child's `PYTEST_CURRENT_TEST`), CPU seconds (user + system, from
  `os.wait4`, its own reaped children included) and wall seconds. `devtools/cpu_report.py` sums them.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import io
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from devtools.paths import OH, REPO

# Third-party modules any oh process imports (measured: the import closure of every service and
# `oh` command, minus our packages). Nothing of ours: see the docstring. `typer._adapters` is what typer
# imports when it parses a command line (it pulls in pydantic): ~0.1 CPU-s of every `oh` call, measured
# with OH_TEST_CPU_LOG. `zmq.auth.thread` (and asyncio with it) is the ledger's tcp listener's import.
PRELOAD = (
    "numpy", "pyarrow", "pyarrow.compute", "pyarrow.ipc", "pyarrow.parquet", "duckdb", "zmq", "msgspec",
    "typer", "typer._adapters", "rich.console", "rich.table", "rich.text", "scipy.special", "scipy.stats",
    "croniter", "dateutil.parser", "charset_normalizer", "pandas", "exchange_calendars", "zmq.auth.thread",
    "zmq.utils.monitor", "logging", "tomllib", "glob",
)

# Our own modules every `oh` command and service imports (their import closure: bus, contracts, oh.domain, the adapters).
OWN_PRELOAD = (
    "oh.cli.main", "services.ledger.app", "services.runtime", "services.ingest", "services.snapshot", "services.flow",
    "services.derived", "services.checks", "services.briefing", "services.options_bars", "services.scheduler",
    "services.live_stream", "services.notify",
)

# What the dashboard (`oh ui`, under `oh up` too) imports besides PRELOAD: ~1 CPU-s of each of its starts. Imported
# by the server only when it first forks a dashboard (`_preload_for`), so a worker that never starts one does not pay.
UI_PRELOAD = ("panel", "panel.io.server", "bokeh.server.server")

_enabled = False
_server: _Client | None = None
_server_lock = threading.Lock()


def enable() -> None:
    """Fork this process's children from the server from now on (unless OH_TEST_FORKSERVER=0)."""
    global _enabled
    _enabled = os.environ.get("OH_TEST_FORKSERVER", "1") != "0"


class ForkedProcess:
    """A child of the fork server, driven like a `subprocess.Popen`."""

    def __init__(self, status: socket.socket, args: list[str]) -> None:
        self._status = status
        self.args = args
        self.returncode: int | None = None
        reply = status.recv(64).decode()
        if not reply.startswith("pid "):
            raise RuntimeError(f"the fork server could not start {args}: {reply!r}")
        self.pid = int(reply.split()[1])

    def _read_status(self, timeout: float | None) -> None:
        self._status.settimeout(timeout)
        try:
            reply = self._status.recv(64).decode()
        except (TimeoutError, BlockingIOError):
            return
        if not reply.startswith("exit "):
            raise RuntimeError(f"the fork server lost child {self.pid}: {reply!r}")
        self.returncode = int(reply.split()[1])
        self._status.close()

    def poll(self) -> int | None:
        """The exit code if the child has ended, else None."""
        if self.returncode is None:
            self._read_status(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Block until the child ends; `subprocess.TimeoutExpired` after `timeout` seconds."""
        if self.returncode is None:
            self._read_status(timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Signal the child if it has not ended (as Popen, never a reused pid)."""
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Client:
    """This process's connection to its fork server."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.directory = tempfile.mkdtemp(prefix="oh-fork-")  # the shims' socket and program (`_listen`)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.forkserver", str(theirs.fileno()), self.directory], pass_fds=[theirs.fileno()],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=None,
        )
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.ready = ours.recv(256).decode() == "ready"

    def spawn(self, request: dict[str, Any], stdin: int, stdout: int, stderr: int) -> ForkedProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with self.lock:
            socket.send_fds(self.sock, [json.dumps(request).encode()], [theirs.fileno(), stdin, stdout, stderr])
        theirs.close()
        return ForkedProcess(ours, request["argv"])


def _client() -> _Client | None:
    global _server
    with _server_lock:
        if _server is None or _server.proc.poll() is not None:
            _server = _Client()
        return _server if _server.ready else None


def service_python() -> dict[str, str]:
    """The environment that makes a process manager's `$OH_PYTHON -m services.X` (the Procfile under honcho) fork
    each service through the shim (devtools/service_shim.py), or run this interpreter when the server is off."""
    client = _client() if _enabled else None
    if client is None:
        return {"OH_PYTHON": sys.executable}
    directory = Path(client.directory)
    return {"OH_PYTHON": str(directory / "python"), SHIM_SOCKET_ENV: str(directory / SOCKET_NAME)}


def _fd(stream: Any, mode: str) -> tuple[int, Any]:
    """A file descriptor for a Popen-style stream argument, and what to close after the fork."""
    if stream is None:
        return (0 if mode == "r" else 1 if mode == "w" else 2), None
    if stream == subprocess.DEVNULL:
        handle = open(os.devnull, "rb" if mode == "r" else "wb")  # noqa: SIM115 (closed by the caller)
        return handle.fileno(), handle
    if isinstance(stream, int):
        return stream, None
    return stream.fileno(), None


def spawn(argv: list[str], *, env: dict[str, str], cwd: str | Path = REPO, stdin: Any = subprocess.DEVNULL,
          stdout: Any = None, stderr: Any = None) -> ForkedProcess | subprocess.Popen[bytes]:
    """Start `[sys.executable, -m, MODULE, ...]` or `[oh, ...]` forked from the server (else exec'd)."""
    kind = _kind(argv)
    client = _client() if _enabled and kind is not None else None
    if client is None:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr)
    umask = os.umask(0o077)
    os.umask(umask)
    request = {"argv": argv, "kind": kind, "env": env, "cwd": str(cwd), "umask": umask}
    fds = [_fd(stdin, "r"), _fd(stdout, "w"), _fd(stderr, "e")]
    try:
        return client.spawn(request, *(fd for fd, _ in fds))
    finally:
        for _, handle in fds:
            if handle is not None:
                handle.close()


def run(argv: list[str], *, env: dict[str, str], cwd: str | Path = REPO,
        timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(argv, capture_output=True, text=True)`, forked from the server when enabled."""
    if not _enabled or _kind(argv) is None:
        return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = spawn(argv, env=env, cwd=cwd, stdout=out_w, stderr=err_w)
    finally:
        os.close(out_w)
        os.close(err_w)
    with open(out_r, "rb") as out_file, open(err_r, "rb") as err_file:
        # Both pipes drained at once (a child that fills one while we read the other would block).
        err_thread = threading.Thread(target=lambda: setattr(err_thread, "data", err_file.read()), daemon=True)
        err_thread.start()
        out_data = _read_until(out_file, proc, argv, timeout)
        err_thread.join(timeout)
    code = proc.wait(timeout)
    return subprocess.CompletedProcess(argv, code, _text(out_data), _text(getattr(err_thread, "data", b"")))


def _text(data: bytes) -> str:
    """Bytes as `subprocess.run(text=True)` gives them: the locale's encoding, universal newlines."""
    return io.TextIOWrapper(io.BytesIO(data)).read()


def _read_until(out_file: Any, proc: ForkedProcess | subprocess.Popen[bytes], argv: list[str],
                timeout: float | None) -> bytes:
    """All of the child's stdout; kill it and raise TimeoutExpired past `timeout`, as subprocess.run does."""
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(out_file.read()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        proc.kill()
        proc.wait()
        raise subprocess.TimeoutExpired(argv, timeout or 0)
    return result[0]


def _kind(argv: list[str]) -> str | None:
    """'module' for `python -m X ...`, 'oh' for the oh console script, None for anything else."""
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m":
        return "module"
    if argv and argv[0] == OH:
        return "oh"
    return None


# ---- the server side ----------------------------------------------------------------------------


def _serve(sock: socket.socket, listener: socket.socket) -> dict[str, Any] | None:
    """Fork a child per request (from the client or a shim on `listener`); returns the request in the child,
    None in the server at the client's EOF."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    children: dict[int, _Child] = {}
    log_dir = os.environ.get("OH_TEST_CPU_LOG")
    log = open(Path(log_dir) / f"forkserver-{os.getpid()}.tsv", "a", buffering=1) if log_dir else None  # noqa: SIM115
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, "request")
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "reap")
    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                selector.register(listener.accept()[0], selectors.EVENT_READ, "request")
            elif key.data == "request":
                message, fds, _, _ = socket.recv_fds(key.fileobj, 1 << 20, 4)  # type: ignore[arg-type]
                if not message:
                    if key.fileobj is sock:
                        return None
                    selector.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
                    continue
                request = json.loads(message)
                status = socket.socket(fileno=fds[0])
                refused = _preload_for(request["argv"])
                if refused:
                    status.send(refused.encode())
                    status.close()
                    for fd in fds[1:]:
                        os.close(fd)
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    for open_key in list(selector.get_map().values()):
                        os.close(open_key.fd)  # the client's, shims' and tethered status sockets, the wake pipe
                    selector.close()
                    if log is not None:
                        log.close()
                    for fd in (wake_w, status.fileno(), *(child.status.fileno() for child in children.values())):
                        try:
                            os.close(fd)
                        except OSError:
                            pass  # a tethered status socket: closed above
                    for target, fd in enumerate(fds[1:]):
                        os.dup2(fd, target)
                    for fd in set(fds[1:]):
                        if fd > 2:
                            os.close(fd)
                    return request
                for fd in fds[1:]:
                    os.close(fd)
                status.send(f"pid {pid}".encode())
                children[pid] = _Child(status, request, time.monotonic())
                if request.get("tether"):
                    selector.register(status, selectors.EVENT_READ, pid)
            elif key.data == "reap":
                while True:
                    try:
                        if not os.read(wake_r, 512):
                            break
                    except BlockingIOError:
                        break
                _reap(children, selector, log)
            else:  # a tethered status socket readable: its shim is gone (a shim never writes to it)
                selector.unregister(key.fileobj)
                if key.data in children:
                    try:
                        os.kill(key.data, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


class _Child:
    """A running child: its status socket, and what the CPU log says about it."""

    def __init__(self, status: socket.socket, request: dict[str, Any], started: float) -> None:
        self.status = status
        self.kind = _label(request["argv"])
        self.test = request["env"].get("PYTEST_CURRENT_TEST", "")
        self.started = started


_ui_preloaded = False
_refusal: str | None = None  # once set, the server forks nothing more


def _import_all(names: tuple[str, ...]) -> list[str]:
    """Import `names` (one missing is skipped: an optional extra); the threads running besides the main one after."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    return _threads()


def _preload_for(argv: list[str]) -> str | None:
    """Before forking a dashboard (`oh ui`, or `-m oh.cli ui` as supervisord runs it), import UI_PRELOAD once; None,
    or why the server no longer forks (an import started a thread: every request refused from then on)."""
    global _ui_preloaded, _refusal
    dashboard = _label(argv) == "oh ui" or (argv[1:3] in (["-m", "oh.cli"], ["-m", "oh.cli.main"]) and argv[3:4] == ["ui"])
    if _refusal is None and dashboard and not _ui_preloaded:
        _ui_preloaded = True
        threads = _import_all(UI_PRELOAD)
        if threads:
            _refusal = f"threads {threads} after importing {UI_PRELOAD}: not forking"
        gc.freeze()  # as at start: the new objects stay out of every child's collections
    return _refusal


def _label(argv: list[str]) -> str:
    """What a child is, for the CPU log: `services.ledger`, `oh status`, `oh db health`."""
    if len(argv) >= 3 and argv[1] == "-m":
        return argv[2]
    words = [arg for arg in argv[1:] if not arg.startswith("-")][:2]
    return " ".join(["oh", *(words if words and words[0] in _GROUPS else words[:1])])


# `oh` subcommands that are groups (oh/cli/main.py's add_typer): the log names the group and its command.
_GROUPS = {"emit", "db", "journal", "portfolio", "live", "watchlists", "symbols", "keys", "notify"}


def _reap(children: dict[int, _Child], selector: selectors.BaseSelector, log: Any = None) -> None:
    """Report the exit status of every ended child on its own socket (and log its CPU when asked)."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        child = children.pop(pid, None)
        if child is not None:
            if log is not None:
                cpu = usage.ru_utime + usage.ru_stime
                test = child.test.rsplit(" (", 1)[0]
                log.write(f"{child.kind}\t{test}\t{cpu:.3f}\t{time.monotonic() - child.started:.3f}\n")
            if child.status in (key.fileobj for key in selector.get_map().values()):
                selector.unregister(child.status)
            try:
                child.status.send(f"exit {os.waitstatus_to_exitcode(status)}".encode())
            except OSError:
                pass  # the client went away
            child.status.close()


def _run_child(request: dict[str, Any]) -> None:
    """Become the requested process, run it, and exit as the interpreter would (see `_exit`)."""
    try:
        _become(request)
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop)
    except KeyboardInterrupt:
        traceback.print_exc()
        _exit_by_signal(signal.SIGINT)  # as the interpreter does: the parent sees -SIGINT
    except BaseException:
        traceback.print_exc()  # the interpreter's top level: print, exit 1
        code = 1
    _exit(code)


def _exit_by_signal(sig: int) -> None:
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)


def _exit_code(stop: SystemExit) -> int:
    """The exit status the interpreter gives a SystemExit (a message goes to stderr, status 1)."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code & 0xFF
    print(stop.code, file=sys.stderr)
    return 1


def _exit(code: int) -> None:
    """The interpreter's exit without its teardown of every module.

    Non-daemon threads are joined and atexit handlers run (logging's flush among them), then the
    standard streams are flushed, in the interpreter's order. What is skipped is freeing every
    preloaded module's objects: in a forked child that would copy the whole shared heap page by
    page (~0.15 CPU seconds a process) only to throw it away."""
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _become(request: dict[str, Any]) -> None:
    """Become the requested process: environment, directory, argv, then `-m MODULE` or `oh`."""
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    if request["env"].get("PYTHONUNBUFFERED"):
        sys.stdout.reconfigure(write_through=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(write_through=True)  # type: ignore[union-attr]
    argv: list[str] = request["argv"]
    if request["kind"] == "module":
        import runpy

        sys.argv = [argv[2], *argv[3:]]
        for name in (argv[2], f"{argv[2]}.__main__"):
            sys.modules.pop(name, None)  # preloaded: run it fresh as __main__, as `python -m` does (and without runpy's warning)
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        return
    sys.argv = [argv[0], *argv[1:]]
    if _shim is not None and request["env"].get("OH_TEST_SERVICE_FORK", "1") != "0":
        # what supervisord runs as OH_PYTHON under `oh up` (oh/adapters/supervisor.py): the services forked here
        sys.executable = str(_shim)
        os.environ[SHIM_SOCKET_ENV] = str(_shim.with_name(SOCKET_NAME))
    from oh.cli.main import main

    sys.exit(main())


def _threads() -> list[str]:
    """Names of this process's threads, native ones included (a fork keeps only the caller's).

    jemalloc's background thread (pyarrow's allocator) is left out: jemalloc's own fork handlers
    make it safe, and the child starts its own when it needs one."""
    names = [Path(f"/proc/self/task/{task}/comm").read_text().strip() for task in os.listdir("/proc/self/task")]
    return [name for name in names[1:] if name != "jemalloc_bg_thd"]


SHIM_SOCKET_ENV = "OH_TEST_FORKSERVER_SOCKET"
SOCKET_NAME = "server.sock"
_shim: Path | None = None  # the service shim, in the server and its children


def _listen(directory: Path) -> socket.socket:
    """The shims' socket, and the shim program beside it: devtools/service_shim.py under a shebang naming this
    interpreter with -S (the standard library only: its start costs a few milliseconds, not the imports)."""
    global _shim
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(directory / SOCKET_NAME))
    listener.listen(64)
    shim = directory / "python"
    shim.write_text(f"#!{sys.executable} -S\n" + (REPO / "devtools" / "service_shim.py").read_text())
    shim.chmod(0o700)
    _shim = shim
    return listener


def _main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    directory = Path(sys.argv[2])  # private: tempfile.mkdtemp's 0700
    # OpenBLAS (numpy's, scipy's) would start a thread pool at import; one thread keeps the fork
    # safe. Only BLAS's parallelism differs in a child (our processes make no BLAS calls worth one).
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    threads = _import_all(PRELOAD + OWN_PRELOAD)
    if threads:
        sock.send(f"threads {threads} after the imports: not forking".encode())
        return
    gc.freeze()  # the preloaded objects stay out of every child's collections (no copy-on-write for them)
    listener = _listen(directory)
    sock.send(b"ready")
    request = _serve(sock, listener)
    if request is not None:
        _run_child(request)
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    _main()
