"""Checks of a chain snapshot against its own quotes (pure): Greeks that cannot be, IVs the quote cannot give.

Vendors' IV and Greeks are stored as sent (oh.adapters.tables); these checks say when they cannot
fit the contract they describe:

- `snapshot_greeks_consistent` (error): a call's delta outside [0, 1], a put's outside [-1, 0],
  a negative gamma or vega. No model gives those (alpaca-py's own test payload has a put with
  delta +0.674). Missing (NaN) Greeks are not judged.
- `snapshot_iv_fits_quote` (warn): the stored IV lies outside the IVs that the bid and the ask
  imply (BSM, oh.domain.pricing, r = RATE, no dividend), widened by IV_TOLERANCE_ABS and
  IV_TOLERANCE_REL. Only contracts where that bracket is informative are judged: a two-sided
  quote, out of the money or near it (calls with strike/spot >= 1 - NEAR, puts <= 1 + NEAR) and
  within MONEYNESS, MIN_DAYS..MAX_DAYS calendar days to expiry. In the money or further out in
  time, an unknown dividend moves the implied vol more than the tolerance (an in-the-money
  option's price is mostly intrinsic value). A price below intrinsic leaves the bracket open on
  that side; the check never guesses.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from oh.domain import pricing
from oh.domain.checks import CheckResult

RATE = 0.04  # the rate the bracket is implied with (the providers' default; the sim market's rate)
IV_TOLERANCE_ABS = 0.02  # 2 vol points ...
IV_TOLERANCE_REL = 0.10  # ... plus 10% of the bracket's bound
MONEYNESS = (0.8, 1.25)  # strike / spot
NEAR = 0.03  # how far in the money a contract may be and still be judged (strike / spot)
MIN_DAYS, MAX_DAYS = 1, 90
GREEK_SLACK = 1e-9


def _col(chain: pa.Table, name: str) -> np.ndarray:
    return np.asarray(chain.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _first(chain: pa.Table, mask: np.ndarray) -> str | None:
    index = np.flatnonzero(mask)
    return str(chain.column("contract_symbol")[int(index[0])].as_py()) if index.size else None


def greeks_check(chain: pa.Table) -> CheckResult:
    """`snapshot_greeks_consistent`: delta within its right's range, gamma and vega not negative."""
    n = chain.num_rows
    if not n:
        return CheckResult("snapshot_greeks_consistent", "error", "pass", "no contracts", {"rows": 0})
    call = np.asarray(chain.column("right").to_numpy(zero_copy_only=False)) == "C"
    delta, gamma, vega = _col(chain, "delta"), _col(chain, "gamma"), _col(chain, "vega")
    with np.errstate(invalid="ignore"):
        call_bad = call & ((delta < -GREEK_SLACK) | (delta > 1 + GREEK_SLACK))
        put_bad = ~call & ((delta > GREEK_SLACK) | (delta < -1 - GREEK_SLACK))
        curvature_bad = (gamma < -GREEK_SLACK) | (vega < -GREEK_SLACK)
    bad = call_bad | put_bad | curvature_bad
    count = int(np.count_nonzero(bad))
    example = _first(chain, bad)
    message = (f"{int(np.count_nonzero(put_bad))} puts with delta outside [-1, 0], {int(np.count_nonzero(call_bad))} "
               f"calls with delta outside [0, 1], {int(np.count_nonzero(curvature_bad))} negative gammas or vegas "
               f"(first: {example})") if count else "every delta, gamma and vega possible for its contract"
    return CheckResult("snapshot_greeks_consistent", "error", "fail" if count else "pass", message,
                       {"rows": n, "bad": count, "puts": int(np.count_nonzero(put_bad)),
                        "calls": int(np.count_nonzero(call_bad)), "curvature": int(np.count_nonzero(curvature_bad)),
                        "example": example})


def iv_quote_check(chain: pa.Table) -> CheckResult:
    """`snapshot_iv_fits_quote`: the stored IV within the IVs implied by bid and ask (see the module docstring)."""
    n = chain.num_rows
    if not n:
        return CheckResult("snapshot_iv_fits_quote", "warn", "pass", "no contracts", {"rows": 0, "judged": 0})
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
    outside = np.zeros(n, dtype=bool)
    if rows.size:
        t = days[rows] / pricing.DAYS_PER_YEAR
        # iv < low (1 - REL) - ABS is low > (iv + ABS) / (1 - REL): the bid's implied vol above that (none: no floor);
        # iv > high (1 + REL) + ABS is high < (iv - ABS) / (1 + REL): the ask's below it (none: no cap). Bid and ask
        # in one call: pricing.implied_vol_vs prices each at the vol instead of solving for it.
        sign = pricing.implied_vol_vs(
            np.concatenate([bid[rows], ask[rows]]), np.tile(spot[rows], 2), np.tile(strike[rows], 2), np.tile(t, 2),
            RATE, 0.0, np.tile(call[rows], 2),
            np.concatenate([(iv[rows] + IV_TOLERANCE_ABS) / (1 - IV_TOLERANCE_REL),
                            (iv[rows] - IV_TOLERANCE_ABS) / (1 + IV_TOLERANCE_REL)]),
        )
        outside[rows] = (sign[:rows.size] > 0) | (sign[rows.size:] < 0)
    count = int(np.count_nonzero(outside))
    example = _first(chain, outside)
    detail = ""
    if example is not None:  # the bracket, solved for this one contract
        i = int(np.flatnonzero(outside)[0])
        implied = pricing.implied_vol(np.array([bid[i], ask[i]]), spot[i], strike[i], days[i] / pricing.DAYS_PER_YEAR,
                                      RATE, 0.0, call[i])
        low = implied[0] if np.isfinite(implied[0]) else 0.0  # bid at or below intrinsic: no floor
        high = implied[1] if np.isfinite(implied[1]) else np.inf  # ask beyond any vol: no cap
        detail = f" (first: {example} IV {iv[i]:.4f}, the quote {bid[i]:g}/{ask[i]:g} implies {low:.4f}..{high:.4f})"
    message = (f"{count} of {rows.size} judged contracts have an IV their bid/ask cannot give{detail}" if count
               else f"every one of {rows.size} judged IVs fits its quote")
    return CheckResult("snapshot_iv_fits_quote", "warn", "fail" if count else "pass", message,
                       {"rows": n, "judged": int(rows.size), "outside": count, "example": example})


def chain_quote_checks(chain: pa.Table) -> list[CheckResult]:
    """Both checks of a snapshot against its quotes."""
    return [greeks_check(chain), iv_quote_check(chain)]
