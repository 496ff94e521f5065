"""Number settings from the environment: unset is the default, anything else must be a whole number of at
least `least` (`env_int`) or a number not below 0 (`env_float`), or the process stops with one line naming the
variable (docs/configuration.md)."""

from __future__ import annotations

import os


def env_int(name: str, default: int, least: int) -> int:
    """`name`'s value, `default` when unset or empty; SystemExit with one line when it is not a whole number >= least."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = least - 1
    if value < least:
        raise SystemExit(f"{name} must be a whole number of at least {least} (got {raw!r})")
    return value


def env_float(name: str, default: float, meaning: str = "") -> float:
    """`name`'s value, `default` when unset or empty; SystemExit with one line when it is not a number >= 0.
    `meaning` ("MB; 0: never trim") is said in brackets in that line."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    tail = f" ({meaning})" if meaning else ""
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number{tail}") from None
    if value < 0:
        raise SystemExit(f"{name}={raw!r} must not be negative{tail}")
    return value
