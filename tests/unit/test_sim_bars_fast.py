"""The sim's option-bars path computes less than it did (issue #14.4) and must give exactly the same rows.

`option_contracts` lists from the listing alone instead of pricing the whole chain, `option_bars` prices
only the columns a bar is made of (`quote_prices`), parses contract symbols with Arrow's string kernels and
hashes each contract once, and a quote's open interest shares its draws between today and yesterday
(`interest.open_interests`). The oracle here is the code as it was (copied below, per contract, from the full
chain and `quote_contracts`): every row, value and order must be equal, for named and numbered symbols,
several sessions, ranges and windows of days to expiry.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from contracts import rows
from oh.adapters.sim import bars, interest, options
from oh.adapters.sim.bars import _S_HIGH, _S_LOW, _S_TRADES, _S_VWAP, option_bars, option_contracts
from oh.adapters.sim.market import DEFAULT_SEED, close_path, mix, spot_path, symbol_seed, uniform
from oh.adapters.sim.options import option_chain, quote_contracts, quote_prices
from oh.adapters.sim.universe import SYNTHETIC_ENV
from oh.domain import calendar
from oh.domain.osi import BadOptionSymbol

SYMBOLS = ("AAPL", "SPY", "S0000", "S0003", "S0017", "S0042")  # named (full depth) and numbered (each tier)
DAYS = (date(2025, 1, 2), date(2025, 6, 3), date(2026, 3, 20))


@pytest.fixture(autouse=True)
def _numbered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SYNTHETIC_ENV, "100")


# ---------------------------------------------------------------- the old code, the oracle


def _old_contracts(symbol: str, day: date, max_dte: int) -> list[str]:
    chain = option_chain(symbol, day)
    within = pc.less_equal(chain["expiry"], pa.scalar(day + timedelta(days=max_dte), pa.date32()))
    return chain.filter(within).column("contract_symbol").to_pylist()


def _old_parse(symbol: str, contracts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    expiry, call, strike = [], [], []
    for text in contracts:
        tail = text[len(symbol):]
        expiry.append(f"20{tail[0:2]}-{tail[2:4]}-{tail[4:6]}")
        call.append(tail[6] == "C")
        strike.append(int(tail[7:]) / 1000.0)
    return np.array(expiry, dtype="datetime64[D]"), np.array(call, dtype=bool), np.array(strike, dtype=np.float64)


def _old_hash_uniform(symbol: str, contracts: np.ndarray, session: int, salt: np.uint64) -> np.ndarray:
    base = np.uint64(symbol_seed(f"bars:{symbol}", DEFAULT_SEED))
    keys = np.array(
        [int.from_bytes(hashlib.blake2b(c.encode(), digest_size=8).digest(), "little") for c in contracts], np.uint64
    )
    return uniform(mix(mix(keys ^ base) ^ np.uint64(session) ^ salt))


def _old_bars(symbol: str, contracts: list[str], start: date, end: date) -> pa.Table:
    expiry, call, strike = _old_parse(symbol, contracts)
    names = np.array(contracts, dtype=object)
    tables = []
    for day64 in calendar.sessions(start, end):
        day = day64.astype(object)
        live = expiry > day64
        if not live.any():
            continue
        session = calendar.session_index(day)
        today = quote_contracts(symbol, day, expiry[live], call[live], strike[live])
        close = today.column("last").to_numpy()
        volume = today.column("volume").to_numpy()
        spread = today.column("ask").to_numpy() - today.column("bid").to_numpy()
        before = calendar.all_sessions()[session - 1].astype(object)
        open_ = quote_contracts(symbol, before, expiry[live], call[live], strike[live]).column("last").to_numpy()
        traded = volume > 0
        ids = names[live]
        u_high, u_low, u_vwap, u_trades = (
            _old_hash_uniform(symbol, ids, session, salt) for salt in (_S_HIGH, _S_LOW, _S_VWAP, _S_TRADES)
        )
        high = np.round(np.maximum(open_, close) + u_high * spread * 0.5, 2)
        low = np.round(np.maximum(np.minimum(open_, close) - u_low * spread * 0.5, 0.01), 2)
        vwap = np.round(low + (high - low) * u_vwap, 4)
        trades = np.maximum(np.ceil(volume / (2 + 8 * u_trades)), 1).astype(np.int64)
        n = int(traded.sum())
        tables.append(pa.table(
            [
                pa.array(ids[traded], pa.string()), pa.array(np.full(n, symbol, dtype=object), pa.string()),
                pa.array(np.full(n, day64), pa.date32()), open_[traded], high[traded], low[traded], close[traded],
                volume[traded].astype(np.int64), trades[traded], vwap[traded],
            ],
            schema=rows.OPTION_BARS,
        ))
    return pa.concat_tables(tables) if tables else rows.OPTION_BARS.empty_table()


# ---------------------------------------------------------------- equal to the old code


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("max_dte", [0, 3, 45, 400, 5000])
def test_contract_list_is_the_chain_s_within_the_dte(symbol: str, max_dte: int) -> None:
    """option_contracts, now from the listing alone, is the priced chain's contracts within max_dte, in its order."""
    for day in DAYS:
        assert option_contracts(symbol, day, max_dte) == _old_contracts(symbol, day, max_dte)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_bars_equal_the_old_code(symbol: str) -> None:
    """option_bars gives the old rows, values and order: one session, a range, a subset, a shuffled list."""
    for day in DAYS:
        listed = option_contracts(symbol, day, 45)
        assert option_bars(symbol, listed, day, day).equals(_old_bars(symbol, listed, day, day))
        longer = option_contracts(symbol, day, 400)[::3]
        week = (day - timedelta(days=8), day)
        assert option_bars(symbol, longer, *week).equals(_old_bars(symbol, longer, *week))
        shuffled = list(np.random.default_rng(7).permutation(np.array(longer, dtype=object)))
        assert option_bars(symbol, shuffled, day, day).equals(_old_bars(symbol, shuffled, day, day))


def test_no_contracts_and_expired_contracts_give_no_bars() -> None:
    """An empty list, or contracts all expired by the range, give the empty bars table, as before."""
    assert option_bars("AAPL", [], DAYS[1], DAYS[1]).equals(rows.OPTION_BARS.empty_table())
    expired = option_contracts("AAPL", DAYS[0], 10)
    later = DAYS[0] + timedelta(days=60)
    assert option_bars("AAPL", expired, later, later).num_rows == 0
    assert _old_bars("AAPL", expired, later, later).num_rows == 0


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_quote_prices_are_the_quote_s_columns(symbol: str) -> None:
    """quote_prices gives exactly quote_contracts' bid, ask, last and volume for arbitrary contracts."""
    for day in DAYS:
        chain = option_chain(symbol, day)
        quoted = quote_contracts(symbol, day, chain["expiry"].to_numpy(), pc.equal(chain["right"], "C").to_numpy(
            zero_copy_only=False), chain["strike"].to_numpy())
        prices = quote_prices(symbol, day, chain["expiry"].to_numpy(), pc.equal(chain["right"], "C").to_numpy(
            zero_copy_only=False), chain["strike"].to_numpy())
        assert quoted.equals(chain)
        for name in ("bid", "ask", "last", "volume"):
            assert np.array_equal(prices[name], quoted.column(name).to_numpy()), name


@pytest.mark.parametrize("session_of", [lambda s: s, lambda s: 0, lambda s: 1, lambda s: 11])
def test_open_interest_of_two_sessions_at_once_is_each_alone(session_of: object) -> None:
    """open_interests over (s, s - 1) equals open_interests of each session alone, bit for bit (and at the
    calendar's first sessions, where the AR(1)'s lags reach before it)."""
    chain = option_chain("SPY", DAYS[1])
    exp_days = (chain["expiry"].to_numpy().astype("datetime64[D]") - np.datetime64("1970-01-01")).astype(np.int64)
    call = pc.equal(chain["right"], "C").to_numpy(zero_copy_only=False)
    mills = np.round(chain["strike"].to_numpy() * 1000).astype(np.int64)
    keys = interest.contract_keys(options._seed_of("SPY", DEFAULT_SEED), exp_days, call, mills)
    path = spot_path("SPY", DEFAULT_SEED)[3]

    def closes(lo: int, hi: int) -> np.ndarray:
        return path[lo:hi]

    session = session_of(calendar.session_index(DAYS[1]))  # type: ignore[operator]
    strike = mills / 1000.0
    pair = interest.open_interests(keys, strike, exp_days, call, (session, max(session - 1, 0)), closes, 0.3)
    for got, s in zip(pair, (session, max(session - 1, 0)), strict=True):
        assert np.array_equal(got, interest.open_interests(keys, strike, exp_days, call, (s,), closes, 0.3)[0])


@pytest.mark.parametrize("bad", [
    "AAPL250620C0020000",  # a strike digit short
    "AAPL250620C002000000",  # one too many
    "AAPL250620X00200000",  # no such right
    "AAPL250620C0020000A",  # a letter in the strike
    "MSFT250620C00200000",  # another root
    "AAPL25062OC00200000",  # a letter in the date
    "AAPL",  # no tail at all
    "",
])
def test_a_bad_contract_symbol_is_bad_option_symbol(bad: str) -> None:
    """Any malformed contract among good ones is BadOptionSymbol naming it, never a crash or a silent bar."""
    good = option_contracts("AAPL", DAYS[1], 45)[:3]
    with pytest.raises(BadOptionSymbol, match="AAPL"):
        option_bars("AAPL", [*good, bad], DAYS[1], DAYS[1])


def test_an_impossible_expiry_is_bad_option_symbol() -> None:
    """Digits that are no date (month 13) are a BadOptionSymbol too."""
    with pytest.raises(BadOptionSymbol, match="AAPL"):
        option_bars("AAPL", ["AAPL251320C00200000"], DAYS[1], DAYS[1])


# ---------------------------------------------------------------- what the bars no longer recompute


@pytest.mark.parametrize("symbol", [*SYMBOLS, "S0999", "QQQ"])
def test_the_close_path_is_the_spot_path_s_close(symbol: str) -> None:
    """close_path (what chains and bars price from: the path's first draws only) is spot_path's close, bit for bit."""
    assert np.array_equal(close_path(symbol, DEFAULT_SEED), spot_path(symbol, DEFAULT_SEED)[3])
    assert np.array_equal(close_path(symbol, 7), spot_path(symbol, 7)[3])


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_bars_of_the_list_just_listed_equal_the_parsed_list_s(symbol: str) -> None:
    """option_bars of the list option_contracts gave out last (its fields from the memo, not parsed back) is the
    same table as of an equal list parsed, and of the old code; a changed list is parsed, not taken from the memo."""
    for day in DAYS:
        listed = option_contracts(symbol, day, 45)
        assert bars._last_listed.get(symbol, ([],))[0] == listed  # the memo is what the next call uses
        memo = option_bars(symbol, listed, day, day)
        bars._last_listed.clear()
        assert memo.equals(option_bars(symbol, listed, day, day))
        assert memo.equals(_old_bars(symbol, listed, day, day))
        listed = option_contracts(symbol, day, 45)
        listed[::2] = listed[::2][::-1]  # the caller's list changed after listing: not the memo's fields
        assert option_bars(symbol, listed, day, day).equals(_old_bars(symbol, listed, day, day))
