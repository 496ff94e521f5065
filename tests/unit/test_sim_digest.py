"""The sim market's numbers do not drift: a digest of a few fetches, bit for bit, against one recorded before.

Every chain, contract list, bar and candle of the sim market is a function of (symbol, session) that the
journals, the tests and docs/sim_market.md rely on. Work that makes the sim cheaper (issue #14.4) must not
change a single bit of it, and a comparison of whole tables against another checkout is too slow for the suite,
so this digests a few fetches that reach every part of the model: named (full listing) and numbered names of
each listing tier, a day next to an expiry, the anchor session, a range of bars across an expiry, contracts
parsed rather than taken from the memo, candles split-adjusted and not. Each float column is hashed as its
IEEE bits (no rounding), strings and dates as text. DIGEST was recorded from the code before the rework
(main at 9dd8802, numpy 2.4 on x86-64) and the reworked code gives it too.

If this fails after a change meant only to be faster, the change is wrong. After a deliberate change of the
model, record the new digest and say so in docs/sim_market.md (every stored history changes with it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from oh.adapters.sim.provider import SPLITS_ENV, SimProvider
from oh.adapters.sim.universe import SYNTHETIC_ENV

DIGEST = "f163445604889001f4f2ccd1a1af53c0add06dc6a18500f7c878730b15f706db"
SYMBOLS = ("SPY", "AAPL", "S0000", "S0003", "S0017", "S0042")  # named; numbered of several listing tiers
DAYS = (date(2025, 1, 2), date(2025, 6, 18), date(2026, 3, 20))  # the anchor; before a holiday and an expiry; an expiry


def _fetches() -> Iterator[tuple[str, pa.Table]]:
    provider = SimProvider(clock=lambda: datetime(2030, 1, 2, tzinfo=UTC))
    for symbol in SYMBOLS:
        for day in DAYS:
            yield f"chain {symbol} {day}", provider.option_chain(symbol, day)
            contracts = provider.option_contracts(symbol, day, 45)
            yield f"contracts {symbol} {day}", pa.table({"contract": pa.array(contracts, pa.string())})
            yield f"bars {symbol} {day}", provider.option_bars(symbol, contracts, day, day)
            week = provider.option_bars(symbol, contracts[::-3], day - timedelta(days=7), day)  # parsed, a range
            yield f"bars range {symbol} {day}", week
            yield f"candles {symbol} {day}", provider.daily_candles(symbol, date(day.year - 1, 12, 1), day)


def _digest() -> str:
    sha = hashlib.sha256()
    for name, table in _fetches():
        sha.update(f"{name}:{table.num_rows}".encode())
        for column_name, column in zip(table.column_names, table.columns, strict=True):
            sha.update(column_name.encode())
            if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
                sha.update(np.ascontiguousarray(column.to_numpy()).tobytes())
            else:
                sha.update("\x1f".join(str(v) for v in column.to_pylist()).encode())
    return sha.hexdigest()


def test_a_few_fetches_digest_to_what_they_did(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chains, contract lists, bars and candles of named and numbered symbols on a few days: bit for bit the numbers
    recorded before (a cheaper sim must be the same sim)."""
    monkeypatch.setenv(SYNTHETIC_ENV, "100")
    monkeypatch.setenv(SPLITS_ENV, "AAPL@2025-06-02:4,S0003@2026-01-05:2")
    assert _digest() == DIGEST
