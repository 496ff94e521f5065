"""What to stream for a portfolio (pure): stock underlyings, option contracts, the contract cap.

`build_plan` turns a Portfolio into a LivePlan before anything subscribes:

- stocks: the unique underlyings of every position (stocks, single options, every structure), so
  the page has the spot of everything it marks;
- options: every contract of a single-leg option and every leg of every structure, de-duplicated,
  in portfolio order, in the provider's symbol form (compact OCC for Alpaca and the sim market);
- the cap (`max_option_contracts`) is applied to whole positions in file order: a structure is kept
  with all its legs or left out entirely (half an iron condor has no net mark), a position whose
  contracts are already planned costs nothing, and each cut is named in a warning;
- expired contracts (expiry before `today`, when given) are left out with a warning: no feed
  quotes them any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from oh.domain import osi
from oh.domain.portfolio import (
    OptionPosition,
    Portfolio,
    StockPosition,
    Structure,
    underlyings,
)

PROVIDERS = ("sim", "alpaca")
DEFAULT_MAX_OPTION_CONTRACTS = 250
_NAMED = 8  # how many cut positions a warning names before "and N more"


def stock_symbol(symbol: str, provider: str) -> str:
    """A ticker as `provider` spells it: Alpaca writes share classes with a dot (BRK.B), so a
    Yahoo-style BRK-B becomes BRK.B; the sim market takes the portfolio's spelling."""
    _check(provider)
    return symbol.replace("-", ".") if provider == "alpaca" else symbol


def option_symbol(contract: osi.OptionSymbol, provider: str) -> str:
    """A contract as `provider` spells it (compact OCC for both Alpaca and the sim market)."""
    _check(provider)
    return osi.to_provider(contract, provider)


def _check(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown live provider {provider!r}: expected one of {', '.join(PROVIDERS)}")


@dataclass(frozen=True)
class LivePlan:
    """The symbols to subscribe to, in the provider's form, and why anything was left out.

    `options_by_position` maps each position id to its contracts' provider symbols (empty for a
    stock); `cut` lists the option symbols the cap left out; `fills` is whether to stream trade
    updates. `kind_of` tells a quote's kind from its symbol.
    """

    provider: str
    stocks: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    fills: bool = True
    cut: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    options_by_position: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every quoted symbol: stocks first, then option contracts."""
        return self.stocks + self.options

    def kind_of(self, symbol: str) -> str | None:
        """'stock', 'option', or None for a symbol the plan does not hold."""
        if symbol in self._stock_set:
            return "stock"
        if symbol in self._option_set:
            return "option"
        return None

    @cached_property
    def _stock_set(self) -> frozenset[str]:
        return frozenset(self.stocks)

    @cached_property
    def _option_set(self) -> frozenset[str]:
        return frozenset(self.options)


def position_contracts(portfolio: Portfolio) -> list[tuple[str, list[osi.OptionSymbol]]]:
    """(position id, its option contracts) for every option and structure position, in file order."""
    rows: list[tuple[str, list[osi.OptionSymbol]]] = []
    for position in portfolio.positions:
        if isinstance(position, OptionPosition):
            rows.append((position.id, [position.occ]))
        elif isinstance(position, Structure):
            rows.append((position.id, position.leg_symbols()))
    return rows


def build_plan(
    portfolio: Portfolio,
    *,
    provider: str = "sim",
    stocks: bool = True,
    options: bool = True,
    fills: bool = True,
    max_option_contracts: int = DEFAULT_MAX_OPTION_CONTRACTS,
    today: date | None = None,
) -> LivePlan:
    """The subscription plan for `portfolio` (see the module doc); raises ValueError for a bad
    provider or a negative cap. Nothing here touches the network."""
    _check(provider)
    if max_option_contracts < 0:
        raise ValueError(f"max_option_contracts must be 0 or more, got {max_option_contracts}")
    warnings: list[str] = []
    stock_list = tuple(dict.fromkeys(stock_symbol(s, provider) for s in underlyings(portfolio))) if stocks else ()
    by_position: dict[str, tuple[str, ...]] = {
        p.id: () for p in portfolio.positions if isinstance(p, StockPosition)
    }
    chosen: dict[str, None] = {}
    cut_positions: list[tuple[str, int]] = []
    cut: dict[str, None] = {}
    expired: dict[str, None] = {}
    for position_id, contracts in position_contracts(portfolio):
        live = [c for c in contracts if today is None or c.expiry >= today]
        for contract in contracts:
            if today is not None and contract.expiry < today:
                expired[option_symbol(contract, provider)] = None
        symbols = tuple(dict.fromkeys(option_symbol(c, provider) for c in live))
        by_position[position_id] = symbols
        if not options:
            continue
        new = [s for s in symbols if s not in chosen]
        if len(chosen) + len(new) <= max_option_contracts:
            chosen.update(dict.fromkeys(new))
        else:
            cut_positions.append((position_id, len(new)))
            cut.update(dict.fromkeys(s for s in new if s not in cut))
    if expired:
        names = ", ".join(list(expired)[:_NAMED]) + (f" and {len(expired) - _NAMED} more" if len(expired) > _NAMED else "")
        warnings.append(f"{len(expired)} expired option contracts not streamed: {names}")
    if cut_positions:
        shown = ", ".join(f"{pid} ({n} contract{'s' if n != 1 else ''})" for pid, n in cut_positions[:_NAMED])
        more = f" and {len(cut_positions) - _NAMED} more" if len(cut_positions) > _NAMED else ""
        warnings.append(
            f"option contracts capped at {max_option_contracts}: {len(cut)} contracts of {len(cut_positions)} "
            f"positions not streamed: {shown}{more} (raise --max-option-contracts to stream them)"
        )
    return LivePlan(
        provider=provider, stocks=stock_list, options=tuple(chosen), fills=fills, cut=tuple(cut),
        expired=tuple(expired), warnings=tuple(warnings), options_by_position=by_position,
    )
