"""OH_HOME paths, the private umask, and the socket directory: short enough for unix sockets, and only ours."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.errors import HomeError
from bus.home import SOCKET_LINK, Home

UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL


@pytest.fixture(autouse=True)
def _no_socket_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OH_SOCKET_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)


@pytest.fixture
def cleanup() -> Iterator[list[Path]]:
    """Short socket dirs made outside tmp_path (in the temp dir), removed after the test."""
    made: list[Path] = []
    yield made
    for path in made:
        for child in path.glob("*"):
            child.unlink()
        path.rmdir()


def _deep(base: Path, depth: int) -> Path:
    """A path `depth` characters below `base`, in components a file system accepts."""
    while depth > 0:
        base, depth = base / ("d" * min(depth, 100)), depth - 100
    return base


def _socket_paths(home: Home) -> list[str]:
    return [home.endpoint(name).removeprefix("ipc://") for name in ("ingress", "events", "control")] + [
        str(home.sockets / "supervisor.sock")
    ]


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_short_home_keeps_its_sockets_inside(tmp_path: Path) -> None:
    """A short OH_HOME puts its sockets in OH_HOME/run, made 0700."""
    home = Home(tmp_path / "h")
    assert home.sockets == tmp_path / "h" / "run"
    assert home.endpoint("ingress") == f"ipc://{tmp_path}/h/run/ingress"
    assert _mode(home.sockets) == 0o700


@pytest.mark.parametrize("depth", [90, 150, 400])
def test_long_home_falls_back_to_a_short_socket_dir(tmp_path: Path, depth: int, cleanup: list[Path]) -> None:
    """However deep OH_HOME is, every socket path (endpoints and supervisor's) fits the kernel's limit."""
    home = Home(_deep(tmp_path, depth) / "oh_home")
    cleanup.append(home.sockets)
    for path in _socket_paths(home):
        assert len(path) < UNIX_PATH_MAX, path
    assert not str(home.sockets).startswith(str(home.root))
    assert _mode(home.sockets) == 0o700 and os.lstat(home.sockets).st_uid == os.geteuid()


def test_the_short_socket_dir_is_random_and_recorded_in_the_home(tmp_path: Path, cleanup: list[Path]) -> None:
    """Nobody can compute the short dir's name in advance (not the old /tmp/oh-<hash of the home>): it is
    random, recorded as OH_HOME/run/sockets, and every process of the home reads the same record."""
    root = _deep(tmp_path, 150) / "one"
    first = Home(root).sockets
    cleanup.append(first)
    predictable = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    assert predictable not in first.name
    assert os.readlink(root / "run" / SOCKET_LINK) == str(first)
    assert Home(root).sockets == first  # stable: another process of the home finds the same one
    (root / "run" / SOCKET_LINK).unlink()
    second = Home(root).sockets
    cleanup.append(second)
    assert second != first  # without the record, a new random name


def test_the_short_socket_dir_goes_under_xdg_runtime_dir_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With $XDG_RUNTIME_DIR (the user's own 0700 runtime dir), the short socket dir is made there."""
    runtime = Path(tempfile.mkdtemp(prefix="xdg-"))  # short like /run/user/N (tmp_path is deep under xdist)
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
        sockets = Home(_deep(tmp_path, 150) / "h").sockets
        assert sockets.parent == runtime and sockets.name.startswith("oh-") and _mode(sockets) == 0o700
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def test_two_long_homes_get_different_socket_dirs(tmp_path: Path, cleanup: list[Path]) -> None:
    """Two installations never share sockets, even when both need the short fallback."""
    a = Home(_deep(tmp_path, 120) / "one")
    b = Home(_deep(tmp_path, 120) / "two")
    cleanup += [a.sockets, b.sockets]
    assert a.sockets != b.sockets
    assert a.endpoint("control") != b.endpoint("control")


def test_a_recorded_short_dir_that_vanished_is_made_again(tmp_path: Path, cleanup: list[Path]) -> None:
    """After a reboot cleans the temp dir, the recorded name is taken back (0700), so running clients agree."""
    home = Home(_deep(tmp_path, 150) / "h")
    first = home.sockets
    first.rmdir()
    assert home.sockets == first and _mode(first) == 0o700
    cleanup.append(first)


@pytest.mark.parametrize("spoil", ["loose", "symlink", "file"])
def test_a_recorded_short_dir_someone_replaced_is_never_used(tmp_path: Path, cleanup: list[Path], spoil: str) -> None:
    """If the recorded name was re-created by someone else (world-writable, a link to elsewhere, not a dir),
    the home moves to a fresh random dir and records it; the spoiled path is left alone."""
    home = Home(_deep(tmp_path, 150) / "h")
    first = home.sockets
    first.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if spoil == "loose":
        first.mkdir()
        first.chmod(0o777)
    elif spoil == "symlink":
        first.symlink_to(elsewhere)
    else:
        first.write_text("")
    second = home.sockets
    cleanup.append(second)
    assert second != first and _mode(second) == 0o700
    assert os.readlink(home.root / "run" / SOCKET_LINK) == str(second)
    if spoil == "loose":
        assert _mode(first) == 0o777
        first.rmdir()
    else:
        first.unlink()


def test_socket_dir_override_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """OH_SOCKET_DIR, when set, is where the sockets go (made 0700)."""
    monkeypatch.setenv("OH_SOCKET_DIR", str(tmp_path / "socks"))
    assert Home(Path("/anything")).sockets == tmp_path / "socks"
    assert _mode(tmp_path / "socks") == 0o700


@pytest.mark.parametrize("spoil", ["0777", "0770", "symlink", "file"])
def test_an_unsafe_socket_dir_override_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spoil: str) -> None:
    """An OH_SOCKET_DIR others may write into, a symbolic link or a file is refused, naming the path and the fix."""
    path = tmp_path / "socks"
    if spoil == "symlink":
        (tmp_path / "real").mkdir(mode=0o700)
        path.symlink_to(tmp_path / "real")
    elif spoil == "file":
        path.write_text("")
    else:
        path.mkdir()
        path.chmod(int(spoil, 8))
    monkeypatch.setenv("OH_SOCKET_DIR", str(path))
    with pytest.raises(HomeError, match="OH_SOCKET_DIR") as caught:
        _ = Home(tmp_path / "h").sockets
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_socket_dir_of_ours_others_could_only_read_is_closed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A home made under umask 022 (run at 0755) keeps working: the directory is tightened to 0700."""
    (tmp_path / "h" / "run").mkdir(parents=True)
    (tmp_path / "h" / "run").chmod(0o755)
    assert Home(tmp_path / "h").sockets == tmp_path / "h" / "run"
    assert _mode(tmp_path / "h" / "run") == 0o700


def test_from_env_resolves_relative_homes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """OH_HOME is made absolute, so two shells in different directories agree on one home."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OH_HOME", "rel/home")
    assert Home.from_env().root == tmp_path.resolve() / "rel" / "home"
    monkeypatch.delenv("OH_HOME")
    assert Home.from_env().root == tmp_path.resolve() / "data"


def test_ensure_creates_every_directory(home: Home) -> None:
    """ensure() makes journal, warehouse, logs, state, config and socket dirs, 0700, and can be repeated."""
    home.ensure()
    for path in (home.root, home.journal, home.warehouse.parent, home.logs, home.state, home.config, home.sockets):
        assert path.is_dir(), path
        assert _mode(path) == 0o700, path
    for path in _socket_paths(home):
        assert len(path) < UNIX_PATH_MAX


def test_ensure_makes_new_files_private_and_closes_an_old_home(tmp_path: Path) -> None:
    """After ensure() every file the process creates is 0600 (umask 077); dirs of an older home are closed."""
    old = os.umask(0o022)
    try:
        (tmp_path / "h" / "logs").mkdir(parents=True)
        (tmp_path / "h").chmod(0o755)
        home = Home(tmp_path / "h").ensure()
        (home.logs / "x.log").write_text("x")
        assert _mode(home.logs / "x.log") == 0o600
        assert _mode(home.root) == _mode(home.logs) == 0o700
    finally:
        os.umask(old)


def test_too_long_socket_fallback_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a deep OH_HOME and a deep TMPDIR, the user is told to set OH_SOCKET_DIR instead of a bind failing later."""
    import tempfile

    deep = _deep(tmp_path, 120)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(deep))
    with pytest.raises(HomeError, match="OH_SOCKET_DIR"):
        _ = Home(deep / "home").sockets
    monkeypatch.setenv("OH_SOCKET_DIR", str(tmp_path / "s"))
    assert Home(deep / "home").sockets == tmp_path / "s"
