"""The sim market's per-contract random streams, open interest and volume (pure, deterministic).

- Streams: each contract has a 64-bit key (`contract_keys`: symbol seed, expiry, strike, right through
  splitmix64, independent of the listing); a stream is the key mixed with a salt (`streams`), drawn again per
  session by mixing in the session number (`in_sessions`). Wrapping uint64 arithmetic, the same bits on
  every machine, whatever else is requested or in which order.
- Open interest (`open_interests`) is a closed form of the session number: base (per contract) x interest
  around the recent average spot x life cycle x exp(slow cycle + truncated AR(1) of hashed daily shocks), so it
  is continuous from one session to the next (docs/sim_market.md has the model).
- Volume (`volume_and_interest`): every contract opened or closed traded (|dOI|), plus a hashed churn.

Cost: a chain or a bar computes these for a few hundred contracts at a time, so the work is laid out to
make few numpy calls: the session-free draws of every stream in one mix over a (streams x contracts) array,
the daily shocks of every lag in one more, and the sessions asked for (today and yesterday) as the rows of one
array; every element is computed by the same operations in the same order as one session at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from oh.adapters.sim.market import mix, uniform
from oh.domain import calendar

MONTHLY_DAYS = 730  # the longest listing's horizon: open interest builds from listing to expiry over it
OI_AR_PHI = 0.7  # persistence of the daily open-interest shocks
OI_AR_LAGS = 12  # the AR(1) is truncated here (0.7**12 < 0.014): enough for continuity, cheap
OI_SHOCK_SD = 0.08  # log-OI shock per session
OI_SPOT_WINDOW = 40  # open interest clusters around the mean close of this many sessions

Closes = Callable[[int, int], npt.NDArray[np.float64]]  # (lo, hi) -> the underlying's closes of sessions [lo, hi)
_U64 = np.uint64
_EPOCH = np.datetime64("1970-01-01", "D")
# salts that separate the independent hash streams of one contract
S_BASE, S_PERIOD, S_PHASE, S_SHOCK, S_CHURN, S_LAST = (_U64(i * 0x1000193 + 7) for i in range(1, 7))
_OI_SALTS = np.array([S_BASE, S_PERIOD, S_PHASE, S_SHOCK, S_CHURN], dtype=np.uint64)
_LAGS = np.arange(OI_AR_LAGS)
_PHI_POWERS = np.array([OI_AR_PHI**lag for lag in range(OI_AR_LAGS)])[:, None, None]  # Python's float powers


def normal(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    """A standard normal per hash (the inverse normal CDF of `uniform`)."""
    return np.asarray(ndtri(uniform(h)), dtype=np.float64)


def contract_keys(
    sym_seed: int, expiry_days: npt.NDArray[np.int64], is_call: npt.NDArray[np.bool_], mills: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint64]:
    """One 64-bit key per contract (symbol, expiry, right, strike), independent of the listing."""
    x = expiry_days.astype(np.uint64)
    x ^= _U64(sym_seed)
    x = mix(x)
    x ^= mills.astype(np.uint64)
    x = mix(x)
    x ^= is_call.astype(np.uint64)
    return mix(x)


def streams(keys: npt.NDArray[np.uint64], salts: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Row i: the per-contract stream of salt i (the same draw whatever the session)."""
    return mix(keys[None, :] ^ salts[:, None])


def in_sessions(stream: npt.NDArray[np.uint64], sessions: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """Row i: a per-contract stream (a row of `streams`) drawn again for session i (negative ones too: wrapped)."""
    numbers = np.asarray(sessions, dtype=np.int64).astype(np.uint64)  # two's complement: session & (2**64 - 1)
    return mix(stream[None, :] ^ numbers[:, None])


def open_interests(
    keys: npt.NDArray[np.uint64], strike: npt.NDArray[np.float64], expiry_days: npt.NDArray[np.int64],
    is_call: npt.NDArray[np.bool_], sessions: tuple[int, ...], closes: Closes, base_vol: float,
    drawn: npt.NDArray[np.uint64] | None = None,
) -> npt.NDArray[np.float64]:
    """Open interest (float, before flooring) of each contract as of each of `sessions`: one row each.

    base (per contract) x interest around the recent average spot x life cycle x
    exp(slow cycle + AR(1) of shocks). Interest is centred on the mean close of the last
    OI_SPOT_WINDOW sessions, not on today's close: positions are sticky, a 2% move does not
    close them. `closes(lo, hi)` gives the underlying's closes of sessions [lo, hi); `drawn` is
    `streams(keys, _OI_SALTS)` when the caller has it already.
    """
    drawn = streams(keys, _OI_SALTS) if drawn is None else drawn
    base = np.exp(7.0 + 0.8 * normal(drawn[0]))
    round_strike = np.where(np.round(strike * 1000).astype(np.int64) % 5000 == 0, 1.5, 1.0)
    period = 20.0 + 70.0 * uniform(drawn[1])
    phase = 2 * np.pi * uniform(drawn[2])
    top = max(sessions)
    shocks = normal(in_sessions(drawn[3], range(top, min(sessions) - OI_AR_LAGS, -1)))  # row r: session top - r

    column = np.empty((len(sessions), 1))
    ref = column.copy()
    for row, s in enumerate(sessions):  # np.mean's own sum and division, without its overhead
        window = closes(max(s - OI_SPOT_WINDOW + 1, 0), s + 1)
        ref[row] = np.add.reduce(window) / window.size
    day_number = calendar.all_sessions()[list(sessions)].astype(np.int64)[:, None]  # days since the epoch
    tau = (expiry_days - day_number).astype(np.float64)  # calendar days left
    t = np.maximum(tau, 1.0) / 365.0
    m = np.log(strike / ref) / (base_vol * np.sqrt(np.maximum(t, 30 / 365)))
    otm = np.where(is_call, m > 0, m < 0)
    interest = np.exp(-0.5 * (m / 2.0) ** 2) * np.where(otm, 1.3, 0.8)
    life = (1.0 - np.exp(-np.maximum(MONTHLY_DAYS + 30 - tau, 0.0) / 120.0)) * (0.4 + 0.6 * (1 - np.exp(-tau / 4.0)))
    term = 1.0 / (1.0 + 1.5 * t)
    angle = column.copy()
    angle[:, 0] = [2 * np.pi * s for s in sessions]
    cycle = 0.45 * np.sin(angle / period + phase)  # building and unwinding periods
    ar = np.zeros(t.shape)
    lagged = np.array([top - s for s in sessions])[None, :] + _LAGS[:, None]  # [lag, row]: the row of its shock
    for weighted in _PHI_POWERS * shocks[lagged]:  # summed lag after lag: each a whole-chain vector op
        ar += weighted
    return base * interest * round_strike * life * term * np.exp(cycle + OI_SHOCK_SD * ar)


def volume_and_interest(
    keys: npt.NDArray[np.uint64], strike: npt.NDArray[np.float64], expiry_days: npt.NDArray[np.int64],
    is_call: npt.NDArray[np.bool_], session: int, closes: Closes, base_vol: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(volume, open interest) of each contract on `session`: volume >= |dOI| (every opened or closed
    contract traded) plus a churn of about 4% of the open interest."""
    drawn = streams(keys, _OI_SALTS)
    oi_now, oi_prev = open_interests(keys, strike, expiry_days, is_call, (session, max(session - 1, 0)), closes,
                                     base_vol, drawn)
    oi = np.floor(oi_now).astype(np.int64)
    d_oi = np.abs(oi - np.floor(oi_prev).astype(np.int64))
    churn = np.floor(0.04 * oi_now * np.exp(0.7 * normal(in_sessions(drawn[4], (session,))[0]) - 0.245))
    return d_oi + churn.astype(np.int64), oi
