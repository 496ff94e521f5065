"""The limits of the ledger's query endpoint (and of `oh query` on the file), read from OH_QUERY_*.

One place for them: the ledger's query pool (services/ledger/queries.py, sandbox.py) enforces them,
and a client (`oh query`) reads the budget to wait as long as its query may run, without importing
the ledger. A malformed value raises ValueError naming the variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueryLimits:
    """How long a query may run, how much it may return, and how many may run or wait at once."""

    budget: float = 30.0  # seconds; a request may ask for less (OH_QUERY_BUDGET_SECONDS)
    max_rows: int = 1_000_000  # rows in one answer (OH_QUERY_MAX_ROWS)
    max_bytes: int = 512 * 1024 * 1024  # Arrow bytes in one answer (OH_QUERY_MAX_BYTES)
    threads: int = 2  # queries running at once in the ledger (OH_QUERY_THREADS)
    queue: int = 32  # queries waiting for a thread; past it the answer is `busy` (OH_QUERY_QUEUE)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> QueryLimits:
        """The limits from OH_QUERY_* variables (defaults above); a bad value raises ValueError naming it."""
        source = os.environ if env is None else env
        defaults = cls()

        def number(name: str, default: float, cast: Callable[[str], float]) -> Any:
            raw = source.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                value = cast(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}={raw!r} must be a positive number")
            return value

        return cls(
            budget=number("OH_QUERY_BUDGET_SECONDS", defaults.budget, float),
            max_rows=number("OH_QUERY_MAX_ROWS", defaults.max_rows, int),
            max_bytes=number("OH_QUERY_MAX_BYTES", defaults.max_bytes, int),
            threads=number("OH_QUERY_THREADS", defaults.threads, int),
            queue=number("OH_QUERY_QUEUE", defaults.queue, int),
        )
