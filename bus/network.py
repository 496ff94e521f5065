"""Where the bus lives on a network: the ledger's tcp listener (`bus.toml`) and a client's `OH_BUS`.

Contract:
- ipc is the default. Every process of one home talks over `ipc://` sockets in its private socket
  directory (bus/home.py); nothing listens on a network interface unless `$OH_HOME/config/bus.toml`
  asks for it:

      [tcp]
      address = "127.0.0.1"   # the default (loopback); an address other hosts can reach opens the bus to them
      port = 7780             # ingress; the ledger's events (PUB) listen on port + 1, its control on port + 2

  The ledger then listens on both: ipc for its own host's processes, tcp for the others. CURVE is
  always on for tcp (services/ledger/tcp.py): a non-loopback address is allowed because no client
  gets in without an authorized key (bus/curve.py).
- The file decodes into a strict msgspec struct: an unknown key, a wrong type, an address that is
  not an IP literal or a port that leaves no room for the two after it is a BusConfigError, one line
  naming the file and the key (values are shown; this file holds no secrets).
- A client reaches a ledger over tcp with `OH_BUS=tcp://HOST:PORT` (the ledger's `port`; the client
  adds the offsets) and its CURVE keys. Only the three bus sockets (ingress, events, control) go over
  tcp; the live tick channel and anything else stay on the local ipc directory. `OH_BUS` unset,
  empty or `ipc` means ipc; anything else that is not `tcp://HOST:PORT` is a BusConfigError.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from bus.errors import HomeError

DEFAULT_PORT = 7780
PORT_OFFSETS = {"ingress": 0, "events": 1, "control": 2}  # the bus sockets; each listens on port + offset
BUS_SOCKETS = tuple(PORT_OFFSETS)
CONFIG_NAME = "bus.toml"


class BusConfigError(HomeError):
    """bus.toml or OH_BUS is unusable; the message is one line saying which and what to do."""


class TcpListen(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`[tcp]` of bus.toml: the address and first port the ledger listens on."""

    address: str = "127.0.0.1"
    port: int = DEFAULT_PORT


class BusConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """bus.toml: no `[tcp]` table means ipc only."""

    tcp: TcpListen | None = None


@dataclass(frozen=True)
class TcpAddress:
    """A host and the first of the three bus ports."""

    host: str
    port: int

    def endpoint(self, name: str) -> str:
        """The `tcp://` endpoint of bus socket `name` (ingress, events, control)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port + PORT_OFFSETS[name]}"

    def describe(self) -> str:
        """`tcp://HOST:PORT` (what a client puts in OH_BUS)."""
        return self.endpoint("ingress")

    @property
    def loopback(self) -> bool:
        """True for an address only this host can reach (127/8, ::1)."""
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def _check_port(port: int, where: str) -> None:
    last = 65535 - max(PORT_OFFSETS.values())
    if not 1 <= port <= last:
        raise BusConfigError(f"{where}: port {port} must be between 1 and {last} (the bus uses it and the "
                             f"{max(PORT_OFFSETS.values())} ports after it)")


def load_bus_config(path: Path) -> BusConfig:
    """bus.toml as a BusConfig (ipc only when the file is missing); BusConfigError naming the key."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return BusConfig()
    except OSError as exc:
        raise BusConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        config = msgspec.toml.decode(data, type=BusConfig)
    except msgspec.ValidationError as exc:
        what, _, at = str(exc).splitlines()[0].partition(" - at `$")
        key = at.rstrip("`").lstrip(".")
        raise BusConfigError(f"{path}: {key + ': ' if key else ''}{what[0].lower()}{what[1:]}") from None
    except msgspec.DecodeError as exc:
        raise BusConfigError(f"{path}: not valid TOML: {str(exc).splitlines()[0]}") from None
    if config.tcp is not None:
        try:
            ipaddress.ip_address(config.tcp.address)
        except ValueError:
            raise BusConfigError(
                f"{path}: tcp.address: {config.tcp.address!r} is not an IP address (e.g. 127.0.0.1, the "
                "default, or an address of this host's network interface)"
            ) from None
        _check_port(config.tcp.port, f"{path}: tcp.port")
    return config


def listen_address(config: BusConfig) -> TcpAddress | None:
    """Where the ledger listens on tcp, or None (ipc only)."""
    return None if config.tcp is None else TcpAddress(config.tcp.address, config.tcp.port)


def parse_bus(text: str) -> TcpAddress | None:
    """`OH_BUS`: None for ipc (unset, empty, `ipc`), else the ledger's tcp address; BusConfigError if malformed."""
    text = text.strip()
    if text in ("", "ipc", "ipc://"):
        return None
    usage = "OH_BUS must be tcp://HOST:PORT (the ledger's bus.toml port) or empty for the local ipc bus"
    if not text.startswith("tcp://"):
        raise BusConfigError(f"OH_BUS={text!r}: {usage}")
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise BusConfigError(f"OH_BUS={text!r}: {usage}") from None
    if not host or port is None or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise BusConfigError(f"OH_BUS={text!r}: {usage}")
    _check_port(port, f"OH_BUS={text!r}")
    return TcpAddress(host, port)
