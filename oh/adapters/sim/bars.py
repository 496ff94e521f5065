"""The simulated market's option contract lists and daily option bars (pure, deterministic).

A contract's bar on a session is built from the sim chain: the close is that session's last
trade, the open the previous session's last, high and low bracket both by a hashed fraction of
the day's quoted spread, volume is the chain's volume, and the VWAP lies between low and high.
A contract that did not trade (zero volume) or was not yet listed has no bar that day, as on a
real feed. Everything derives from oh.adapters.sim.options, so bars agree with the snapshots.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contracts import rows
from oh.adapters.sim.market import (
    DEFAULT_SEED,
    mix,
    require_listed,
    symbol_seed,
    uniform,
)
from oh.adapters.sim.options import listing_within, quote_prices
from oh.domain import calendar
from oh.domain.osi import BadOptionSymbol

_S_HIGH, _S_LOW, _S_VWAP, _S_TRADES = (np.uint64(0xB0A5 + i) for i in range(4))
_SALTS = np.array([_S_HIGH, _S_LOW, _S_VWAP, _S_TRADES], dtype=np.uint64)
_blake2b = hashlib.blake2b


# The last contract list `option_contracts` gave out, with what its symbols say: `option_bars` is usually
# called with that very list next (services/options_bars.py), and then skips parsing it back. One entry.
_last_listed: dict[str, tuple[list[str], np.ndarray, np.ndarray, np.ndarray]] = {}


def option_contracts(symbol: str, day: date, max_dte: int, market_seed: int = DEFAULT_SEED) -> list[str]:
    """OCC compact symbols of `symbol`'s contracts listed on session `day` expiring within `max_dte` days
    (the chain's `contract_symbol`s, in its order, from the listing: no contract is priced)."""
    contracts, exp_days, call, mills = listing_within(symbol, day, max_dte, market_seed)
    _last_listed.clear()
    _last_listed[symbol] = (contracts, exp_days.astype("datetime64[D]"), call, mills / 1000.0)
    return list(contracts)  # the caller's own list: what it does with it never changes the memo


def _contract_fields(symbol: str, contracts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_parse(symbol, contracts)`: from the memo of `option_contracts` when `contracts` is what it listed
    last (the same strings in the same order), else parsed."""
    listed = _last_listed.get(symbol)
    if listed is not None and listed[0] == contracts:
        return listed[1], listed[2], listed[3]
    return _parse(symbol, contracts)


def _parse(symbol: str, contracts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expiry (datetime64[D]), is-call and strike arrays of compact symbols on root `symbol` (Arrow's string
    kernels over the whole list: no per-contract Python)."""
    if not contracts:
        return np.array([], dtype="datetime64[D]"), np.array([], dtype=bool), np.array([], dtype=np.float64)
    text = pa.array(contracts, pa.string())
    valid = pc.match_substring_regex(text, f"^{re.escape(symbol)}\\d{{6}}[CP]\\d{{8}}$")
    if not pc.all(valid).as_py():
        bad = text[pc.index(valid, False).as_py()].as_py()
        raise BadOptionSymbol(f"{bad!r} is not a compact option symbol on {symbol}")
    tail = pc.utf8_slice_codeunits(text, len(symbol))
    yyyymmdd = pc.utf8_replace_slice(pc.utf8_slice_codeunits(tail, 0, 6), 0, 0, "20")
    try:
        expiry = pc.cast(pc.strptime(yyyymmdd, format="%Y%m%d", unit="s"), pa.date32())
    except pa.ArrowInvalid as exc:
        raise BadOptionSymbol(f"a contract of {symbol} has no valid expiry date: {exc}") from None
    call = pc.equal(pc.utf8_slice_codeunits(tail, 6, 7), "C")
    strike = pc.cast(pc.utf8_slice_codeunits(tail, 7, 15), pa.int64()).to_numpy() / 1000.0
    days = pc.cast(expiry, pa.int32()).to_numpy().astype(np.int64)  # numpy's own dates: no pandas import
    return days.astype("datetime64[D]"), call.to_numpy(zero_copy_only=False), strike


def _contract_hashes(contracts: list[str]) -> np.ndarray:
    """A 64-bit hash of each contract's symbol (blake2b, little-endian: stable across processes and machines)."""
    digests = b"".join(_blake2b(c.encode(), digest_size=8).digest() for c in contracts)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def option_bars(symbol: str, contracts: list[str], start: date, end: date, market_seed: int = DEFAULT_SEED) -> pa.Table:
    """Daily bars of `contracts` on each session in [start, end] (schema contracts.rows.OPTION_BARS)."""
    require_listed(symbol)
    expiry, call, strike = _contract_fields(symbol, contracts)
    names = pa.array(contracts, pa.string())
    base = np.uint64(symbol_seed(f"bars:{symbol}", market_seed))
    mixed = mix(_contract_hashes(contracts) ^ base)
    tables = []
    for day64 in calendar.sessions(start, end):
        day = day64.astype(object)
        live = expiry > day64
        if not live.any():
            continue
        session = calendar.session_index(day)
        # today's quote and, priced with it, yesterday's last: the open (today's last on the first session)
        quote = quote_prices(symbol, day, expiry[live], call[live], strike[live], market_seed, with_open=True)
        close, volume, open_ = quote["last"], quote["volume"], quote["open"]
        spread = quote["ask"] - quote["bid"]
        traded = volume > 0
        # a (0, 1) draw per contract of each stream: mix(mixed ^ session ^ salt), one array for the four
        u_high, u_low, u_vwap, u_trades = uniform(mix(mixed[live][None, :] ^ (np.uint64(session) ^ _SALTS)[:, None]))
        high = np.round(np.maximum(open_, close) + u_high * spread * 0.5, 2)
        low = np.round(np.maximum(np.minimum(open_, close) - u_low * spread * 0.5, 0.01), 2)
        vwap = np.round(low + (high - low) * u_vwap, 4)
        trades = np.maximum(np.ceil(volume / (2 + 8 * u_trades)), 1).astype(np.int64)
        n = int(traded.sum())
        picked = live.copy()
        picked[live] = traded
        tables.append(pa.table(
            [
                names.filter(pa.array(picked)), pa.repeat(pa.scalar(symbol, pa.string()), n),
                pa.array(np.full(n, day64), pa.date32()), open_[traded], high[traded], low[traded], close[traded],
                volume[traded].astype(np.int64), trades[traded], vwap[traded],
            ],
            schema=rows.OPTION_BARS,
        ))
    if not tables:
        return rows.OPTION_BARS.empty_table()
    return pa.concat_tables(tables)
