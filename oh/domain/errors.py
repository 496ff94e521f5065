"""Error fingerprints: the same bug gets the same hash across runs (pure)."""

from __future__ import annotations

import hashlib
import traceback
from pathlib import Path


def stack_hash(exc: BaseException) -> str:
    """A stable 16-hex-digit hash of the exception type and the (file, function) frames it passed.

    Line numbers and messages are left out so that an edit elsewhere in a file, or a different
    symbol in the message, does not split one recurring failure into many.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    parts = [type(exc).__qualname__] + [f"{Path(f.filename).name}:{f.name}" for f in frames]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def one_line(exc: BaseException, limit: int = 500) -> str:
    """The exception's message on one line, for a person to read."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:limit]
