"""Typed config files: decode the user's files into msgspec structs that refuse unknown keys and wrong types.

msgspec does the work (`forbid_unknown_fields=True` structs, `msgspec.toml.decode`, `msgspec.convert`):
a misspelt key (`stok_feed`) or a wrong type (`rate = "high"`) is an error, never a silently dropped
or defaulted setting. `ConfigFileError.message` is one line naming the file and the key
(`providers.toml: alpaca.stok_feed: unknown key (allowed: data_url, option_feed, stock_feed, trading_url)`);
each config module wraps it in its own error type. Values are never echoed (they may be secrets).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>.*)`)?$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>.*)`$")


class ConfigFileError(ValueError):
    """A config file that does not decode into its struct; the message names the file and the key."""


def _key(path: str) -> str:
    """`$.alpaca.stock_feed` -> `alpaca.stock_feed`; `$.watchlists[2]` -> `watchlists[2]`."""
    return path[1:] if path.startswith(".") else path


def _fields_at(kind: Any, path: str) -> tuple[str, ...]:
    """The field names of the struct found by following `path` (`.alpaca`) from struct type `kind`."""
    for name in [part for part in re.split(r"[.\[]", path) if part and not part.endswith("]")]:
        fields = {f.name: f.type for f in msgspec.structs.fields(kind)} if isinstance(kind, type) else {}
        kind = fields.get(name)
        if not (isinstance(kind, type) and issubclass(kind, msgspec.Struct)):
            return ()
    return tuple(sorted(f.name for f in msgspec.structs.fields(kind))) if isinstance(kind, type) else ()


def describe(error: msgspec.MsgspecError, kind: Any, label: str, prefix: str = "") -> str:
    """One line for a msgspec error: `label: key: what is wrong` (`prefix` goes before the key path)."""
    match = _AT.match(str(error).splitlines()[0])
    what, path = (match.group("what"), match.group("path") or "") if match else (str(error), "")
    what = what.replace(" | null", "")
    unknown = _UNKNOWN.match(what)
    if unknown:
        allowed = _fields_at(kind, path) if isinstance(kind, type) and issubclass(kind, msgspec.Struct) else ()
        key = ".".join(p for p in (prefix, _key(path), unknown.group("key")) if p)
        return f"{label}: {key}: unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    key = "".join(p for p in (prefix, "." if prefix and path.startswith(".") else "", _key(path)) if p)
    if not key:
        return f"{label}: {what[0].lower()}{what[1:]}" if what else label
    return f"{label}: {key}: {what[0].lower()}{what[1:]}"


def decode_toml(path: Path, kind: type[T]) -> T:
    """The TOML file at `path` as a `kind` (its defaults when the file is missing); ConfigFileError naming the key."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return msgspec.toml.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise ConfigFileError(describe(exc, kind, str(path))) from None
    except msgspec.DecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {str(exc).splitlines()[0]}") from None


def convert(value: Any, kind: type[T], label: str, prefix: str = "") -> T:
    """`value` (decoded JSON, a dict of KEY=VALUE lines) as a `kind`; ConfigFileError naming `label` and the key."""
    try:
        return msgspec.convert(value, type=kind)
    except msgspec.ValidationError as exc:
        raise ConfigFileError(describe(exc, kind, label, prefix)) from None
