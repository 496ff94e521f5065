"""Private by default, attacked by a real second local user (`nobody`, uid 65534).

We run as root, so each attack is a child process dropped to nobody (setresgid/setresuid before
exec). The home sits under a world-traversable directory, so nothing but the platform's own
permissions stands between nobody and the data. The attacker cannot read the data files, cannot
connect to this user's sockets (even when the processes were launched with umask 000), cannot
capture traffic by creating the socket directory first, and `oh` refuses a socket directory that
another user owns or that others may write into.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from bus.control_client import ControlClient
from bus.home import Home
from devtools import forkserver
from devtools.processes import REPO, Service, wait_for_ledger
from tests.integration.conftest import run_oh

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a child process as another local user (nobody)"),
    pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs /usr/bin/python3 to run as nobody"),
]

NOBODY = 65534
# nobody cannot run our interpreter (it lives under root's 0700 home): the system's Python 3.11 runs the
# attacks, with the venv's packages (pyzmq) on its path.
ATTACKER_PYTHON = "/usr/bin/python3"
ATTACKER_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/", "PYTHONPATH": os.pathsep.join(
    [str(REPO), *(p for p in sys.path if p.endswith("site-packages"))])}


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def as_nobody(code: str, *args: str, stdin: str | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run Python `code` as nobody (cwd /); returns its output."""
    return subprocess.run([ATTACKER_PYTHON, "-c", textwrap.dedent(code), *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, cwd="/", env=ATTACKER_ENV, preexec_fn=_drop_to_nobody)


def _tree(root: Path) -> list[Path]:
    out = []
    for folder, dirs, files in os.walk(root):
        out += [Path(folder) / name for name in dirs + files]
    return out


@pytest.fixture
def open_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """An OH_HOME under a directory anyone may traverse (pytest's own tmp dirs are 0700, which would hide it)."""
    parent = Path(tempfile.mkdtemp(prefix="oh-private-test-"))
    parent.chmod(0o755)
    monkeypatch.setenv("OH_HOME", str(parent / "oh_home"))
    monkeypatch.setenv("OH_UI_PORT", "0")
    monkeypatch.delenv("OH_SOCKET_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    home = Home.from_env()
    yield home
    sockets = home.root / "run" / "sockets"
    if sockets.is_symlink():
        shutil.rmtree(os.readlink(sockets), ignore_errors=True)
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def shared_path() -> Iterator[Path]:
    """A fresh name in the shared temp dir (where nobody may create things too); removed afterwards."""
    path = Path(tempfile.gettempdir()) / f"oh-squat-{uuid.uuid4().hex[:10]}"
    yield path
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def deep_open_home(monkeypatch: pytest.MonkeyPatch, open_home: Home) -> Iterator[Home]:
    """The same, deep enough that its sockets cannot live in OH_HOME/run (the short-directory fallback)."""
    deep = open_home.root.parent / ("d" * 100) / "oh_home"
    deep.parent.mkdir(mode=0o755)
    monkeypatch.setenv("OH_HOME", str(deep))
    home = Home.from_env()
    yield home
    link = home.root / "run" / "sockets"
    if link.is_symlink():
        shutil.rmtree(os.readlink(link), ignore_errors=True)


READ_ATTEMPT = """
    import json, os, sys
    readable = []
    for path in json.loads(sys.stdin.read()):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.listdir(path)
            else:
                open(path, "rb").read(1)
            readable.append(path)
        except OSError:
            pass
    print(json.dumps(readable))
"""


def test_another_user_cannot_read_any_data_file(open_home: Home) -> None:
    """After `oh up`, candles, a briefing, a portfolio and `oh down`, every file under OH_HOME is 0600 and every
    directory 0700 (supervisord's logs included), and nobody can read or list any of them."""
    home = open_home
    assert run_oh("portfolio", "init").returncode == 0
    up = run_oh("up")
    assert up.returncode == 0, up.stderr
    try:
        candles = run_oh("emit", "ingest-candles", "--symbols", "SPY", "--start", "2025-06-02", "--end", "2025-06-06",
                         "--wait")
        assert candles.returncode == 0, candles.stderr
        briefing = run_oh("emit", "briefing", "--symbols", "SPY", "--as-of", "2025-06-06", "--wait")
        assert briefing.returncode == 0, briefing.stderr
    finally:
        down = run_oh("down")
    assert down.returncode == 0, down.stderr
    paths = _tree(home.root)
    names = {p.relative_to(home.root).as_posix() for p in paths}
    for expected in ("warehouse/oh.duckdb", "logs/ledger.log", "logs/ledger.out.log", "logs/supervisord.log",
                     "config/portfolio.json", f"briefings/{date(2025, 6, 6)}.md"):
        assert expected in names, expected
    assert any(n.startswith("journal/") for n in names) and any(n.startswith("state/") for n in names)
    loose = {p.relative_to(home.root).as_posix(): f"{stat.S_IMODE(os.lstat(p).st_mode):04o}" for p in paths
             if not p.is_symlink() and stat.S_IMODE(os.lstat(p).st_mode) & 0o077}
    assert loose == {}
    assert stat.S_IMODE(home.root.stat().st_mode) == 0o700
    attempt = as_nobody(READ_ATTEMPT, stdin=json.dumps([str(p) for p in [home.root, *paths]]), timeout=120)
    assert attempt.returncode == 0, attempt.stderr
    assert json.loads(attempt.stdout) == []


CONNECT_ATTEMPT = """
    import json, socket, sys
    connected = []
    for path in sys.argv[1:]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            connected.append(path)
        except OSError:
            pass
        finally:
            s.close()
    import zmq
    req = zmq.Context.instance().socket(zmq.DEALER)
    req.setsockopt(zmq.LINGER, 0)
    req.connect("ipc://" + sys.argv[1])
    req.send(b"status?")
    answered = bool(req.poll(1000))
    print(json.dumps({"connected": connected, "zmq_answered": answered}))
"""


@pytest.mark.parametrize("deep", [False, True], ids=["run-dir", "short-dir"])
def test_another_user_cannot_connect_even_if_we_started_with_umask_000(
    request: pytest.FixtureRequest, deep: bool,
) -> None:
    """The ledger, launched from a shell whose umask is 000, still makes its sockets unreachable for nobody:
    a raw connect to every socket is refused, and a ZeroMQ request gets no answer."""
    home: Home = request.getfixturevalue("deep_open_home" if deep else "open_home")
    home.ensure()
    log = (home.logs / "ledger.out.log").open("ab")
    shell_umask = os.umask(0)  # the fork server gives its child the umask of the process that asks
    try:
        ledger = forkserver.spawn([sys.executable, "-m", "services.ledger"], cwd=REPO, env=dict(os.environ),
                                  stdout=log, stderr=log)
    finally:
        os.umask(shell_umask)
    try:
        wait_for_ledger(home)
        sockets = sorted(str(p) for p in home.sockets.iterdir() if stat.S_ISSOCK(os.lstat(p).st_mode))
        assert {Path(p).name for p in sockets} >= {"ingress", "events", "control"}
        control = str(home.sockets / "control")
        attempt = as_nobody(CONNECT_ATTEMPT, control, *sockets)
        assert attempt.returncode == 0, attempt.stderr
        assert json.loads(attempt.stdout) == {"connected": [], "zmq_answered": False}
        client = ControlClient(home)  # and we still can
        assert client.status() is not None
        client.close()
    finally:
        ledger.terminate()
        ledger.wait(30)
        log.close()


SQUATTER = """
    import json, os, sys, zmq
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o777)
    ctx = zmq.Context.instance()
    poller = zmq.Poller()
    socks = []
    for name in ("ingress", "control", "events"):
        s = ctx.socket(zmq.ROUTER)
        s.setsockopt(zmq.LINGER, 0)
        s.bind(f"ipc://{folder}/{name}")
        os.chmod(f"{folder}/{name}", 0o777)
        poller.register(s, zmq.POLLIN)
        socks.append((name, s))
    poller.register(sys.stdin.fileno(), zmq.POLLIN)
    print("ready", flush=True)
    captured = {}
    while True:
        events = dict(poller.poll(200))
        if sys.stdin.fileno() in events:
            break
        for name, s in socks:
            if s in events:
                frames = s.recv_multipart()
                captured[name] = captured.get(name, 0) + 1
    print(json.dumps(captured), flush=True)
"""


def _squat(folder: Path) -> subprocess.Popen[str]:
    """nobody creates `folder` (0777) and listens there on ingress, control and events; stdin EOF ends it."""
    squatter = subprocess.Popen(
        [ATTACKER_PYTHON, "-c", textwrap.dedent(SQUATTER), str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd="/", preexec_fn=_drop_to_nobody, env=ATTACKER_ENV,
    )
    assert squatter.stdout is not None and squatter.stdout.readline().strip() == "ready", squatter.stderr.read()  # type: ignore[union-attr]
    return squatter


def _captured(squatter: subprocess.Popen[str]) -> dict[str, int]:
    out, err = squatter.communicate(timeout=30)
    assert squatter.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_nobody_cannot_capture_commands_by_creating_the_socket_dir_first(deep_open_home: Home) -> None:
    """nobody creates the predictable /tmp/oh-<hash of OH_HOME> that a deep home used to fall back to, and
    listens there. With the ledger down, `oh status` and `oh emit` send nothing to it; with the ledger up,
    the platform works in its own directory and the squatter still hears nothing."""
    home = deep_open_home
    predictable = Path(tempfile.gettempdir()) / f"oh-{hashlib.sha1(str(home.root).encode()).hexdigest()[:12]}"
    shutil.rmtree(predictable, ignore_errors=True)
    squatter = _squat(predictable)
    try:
        status = run_oh("status")
        assert status.returncode == 3  # no ledger: not running, and nothing sent anywhere else
        emit = run_oh("emit", "ingest-candles", "--symbols", "SPY", "--start", "2025-06-02", "--end", "2025-06-06")
        assert emit.returncode != 0
        ledger = Service(home.ensure(), "ledger").start()
        try:
            wait_for_ledger(home)
            emit = run_oh("emit", "ingest-candles", "--symbols", "SPY", "--start", "2025-06-02", "--end", "2025-06-06")
            assert emit.returncode == 0, emit.stderr
        finally:
            ledger.stop()
    finally:
        captured = _captured(squatter)
        shutil.rmtree(predictable, ignore_errors=True)
    assert captured == {}
    assert home.sockets != predictable


@pytest.mark.parametrize("owner", ["nobody", "us-0777"])
@pytest.mark.parametrize("command", [("status",), ("up",), ("emit", "checks"), ("live", "stop")])
def test_oh_refuses_a_socket_dir_someone_else_can_use(open_home: Home, monkeypatch: pytest.MonkeyPatch,
                                                      shared_path: Path, owner: str, command: tuple[str, ...]) -> None:
    """OH_SOCKET_DIR pre-created by nobody (0700, theirs) or by us with mode 0777: every `oh` command exits 2
    with one line naming the directory and OH_SOCKET_DIR, and starts nothing."""
    folder = shared_path
    if owner == "nobody":
        made = as_nobody("import os, sys; os.mkdir(sys.argv[1], 0o700)", str(folder))
        assert made.returncode == 0, made.stderr
        assert folder.stat().st_uid == NOBODY
    else:
        folder.mkdir()
        folder.chmod(0o777)
    monkeypatch.setenv("OH_SOCKET_DIR", str(folder))
    try:
        result = run_oh(*command)
    finally:
        if command == ("up",):
            run_oh("down")  # had it started anything (it must not), stop it
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0] and "OH_SOCKET_DIR" in lines[0], result.stderr
    assert list(folder.iterdir()) == []
    assert not (open_home.logs / "supervisord.log").exists()


def test_the_ledger_refuses_a_socket_dir_owned_by_someone_else(open_home: Home, monkeypatch: pytest.MonkeyPatch,
                                                               shared_path: Path) -> None:
    """A service started on nobody's directory exits at once with the reason, and binds nothing there."""
    folder = shared_path
    made = as_nobody("import os, sys; os.mkdir(sys.argv[1], 0o777); os.chmod(sys.argv[1], 0o777)", str(folder))
    assert made.returncode == 0, made.stderr
    monkeypatch.setenv("OH_SOCKET_DIR", str(folder))
    ledger = forkserver.run([sys.executable, "-m", "services.ledger"], cwd=REPO, env=dict(os.environ), timeout=60)
    assert ledger.returncode != 0
    assert f"refusing the socket directory {folder}" in ledger.stderr
    assert list(folder.iterdir()) == []
