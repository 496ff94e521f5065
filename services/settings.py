"""Whole-number settings from the environment: unset is the default, anything else must be a whole number
of at least `least`, or the process stops with one line naming the variable (docs/configuration.md)."""

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
