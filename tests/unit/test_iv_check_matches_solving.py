"""`snapshot_iv_fits_quote` decides without solving for the bid's and the ask's implied vols (it prices each contract
at its IV's tolerance bounds: `pricing.implied_vol_vs`); its results are exactly those of the two solves it replaced
(the original code, kept here as the oracle), on clean sim chains of many symbols and days and on chains whose quotes
and IVs an attacker moved (so the check fails, with the same count, example and bracket in its message)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from oh.adapters.sim.options import option_chain
from oh.domain import pricing
from oh.domain.chain_checks import IV_TOLERANCE_ABS, IV_TOLERANCE_REL, MAX_DAYS, MIN_DAYS, MONEYNESS, NEAR, RATE
from oh.domain.chain_checks import iv_quote_check as iv_quote_check_now


def _col(chain: pa.Table, name: str) -> np.ndarray:
    return np.asarray(chain.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _brackets_before(chain: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The old code's judged rows and bracket: the bid's and the ask's IVs from two `implied_vol` calls."""
    n = chain.num_rows
    call = np.asarray(chain.column("right").to_numpy(zero_copy_only=False)) == "C"
    day = chain.column("snapshot_date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    expiry = chain.column("expiry").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    days = (expiry - day).astype(np.int64)
    spot, strike, bid, ask, iv = (_col(chain, c) for c in ("spot", "strike", "bid", "ask", "iv"))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = strike / spot
        judged = ((bid > 0) & (ask >= bid) & np.isfinite(iv) & (iv > 0) & (spot > 0)
                  & (ratio >= MONEYNESS[0]) & (ratio <= MONEYNESS[1]) & (days >= MIN_DAYS) & (days <= MAX_DAYS)
                  & np.where(call, ratio >= 1 - NEAR, ratio <= 1 + NEAR))
    rows = np.flatnonzero(judged)
    low, high = np.zeros(n), np.full(n, np.inf)
    if rows.size:
        t = days[rows] / pricing.DAYS_PER_YEAR
        implied_bid = pricing.implied_vol(bid[rows], spot[rows], strike[rows], t, RATE, 0.0, call[rows])
        implied_ask = pricing.implied_vol(ask[rows], spot[rows], strike[rows], t, RATE, 0.0, call[rows])
        low[rows] = np.where(np.isfinite(implied_bid), implied_bid, 0.0)
        high[rows] = np.where(np.isfinite(implied_ask), implied_ask, np.inf)
    with np.errstate(invalid="ignore"):
        outside = judged & ((iv < low * (1 - IV_TOLERANCE_REL) - IV_TOLERANCE_ABS)
                            | (iv > high * (1 + IV_TOLERANCE_REL) + IV_TOLERANCE_ABS))
    return outside, low, high


def _attacked(chain: pa.Table, seed: int) -> pa.Table:
    """The chain with ~5% of its IVs, bids and asks moved at random (some crossed, some below intrinsic)."""
    rng = np.random.default_rng(seed)
    n = chain.num_rows
    data = {name: chain.column(name) for name in chain.column_names}
    for name, scale in (("iv", 3.0), ("bid", 2.0), ("ask", 0.5)):
        values = _col(chain, name)
        hit = rng.random(n) < 0.05
        values = np.where(hit, values * rng.uniform(0.0, scale, n), values)
        data[name] = pa.array(values, chain.schema.field(name).type)
    return pa.table(data, schema=chain.schema)


CASES = [(symbol, day) for symbol in ("AAPL", "SPY", "S0001", "S0417", "TSLA")
         for day in (date(2025, 6, 3), date(2024, 1, 17))]


@pytest.mark.parametrize(("symbol", "day"), CASES)
def test_the_check_without_solving_gives_the_two_solves_answer(symbol: str, day: date) -> None:
    """Same judged contracts and the same failing ones, clean and attacked, as the two solves gave."""
    for chain in (option_chain(symbol, day), *(_attacked(option_chain(symbol, day), seed) for seed in range(3))):
        outside, low, high = _brackets_before(chain)
        result = iv_quote_check_now(chain)
        assert result.metrics["outside"] == int(np.count_nonzero(outside))
        if outside.any():  # the message names the first failing contract and its bracket, to 4 digits
            i = int(np.flatnonzero(outside)[0])
            assert f"implies {low[i]:.4f}..{high[i]:.4f})" in result.message
            assert result.metrics["example"] == chain.column("contract_symbol")[i].as_py()


def test_the_attack_is_seen() -> None:
    """The attacked chains do fail the check (so the comparison above compares failures, not only passes)."""
    assert any(iv_quote_check_now(_attacked(option_chain("AAPL", date(2025, 6, 3)), seed)).status == "fail"
               for seed in range(3))


def test_the_bracket_itself_is_identical() -> None:
    """Bit for bit: each contract's implied bid and ask vol solved with others equals its separate solve (the message
    solves the first failing contract alone and shows what a whole-chain solve would)."""
    chain = _attacked(option_chain("SPY", date(2025, 6, 3)), 7)
    _, low, high = _brackets_before(chain)
    call = np.asarray(chain.column("right").to_numpy(zero_copy_only=False)) == "C"
    spot, strike, bid, ask = (_col(chain, c) for c in ("spot", "strike", "bid", "ask"))
    t = np.full(chain.num_rows, 30 / pricing.DAYS_PER_YEAR)
    joint = pricing.implied_vol(np.concatenate([bid, ask]), np.tile(spot, 2), np.tile(strike, 2), np.tile(t, 2),
                                RATE, 0.0, np.tile(call, 2))
    alone = np.concatenate([pricing.implied_vol(bid, spot, strike, t, RATE, 0.0, call),
                            pricing.implied_vol(ask, spot, strike, t, RATE, 0.0, call)])
    np.testing.assert_array_equal(joint, alone)
    assert np.isfinite(low).any() and np.isfinite(high).any()
