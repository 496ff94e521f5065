"""Coverage and gaps (pure): which expected sessions each symbol has, and the missing ranges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa


@dataclass(frozen=True, order=True)
class Gap:
    """A run of consecutive expected sessions missing for one asset and symbol."""

    asset_key: str
    symbol: str
    start: date
    end: date
    sessions: int


def missing_ranges(expected: np.ndarray, present: np.ndarray) -> list[tuple[date, date, int]]:
    """Contiguous (in session order) runs of `expected` sessions absent from `present`."""
    expected = np.asarray(expected, dtype="datetime64[D]")
    missing_mask = ~np.isin(expected, np.asarray(present, dtype="datetime64[D]"))
    ranges: list[tuple[date, date, int]] = []
    index = 0
    while index < len(expected):
        if not missing_mask[index]:
            index += 1
            continue
        end = index
        while end + 1 < len(expected) and missing_mask[end + 1]:
            end += 1
        ranges.append((expected[index].astype(date), expected[end].astype(date), end - index + 1))
        index = end + 1
    return ranges


def find_gaps(asset_key: str, expected: dict[str, np.ndarray], present: dict[str, np.ndarray]) -> list[Gap]:
    """Every gap of every symbol, sorted by symbol then date."""
    gaps = [
        Gap(asset_key, symbol, start, end, count)
        for symbol in sorted(expected)
        for start, end, count in missing_ranges(expected[symbol], present.get(symbol, np.array([], "datetime64[D]")))
    ]
    return sorted(gaps)


def coverage_matrix(sessions: np.ndarray, present: dict[str, np.ndarray], first: dict[str, date]) -> pa.Table:
    """Long-form symbol x session matrix for a heatmap: state is present, missing or before_start."""
    symbols, days, states = [], [], []
    sessions = np.asarray(sessions, dtype="datetime64[D]")
    for symbol in sorted(present):
        have = np.isin(sessions, present[symbol].astype("datetime64[D]"))
        start = np.datetime64(first.get(symbol, date.max), "D")
        for day, ok in zip(sessions, have, strict=True):
            symbols.append(symbol)
            days.append(day.astype(date))
            states.append("present" if ok else "before_start" if day < start else "missing")
    return pa.table({"symbol": pa.array(symbols, pa.string()), "session": pa.array(days, pa.date32()),
                     "state": pa.array(states, pa.string())})
