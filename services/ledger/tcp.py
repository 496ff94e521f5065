"""The ledger's tcp listener: CURVE on every tcp socket, pyzmq's authenticator, every refusal counted.

When `$OH_HOME/config/bus.toml` has a `[tcp]` table (bus/network.py), the ledger's three sockets
(ingress ROUTER, events PUB, control ROUTER) each listen on tcp beside their ipc endpoint:

- **One socket, two listeners.** libzmq copies a socket's security options into a listener when it
  binds ("options take effect for subsequent bind/connect calls", zmq_setsockopt(3)). So each socket
  binds ipc first (plain, for this host's processes, kept private by the 0700 socket directory),
  then CURVE is set and the tcp endpoint bound, then CURVE is switched off on the socket again (the
  tcp listener keeps its copy). The ledger's loop, its acks and its publishing stay one socket each,
  and a test proves the ipc side plain and the tcp side CURVE-only (tests/integration/test_tcp_bus.py).
- **CURVE always, ZAP always.** A tcp listener is a CURVE server (the ledger's key pair) in ZAP
  domain `oh` with ZAP_ENFORCE_DOMAIN on: pyzmq's ThreadAuthenticator (`configure_curve` on the
  `authorized/` key directory) must say yes to the client's public key, and if no handler answers,
  libzmq refuses the client instead of letting in anyone who knows the server key. The authenticator
  starts before any tcp bind. A key added or revoked (`oh keys allow|revoke`) takes effect for the
  next connection: the directory is re-read when its modification time changes. A revoked client's
  open connections stay until they drop (restart the ledger to cut them at once).
- **A refused client learns nothing.** Its handshake fails before any message is read, so it gets
  no reply, no event, no error text (libzmq only closes the connection, or, for a CURVE client whose
  key was refused, sends the ZAP status code 400).
- **Counted.** `tcp_refused_key` (the authenticator said no: unknown or revoked key), counted by the
  authenticator itself; `tcp_refused_handshake` (a plain-text client, a client holding the wrong
  server key, a broken handshake), `tcp_connections` (tcp connections accepted) and
  `tcp_authenticated` (handshakes that succeeded), from a socket monitor on each socket, read by a
  thread of its own. A peer that does not speak ZMTP at all is dropped by libzmq before any
  handshake starts: it counts in `tcp_connections` and nowhere else. `oh status` shows them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from bus import curve
from bus.home import Home
from bus.network import BUS_SOCKETS, CONFIG_NAME, TcpAddress, listen_address, load_bus_config

log = logging.getLogger(__name__)

ZAP_DOMAIN = "oh"
MONITORED = (
    zmq.EVENT_ACCEPTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
COUNTER_OF_EVENT = {
    zmq.EVENT_ACCEPTED: "tcp_connections",
    zmq.EVENT_HANDSHAKE_SUCCEEDED: "tcp_authenticated",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "tcp_refused_handshake",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "tcp_refused_handshake",
}
LOGGED_REFUSALS = 20  # then one line per 1000


class CountingAuthenticator(ThreadAuthenticator):
    """pyzmq's ZAP authenticator, counting each refusal and re-reading the authorized keys when they change."""

    def __init__(self, ctx: zmq.Context, authorized: Path, count: Callable[[str], None]) -> None:  # type: ignore[type-arg]
        super().__init__(ctx, log=logging.getLogger("ledger.auth"))
        self.authorized = authorized
        self._count = count
        self._stamp: int | None = None
        self.refused = 0

    def load_keys(self) -> None:
        """(Re)read the authorized client keys (`configure_curve`, as pyzmq asks after every change)."""
        self._stamp = self.authorized.stat().st_mtime_ns
        self.configure_curve(domain=ZAP_DOMAIN, location=str(self.authorized))

    async def _authenticate_curve(self, domain: str, client_key: bytes) -> tuple[bool, bytes]:
        try:
            if self.authorized.stat().st_mtime_ns != self._stamp:
                self.load_keys()
        except OSError:  # the directory is gone: nobody is authorized
            self.certs.pop(ZAP_DOMAIN, None)
            self._stamp = None
        return await super()._authenticate_curve(domain, client_key)

    def _send_zap_reply(self, request_id: bytes, status_code: bytes, status_text: bytes,
                        user_id: str = "anonymous") -> None:
        if status_code != b"200":
            self.refused += 1
            self._count("tcp_refused_key")
            if self.refused <= LOGGED_REFUSALS or self.refused % 1000 == 0:
                log.warning("refused a tcp client (%s; %d so far): its key is not in %s",
                            status_text.decode(errors="replace"), self.refused, self.authorized)
        super()._send_zap_reply(request_id, status_code, status_text, user_id)


class _Monitor(threading.Thread):
    """Reads the socket monitors of the tcp listeners and counts what they report."""

    def __init__(self, ctx: zmq.Context, addresses: list[str], count: Callable[[str], None]) -> None:  # type: ignore[type-arg]
        super().__init__(name="ledger-tcp-monitor", daemon=True)
        self.ctx = ctx
        self.addresses = addresses
        self.count = count
        self.stopped = threading.Event()
        self.refused = 0

    def run(self) -> None:
        pairs = []
        for address in self.addresses:
            pair = self.ctx.socket(zmq.PAIR)
            pair.setsockopt(zmq.LINGER, 0)
            pair.connect(address)
            pairs.append(pair)
        poller = zmq.Poller()
        for pair in pairs:
            poller.register(pair, zmq.POLLIN)
        try:
            while not self.stopped.is_set():
                for pair, _ in poller.poll(200):
                    self._read(pair)
        finally:
            for pair in pairs:
                pair.close()

    def _read(self, pair: zmq.Socket) -> None:  # type: ignore[type-arg]
        while True:
            try:
                event = recv_monitor_message(pair, zmq.NOBLOCK)
            except zmq.Again:
                return
            endpoint = event.get("endpoint", b"")
            endpoint = endpoint.decode(errors="replace") if isinstance(endpoint, bytes) else str(endpoint)
            counter = COUNTER_OF_EVENT.get(event["event"])
            if counter is None or not endpoint.startswith("tcp://"):
                continue  # the ipc listener of the same socket, or the monitor stopping
            self.count(counter)
            if counter == "tcp_refused_handshake":
                self.refused += 1
                if self.refused <= LOGGED_REFUSALS or self.refused % 1000 == 0:
                    reason = _protocol_error(event["value"])
                    log.warning("refused a tcp connection on %s (%s; %d so far): not a CURVE client of this ledger",
                                endpoint, reason, self.refused)


def _protocol_error(value: int) -> str:
    try:
        return zmq.Event(value).name.lower()  # e.g. protocol_error_zmtp_mechanism_mismatch
    except ValueError:
        return f"code {value}"


class TcpListener:
    """The ledger's tcp side: keys, authenticator, the CURVE bind of each bus socket, and the counters."""

    def __init__(self, ctx: zmq.Context, home: Home, address: TcpAddress, count: Callable[[str], None]) -> None:  # type: ignore[type-arg]
        self.address = address
        self.keys = curve.load_server(home.keys)
        authorized = curve.authorized_dir(home.keys)
        if not authorized.is_dir():
            raise curve.CurveKeyError(f"{authorized} is missing: run `oh keys init` on the ledger's host")
        self._monitor_addresses = {name: f"inproc://ledger-tcp-monitor-{name}-{id(self):x}" for name in BUS_SOCKETS}
        self.auth = CountingAuthenticator(ctx, authorized, count)
        self.monitor = _Monitor(ctx, list(self._monitor_addresses.values()), count)
        self._started = False

    def start(self) -> None:
        """Start the authenticator (before any tcp bind: see the module doc) and the monitor."""
        self.auth.start()
        self.auth.load_keys()
        self.monitor.start()
        self._started = True
        if not self.address.loopback:
            log.warning("the bus listens on %s, reachable from other hosts: only authorized CURVE clients get in",
                        self.address.describe())

    def bind(self, sock: zmq.Socket, name: str) -> str:  # type: ignore[type-arg]
        """Bind `sock` (already bound on ipc) on tcp as a CURVE server, and watch it; call from its thread."""
        if not self._started:
            raise RuntimeError("start the authenticator before binding on tcp")
        endpoint = self.address.endpoint(name)
        curve.apply_server(sock, self.keys, ZAP_DOMAIN)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            raise SystemExit(
                f"ledger: cannot listen on {endpoint}: {exc.strerror} (bus.toml [tcp]: address and port; the "
                "bus uses the port and the two after it)"
            ) from None
        finally:
            sock.setsockopt(zmq.CURVE_SERVER, 0)  # the listener keeps CURVE; any later bind would be plain
        sock.monitor(self._monitor_addresses[name], MONITORED)
        return endpoint

    def describe(self) -> str:
        return self.address.describe()

    def close(self) -> None:
        """Stop the monitor thread and the authenticator (after the sockets closed)."""
        self.monitor.stopped.set()
        if self.monitor.is_alive():
            self.monitor.join(2)
        if self._started:
            self.auth.stop()


def open_listener(home: Home, ctx: zmq.Context, count: Callable[[str], None]) -> TcpListener | None:  # type: ignore[type-arg]
    """The tcp listener bus.toml asks for, started; None for ipc only. A bad file or missing key: SystemExit, one line."""
    try:
        address = listen_address(load_bus_config(home.config / CONFIG_NAME))
        if address is None:
            return None
        listener = TcpListener(ctx, home, address, count)
    except curve.CurveKeyError as exc:
        raise SystemExit(f"ledger: bus.toml asks for tcp, but {exc}") from None
    except ValueError as exc:  # BusConfigError
        raise SystemExit(f"ledger: {exc}") from None
    listener.start()
    return listener
