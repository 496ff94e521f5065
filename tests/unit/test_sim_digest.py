"""The sim market's numbers do not drift: a few fetches against a record of them made before.

Every chain, contract list, bar and candle of the sim market is a function of (symbol, session) that the
journals, the tests and docs/sim_market.md rely on. Work that makes the sim cheaper (issue #14.4) must not
change it, and a comparison of whole tables against another checkout is too slow for the suite, so this checks a
few fetches that reach every part of the model: named (full listing) and numbered names of each listing tier, a
day next to an expiry, the anchor session, a range of bars across an expiry, contracts parsed rather than taken
from the memo, candles split-adjusted and not.

What is compared (tests/fixtures/sim_digest.json, recorded from main at 9dd8802, before the rework, and given
bit for bit by the reworked code on the machine that recorded it): each fetch's row count, a SHA-256 of its text,
date and integer columns, and per float column its NaN count and the sums of its values, their absolute values and
their squares, to 1e-9 relative. Not the floats' bits: numpy picks its exp and log by the CPU (AVX-512 here, other
code on a laptop without it), and those may differ in the last bit, which would fail a bitwise digest on another
machine for no change of the model. A drift of the model moves these sums by far more than 1e-9.

If this fails after a change meant only to be faster, the change is wrong. After a deliberate change of the
model, record the fixture again (`python -m tests.unit.test_sim_digest`) and say so in docs/sim_market.md
(every stored history changes with it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from oh.adapters.sim.provider import SPLITS_ENV, SimProvider
from oh.adapters.sim.universe import SYNTHETIC_ENV

FIXTURE = Path(__file__).parent.parent / "fixtures" / "sim_digest.json"
ENV = {SYNTHETIC_ENV: "100", SPLITS_ENV: "AAPL@2025-06-02:4,S0003@2026-01-05:2"}
SYMBOLS = ("SPY", "AAPL", "S0000", "S0003", "S0017", "S0042")  # named; numbered of several listing tiers
DAYS = (date(2025, 1, 2), date(2025, 6, 18), date(2026, 3, 20))  # the anchor; before a holiday and an expiry; an expiry
RELATIVE = 1e-9


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


def _summary(table: pa.Table) -> dict[str, Any]:
    """Row count, a hash of the exact columns (text, dates, integers), and per float column its NaN count and sums."""
    exact = hashlib.sha256()
    floats: dict[str, list[float]] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_floating(column.type):
            values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
            known = values[~np.isnan(values)]
            floats[name] = [int(values.size - known.size), float(known.sum()), float(np.abs(known).sum()),
                            float(np.square(known).sum())]
        else:
            exact.update(name.encode())
            exact.update("\x1f".join(str(v) for v in column.to_pylist()).encode())
    return {"rows": table.num_rows, "exact": exact.hexdigest(), "floats": floats}


def summaries() -> dict[str, dict[str, Any]]:
    return {name: _summary(table) for name, table in _fetches()}


def test_a_few_fetches_give_what_they_gave(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chains, contract lists, bars and candles of named and numbered symbols on a few days: the same rows, the same
    text, dates and integers, and floats whose sums agree to 1e-9 with those recorded (a cheaper sim is the same sim)."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    recorded = json.loads(FIXTURE.read_text())
    got = summaries()
    assert list(got) == list(recorded)
    for name, summary in got.items():
        want = recorded[name]
        assert (summary["rows"], summary["exact"], list(summary["floats"])) == (
            want["rows"], want["exact"], list(want["floats"])), name
        for column, (nans, *sums) in summary["floats"].items():
            want_nans, *want_sums = want["floats"][column]
            assert nans == want_nans, (name, column)
            assert sums == pytest.approx(want_sums, rel=RELATIVE, abs=1e-12), (name, column)


if __name__ == "__main__":  # record the fixture again (after a deliberate change of the model)
    os.environ.update(ENV)
    FIXTURE.write_text(json.dumps(summaries(), indent=1, sort_keys=False) + "\n")
    print(f"wrote {FIXTURE}")
