"""Flow of many symbols computed at once (`flow_rows_many`, issue #14.4) is each symbol's flow computed alone.

The flow worker now joins and groups the chains of up to `batch_partitions()` symbols in one pass instead of
~60 Arrow calls per symbol; each symbol's rows (values, nulls, order, schema) must be exactly what
`flow_rows` (the old per-symbol path: contract_flow per pair, then every grouping) gives it, for named and
numbered sim symbols, windows of one and two pairs, contracts listed on one side only; and a bad chain
anywhere in a batch must raise so the worker falls back to one symbol at a time.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from oh.adapters.sim.options import option_chain
from oh.adapters.sim.universe import SYNTHETIC_ENV
from oh.domain import calendar, flow

SESSIONS = [d.astype(date) for d in calendar.sessions(date(2025, 6, 2), date(2025, 6, 4))]
SYMBOLS = ["AAPL", "SPY", *(f"S{i:04d}" for i in range(0, 40, 3))]


@pytest.fixture(autouse=True)
def _numbered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SYNTHETIC_ENV, "100")


def _chains(symbols: list[str]) -> dict[str, dict[date, pa.Table]]:
    out: dict[str, dict[date, pa.Table]] = {}
    for i, symbol in enumerate(symbols):
        by_day = {d: option_chain(symbol, d) for d in SESSIONS}
        if i % 4 == 1:  # contracts on one side only: drop some of today's and some of before's
            last, first = SESSIONS[-1], SESSIONS[-2]
            by_day[last] = by_day[last].slice(0, by_day[last].num_rows - 7)
            by_day[first] = by_day[first].slice(5)
        out[symbol] = by_day
    return out


def _old_flow_rows(chains: dict[date, pa.Table], pairs: list[tuple[date, date]], window: int) -> pa.Table:
    """What services/flow.py computed per partition before the batch (the oracle)."""
    contracts = pa.concat_tables([flow.contract_flow(chains[a], chains[b]) for a, b in pairs])
    return pa.concat_tables([flow.group_flow(contracts, g, window) for g in flow.GROUP_BYS])


@pytest.mark.parametrize("window", [1, 2])
def test_many_at_once_equals_each_alone(window: int) -> None:
    """Each symbol's rows from the batch equal its rows computed alone, bit for bit, in the same order."""
    chains = _chains(SYMBOLS)
    pairs = flow.window_pairs(SESSIONS, SESSIONS[-1], window)
    batch = flow.flow_rows_many(chains, pairs, window)
    assert list(batch) == SYMBOLS
    for symbol in SYMBOLS:
        alone = flow.flow_rows(chains[symbol], pairs, window)
        assert alone.equals(_old_flow_rows(chains[symbol], pairs, window))
        assert batch[symbol].schema.equals(flow.GROUP_FLOW_SCHEMA)
        assert batch[symbol].equals(alone), symbol
        assert set(batch[symbol].column("symbol").to_pylist()) == {symbol}


def test_order_of_symbols_in_a_batch_changes_nothing() -> None:
    """A symbol's rows do not depend on which symbols share its batch or in what order."""
    chains = _chains(SYMBOLS)
    pairs = flow.window_pairs(SESSIONS, SESSIONS[-1], 1)
    forward = flow.flow_rows_many(chains, pairs, 1)
    backward = flow.flow_rows_many({s: chains[s] for s in reversed(SYMBOLS)}, pairs, 1)
    alone = flow.flow_rows_many({"S0003": chains["S0003"]}, pairs, 1)
    for symbol in SYMBOLS:
        assert forward[symbol].equals(backward[symbol])
    assert alone["S0003"].equals(forward["S0003"])


def test_a_bad_chain_in_the_batch_raises() -> None:
    """A chain listing a contract twice, or missing a session, makes the batch raise (the worker then computes
    each symbol alone so only that partition fails)."""
    chains = _chains(SYMBOLS[:5])
    pairs = flow.window_pairs(SESSIONS, SESSIONS[-1], 1)
    doubled = dict(chains)
    today = chains["SPY"][SESSIONS[-1]]
    doubled["SPY"] = {**chains["SPY"], SESSIONS[-1]: pa.concat_tables([today, today.slice(0, 1)])}
    with pytest.raises(ValueError, match="twice"):
        flow.flow_rows_many(doubled, pairs, 1)
    missing = dict(chains)
    missing["AAPL"] = {SESSIONS[-1]: chains["AAPL"][SESSIONS[-1]]}
    with pytest.raises(KeyError):
        flow.flow_rows_many(missing, pairs, 1)
    assert flow.flow_rows(chains["S0000"], pairs, 1).num_rows > 0  # the good ones alone still compute


def test_no_symbols_no_rows() -> None:
    """An empty batch is an empty answer."""
    assert flow.flow_rows_many({}, [(SESSIONS[0], SESSIONS[1])], 1) == {}


def test_the_chain_inputs_are_all_flow_reads() -> None:
    """Flow from chains narrowed to CHAIN_INPUTS (what the worker now reads) equals flow from the whole chains."""
    chains = _chains(SYMBOLS[:6])
    pairs = flow.window_pairs(SESSIONS, SESSIONS[-1], 2)
    narrow = {s: {d: t.select(list(flow.CHAIN_INPUTS)) for d, t in by_day.items()} for s, by_day in chains.items()}
    wide = flow.flow_rows_many(chains, pairs, 2)
    for symbol, rows in flow.flow_rows_many(narrow, pairs, 2).items():
        assert rows.equals(wide[symbol])
