"""The stress grid: scenarios of spot, implied volatility and time, and option repricing on them (pure).

`oh.domain.analyze` applies it to a portfolio; this module only knows arrays. A scenario moves spot by
`spot_pct` percent, every contract's implied volatility by `vol_pts` points (floored at VOL_FLOOR)
and the clock forward by `days` calendar days. A position's scenario PnL is its Black-Scholes-Merton
value in the scenario minus its BSM value today, both at the snapshot's IV: the model's own bias
cancels, so the (0, 0, 0) scenario is exactly 0. At or past expiry a contract is worth its intrinsic
value (where BSM is undefined). A contract without an IV cannot be repriced: NaN, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np
import numpy.typing as npt

from oh.domain import pricing
from oh.domain.osi import CONTRACT_MULTIPLIER

VOL_FLOOR = 0.01  # a vol shock never takes a contract's IV below 1 vol point
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Scenario:
    """Spot moved by spot_pct %, every IV moved by vol_pts points, `days` calendar days later."""

    spot_pct: float
    vol_pts: float
    days: int


@dataclass(frozen=True)
class StressSpec:
    """The grid: every combination of spot shock x vol shock x {0, days_forward}, with 0 always in.

    Defaults: spot -5% and +5%, vol -5 and +5 points, 7 calendar days forward (docs/portfolio.md).
    """

    spot_shocks_pct: tuple[float, ...] = (-5.0, 5.0)
    vol_shocks_pts: tuple[float, ...] = (-5.0, 5.0)
    days_forward: int = 7

    @classmethod
    def from_risk_profile(cls, risk: object) -> StressSpec:
        """A portfolio's own settings (oh.domain.portfolio.RiskProfile): +-stress_spot_pct, +-stress_vol_points, stress_days."""
        spot, vol = float(risk.stress_spot_pct), float(risk.stress_vol_points)  # type: ignore[attr-defined]
        return cls((-spot, spot), (-vol, vol), int(risk.stress_days))  # type: ignore[attr-defined]

    def spot_axis(self) -> tuple[float, ...]:
        """The spot shocks in %, 0 included, ascending."""
        return tuple(sorted({0.0, *map(float, self.spot_shocks_pct)}))

    def vol_axis(self) -> tuple[float, ...]:
        """The vol shocks in points, 0 included, ascending."""
        return tuple(sorted({0.0, *map(float, self.vol_shocks_pts)}))

    def day_axis(self) -> tuple[int, ...]:
        """0 and days_forward (one value when that is 0)."""
        return tuple(sorted({0, int(self.days_forward)}))

    def scenarios(self) -> list[Scenario]:
        """Days outermost, then spot, then vol, each ascending: a stable order for tables and JSON."""
        return [Scenario(s, v, d) for d, s, v in product(self.day_axis(), self.spot_axis(), self.vol_axis())]


@dataclass(frozen=True)
class StressResult:
    """PnL of one scenario: the total over the repriceable positions, and each position (NaN: not repriceable)."""

    scenario: Scenario
    pnl: float
    by_position: dict[str, float] = field(default_factory=dict)


def value(spot: npt.ArrayLike, strike: npt.ArrayLike, t: npt.ArrayLike, vol: npt.ArrayLike, rate: float, q: float,
          is_call: npt.ArrayLike) -> FloatArray:
    """BSM value per share while time is left (t in years > 0), intrinsic value at or after expiry."""
    s, k, tt, v, c = np.broadcast_arrays(np.asarray(spot, float), np.asarray(strike, float), np.asarray(t, float),
                                         np.asarray(vol, float), np.asarray(is_call, bool))
    intrinsic = np.maximum(np.where(c, s - k, k - s), 0.0)
    return np.asarray(np.where(tt > 0, pricing.bsm_price(s, k, tt, v, rate, q, c), intrinsic), dtype=np.float64)


def _axes(scenarios: list[Scenario]) -> tuple[FloatArray, FloatArray, FloatArray]:
    return (np.array([sc.spot_pct for sc in scenarios], dtype=float) / 100.0,
            np.array([sc.vol_pts for sc in scenarios], dtype=float) / 100.0,
            np.array([sc.days for sc in scenarios], dtype=float) / pricing.DAYS_PER_YEAR)


def options_pnl(scenarios: list[Scenario], spot: float, strike: npt.ArrayLike, dte: npt.ArrayLike, iv: npt.ArrayLike,
                is_call: npt.ArrayLike, contracts: npt.ArrayLike, rate: float, q: float = 0.0) -> FloatArray:
    """PnL of a set of legs on one underlying in each scenario: sum of contracts x 100 x (value' - value).

    One element per scenario; a (legs x scenarios) BSM matrix at once. NaN when any leg cannot be
    repriced (no IV while time is left, or no spot): a structure is never stressed without a leg.
    """
    s_pct, v_pts, d_years = _axes(scenarios)
    k, iv_ = np.asarray(strike, float), np.asarray(iv, float)
    t0 = np.asarray(dte, float) / pricing.DAYS_PER_YEAR
    call, qty = np.asarray(is_call, bool), np.asarray(contracts, float) * CONTRACT_MULTIPLIER
    before = value(spot, k, t0, iv_, rate, q, call)
    after = value(spot * (1.0 + s_pct[None, :]), k[:, None], t0[:, None] - d_years[None, :],
                  np.maximum(iv_[:, None] + v_pts[None, :], VOL_FLOOR), rate, q, call[:, None])
    return np.asarray((qty[:, None] * (after - before[:, None])).sum(axis=0), dtype=np.float64)


def stock_pnl(scenarios: list[Scenario], spot: float, shares: float) -> FloatArray:
    """PnL of `shares` (signed) in each scenario: shares x spot x spot_pct / 100 (vol and time do not matter)."""
    s_pct, _, _ = _axes(scenarios)
    return np.asarray(shares * spot * s_pct, dtype=np.float64)
