"""The bus over tcp with CURVE, attacked on the real ledger process.

"Another host" is a second OH_HOME whose processes reach the ledger at tcp://127.0.0.2:PORT (Linux
routes all of 127/8 to lo) with their own client key (made by bus/curve.py, what `oh keys` runs; the
commands themselves are tested in test_keys_cli.py). A
worker there serves jobs and its results land in the ledger's warehouse; a client with no key, an
unknown key, a revoked key, the wrong server key, a plain-text client and a peer sending garbage get
nothing (no reply, no event, nothing journaled), each is counted, and the ledger keeps serving, with
the ledger up when they come and when they were waiting for it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import zmq

from bus import curve
from bus.codec import encode
from bus.control_client import ControlClient
from bus.home import Home
from bus.network import PORT_OFFSETS, TcpAddress
from contracts import IngestCandles
from contracts.control import QueryRequest, StatusRequest
from devtools import forkserver
from devtools.ports import free_port_block
from devtools.processes import REPO, Service, wait_for_heartbeat, wait_for_ledger
from oh.adapters.sim.provider import SimProvider
from tests.integration.conftest import OH

pytestmark = pytest.mark.integration

HOST = "127.0.0.2"
QUIET_MS = 2500  # the ledger ticks its head on PUB every second: a connected subscriber hears one well within this
FIRST, LAST = date(2025, 6, 2), date(2025, 6, 27)


def oh_on(home: Home, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `oh` command as a process of `home` (its OH_HOME and OH_BUS)."""
    environment = {**os.environ, "OH_HOME": str(home.root), "OH_BUS": home.bus, **env}
    return forkserver.run([OH, *args], timeout=300, cwd=REPO, env=environment)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@dataclass
class Net:
    """The ledger's home (listening on tcp) and another host's home, authorized as `hostb`."""

    ledger_home: Home
    ledger: Service
    address: TcpAddress
    remote: Home

    def status(self):  # type: ignore[no-untyped-def]
        client = ControlClient(self.ledger_home, timeout=10)
        try:
            return client.status()
        finally:
            client.close()

    def counter(self, name: str) -> int:
        return self.status().counters.get(name, 0)

    def restart_ledger(self) -> None:
        self.ledger.start()
        wait_for_ledger(self.ledger_home)


def another_host(tmp_path: Path, name: str, bus: str) -> Home:
    return Home(tmp_path / name, bus=bus, bus_keys="").ensure()


@pytest.fixture
def net(home: Home, tmp_path: Path) -> Iterator[Net]:
    """The ledger listening on 127.0.0.2 (CURVE) and a second home with its client key authorized as `hostb`."""
    curve.init_keys(home.keys, server=True)
    address = TcpAddress(HOST, free_port_block(HOST))
    (home.config / "bus.toml").write_text(f'[tcp]\naddress = "{HOST}"\nport = {address.port}\n')
    ledger = Service(home, "ledger").start()
    wait_for_ledger(home)
    remote = another_host(tmp_path, "hostb", address.describe())
    curve.init_keys(remote.keys, server=False, server_key=curve.public_file(home.keys, curve.SERVER))
    curve.allow(home.keys, curve.public_file(remote.keys, curve.CLIENT), "hostb")
    yield Net(home, ledger, address, remote)
    if ledger.proc is not None and ledger.proc.poll() is None:
        ledger.stop()


def _sim_rows(symbol: str) -> int:
    return SimProvider().daily_candles(symbol, FIRST, LAST).num_rows


def test_a_worker_on_another_host_serves_jobs_over_curve_and_its_results_land(net: Net) -> None:
    """A remote ingest worker runs `oh emit` jobs sent from its host; the rows land in the ledger's warehouse,
    nothing is stored on the remote host, and after the ledger is killed and restarted it serves again."""
    worker = Service(net.remote, "ingest", env={"OH_BUS": net.remote.bus}).start()
    try:
        wait_for_heartbeat(net.ledger_home, "ingest")  # its heartbeat came over tcp
        sent = oh_on(net.remote, "emit", "ingest-candles", "--symbols", "AAPL,MSFT", "--start", str(FIRST),
                     "--end", str(LAST), "--provider", "sim", "--wait")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        client = ControlClient(net.ledger_home, timeout=30)  # the ledger's host reads its own warehouse over ipc
        try:
            counts = {row["symbol"]: row["n"] for row in
                      client.query("SELECT symbol, count(*) AS n FROM candles_daily GROUP BY ALL").to_pylist()}
            assert counts == {"AAPL": _sim_rows("AAPL"), "MSFT": _sim_rows("MSFT")}
            runs = client.query("SELECT job_name, status FROM meta.ingestion_runs").to_pylist()
            assert runs == [{"job_name": "ingest_candles", "status": "success"}]
        finally:
            client.close()
        assert not net.remote.warehouse.exists() and not any(net.remote.journal.iterdir())
        status = net.status()
        assert status.tcp == net.address.describe()
        assert status.counters["tcp_authenticated"] >= 4  # the worker's producer, subscriber, control, heartbeat
        assert status.counters.get("tcp_refused_key", 0) == status.counters.get("tcp_refused_handshake", 0) == 0
        shown = oh_on(net.ledger_home, "status", OH_BUS="")
        assert f"bus also on {net.address.describe()} (CURVE)" in shown.stdout

        net.ledger.kill()  # the ledger crashes under the remote worker, and comes back
        net.restart_ledger()
        again = oh_on(net.remote, "emit", "ingest-candles", "--symbols", "SPY", "--start", str(FIRST),
                      "--end", str(LAST), "--provider", "sim", "--wait")
        assert again.returncode == 0, again.stdout + again.stderr
        client = ControlClient(net.ledger_home, timeout=30)
        try:
            spy = client.query("SELECT count(*) AS n FROM candles_daily WHERE symbol = 'SPY'").to_pylist()
        finally:
            client.close()
        assert spy == [{"n": _sim_rows("SPY")}]
    finally:
        worker.stop()


Arm = Callable[[zmq.Socket], None]  # type: ignore[type-arg]


def _attacker(spelling: str, net: Net, tmp_path: Path) -> tuple[Arm, str]:
    """How the attacker's sockets are set up, and the counter its refusal must move."""
    server_public = curve.load_server(net.ledger_home.keys).public
    if spelling == "plaintext":
        return (lambda sock: None), "tcp_refused_handshake"
    if spelling == "unknown-key":
        public, secret = zmq.curve_keypair()
        return _curve(public, secret, server_public), "tcp_refused_key"
    if spelling == "wrong-server-key":  # an authorized client that trusts another ledger
        keys = curve.load_client(net.remote.keys)
        return _curve(keys.public, keys.secret, zmq.curve_keypair()[0]), "tcp_refused_handshake"
    assert spelling == "revoked"
    gone = another_host(tmp_path, "revoked", net.address.describe())
    curve.init_keys(gone.keys, server=False, server_key=curve.public_file(net.ledger_home.keys, curve.SERVER))
    curve.allow(net.ledger_home.keys, curve.public_file(gone.keys, curve.CLIENT), "gone")
    client = ControlClient(gone, timeout=10)
    try:
        assert client.status() is not None  # let in while authorized ...
    finally:
        client.close()
    assert curve.revoke(net.ledger_home.keys, "gone")  # ... and out once revoked, with no restart
    keys = curve.load_client(gone.keys)
    return _curve(keys.public, keys.secret, keys.server_public), "tcp_refused_key"


def _curve(public: bytes, secret: bytes, server: bytes) -> Arm:
    def arm(sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.setsockopt(zmq.CURVE_SERVERKEY, server)
    return arm


@pytest.mark.parametrize("ledger_up", [True, False], ids=["ledger-up", "ledger-down-first"])
@pytest.mark.parametrize("spelling", ["plaintext", "unknown-key", "wrong-server-key", "revoked"])
def test_a_client_without_an_authorized_key_learns_nothing_and_is_counted(
        net: Net, tmp_path: Path, spelling: str, ledger_up: bool) -> None:
    """On all three sockets: a command gets no Ack and is not journaled, a status or query request gets no
    answer, a subscriber hears no event (not even the ledger's head tick); the refusal is counted; the
    authorized remote client is served throughout. `ledger-down-first`: the attacker was waiting (libzmq
    reconnecting) while the ledger was down, and is refused when it comes up."""
    arm, counter = _attacker(spelling, net, tmp_path)
    before = net.status()
    if not ledger_up:
        net.ledger.stop()
    ctx = zmq.Context()
    try:
        dealer, req, sub = ctx.socket(zmq.DEALER), ctx.socket(zmq.REQ), ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        for sock, name in ((dealer, "ingress"), (req, "control"), (sub, "events")):
            sock.setsockopt(zmq.LINGER, 0)
            arm(sock)
            sock.connect(net.address.endpoint(name))
        dealer.send(encode(IngestCandles(symbols=["EVIL"], start=FIRST, end=LAST, provider="sim")))
        req.send(encode(StatusRequest()))
        if not ledger_up:
            net.restart_ledger()  # a fresh ledger: its counters start from 0
        floor = before.counters.get(counter, 0) if ledger_up else 0
        heard = dealer.poll(QUIET_MS) or req.poll(0) or sub.poll(0)
        after = net.status()
        assert not heard
        assert after.head_seq == before.head_seq  # nothing of the attacker's was journaled
        assert after.counters.get(counter, 0) > floor
        query = ctx.socket(zmq.REQ)  # one more try, on a fresh socket: a query
        query.setsockopt(zmq.LINGER, 0)
        arm(query)
        query.connect(net.address.endpoint("control"))
        query.send(encode(QueryRequest(sql="SELECT * FROM meta.ingestion_runs")))
        assert not query.poll(QUIET_MS // 2)
    finally:
        ctx.destroy(linger=0)
    friend = ControlClient(net.remote, timeout=10)  # the authorized host is served as before
    try:
        assert friend.status().head_seq == after.head_seq
    finally:
        friend.close()


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00NULL" + b"\x00" * 16 + b"\x00" * 32,  # a ZMTP 3.0 greeting, NULL mechanism
    os.urandom(4096),
], ids=["http", "zmtp-null-greeting", "random-bytes"])
def test_a_peer_that_is_not_a_curve_client_gets_nothing_but_the_greeting(net: Net, payload: bytes) -> None:
    """Raw bytes on each port: the ledger sends at most its 64-byte ZMTP greeting and closes; nothing is
    journaled and the ledger keeps serving."""
    before = net.status()
    for name in ("ingress", "events", "control"):
        with socket.create_connection((HOST, net.address.port + PORT_OFFSETS[name])) as raw:
            raw.settimeout(5)
            raw.sendall(payload)
            received = b""
            try:
                while chunk := raw.recv(4096):
                    received += chunk
            except (ConnectionResetError, TimeoutError):
                pass
        assert len(received) <= 64, (name, received)
    # the ledger counts accepted connections from its socket monitor's events, as its loop reads them
    expected = before.counters.get("tcp_connections", 0) + 3
    deadline = time.monotonic() + 30
    while (after := net.status()).counters.get("tcp_connections", 0) < expected:
        assert time.monotonic() < deadline, ("the three connections were never counted", after.counters)
        time.sleep(0.05)
    assert after.head_seq == before.head_seq
    assert after.counters.get("tcp_authenticated", 0) == before.counters.get("tcp_authenticated", 0)


def test_a_client_with_no_key_is_told_in_one_line(net: Net, tmp_path: Path) -> None:
    """OH_BUS=tcp with no client key: `oh status`, `oh emit`, `oh export` and a worker refuse to start, in one
    line naming the missing file, and never open a plain-text connection."""
    bare = another_host(tmp_path, "bare", net.address.describe())
    before = net.counter("tcp_connections")
    for args in (("status",), ("emit", "ingest-candles", "--symbols", "AAPL", "--as-of", str(LAST), "--provider", "sim"),
                 ("export", "--to", str(tmp_path / "out"))):
        result = oh_on(bare, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        line = one_line_error(result)
        assert "client.key_secret is missing" in line and "oh keys init" in line
    worker = Service(bare, "ingest", env={"OH_BUS": bare.bus}).start()
    assert worker.proc is not None and worker.proc.wait(60) != 0
    assert "ingest: no client key" in (bare.logs / "ingest.out.log").read_text()
    assert not (tmp_path / "out").exists()
    assert net.counter("tcp_connections") == before
    garbled = oh_on(bare, "status", OH_BUS="127.0.0.2:7780")
    assert garbled.returncode == 2 and "OH_BUS=" in one_line_error(garbled)


@pytest.mark.parametrize("problem", ["no-keys", "misspelt-key", "port-taken"])
def test_a_ledger_asked_for_tcp_it_cannot_serve_safely_stops_in_one_line(home: Home, problem: str) -> None:
    """bus.toml asks for tcp but there is no server key, the file has a typo, or the port is taken: the ledger
    exits at once with one line saying what to do, instead of running without the tcp bus or without CURVE."""
    port = free_port_block(HOST)
    text = f'[tcp]\naddress = "{HOST}"\nport = {port}\n'
    if problem != "no-keys":
        curve.init_keys(home.keys, server=True)
    if problem == "misspelt-key":
        text = text.replace("port", "prot")
    (home.config / "bus.toml").write_text(text)
    blocker = socket.socket()
    try:
        if problem == "port-taken":
            blocker.bind((HOST, port + 1))
            blocker.listen()
        ledger = Service(home, "ledger").start()
        assert ledger.proc is not None and ledger.proc.wait(60) != 0
    finally:
        blocker.close()
    said = (home.logs / "ledger.out.log").read_text().strip().splitlines()[-1]
    expected = {"no-keys": "run `oh keys init`", "misspelt-key": "unknown field `prot`",
                "port-taken": f"cannot listen on tcp://{HOST}:{port + 1}"}[problem]
    assert said.startswith("ledger: ") and expected in said, said
