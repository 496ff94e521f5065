"""CURVE keys for the tcp bus: where they live, how they are made and checked, and how a socket gets them.

A key directory (`$OH_HOME/config/keys/`, or `OH_BUS_KEYS` for a client) holds, in pyzmq's
certificate format (`zmq.auth.create_certificates`, `zmq.auth.load_certificate`):

    server.key          the ledger's public key: every client needs a copy
    server.key_secret   the ledger's secret key: only on the ledger's host
    client.key          this home's client public key: the ledger's owner authorizes it (`oh keys allow`)
    client.key_secret   this home's client secret key
    authorized/NAME.key the public keys of the clients the ledger lets in; pyzmq's authenticator reads
                        this directory (services/ledger/tcp.py)

Contract:
- The directories are 0700 and every file 0600. A secret key file that others may read, or a key
  directory that others may write, is refused when loaded (like ssh does), with one line saying how
  to fix it: a key others could read or replace is no key.
- Every key read is checked: 40 Z85 characters decoding to 32 bytes. `allow` takes a public key file
  only (never a secret one) and refuses a name that is not a plain file name.
- `apply_client` / `apply_server` put the keys on a socket; bus/home.py applies the client's keys to
  every bus socket it connects over tcp, the ledger the server's to every socket it binds on tcp.
- Every failure is a CurveKeyError (a HomeError: the CLI prints it as one line and exits 2).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bus.errors import HomeError

if TYPE_CHECKING:
    import zmq

SERVER = "server"
CLIENT = "client"
AUTHORIZED = "authorized"
LOCAL_CLIENT = "local"  # the name under which `oh keys init` authorizes the ledger home's own client key
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_Z85 = re.compile(rb"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


class CurveKeyError(HomeError):
    """A key is missing, malformed or unsafe; the message says which file and what to do."""


@dataclass(frozen=True)
class ClientKeys:
    """What a client socket needs: its own pair and the ledger's public key (Z85 bytes)."""

    public: bytes
    secret: bytes
    server_public: bytes


@dataclass(frozen=True)
class ServerKeys:
    """The ledger's key pair (Z85 bytes)."""

    public: bytes
    secret: bytes


def public_file(directory: Path, name: str) -> Path:
    return directory / f"{name}.key"


def secret_file(directory: Path, name: str) -> Path:
    return directory / f"{name}.key_secret"


def authorized_dir(directory: Path) -> Path:
    return directory / AUTHORIZED


# -- checking ----------------------------------------------------------------------------------
def _valid_key(key: bytes | None, path: Path, what: str) -> bytes:
    from zmq.utils import z85

    if key is None or not _Z85.match(key):
        raise CurveKeyError(f"{path}: no valid {what} key (40 Z85 characters) in it; is it a key made by `oh keys init`?")
    if len(z85.decode(key)) != 32:  # pragma: no cover - 40 Z85 characters always decode to 32 bytes
        raise CurveKeyError(f"{path}: the {what} key is not 32 bytes")
    return key


def _read(path: Path) -> tuple[bytes, bytes | None]:
    """(public, secret or None) of a certificate file; CurveKeyError when missing or unreadable."""
    from zmq.auth import load_certificate

    try:
        public, secret = load_certificate(path)
    except FileNotFoundError:
        raise CurveKeyError(f"{path} does not exist") from None
    except OSError as exc:
        if not path.exists():
            raise CurveKeyError(f"{path} does not exist") from None
        raise CurveKeyError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError:
        raise CurveKeyError(f"{path}: no public key in it; is it a key made by `oh keys init`?") from None
    return _valid_key(public, path, "public"), secret


def _check_private(path: Path) -> None:
    """Refuse a secret key file others may read or that is not a regular file of ours."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        raise CurveKeyError(f"{path}: a secret key must be a regular file owned by you")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise CurveKeyError(
            f"{path}: others may read this secret key (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"`chmod 600 {path}`, and make new keys if someone else could have copied it"
        )
    parent = os.lstat(path.parent)
    if parent.st_uid != os.geteuid() or stat.S_IMODE(parent.st_mode) & 0o022:
        raise CurveKeyError(f"{path.parent}: others may replace the keys in it: `chmod 700 {path.parent}`")


def read_public_key(path: Path) -> bytes:
    """The public key in a public key file; CurveKeyError for a secret key file (never hand those around)."""
    public, secret = _read(path)
    if secret is not None:
        raise CurveKeyError(
            f"{path} holds a SECRET key: give the public key file ({path.name.removesuffix('_secret')}), never the secret one"
        )
    return public


def _read_pair(directory: Path, name: str, hint: str) -> tuple[bytes, bytes]:
    path = secret_file(directory, name)
    if not path.exists():
        raise CurveKeyError(f"no {name} key in {directory} ({path.name} is missing): {hint}")
    _check_private(path)
    public, secret = _read(path)
    return public, _valid_key(secret, path, "secret")


# -- loading -----------------------------------------------------------------------------------
def load_client(directory: Path) -> ClientKeys:
    """This home's client keys and the ledger's public key, from `directory`."""
    public, secret = _read_pair(
        directory, CLIENT, "run `oh keys init --client` (or point OH_BUS_KEYS at a key directory)"
    )
    server = public_file(directory, SERVER)
    if not server.exists():
        raise CurveKeyError(
            f"no ledger public key in {directory} ({server.name} is missing): copy the ledger host's "
            f"{SERVER}.key and run `oh keys init --client --server-key FILE`"
        )
    return ClientKeys(public=public, secret=secret, server_public=read_public_key(server))


def load_server(directory: Path) -> ServerKeys:
    """The ledger's key pair, from `directory`."""
    public, secret = _read_pair(directory, SERVER, "run `oh keys init` on the ledger's host")
    return ServerKeys(public=public, secret=secret)


def apply_client(sock: zmq.Socket, keys: ClientKeys) -> None:  # type: ignore[type-arg]
    """Make `sock` a CURVE client of the ledger (before it connects)."""
    import zmq

    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server_public)


def apply_server(sock: zmq.Socket, keys: ServerKeys, domain: str) -> None:  # type: ignore[type-arg]
    """Make the next bind of `sock` a CURVE server that asks the ZAP handler of `domain` about each client
    and refuses everyone when no handler answers (ZAP_ENFORCE_DOMAIN; libzmq would otherwise let any
    client that knows the server key in)."""
    import zmq

    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    sock.setsockopt(zmq.CURVE_SERVER, 1)


# -- making and managing -------------------------------------------------------------------------
def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _make_pair(directory: Path, name: str) -> Path:
    from zmq.auth import create_certificates

    public, secret = create_certificates(directory, name)
    for path in (public, secret):
        os.chmod(path, 0o600)
    return Path(public)


def init_keys(directory: Path, server: bool, server_key: Path | None = None) -> list[str]:
    """Make what is missing: the client pair, and the server pair (`server`) with the own client authorized,
    or the ledger's public key copied from `server_key`. Existing keys are kept. Returns what was done."""
    done: list[str] = []
    server_public = read_public_key(server_key) if server_key is not None else None
    if server_public is not None and secret_file(directory, SERVER).exists():
        raise CurveKeyError(
            f"{directory} holds the ledger's own key pair: a ledger home needs no --server-key "
            "(use OH_BUS_KEYS for a separate client key directory)"
        )
    _private_dir(directory)
    _private_dir(authorized_dir(directory))
    if not secret_file(directory, CLIENT).exists():
        _make_pair(directory, CLIENT)
        done.append(f"made the client key {public_file(directory, CLIENT)}")
    if server and not secret_file(directory, SERVER).exists():
        _make_pair(directory, SERVER)
        done.append(f"made the ledger key {public_file(directory, SERVER)} (give this public file to clients)")
    if secret_file(directory, SERVER).exists() and not public_file(authorized_dir(directory), LOCAL_CLIENT).exists():
        allow(directory, public_file(directory, CLIENT), LOCAL_CLIENT)
        done.append(f"authorized this home's client key as {LOCAL_CLIENT!r}")
    if server_public is not None:
        target = public_file(directory, SERVER)
        current = read_public_key(target) if target.exists() else None
        if current != server_public:
            _write_public(target, server_public)
            done.append(f"{'replaced' if current else 'stored'} the ledger's public key in {target}")
    return done


def _write_public(path: Path, key: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(f'#   ZeroMQ CURVE Public Certificate (oh)\nmetadata\ncurve\n    public-key = "{key.decode()}"\n')
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def check_name(name: str) -> str:
    """A client name usable as a file name; CurveKeyError otherwise."""
    if not _NAME.match(name):
        raise CurveKeyError(
            f"client name {name!r}: use letters, digits, '.', '_' or '-' (up to 64, starting with a letter or digit)"
        )
    return name


def authorized(directory: Path) -> list[tuple[str, bytes]]:
    """(name, public key) of every authorized client, by name."""
    folder = authorized_dir(directory)
    if not folder.is_dir():
        return []
    return [(path.name.removesuffix(".key"), read_public_key(path)) for path in sorted(folder.glob("*.key"))]


def allow(directory: Path, key_file: Path, name: str) -> Path:
    """Authorize the client whose public key is in `key_file`, under `name`; return the file written.

    Refused: a secret key file, a malformed key, a name taken by another key; the same key under
    another name is refused too (revoke that name first), so one key has one name to revoke.
    """
    check_name(name)
    key = read_public_key(key_file)
    if not secret_file(directory, SERVER).exists():
        raise CurveKeyError(f"no ledger key in {directory}: run `oh keys init` on the ledger's host first")
    for other, known in authorized(directory):
        if known == key and other != name:
            raise CurveKeyError(f"that key is already authorized as {other!r}")
        if other == name and known != key:
            raise CurveKeyError(f"{name!r} is authorized with another key: `oh keys revoke {name}` first")
    target = public_file(_private_dir(authorized_dir(directory)), name)
    _write_public(target, key)
    return target


def revoke(directory: Path, name: str) -> bool:
    """Remove an authorized client; False if no client has that name."""
    check_name(name)
    path = public_file(authorized_dir(directory), name)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
