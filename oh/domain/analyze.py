"""Portfolio analysis: marks, PnL, DTE, Greeks and a stress grid from option-chain snapshots (pure).

Arrow and numpy in, frozen dataclasses out; no sockets, no files (ARCHITECTURE invariant 8). The
CLI (`oh portfolio analyze`), the briefing worker and the dashboard all call the same entry points:

- `analyze_portfolio(portfolio, chains, as_of, spec=None, *, spots=None, rate=DEFAULT_RATE,
  dividend_yields=None, wide_spread=WIDE_SPREAD) -> PortfolioAnalysis`: everything below at once.
  `chains` maps an underlying to its latest chain on or before `as_of` (`contracts.rows.CHAIN`
  columns, as `services.snapshots.load_chains` or `oh.read.quotes.latest_chains` return them).
- `StressSpec` (spot shocks in %, vol shocks in points, days forward; `StressSpec.from_risk_profile`)
  and `StressSpec.scenarios()`, the grid that is repriced (defined in `oh.domain.stress`, re-exported here).
- `to_jsonable(analysis) -> dict`: a stable, JSON-ready form (NaN -> None, dates as ISO text).

The reads that feed it (latest chain per underlying, last close) are in `oh.read.quotes`.

Signs and units (docs/portfolio.md): quantities are signed (+ long, - short); money is in the
underlying's currency; a short position's market value is negative (what closing it costs).
`pnl = market_value - cost_basis`; `pnl_pct` and `spread_pct` are in percent (12.5 = 12.5%); a
structure's spread_pct is its legs' (ask - bid) over their mids, both weighted by |quantity|.
Greeks come from the snapshot (per share, oh.domain.pricing units), scaled by quantity x 100:
`delta_shares` (share-equivalents), `gamma_shares` (per 1 of spot), `delta_dollars = delta_shares
x spot`, `gamma_dollars = gamma_shares x spot^2 x 0.01` (change of delta dollars for a 1% move),
`vega_dollars` per +1 vol point, `theta_dollars` per calendar day.
NaN means "unknown", never 0: a position missing a quote is reported with a warning, not guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from oh.domain import pricing
from oh.domain.osi import CONTRACT_MULTIPLIER
from oh.domain.portfolio import (
    OptionPosition,
    Portfolio,
    StockPosition,
    Structure,
)
from oh.domain.stress import Scenario, StressResult, StressSpec, options_pnl, stock_pnl

__all__ = [
    "DEFAULT_RATE", "WIDE_SPREAD", "Exposure", "LegAnalysis", "PortfolioAnalysis", "PositionAnalysis", "Scenario",
    "StressResult", "StressSpec", "Totals", "UnderlyingView", "analyze_portfolio", "to_jsonable",
]

DEFAULT_RATE = 0.04  # annual risk-free rate for stress repricing (the sim market's rate)
WIDE_SPREAD = 25.0  # a leg whose spread exceeds this % of its mid gets a "wide spread" warning
NAN = float("nan")
M = float(CONTRACT_MULTIPLIER)

# --------------------------------------------------------------------------------- the results


@dataclass(frozen=True)
class Exposure:
    """Greeks of a position in share and dollar terms (see the module docstring for units)."""

    delta_shares: float = 0.0
    gamma_shares: float = 0.0
    delta_dollars: float = 0.0
    gamma_dollars: float = 0.0
    vega_dollars: float = 0.0
    theta_dollars: float = 0.0

    def __add__(self, other: Exposure) -> Exposure:
        return Exposure(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


UNKNOWN_EXPOSURE = Exposure(NAN, NAN, NAN, NAN, NAN, NAN)


@dataclass(frozen=True)
class LegAnalysis:
    """One option contract held: its quote (per share, as quoted), value and Greeks per share.

    status: ok | no_quote (listed, but no usable price) | missing (not in the snapshot) | expired.
    """

    contract: str
    expiry: date
    right: str
    strike: float
    quantity: int
    cost: float
    dte: int
    status: str
    bid: float
    ask: float
    last: float
    mark: float
    spread_pct: float
    iv: float
    delta: float
    gamma: float
    vega: float
    theta: float
    market_value: float
    cost_basis: float
    pnl: float


@dataclass(frozen=True)
class PositionAnalysis:
    """One position of the file (stock, option or structure), valued from the snapshot.

    quantity: shares (stock), signed contracts (option), 1 for a structure (its legs carry the
    quantities). mark and cost are per share; a structure's are for the whole structure as listed:
    mark = sum(leg quantity x leg mark) (negative for a net credit), cost = its net_debit (as
    oh.domain.portfolio.structure_net_debit and oh.domain.marks read it). complete is False when some leg had
    no price: value and PnL are then NaN.
    """

    id: str
    type: str
    kind: str
    symbol: str
    quantity: float
    spot: float
    dte: int | None
    mark: float
    cost: float
    market_value: float
    cost_basis: float
    pnl: float
    pnl_pct: float
    spread_pct: float
    exposure: Exposure
    complete: bool
    legs: tuple[LegAnalysis, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class UnderlyingView:
    """Per underlying: its spot, which snapshot priced it, and its positions' summed exposure."""

    symbol: str
    spot: float
    snapshot_date: date | None
    exposure: Exposure
    market_value: float
    pnl: float


@dataclass(frozen=True)
class Totals:
    """Sums over the complete positions; `valued` of `positions` were complete.

    pnl_pct is pnl over the sum of |cost_basis| of those positions (a credit or a short counts as
    capital at work, so a mixed book does not divide by a near-zero net).

    Share-term Greeks are only summed for a single-underlying portfolio (NaN otherwise: shares of
    different stocks do not add up); dollar terms always are. net_liq = cash + market_value.
    """

    cash: float
    market_value: float
    cost_basis: float
    pnl: float
    pnl_pct: float
    net_liq: float
    exposure: Exposure
    positions: int
    valued: int


@dataclass(frozen=True)
class PortfolioAnalysis:
    """What `analyze_portfolio` returns; `warnings` are portfolio-wide (per-position ones sit on positions)."""

    as_of: date
    rate: float
    positions: tuple[PositionAnalysis, ...]
    underlyings: tuple[UnderlyingView, ...]
    totals: Totals
    spec: StressSpec
    stress: tuple[StressResult, ...]
    warnings: tuple[str, ...]


# ---------------------------------------------------------------------------------- quotes


class _Quotes:
    """One underlying's chain, indexed by OCC compact symbol, with the mark and spread rules applied."""

    def __init__(self, chain: pa.Table) -> None:
        def col(name: str) -> np.ndarray:
            if name not in chain.column_names:
                return np.full(chain.num_rows, np.nan)
            return np.asarray(chain.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)

        self.index = {sym: i for i, sym in enumerate(chain.column("contract_symbol").to_pylist())}
        self.bid, self.ask, self.last = col("bid"), col("ask"), col("last")
        self.mark = pricing.mark_price(self.bid, self.ask, self.last)
        self.spread = pricing.spread_pct(self.bid, self.ask) * 100.0  # in percent, like pnl_pct
        self.iv, self.delta, self.gamma = col("iv"), col("delta"), col("gamma")
        self.vega, self.theta = col("vega"), col("theta")
        spots = col("spot")
        finite = spots[np.isfinite(spots) & (spots > 0)]
        self.spot = float(finite[0]) if finite.size else NAN
        dates = chain.column("snapshot_date").to_pylist() if "snapshot_date" in chain.column_names else []
        self.snapshot_date: date | None = max(dates) if dates else None


def _nan(x: float | None) -> float:
    return NAN if x is None else float(x)


def _intrinsic(spot: float, strike: float, right: str) -> float:
    return max(spot - strike, 0.0) if right == "call" else max(strike - spot, 0.0)


def _leg(contract_id: str, expiry: date, right: str, strike: float, quantity: int, cost: float, as_of: date,
         quotes: _Quotes | None, spot: float, rate: float) -> LegAnalysis:
    """Value one contract from its quote; an expired one at intrinsic; a missing one as NaN."""
    dte = (expiry - as_of).days
    i = quotes.index.get(contract_id) if quotes is not None else None
    q = dict.fromkeys(("bid", "ask", "last", "mark", "spread_pct", "iv", "delta", "gamma", "vega", "theta"), NAN)
    if dte < 0:
        status = "expired"
        q.update(mark=_intrinsic(spot, strike, right) if math.isfinite(spot) else NAN,
                 delta=0.0, gamma=0.0, vega=0.0, theta=0.0)
    elif i is None or quotes is None:
        status = "missing"
    else:
        q.update(bid=float(quotes.bid[i]), ask=float(quotes.ask[i]), last=float(quotes.last[i]),
                 mark=float(quotes.mark[i]), spread_pct=float(quotes.spread[i]), iv=float(quotes.iv[i]),
                 delta=float(quotes.delta[i]), gamma=float(quotes.gamma[i]), vega=float(quotes.vega[i]),
                 theta=float(quotes.theta[i]))
        status = "ok" if math.isfinite(q["mark"]) else "no_quote"
        if not all(math.isfinite(q[g]) for g in ("delta", "gamma", "vega", "theta")) and dte > 0:
            _fill_greeks(q, spot, strike, dte, right, rate)
    value = quantity * M * q["mark"]
    basis = quantity * M * cost
    return LegAnalysis(contract_id, expiry, right, float(strike), quantity, cost, dte, status, q["bid"], q["ask"],
                       q["last"], q["mark"], q["spread_pct"], q["iv"], q["delta"], q["gamma"], q["vega"], q["theta"],
                       value, basis, value - basis)


def _fill_greeks(q: dict[str, float], spot: float, strike: float, dte: int, right: str, rate: float) -> None:
    """Greeks from BSM at the snapshot IV when the snapshot has none (no dividend: the chain's own are preferred)."""
    g = pricing.bsm_greeks(spot, strike, dte / pricing.DAYS_PER_YEAR, q["iv"], rate, 0.0, right == "call")
    q.update(delta=float(g.delta), gamma=float(g.gamma), vega=float(g.vega), theta=float(g.theta))


def _exposure(legs: Sequence[LegAnalysis], spot: float) -> Exposure:
    delta = sum(leg.quantity * M * leg.delta for leg in legs)
    gamma = sum(leg.quantity * M * leg.gamma for leg in legs)
    return Exposure(delta, gamma, delta * spot, gamma * spot * spot * 0.01,
                    sum(leg.quantity * M * leg.vega for leg in legs), sum(leg.quantity * M * leg.theta for leg in legs))


def _leg_warnings(legs: Sequence[LegAnalysis], labels: Sequence[str], snapshot: date | None,
                  wide_spread: float) -> list[str]:
    out: list[str] = []
    where = f"the {snapshot} snapshot" if snapshot else "any snapshot"
    for leg, label in zip(legs, labels, strict=True):
        prefix = f"{label}{leg.contract}"
        if leg.status == "missing":
            out.append(f"{prefix}: not in {where}; position not valued")
        elif leg.status == "no_quote":
            out.append(f"{prefix}: no bid, ask or last in {where}; position not valued")
        elif leg.status == "expired":
            out.append(f"{prefix}: expired on {leg.expiry}; valued at intrinsic {leg.mark:.2f}")
        if math.isfinite(leg.spread_pct) and leg.spread_pct > wide_spread:
            out.append(f"{prefix}: wide spread, {leg.spread_pct:.0f}% of mid")
    return out


def _options_position(position: OptionPosition | Structure, quotes: _Quotes | None, spot: float, as_of: date,
                      rate: float, wide_spread: float) -> PositionAnalysis:
    """A single leg or a structure: both are a list of legs, valued and summed the same way."""
    if isinstance(position, OptionPosition):
        specs = [(position.occ, position.expiry, position.right, position.strike, position.quantity, position.cost_basis)]
        labels, cost, kind = [""], position.cost_basis, "option"
    else:
        specs = [(sym, leg.expiry, leg.right, leg.strike, leg.quantity, leg.cost)
                 for sym, leg in zip(position.leg_symbols(), position.legs, strict=True)]
        labels = [f"legs[{j}] " for j in range(len(specs))]
        cost, kind = position.net_debit, position.kind
    legs = tuple(_leg(sym.compact, exp, right, strike, qty, c, as_of, quotes, spot, rate)
                 for sym, exp, right, strike, qty, c in specs)
    warnings = _leg_warnings(legs, labels, quotes.snapshot_date if quotes else None, wide_spread)
    complete = all(math.isfinite(leg.mark) for leg in legs)
    value = sum(leg.market_value for leg in legs) if complete else NAN
    basis = M * cost if isinstance(position, Structure) else legs[0].cost_basis
    pnl = value - basis
    gross = sum(abs(leg.quantity) * (leg.bid + leg.ask) / 2 for leg in legs if math.isfinite(leg.spread_pct))
    width = sum(abs(leg.quantity) * (leg.ask - leg.bid) for leg in legs if math.isfinite(leg.spread_pct))
    greeks_known = all(math.isfinite(getattr(leg, g)) for leg in legs for g in ("delta", "gamma", "vega", "theta"))
    exposure = _exposure(legs, spot) if greeks_known and math.isfinite(spot) else UNKNOWN_EXPOSURE
    if not greeks_known and all(leg.status != "missing" for leg in legs):
        warnings.append("no Greeks in the snapshot for some leg: left out of the Greek totals")
    single = isinstance(position, OptionPosition)
    return PositionAnalysis(
        id=position.id, type="option" if single else "structure", kind=kind, symbol=position.symbol,
        quantity=float(position.quantity if single else 1), spot=spot, dte=min(leg.dte for leg in legs),
        mark=legs[0].mark if single else value / M, cost=cost,
        market_value=value, cost_basis=basis, pnl=pnl, pnl_pct=_pct(pnl, basis),
        spread_pct=width / gross * 100.0 if gross > 0 else NAN, exposure=exposure, complete=complete, legs=legs,
        warnings=tuple(warnings),
    )


def _pct(pnl: float, basis: float) -> float:
    return pnl / abs(basis) * 100.0 if basis and math.isfinite(pnl) else NAN


def _stock_position(position: StockPosition, spot: float) -> PositionAnalysis:
    value, basis = position.quantity * spot, position.quantity * position.cost_basis
    known = math.isfinite(spot)
    exposure = Exposure(position.quantity, 0.0, position.quantity * spot, 0.0, 0.0, 0.0) if known else UNKNOWN_EXPOSURE
    return PositionAnalysis(
        id=position.id, type="stock", kind="stock", symbol=position.symbol, quantity=position.quantity, spot=spot,
        dte=None, mark=spot, cost=position.cost_basis, market_value=value, cost_basis=basis, pnl=value - basis,
        pnl_pct=_pct(value - basis, basis), spread_pct=NAN, exposure=exposure, complete=known, legs=(),
        warnings=() if known else (f"no price for {position.symbol}; position not valued",),
    )


def _stress(portfolio: Portfolio, analysed: Sequence[PositionAnalysis], spec: StressSpec, rate: float,
            yields: Mapping[str, float]) -> tuple[StressResult, ...]:
    """Each position's PnL on every scenario (oh.domain.stress), and the total over the repriceable ones."""
    scenarios = spec.scenarios()
    pnl = np.zeros((len(analysed), len(scenarios)))
    for p, (position, result) in enumerate(zip(portfolio.positions, analysed, strict=True)):
        if isinstance(position, StockPosition):
            pnl[p] = stock_pnl(scenarios, result.spot, position.quantity)
            continue
        legs = result.legs
        pnl[p] = options_pnl(scenarios, result.spot, [leg.strike for leg in legs], [leg.dte for leg in legs],
                             [leg.iv for leg in legs], [leg.right == "call" for leg in legs],
                             [leg.quantity for leg in legs], rate, yields.get(position.symbol, 0.0))
    ids = [a.id for a in analysed]
    return tuple(StressResult(sc, float(np.nansum(pnl[:, j])), dict(zip(ids, map(float, pnl[:, j]), strict=True)))
                 for j, sc in enumerate(scenarios))


# ---------------------------------------------------------------------------------- entry point


def analyze_portfolio(
    portfolio: Portfolio,
    chains: Mapping[str, pa.Table],
    as_of: date,
    spec: StressSpec | None = None,
    *,
    spots: Mapping[str, float] | None = None,
    rate: float = DEFAULT_RATE,
    dividend_yields: Mapping[str, float] | None = None,
    wide_spread: float = WIDE_SPREAD,
) -> PortfolioAnalysis:
    """Value every position of `portfolio` at `as_of` from `chains` (underlying -> its latest chain).

    `spots` overrides or supplies the spot of an underlying (e.g. a stock's close when it has no
    chain); otherwise the chain's spot is used. `spec` defaults to the portfolio's risk profile.
    Never raises on missing data: a missing contract, quote or chain becomes NaN and a warning.
    """
    spec = spec or StressSpec.from_risk_profile(portfolio.risk_profile)
    quotes = {symbol: _Quotes(table) for symbol, table in chains.items() if table is not None}
    symbols = sorted({p.symbol for p in portfolio.positions})
    spot_of = {s: _nan((spots or {}).get(s, quotes[s].spot if s in quotes else None)) for s in symbols}
    warnings: list[str] = []
    for symbol in symbols:
        needs_chain = any(p.symbol == symbol and not isinstance(p, StockPosition) for p in portfolio.positions)
        if symbol not in quotes and needs_chain:
            warnings.append(f"{symbol}: no option-chain snapshot on or before {as_of}")
        elif symbol in quotes and quotes[symbol].snapshot_date not in (None, as_of):
            warnings.append(f"{symbol}: quotes from {quotes[symbol].snapshot_date}, the latest snapshot before {as_of}")
    analysed: list[PositionAnalysis] = []
    for position in portfolio.positions:
        spot = spot_of[position.symbol]
        if isinstance(position, StockPosition):
            analysed.append(_stock_position(position, spot))
        else:
            analysed.append(_options_position(position, quotes.get(position.symbol), spot, as_of, rate, wide_spread))
    done = [a for a in analysed if a.complete]
    if len(done) < len(analysed):
        warnings.append(f"totals cover {len(done)} of {len(analysed)} positions (the others lack a price)")
    exposure = sum((a.exposure for a in done if math.isfinite(a.exposure.delta_dollars)), Exposure())
    if len({a.symbol for a in done}) > 1:
        exposure = Exposure(NAN, NAN, *(getattr(exposure, f.name) for f in fields(exposure)[2:]))
    value, basis = sum(a.market_value for a in done), sum(a.cost_basis for a in done)
    gross = sum(abs(a.cost_basis) for a in done)  # debits, credits and shorts all count as capital at work
    totals = Totals(portfolio.cash, value, basis, value - basis, _pct(value - basis, gross), portfolio.cash + value,
                    exposure, len(analysed), len(done))
    views = tuple(_underlying_view(s, spot_of[s], quotes.get(s), [a for a in done if a.symbol == s]) for s in symbols)
    stress = _stress(portfolio, analysed, spec, rate, dividend_yields or {})
    return PortfolioAnalysis(as_of, rate, tuple(analysed), views, totals, spec, stress, tuple(warnings))


def _underlying_view(symbol: str, spot: float, quotes: _Quotes | None, done: list[PositionAnalysis]) -> UnderlyingView:
    exposure = sum((a.exposure for a in done if math.isfinite(a.exposure.delta_dollars)), Exposure())
    value, basis = sum(a.market_value for a in done), sum(a.cost_basis for a in done)
    return UnderlyingView(symbol, spot, quotes.snapshot_date if quotes else None, exposure, value, value - basis)


def to_jsonable(value: Any) -> Any:
    """A dataclass tree as plain JSON data: NaN/inf -> None, dates -> ISO text, tuples -> lists."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, date):
        return value.isoformat()
    return value
