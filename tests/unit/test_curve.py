"""CURVE keys on disk (bus/curve.py): made private, checked when read, never a secret where a public key goes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import zmq

from bus import curve
from bus.curve import CurveKeyError
from bus.errors import HomeError
from bus.home import Home


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def ledger_keys(tmp_path: Path) -> Path:
    directory = tmp_path / "ledger" / "keys"
    curve.init_keys(directory, server=True)
    return directory


@pytest.fixture
def client_keys(tmp_path: Path, ledger_keys: Path) -> Path:
    directory = tmp_path / "client" / "keys"
    curve.init_keys(directory, server=False, server_key=curve.public_file(ledger_keys, curve.SERVER))
    return directory


def test_init_makes_private_keys_and_authorizes_its_own_client(ledger_keys: Path) -> None:
    """`oh keys init`: 0700 directories, 0600 files, the home's own client authorized as `local`."""
    assert _mode(ledger_keys) == 0o700 and _mode(curve.authorized_dir(ledger_keys)) == 0o700
    for path in ledger_keys.rglob("*"):
        if path.is_file():
            assert _mode(path) == 0o600, path
    server = curve.load_server(ledger_keys)
    assert zmq.utils.z85.decode(server.secret) and len(server.public) == 40
    assert curve.authorized(ledger_keys) == [(curve.LOCAL_CLIENT, curve.read_public_key(curve.public_file(ledger_keys, "client")))]


def test_init_twice_keeps_the_keys(ledger_keys: Path) -> None:
    """Running init again never replaces a key (that would lock every client out)."""
    before = {p: p.read_bytes() for p in ledger_keys.rglob("*") if p.is_file()}
    assert curve.init_keys(ledger_keys, server=True) == []
    assert {p: p.read_bytes() for p in ledger_keys.rglob("*") if p.is_file()} == before


def test_a_client_home_holds_its_pair_and_the_ledger_public_key_only(client_keys: Path, ledger_keys: Path) -> None:
    """`oh keys init --client --server-key`: no ledger secret ever leaves the ledger's host."""
    assert not curve.secret_file(client_keys, curve.SERVER).exists()
    keys = curve.load_client(client_keys)
    assert keys.server_public == curve.load_server(ledger_keys).public
    with pytest.raises(CurveKeyError, match="no ledger key"):
        curve.allow(client_keys, curve.public_file(client_keys, curve.CLIENT), "x")  # a client cannot authorize


def test_a_ledger_home_refuses_a_foreign_server_key(ledger_keys: Path, tmp_path: Path) -> None:
    """--server-key on the ledger's own home would make its clients trust another ledger: refused."""
    other = tmp_path / "other"
    curve.init_keys(other, server=True)
    with pytest.raises(CurveKeyError, match="holds the ledger's own key pair"):
        curve.init_keys(ledger_keys, server=False, server_key=curve.public_file(other, curve.SERVER))


@pytest.mark.parametrize("missing", ["client.key_secret", "server.key"])
def test_a_client_without_its_keys_is_told_what_to_run(client_keys: Path, missing: str) -> None:
    """No key: one line naming the missing file and the command that makes it."""
    (client_keys / missing).unlink()
    with pytest.raises(CurveKeyError) as caught:
        curve.load_client(client_keys)
    assert missing in str(caught.value) and "oh keys init" in str(caught.value)
    assert isinstance(caught.value, HomeError)


def test_a_secret_key_others_can_read_is_refused(client_keys: Path) -> None:
    """Like ssh: a secret key readable by others is not used (someone may have it)."""
    secret = curve.secret_file(client_keys, curve.CLIENT)
    secret.chmod(0o644)
    with pytest.raises(CurveKeyError, match="chmod 600"):
        curve.load_client(client_keys)
    secret.chmod(0o600)
    client_keys.chmod(0o777)
    with pytest.raises(CurveKeyError, match="chmod 700"):
        curve.load_client(client_keys)


@pytest.mark.parametrize("body", [
    "",
    "curve\n    public-key = \"short\"\n",
    "curve\n    public-key = \"" + "~" * 40 + "\"\n",
    "metadata\n",
    "\x00\x01\x02 binary",
], ids=["empty", "short", "not-z85", "no-key", "binary"])
def test_allow_refuses_a_malformed_public_key(ledger_keys: Path, tmp_path: Path, body: str) -> None:
    """Only a well-formed 32-byte Z85 key is authorized."""
    path = tmp_path / "bad.key"
    path.write_text(body)
    with pytest.raises(CurveKeyError):
        curve.allow(ledger_keys, path, "bad")
    assert [name for name, _ in curve.authorized(ledger_keys)] == [curve.LOCAL_CLIENT]


def test_allow_refuses_a_secret_key_file(ledger_keys: Path, client_keys: Path) -> None:
    """Handing over a secret key file is a mistake worth stopping: the public one is what is needed."""
    with pytest.raises(CurveKeyError, match="SECRET key"):
        curve.allow(ledger_keys, curve.secret_file(client_keys, curve.CLIENT), "hostb")


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "-dash", "x" * 65, "sp ace", "tab\t"])
def test_allow_refuses_a_name_that_is_not_a_plain_file_name(ledger_keys: Path, client_keys: Path, name: str) -> None:
    """A client name becomes a file name in authorized/: nothing that could escape or hide it."""
    with pytest.raises(CurveKeyError, match="client name"):
        curve.allow(ledger_keys, curve.public_file(client_keys, curve.CLIENT), name)
    assert sorted(p.name for p in curve.authorized_dir(ledger_keys).iterdir()) == ["local.key"]


def test_allow_list_revoke(ledger_keys: Path, client_keys: Path) -> None:
    """One key, one name: a second name for the same key, or another key for a taken name, is refused."""
    client_pub = curve.public_file(client_keys, curve.CLIENT)
    curve.allow(ledger_keys, client_pub, "hostb")
    assert dict(curve.authorized(ledger_keys))["hostb"] == curve.read_public_key(client_pub)
    curve.allow(ledger_keys, client_pub, "hostb")  # again, same key: harmless
    with pytest.raises(CurveKeyError, match="already authorized as 'hostb'"):
        curve.allow(ledger_keys, client_pub, "hostc")
    with pytest.raises(CurveKeyError, match="authorized with another key"):
        curve.allow(ledger_keys, curve.public_file(ledger_keys, curve.CLIENT), "hostb")
    assert curve.revoke(ledger_keys, "hostb") is True
    assert curve.revoke(ledger_keys, "hostb") is False
    assert [name for name, _ in curve.authorized(ledger_keys)] == [curve.LOCAL_CLIENT]


def test_connect_over_tcp_without_keys_refuses_before_any_byte_is_sent(tmp_path: Path) -> None:
    """A bus socket never goes over tcp in plain text: with no client key, Home.connect raises, unconnected."""
    home = Home(tmp_path / "h", bus="tcp://127.0.0.2:7780", bus_keys="").ensure()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    try:
        with pytest.raises(CurveKeyError, match=r"client\.key_secret is missing"):
            home.connect(sock, "ingress")
        assert sock.getsockopt(zmq.LAST_ENDPOINT) == b""  # never connected
        assert sock.getsockopt(zmq.MECHANISM) == zmq.NULL
    finally:
        sock.close()
        ctx.term()


def test_connect_over_tcp_puts_the_client_keys_on_the_socket(tmp_path: Path, client_keys: Path) -> None:
    """With keys, every bus socket Home connects over tcp is a CURVE client of the configured ledger."""
    home = Home(tmp_path / "h", bus="tcp://127.0.0.2:7780", bus_keys=str(client_keys)).ensure()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    try:
        assert home.connect(sock, "control") == "tcp://127.0.0.2:7782"
        assert sock.getsockopt(zmq.MECHANISM) == zmq.CURVE
        assert sock.getsockopt(zmq.CURVE_SERVER) == 0  # a client (the end-to-end proof: test_tcp_bus.py)
    finally:
        sock.close(linger=0)
        ctx.term()
