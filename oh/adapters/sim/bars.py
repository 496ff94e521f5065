"""The simulated market's option contract lists and daily option bars (pure, deterministic).

A contract's bar on a session is built from the sim chain: the close is that session's last
trade, the open the previous session's last, high and low bracket both by a hashed fraction of
the day's quoted spread, volume is the chain's volume, and the VWAP lies between low and high.
A contract that did not trade (zero volume) or was not yet listed has no bar that day, as on a
real feed. Everything derives from oh.adapters.sim.options, so bars agree with the snapshots.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

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
from oh.adapters.sim.options import option_chain, quote_contracts
from oh.domain import calendar
from oh.domain.osi import BadOptionSymbol

_S_HIGH, _S_LOW, _S_VWAP, _S_TRADES = (np.uint64(0xB0A5 + i) for i in range(4))


def option_contracts(symbol: str, day: date, max_dte: int, market_seed: int = DEFAULT_SEED) -> list[str]:
    """OCC compact symbols of `symbol`'s contracts listed on session `day` expiring within `max_dte` days."""
    chain = option_chain(symbol, day, market_seed)
    within = pc.less_equal(chain["expiry"], pa.scalar(day + timedelta(days=max_dte), pa.date32()))
    return chain.filter(within).column("contract_symbol").to_pylist()


def _parse(symbol: str, contracts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expiry (datetime64[D]), is-call and strike arrays of compact symbols on root `symbol`."""
    expiry, call, strike = [], [], []
    for text in contracts:
        tail = text[len(symbol):]
        if not text.startswith(symbol) or len(tail) != 15 or tail[6] not in "CP" or not tail[7:].isdigit():
            raise BadOptionSymbol(f"{text!r} is not a compact option symbol on {symbol}")
        expiry.append(f"20{tail[0:2]}-{tail[2:4]}-{tail[4:6]}")
        call.append(tail[6] == "C")
        strike.append(int(tail[7:]) / 1000.0)
    return np.array(expiry, dtype="datetime64[D]"), np.array(call, dtype=bool), np.array(strike, dtype=np.float64)


def _hash_uniform(symbol: str, contracts: np.ndarray, session: int, salt: np.uint64, market_seed: int) -> np.ndarray:
    base = np.uint64(symbol_seed(f"bars:{symbol}", market_seed))
    keys = np.array(
        [int.from_bytes(hashlib.blake2b(c.encode(), digest_size=8).digest(), "little") for c in contracts], np.uint64
    )
    return uniform(mix(mix(keys ^ base) ^ np.uint64(session) ^ salt))


def option_bars(symbol: str, contracts: list[str], start: date, end: date, market_seed: int = DEFAULT_SEED) -> pa.Table:
    """Daily bars of `contracts` on each session in [start, end] (schema contracts.rows.OPTION_BARS)."""
    require_listed(symbol)
    expiry, call, strike = _parse(symbol, contracts)
    names = np.array(contracts, dtype=object)
    tables = []
    for day64 in calendar.sessions(start, end):
        day = day64.astype(object)
        live = expiry > day64
        if not live.any():
            continue
        session = calendar.session_index(day)
        today = quote_contracts(symbol, day, expiry[live], call[live], strike[live], market_seed)
        close = today.column("last").to_numpy()
        volume = today.column("volume").to_numpy()
        spread = today.column("ask").to_numpy() - today.column("bid").to_numpy()
        if session > 0:
            before = calendar.all_sessions()[session - 1].astype(object)
            open_ = quote_contracts(symbol, before, expiry[live], call[live], strike[live], market_seed).column("last").to_numpy()
        else:
            open_ = close
        traded = volume > 0
        ids = names[live]
        u_high, u_low, u_vwap, u_trades = (
            _hash_uniform(symbol, ids, session, salt, market_seed) for salt in (_S_HIGH, _S_LOW, _S_VWAP, _S_TRADES)
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
    if not tables:
        return rows.OPTION_BARS.empty_table()
    return pa.concat_tables(tables)

