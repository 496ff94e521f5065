"""One data directory (`OH_HOME`, default `./data`) holds everything an installation writes; only its user may use it.

Contract:
- Private by default. `Home.ensure()` (called by every entrypoint) sets the process umask to 077 and
  creates the home's directories 0700, tightening existing ones we own, so every file the platform
  writes (journal, warehouse, logs, state, config, briefings) is 0600 in 0700 directories.
- The socket directory (`sockets`) is 0700, owned by this user, and not a symbolic link. It is
  `$OH_SOCKET_DIR` when set, else `OH_HOME/run`, else (when `OH_HOME` is too deep for the 107-byte
  limit of unix socket paths) a directory with a random name made by `tempfile.mkdtemp` under
  `$XDG_RUNTIME_DIR` or the temp dir, recorded as the symbolic link `OH_HOME/run/sockets` so every
  process of the home finds the same one. A random name cannot be claimed in advance by another
  user; the link lives in the private home, so only this user can repoint it. A directory that fails
  these checks is refused with HomeError (a one-line message naming the path and OH_SOCKET_DIR),
  except a recorded short directory that went missing (a reboot cleans /tmp) or was taken by
  someone else: a fresh one replaces it. One of ours that others may only read is tightened to 0700
  (a home made before this rule, under umask 022).
- Resolving `sockets` (so `endpoint()` too) creates and checks the directory: a client checks it
  before it connects, a server before it binds.
- `endpoint(name)` is the one place that decides where a bus socket is: the home's ipc directory, or,
  when the client's `OH_BUS` is `tcp://HOST:PORT` (bus/network.py), the ledger on that host for the
  three bus sockets (ingress, events, control; the tick channel stays local). `connect(sock, name)` is
  how every bus client connects (producer, subscriber, control client, heartbeater): over tcp it first
  gives the socket this home's CURVE client keys (bus/curve.py; from `OH_BUS_KEYS`, else
  `config/keys/`), so no bus socket ever goes over tcp in plain text. The ledger binds
  `ipc_endpoint(name)` and, when bus.toml asks, tcp (services/ledger/tcp.py).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bus.errors import HomeError

if TYPE_CHECKING:
    import zmq

    from bus.network import TcpAddress

IPC_PATH_LIMIT = 100  # the kernel allows 107 bytes for a unix socket path; keep a margin
PRIVATE_UMASK = 0o077
SOCKET_LINK = "sockets"  # OH_HOME/run/sockets -> the short socket dir of a deep home
_LONGEST_SOCKET = "supervisor.sock"


def private_umask() -> None:
    """Make every file and directory this process creates private to its user (umask 077)."""
    os.umask(PRIVATE_UMASK)


def _unsafe(st: os.stat_result) -> str | None:
    """Why a directory with this lstat is not a safe socket directory, or None."""
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if st.st_uid != os.geteuid():
        return f"it belongs to uid {st.st_uid}, not to you (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        return f"others may write into it (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _refuse(path: Path, problem: str) -> HomeError:
    return HomeError(
        f"refusing the socket directory {path}: {problem}; remove it, or set OH_SOCKET_DIR to a directory "
        "that only you can use (mode 0700)"
    )


def private_dir(path: Path) -> Path:
    """Create `path` (0700) if missing, then check it is ours, private and not a link; raise HomeError if not."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise HomeError(f"cannot create the socket directory {path}: {exc.strerror}; set OH_SOCKET_DIR") from None
    st = os.lstat(path)
    problem = _unsafe(st)
    if problem:
        raise _refuse(path, problem)
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)  # ours, and nobody else could write into it: just close it
    return path


def _fits(directory: Path) -> bool:
    return len(str(directory / _LONGEST_SOCKET)) <= IPC_PATH_LIMIT


@dataclass(frozen=True)
class Home:
    """The paths under one `OH_HOME`: journal, warehouse, logs, state, config and sockets; and where its bus is.

    `bus` (`OH_BUS`) and `bus_keys` (`OH_BUS_KEYS`) are read from the environment when not given.
    """

    root: Path
    bus: str = field(default_factory=lambda: os.environ.get("OH_BUS", ""))
    bus_keys: str = field(default_factory=lambda: os.environ.get("OH_BUS_KEYS", ""))

    @classmethod
    def from_env(cls) -> Home:
        """Resolve `OH_HOME` (default `./data`) to an absolute path; two homes never collide."""
        return cls(Path(os.environ.get("OH_HOME", "data")).expanduser().resolve())

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "oh.duckdb"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def run(self) -> Path:
        """`OH_HOME/run`: the socket directory of a short home, else where the short one is recorded."""
        return self.root / "run"

    @property
    def sockets(self) -> Path:
        """The socket directory, created and checked (see the module doc); raises HomeError."""
        override = os.environ.get("OH_SOCKET_DIR")
        if override:
            return private_dir(Path(override))
        if _fits(self.run):
            return private_dir(self.run)
        return self._short_sockets()

    def _short_sockets(self) -> Path:
        """The recorded short socket directory of a deep home; made (random name) and recorded if none is."""
        link = private_dir(self.run) / SOCKET_LINK
        try:
            target = Path(os.readlink(link))
        except FileNotFoundError:
            target = None
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            raise HomeError(f"{link} should be a symbolic link to the socket directory: remove it") from None
        if target is not None:
            try:
                target.mkdir(mode=0o700)  # gone (a reboot cleaned /tmp): take the same name back
            except FileExistsError:
                pass
            except OSError:
                return self._new_short_sockets(link, replace=True)
            if _unsafe(os.lstat(target)) is None:
                return private_dir(target)
            return self._new_short_sockets(link, replace=True)  # taken by someone else: never use it
        return self._new_short_sockets(link, replace=False)

    def _new_short_sockets(self, link: Path, replace: bool) -> Path:
        parent = Path(os.path.abspath(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()))
        if not _fits(parent / "oh-xxxxxxxx"):
            raise HomeError(
                f"socket paths under {self.run} and {parent} would pass the {IPC_PATH_LIMIT}-byte limit of "
                "unix sockets: set OH_SOCKET_DIR to a short directory"
            )
        fresh = Path(tempfile.mkdtemp(prefix="oh-", dir=parent))  # 0700, a name nobody can claim first
        if replace:
            temporary = link.with_name(f"{SOCKET_LINK}.{fresh.name}")
            os.symlink(fresh, temporary)
            os.replace(temporary, link)
            return fresh
        try:
            os.symlink(fresh, link)
        except FileExistsError:  # another process of this home recorded one first: use that one
            fresh.rmdir()
            return self._short_sockets()
        return fresh

    @property
    def keys(self) -> Path:
        """The CURVE key directory: `OH_BUS_KEYS`, else `config/keys` (bus/curve.py)."""
        return Path(self.bus_keys).expanduser().resolve() if self.bus_keys else self.config / "keys"

    @property
    def tcp(self) -> TcpAddress | None:
        """The ledger's tcp address this home's clients use (`OH_BUS`), or None for ipc; BusConfigError if malformed."""
        from bus.network import parse_bus

        return parse_bus(self.bus)

    def ipc_endpoint(self, name: str) -> str:
        """The `ipc://` endpoint of socket `name` in this home's socket directory (what the ledger binds)."""
        return f"ipc://{self.sockets / name}"

    def endpoint(self, name: str) -> str:
        """Where a client finds socket `name`: over tcp for a bus socket when `OH_BUS` says so, else ipc."""
        from bus.network import BUS_SOCKETS

        address = self.tcp if name in BUS_SOCKETS else None
        return address.endpoint(name) if address is not None else self.ipc_endpoint(name)

    def connect(self, sock: zmq.Socket, name: str) -> str:  # type: ignore[type-arg]
        """Connect `sock` to socket `name` (see `endpoint`), with this home's CURVE client keys over tcp."""
        endpoint = self.endpoint(name)
        if endpoint.startswith("tcp://"):
            from bus.curve import apply_client, load_client

            apply_client(sock, load_client(self.keys))
        sock.connect(endpoint)
        return endpoint

    def ensure(self) -> Home:
        """Set the private umask, create every directory this home needs (0700); safe to call again."""
        private_umask()
        for path in (self.root, self.journal, self.warehouse.parent, self.logs, self.state, self.config):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = path.stat()
            if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
                path.chmod(0o700)  # made before this rule (under umask 022): close it
        _ = self.sockets
        return self
