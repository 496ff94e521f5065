"""The ledger's tcp listener in one process, on real sockets: ipc stays plain, tcp is CURVE-only, every refusal counted.

These drive services/ledger/tcp.py directly (a fresh zmq.Context each, so each test has its own ZAP
handler); tests/integration/test_tcp_bus.py attacks the real ledger process the same ways.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from bus import curve
from bus.home import Home
from bus.network import TcpAddress
from devtools.ports import free_port_block
from services.ledger.tcp import TcpListener

HOST = "127.0.0.2"
QUIET_S = 1.0  # how long a refused client is given to receive anything (it must receive nothing)


class Rig:
    """A ROUTER bound on ipc then on tcp through a TcpListener, answering every request with `ok`."""

    def __init__(self, tmp_path: Path) -> None:
        self.ctx = zmq.Context()
        self.home = Home(tmp_path / "ledger", bus="", bus_keys="").ensure()
        curve.init_keys(self.home.keys, server=True)
        self.counts: Counter[str] = Counter()
        self.listener = TcpListener(self.ctx, self.home, TcpAddress(HOST, free_port_block(HOST)), self.count)
        self.listener.start()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(self.home.ipc_endpoint("control"))
        self.listener.bind(self.router, "control")
        self.publisher = self.ctx.socket(zmq.PUB)
        self.publisher.setsockopt(zmq.LINGER, 0)
        self.publisher.bind(self.home.ipc_endpoint("events"))
        self.listener.bind(self.publisher, "events")
        self.sockets: list[zmq.Socket] = []  # type: ignore[type-arg]

    def count(self, name: str) -> None:
        self.counts[name] += 1

    def client_home(self, tmp_path: Path, name: str, authorize: bool = True) -> Home:
        home = Home(tmp_path / name, bus=self.listener.describe(), bus_keys="").ensure()
        curve.init_keys(home.keys, server=False, server_key=curve.public_file(self.home.keys, curve.SERVER))
        if authorize:
            curve.allow(self.home.keys, curve.public_file(home.keys, curve.CLIENT), name)
        return home

    def socket(self, kind: int) -> zmq.Socket:  # type: ignore[type-arg]
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        self.sockets.append(sock)
        return sock

    def ask(self, sock: zmq.Socket, wait_s: float) -> bytes | None:  # type: ignore[type-arg]
        """Send `ping` on a REQ socket; serve the router meanwhile; return the reply or None. A refused client may
        have no pipe left to send on (its connection torn down after the handshake failed): a REQ socket's send
        would then block for good, so it counts as no reply (it got nothing) once `wait_s` passes unsent."""
        if not sock.poll(int(wait_s * 1000), zmq.POLLOUT):
            return None
        sock.send(b"ping")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.router.poll(20):
                frames = self.router.recv_multipart()
                self.router.send_multipart([*frames[:-1], b"ok"])
            if sock.poll(20):
                return sock.recv()
        return None

    def wait_count(self, name: str, at_least: int = 1) -> int:
        deadline = time.monotonic() + 10
        while self.counts[name] < at_least and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.counts[name]

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.router.close()
        self.publisher.close()
        self.listener.close()
        self.ctx.term()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.close()


def test_one_socket_is_plain_on_ipc_and_curve_only_on_tcp(rig: Rig, tmp_path: Path) -> None:
    """The ledger's ipc clients need no key; on tcp the same socket answers only an authorized CURVE client."""
    local = rig.socket(zmq.REQ)
    local.connect(rig.home.ipc_endpoint("control"))
    assert rig.ask(local, 10) == b"ok"

    plain = rig.socket(zmq.REQ)
    plain.connect(rig.listener.address.endpoint("control"))
    assert rig.ask(plain, QUIET_S) is None
    assert rig.wait_count("tcp_refused_handshake") >= 1

    authorized = rig.socket(zmq.REQ)
    rig.client_home(tmp_path, "hostb").connect(authorized, "control")
    assert rig.ask(authorized, 10) == b"ok"
    assert rig.wait_count("tcp_authenticated") >= 1


def test_unknown_key_and_wrong_server_key_are_refused_and_counted(rig: Rig, tmp_path: Path) -> None:
    """A valid CURVE client whose key nobody allowed, and one that trusts another server, get nothing."""
    stranger = rig.socket(zmq.REQ)
    rig.client_home(tmp_path, "stranger", authorize=False).connect(stranger, "control")
    assert rig.ask(stranger, QUIET_S) is None
    assert rig.wait_count("tcp_refused_key") >= 1

    impostor_home = rig.client_home(tmp_path, "hostb")  # authorized, but holds another ledger's public key
    other = tmp_path / "other-ledger"
    curve.init_keys(other, server=True)
    (impostor_home.keys / "server.key").write_bytes(curve.public_file(other, curve.SERVER).read_bytes())
    confused = rig.socket(zmq.REQ)
    impostor_home.connect(confused, "control")
    before = rig.counts["tcp_refused_handshake"]
    assert rig.ask(confused, QUIET_S) is None
    assert rig.wait_count("tcp_refused_handshake", before + 1) > before
    assert rig.counts["tcp_authenticated"] == 0


def test_without_its_authenticator_the_listener_lets_nobody_in(rig: Rig, tmp_path: Path) -> None:
    """ZAP_ENFORCE_DOMAIN: with no ZAP handler answering, libzmq would admit any client that knows the server
    key; the listener refuses everyone instead, even an authorized key."""
    home = rig.client_home(tmp_path, "hostb")
    rig.listener.auth.stop()
    sock = rig.socket(zmq.REQ)
    home.connect(sock, "control")
    assert rig.ask(sock, QUIET_S) is None
    assert rig.counts["tcp_authenticated"] == 0


def test_a_revoked_key_is_refused_on_its_next_connection(rig: Rig, tmp_path: Path) -> None:
    """`oh keys revoke` needs no restart: the authenticator re-reads authorized/ when it changes."""
    home = rig.client_home(tmp_path, "hostb")
    first = rig.socket(zmq.REQ)
    home.connect(first, "control")
    assert rig.ask(first, 10) == b"ok"
    assert curve.revoke(rig.home.keys, "hostb")
    again = rig.socket(zmq.REQ)
    home.connect(again, "control")
    assert rig.ask(again, QUIET_S) is None
    assert rig.wait_count("tcp_refused_key") >= 1
    curve.allow(rig.home.keys, curve.public_file(home.keys, curve.CLIENT), "hostb")  # and back in
    third = rig.socket(zmq.REQ)
    home.connect(third, "control")
    assert rig.ask(third, 10) == b"ok"


def test_events_reach_an_authorized_subscriber_only(rig: Rig, tmp_path: Path) -> None:
    """The PUB socket is a CURVE server too: a subscriber on another host needs an authorized key."""
    good = rig.socket(zmq.SUB)
    good.setsockopt(zmq.SUBSCRIBE, b"")
    rig.client_home(tmp_path, "hostb").connect(good, "events")
    bad = rig.socket(zmq.SUB)
    bad.setsockopt(zmq.SUBSCRIBE, b"")
    rig.client_home(tmp_path, "stranger", authorize=False).connect(bad, "events")
    plain = rig.socket(zmq.SUB)
    plain.setsockopt(zmq.SUBSCRIBE, b"")
    plain.connect(rig.listener.address.endpoint("events"))
    deadline = time.monotonic() + 10
    while not good.poll(0) and time.monotonic() < deadline:  # PUB drops until a subscriber is connected
        rig.publisher.send(b"event")
        time.sleep(0.05)
    assert good.recv() == b"event"
    for _ in range(int(QUIET_S / 0.05)):
        rig.publisher.send(b"event")
        time.sleep(0.05)
    assert not bad.poll(0) and not plain.poll(0)
