"""OH_HOME paths, and the socket directory that must stay under the unix-socket path limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.home import Home

UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL


@pytest.fixture(autouse=True)
def _no_socket_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OH_SOCKET_DIR", raising=False)


def _socket_paths(home: Home) -> list[str]:
    return [home.endpoint(name).removeprefix("ipc://") for name in ("ingress", "events", "control")] + [
        str(home.sockets / "supervisor.sock")
    ]


def test_short_home_keeps_its_sockets_inside() -> None:
    """A short OH_HOME puts its sockets in OH_HOME/run."""
    home = Home(Path("/tmp/oh-short"))
    assert home.sockets == Path("/tmp/oh-short/run")
    assert home.endpoint("ingress") == "ipc:///tmp/oh-short/run/ingress"


@pytest.mark.parametrize("depth", [90, 150, 400])
def test_long_home_falls_back_to_a_short_socket_dir(depth: int) -> None:
    """However deep OH_HOME is, every socket path (endpoints and supervisor's) fits the kernel's limit."""
    home = Home(Path("/tmp") / ("d" * depth) / "oh_home")
    for path in _socket_paths(home):
        assert len(path) < UNIX_PATH_MAX, path
    assert not str(home.sockets).startswith(str(home.root))


def test_two_long_homes_get_different_socket_dirs() -> None:
    """Two installations never share sockets, even when both need the short fallback."""
    a = Home(Path("/tmp") / ("a" * 120) / "one")
    b = Home(Path("/tmp") / ("a" * 120) / "two")
    assert a.sockets != b.sockets
    assert a.endpoint("control") != b.endpoint("control")
    assert a.sockets == Home(Path("/tmp") / ("a" * 120) / "one").sockets  # and the choice is stable


def test_socket_dir_override_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """OH_SOCKET_DIR, when set, is where the sockets go."""
    monkeypatch.setenv("OH_SOCKET_DIR", str(tmp_path / "socks"))
    assert Home(Path("/anything")).sockets == tmp_path / "socks"


def test_from_env_resolves_relative_homes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """OH_HOME is made absolute, so two shells in different directories agree on one home."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OH_HOME", "rel/home")
    assert Home.from_env().root == tmp_path.resolve() / "rel" / "home"
    monkeypatch.delenv("OH_HOME")
    assert Home.from_env().root == tmp_path.resolve() / "data"


def test_ensure_creates_every_directory(home: Home) -> None:
    """ensure() makes journal, warehouse, logs, state, config and socket dirs, and can be repeated."""
    home.ensure()
    for path in (home.journal, home.warehouse.parent, home.logs, home.state, home.config, home.sockets):
        assert path.is_dir(), path
    for path in _socket_paths(home):
        assert len(path) < UNIX_PATH_MAX


def test_too_long_socket_fallback_is_a_clear_error(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With a deep OH_HOME and a deep TMPDIR, the user is told to set OH_SOCKET_DIR instead of a bind failing later."""
    import tempfile

    from bus.home import Home

    deep = tmp_path / ("d" * 120)
    monkeypatch.delenv("OH_SOCKET_DIR", raising=False)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(deep))
    with pytest.raises(ValueError, match="OH_SOCKET_DIR"):
        _ = Home(deep / "home").sockets
    monkeypatch.setenv("OH_SOCKET_DIR", str(tmp_path / "s"))
    assert Home(deep / "home").sockets == tmp_path / "s"
