"""The suite's fork server (devtools/forkserver.py) gives each child what a fresh interpreter would.

Most integration tests start their `oh` processes through it, so a difference here (an environment
variable not seen, an exit code or signal reported wrong, output lost at exit, a umask not applied)
would make those tests check something other than what a user runs. Each case runs the same child
forked and exec'd and compares what they report.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import forkserver
from devtools.paths import OH, REPO

PROBE = "tests.unit.forkserver_probe"


@pytest.fixture(autouse=True)
def _forked() -> Iterator[None]:
    if os.environ.get("OH_TEST_FORKSERVER") == "0":
        pytest.skip("the suite runs without the fork server")
    forkserver.enable()
    yield


def _both(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], ...]:
    """The probe run forked and exec'd with the same arguments and environment."""
    argv = [sys.executable, "-m", PROBE, *args]
    full_env = {**os.environ, **(env or {})}
    forked = forkserver.run(argv, env=full_env, cwd=REPO, timeout=60)
    execd = subprocess.run(argv, env=full_env, cwd=REPO, capture_output=True, text=True, timeout=60)
    return forked, execd


def test_the_server_forks_rather_than_falling_back() -> None:
    """The server came up single-threaded after its imports (else every start silently execs)."""
    client = forkserver._client()
    assert client is not None and client.ready
    proc = forkserver.spawn([sys.executable, "-m", PROBE, "exit", "0"], env=dict(os.environ))
    assert isinstance(proc, forkserver.ForkedProcess)
    assert proc.wait(30) == 0


def test_a_dashboard_start_preloads_panel_in_the_server_which_still_forks() -> None:
    """`oh ui` makes the server import UI_PRELOAD (Panel, Bokeh's server) before it forks it, so later children
    find them imported, and the server stays single-threaded (a child is still forked, not exec'd). Protects the
    ~1 CPU-s each dashboard start saves (devtools/forkserver.py), and that it never costs the fork."""
    refused = forkserver.run([OH, "ui", "--port", "70000"], env=dict(os.environ), timeout=60)
    assert refused.returncode == 2 and "--port must be between" in refused.stderr, refused.stderr
    proc = forkserver.spawn([sys.executable, "-m", PROBE, "exit", "0"], env=dict(os.environ))
    assert isinstance(proc, forkserver.ForkedProcess) and proc.wait(30) == 0
    seen = forkserver.run([sys.executable, "-m", PROBE, "imported", *forkserver.UI_PRELOAD], env=dict(os.environ),
                          timeout=60)
    assert seen.stdout.split() == ["True"] * len(forkserver.UI_PRELOAD), seen.stdout + seen.stderr


@pytest.mark.parametrize("code", ["0", "3", "255"])
def test_exit_codes_match(code: str) -> None:
    forked, execd = _both("exit", code)
    assert forked.returncode == execd.returncode == int(code)


def test_an_uncaught_exception_exits_1_with_its_traceback() -> None:
    forked, execd = _both("raise")
    assert forked.returncode == execd.returncode == 1
    assert "RuntimeError: probe failed" in forked.stderr and "RuntimeError: probe failed" in execd.stderr


def test_a_message_exit_prints_it_and_exits_1() -> None:
    forked, execd = _both("exit", "bad config")
    assert forked.returncode == execd.returncode == 1
    assert forked.stderr.strip() == execd.stderr.strip() == "bad config"


def test_environment_directory_argv_and_umask_are_the_requested_ones(tmp_path: Path) -> None:
    """A child sees the environment it was given (not the server's), argv as `-m` sets it, and the client's umask."""
    env = {"OH_PROBE_VALUE": "seen", "OH_SEGMENT_BYTES": "12345"}
    old = os.umask(0o027)
    try:
        forked, execd = _both("describe", "a b", env=env)
    finally:
        os.umask(old)
    assert forked.returncode == execd.returncode == 0
    assert forked.stdout == execd.stdout
    assert "OH_PROBE_VALUE=seen" in forked.stdout and "umask=0o27" in forked.stdout


def test_atexit_handlers_run_and_buffered_output_is_flushed() -> None:
    forked, execd = _both("atexit")
    assert forked.stdout == execd.stdout == "body\nat exit\n"


def test_a_signal_is_reported_as_popen_does() -> None:
    """A child killed by a signal reports -signal, as subprocess does."""
    proc = forkserver.spawn([sys.executable, "-m", PROBE, "sleep"], env=dict(os.environ))
    assert proc.poll() is None
    proc.kill()
    assert proc.wait(30) == -signal.SIGKILL
    term = forkserver.spawn([sys.executable, "-m", PROBE, "sleep"], env=dict(os.environ))
    term.terminate()
    assert term.wait(30) == -signal.SIGTERM


def test_wait_times_out_like_popen() -> None:
    proc = forkserver.spawn([sys.executable, "-m", PROBE, "sleep"], env=dict(os.environ))
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(0.2)
    assert time.monotonic() - started >= 0.2
    proc.kill()
    proc.wait(30)


def test_run_kills_a_child_past_its_timeout() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        forkserver.run([sys.executable, "-m", PROBE, "sleep"], env=dict(os.environ), timeout=0.5)


def test_a_large_output_on_both_streams_is_read_whole() -> None:
    """Both pipes are drained together: a child filling stderr while stdout is read does not hang."""
    forked, execd = _both("flood", "200000")
    assert forked.stdout == execd.stdout and len(forked.stdout) == 200000 * 2
    assert forked.stderr == execd.stderr and len(forked.stderr) == 200000 * 2


def test_output_is_text_as_subprocess_gives_it() -> None:
    """The locale's encoding and universal newlines, as `subprocess.run(text=True)`."""
    forked, execd = _both("crlf")
    assert forked.stdout == execd.stdout == "caf\u00e9\nline\nend\n"


def test_the_oh_script_runs_with_its_usage_errors() -> None:
    env = dict(os.environ)
    forked = forkserver.run([OH, "no-such-command"], env=env, timeout=60)
    execd = subprocess.run([OH, "no-such-command"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert forked.returncode == execd.returncode == 2
    assert forked.stderr == execd.stderr


def test_the_cpu_log_names_each_child_its_test_and_its_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With OH_TEST_CPU_LOG, a server logs one line per reaped child: its kind (module, or `oh` and its
    subcommand), the test that started it, its CPU seconds and wall seconds; `devtools.cpu_report` sums them
    by kind and by module (how the suite's CPU is attributed; README, "make test")."""
    from devtools.cpu_report import _report

    monkeypatch.setenv("OH_TEST_CPU_LOG", str(tmp_path))
    monkeypatch.setattr(forkserver, "_server", None)  # a server of this test's own, started with the log on
    try:
        assert forkserver.run([sys.executable, "-m", PROBE, "exit", "3"], env=dict(os.environ), timeout=60).returncode == 3
        assert forkserver.run([OH, "portfolio", "--help"], env=dict(os.environ), timeout=60).returncode == 0
    finally:
        server = forkserver._server
        assert server is not None
        server.sock.close()  # the server exits at EOF
        server.proc.wait(30)
    [log] = tmp_path.glob("forkserver-*.tsv")
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    this_test = os.environ["PYTEST_CURRENT_TEST"].rsplit(" (", 1)[0]
    assert [(kind, test) for kind, test, _, _ in rows] == [(PROBE, this_test), ("oh portfolio", this_test)]
    assert all(float(cpu) > 0 and float(wall) > 0 for _, _, cpu, wall in rows)
    report = _report(tmp_path)
    assert "oh portfolio" in report and PROBE in report and "tests/unit/test_forkserver.py" in report


# ---- the service shim (devtools/service_shim.py): what supervisord runs under the tests' `oh up` ----------------


def _shim(*args: str, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen[str]:
    """The shim of this process's server, started as supervisord starts a program (exec'd, its own pid)."""
    client = forkserver._client()
    assert client is not None
    directory = Path(client.directory)
    full_env = {**os.environ, forkserver.SHIM_SOCKET_ENV: str(directory / forkserver.SOCKET_NAME), **(env or {})}
    return subprocess.Popen([str(directory / "python"), "-m", PROBE, *args], env=full_env, cwd=REPO, text=True,
                            **popen)  # type: ignore[call-overload]


def test_through_the_shim_a_module_sees_what_a_fresh_interpreter_would(tmp_path: Path) -> None:
    """Environment, directory, argv, umask, output and exit code as exec'd, and it is the server's child, not the
    shim itself (else the suite's `oh up` stacks would be fresh interpreters again)."""
    old = os.umask(0o027)
    try:
        shimmed = _shim("describe", "a b", env={"OH_PROBE_VALUE": "seen"}, stdout=subprocess.PIPE)
        out, _ = shimmed.communicate(timeout=60)
        execd = subprocess.run([sys.executable, "-m", PROBE, "describe", "a b"], env={**os.environ, "OH_PROBE_VALUE": "seen"},
                               cwd=REPO, capture_output=True, text=True, timeout=60)
    finally:
        os.umask(old)
    assert shimmed.returncode == execd.returncode == 0
    assert out == execd.stdout and "OH_PROBE_VALUE=seen" in out and "umask=0o27" in out
    assert _shim("exit", "3").wait(60) == 3
    forked = _shim("pid-sleep", stdout=subprocess.PIPE)
    try:
        pid, parent = (int(word) for word in forked.stdout.readline().split()[1::2])  # type: ignore[union-attr]
        assert pid != forked.pid and parent == forkserver._client().proc.pid  # type: ignore[union-attr]
    finally:
        forked.terminate()
        forked.wait(60)


def test_a_signal_to_the_shim_reaches_the_module_and_its_status_comes_back() -> None:
    """supervisord stops a program by SIGTERM to its pid (the shim's) and reads its exit status: the module's
    handler runs (exit 7); a module killed by a signal leaves the shim killed by the same one (as supervisord
    reports a crash)."""
    stopped = _shim("pid-sleep", stdout=subprocess.PIPE)
    stopped.stdout.readline()  # type: ignore[union-attr]
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(60) == 7
    crashed = _shim("pid-sleep", stdout=subprocess.PIPE)
    pid = int(crashed.stdout.readline().split()[1])  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    assert crashed.wait(60) == -signal.SIGKILL


def test_a_killed_shim_takes_its_module_with_it() -> None:
    """Past stopwaitsecs supervisord SIGKILLs the shim, which cannot forward that: the server kills the module."""
    shimmed = _shim("pid-sleep", stdout=subprocess.PIPE)
    pid = int(shimmed.stdout.readline().split()[1])  # type: ignore[union-attr]
    shimmed.kill()
    shimmed.wait(60)
    deadline = time.monotonic() + 60
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")


def test_oh_up_forks_every_service_through_the_shim(home: Any) -> None:
    """`oh up` forked from the server runs each supervisord program as the shim, its service a child of the server
    (else every `oh up` of the suite pays every service's imports again), and `oh down` stops them all cleanly
    through it: supervisord logs each program's exit status 0."""
    from oh.adapters import supervisor

    if os.environ.get("OH_TEST_SERVICE_FORK") == "0":
        pytest.skip("the suite runs supervisord's services as fresh interpreters")
    client = forkserver._client()
    assert client is not None
    up = forkserver.run([OH, "up"], env=dict(os.environ), cwd=REPO, timeout=300)
    try:
        assert up.returncode == 0, up.stderr
        programs = supervisor.programs(home)
        shim = str(Path(client.directory) / "python")
        for program in programs.values():
            assert shim in Path(f"/proc/{program.pid}/cmdline").read_text(), program
        served = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if _child_in(pid, client.proc.pid, home)]
        assert len(served) == len(programs) == len(supervisor.program_names())
    finally:
        down = forkserver.run([OH, "down"], env=dict(os.environ), cwd=REPO, timeout=300)
    assert down.returncode == 0, down.stderr
    log = (home.logs / "supervisord.log").read_text()
    assert all(f"stopped: {name} (exit status 0)" in log for name in supervisor.program_names()), log[-3000:]


def _child_in(pid: int, parent: int, home: Any) -> bool:
    """True if `pid` is a child of `parent` working in `home` (supervisord runs every program in OH_HOME)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cwd = Path(f"/proc/{pid}/cwd").resolve()
    except OSError:
        return False
    return f"PPid:\t{parent}\n" in status and cwd == home.root.resolve()
