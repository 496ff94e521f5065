"""The portfolio: the model of the JSON file the user owns, its validation, `loads` and `dumps` (pure).

Reading and writing the file: oh.adapters.portfolio_file.

The platform only reads it; the `oh portfolio` CRUD commands are the only writers. A portfolio
holds cash, a risk profile and positions of three kinds, told apart by their "type" field:

- `stock`: shares of one symbol (signed: negative is short);
- `option`: one listed contract, signed quantity of contracts (negative is written/short);
- `structure`: a multi-leg position (vertical, calendar, diagonal, iron condor, straddle,
  strangle, custom) whose legs carry signed quantities, with the net debit paid (negative
  for a credit received).

Option premiums (`cost_basis`, leg `cost`, `net_debit`) are in quoted price units, per share
of one contract (4.10 means $410 for a 100-share contract), as brokers quote them.

Every validation error is one line naming where and what, e.g.
`positions[2] (id "spy-put"): strike must be > 0, got -5`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date
from typing import Any, Literal

import msgspec

from oh.domain.osi import BadOptionSymbol, OptionSymbol

SCHEMA_VERSION = 1

OptionRight = Literal["call", "put"]
StructureKind = Literal["vertical", "calendar", "diagonal", "iron_condor", "straddle", "strangle", "custom"]
KINDS: tuple[str, ...] = ("vertical", "calendar", "diagonal", "iron_condor", "straddle", "strangle", "custom")
RIGHTS: tuple[str, ...] = ("call", "put")
POSITION_TYPES: tuple[str, ...] = ("stock", "option", "structure")

_TICKER = re.compile(r"^[A-Z][A-Z0-9]{0,5}([.\-][A-Z0-9]{1,2})?$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PortfolioError(ValueError):
    """A portfolio file that cannot be read or is not valid; the message is one line naming where and what."""


# --------------------------------------------------------------------------------------- model


class RiskProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Limits and stress settings, in percent (10.0 = 10%), volatility points and calendar days."""

    max_position_pct: float = 10.0
    max_portfolio_delta_pct: float = 50.0
    stress_spot_pct: float = 5.0
    stress_vol_points: float = 5.0
    stress_days: int = 7


class StockPosition(msgspec.Struct, frozen=True, tag="stock", tag_field="type", forbid_unknown_fields=True):
    """Shares of one symbol; quantity is signed (negative = short); cost_basis per share."""

    id: str
    symbol: str
    quantity: float
    cost_basis: float


class OptionPosition(msgspec.Struct, frozen=True, tag="option", tag_field="type", forbid_unknown_fields=True):
    """One listed contract held as a single leg; quantity in signed contracts; cost_basis per contract premium."""

    id: str
    symbol: str
    expiry: date
    right: OptionRight
    strike: float
    quantity: int
    cost_basis: float

    @property
    def occ(self) -> OptionSymbol:
        return option_symbol(self.symbol, self.expiry, self.right, self.strike)


class Leg(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One leg of a structure; quantity in signed contracts (+ bought, - sold); cost is its premium."""

    expiry: date
    right: OptionRight
    strike: float
    quantity: int
    cost: float


class Structure(msgspec.Struct, frozen=True, tag="structure", tag_field="type", forbid_unknown_fields=True):
    """A multi-leg position on one underlying; net_debit per share of one unit (negative = credit)."""

    id: str
    symbol: str
    kind: StructureKind
    legs: list[Leg]
    net_debit: float

    def leg_symbols(self) -> list[OptionSymbol]:
        return [option_symbol(self.symbol, leg.expiry, leg.right, leg.strike) for leg in self.legs]


Position = StockPosition | OptionPosition | Structure


class Portfolio(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Cash, base currency, risk profile and positions (ids unique)."""

    version: int = SCHEMA_VERSION
    cash: float = 0.0
    base_currency: str = "USD"
    risk_profile: RiskProfile = msgspec.field(default_factory=RiskProfile)
    positions: list[Position] = msgspec.field(default_factory=list)

    def get(self, position_id: str) -> Position | None:
        return next((p for p in self.positions if p.id == position_id), None)


# ------------------------------------------------------------------------------- derived views


def osi_root(symbol: str) -> str:
    """The OCC root of an underlying: the ticker without class punctuation (BRK.B -> BRKB)."""
    return symbol.replace(".", "").replace("-", "")


def option_symbol(symbol: str, expiry: date, right: str, strike: float) -> OptionSymbol:
    """The OCC symbol of one contract on `symbol`; raises BadOptionSymbol."""
    return OptionSymbol(osi_root(symbol), expiry, "C" if right == "call" else "P", strike)  # type: ignore[arg-type]


def option_legs(portfolio: Portfolio) -> list[tuple[str, OptionSymbol, int]]:
    """Every option contract held, as (position id, OCC symbol, signed contracts), in file order.

    Single-leg positions give one row, structures one row per leg; stock gives none.
    """
    rows: list[tuple[str, OptionSymbol, int]] = []
    for position in portfolio.positions:
        if isinstance(position, OptionPosition):
            rows.append((position.id, position.occ, position.quantity))
        elif isinstance(position, Structure):
            rows.extend((position.id, sym, leg.quantity) for sym, leg in zip(position.leg_symbols(), position.legs, strict=True))
    return rows


def underlyings(portfolio: Portfolio) -> list[str]:
    """The distinct underlying symbols of every position, sorted."""
    return sorted({p.symbol for p in portfolio.positions})


def structure_net_debit(legs: list[Leg]) -> float:
    """The net debit implied by the legs' premiums (sum of quantity x cost; negative = credit)."""
    return round(sum(leg.quantity * leg.cost for leg in legs), 6)


# --------------------------------------------------------------------------------- validation


class _Invalid(Exception):
    """One validation failure; `where` is the location prefix, `message` the field and problem."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool | type(None)) else type(value).__name__


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _check_fields(obj: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
    for key in obj:
        if key not in allowed:
            raise _Invalid(f"unknown field {key!r} (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in obj:
            raise _Invalid(f"missing field {key!r}")


def _number(obj: dict[str, Any], field: str, *, ok: Callable[[float], bool] | None = None, rule: str = "") -> float:
    value = obj[field]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{field} must be a number, got {_type_name(value)} {_show(value)}")
    if not math.isfinite(value):
        raise _Invalid(f"{field} must be a finite number, got {value}")
    if ok is not None and not ok(value):
        raise _Invalid(f"{field} must be {rule}, got {_show(value)}")
    return float(value)


def _integer(obj: dict[str, Any], field: str, *, ok: Callable[[int], bool], rule: str) -> int:
    value = obj[field]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{field} must be a whole number, got {_type_name(value)} {_show(value)}")
    if not ok(value):
        raise _Invalid(f"{field} must be {rule}, got {value}")
    return value


def _string(obj: dict[str, Any], field: str) -> str:
    value = obj[field]
    if not isinstance(value, str):
        raise _Invalid(f"{field} must be a string, got {_type_name(value)} {_show(value)}")
    return value


def _symbol(obj: dict[str, Any], field: str = "symbol") -> str:
    value = _string(obj, field).strip().upper()
    if not _TICKER.match(value):
        raise _Invalid(f"{field} must be a ticker such as AAPL or BRK.B, got {_show(obj[field])}")
    return value


def _expiry(obj: dict[str, Any]) -> date:
    value = _string(obj, "expiry")
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"expiry must be a date in YYYY-MM-DD form, got {_show(value)}") from None


def _right(obj: dict[str, Any]) -> str:
    value = _string(obj, "right")
    if value not in RIGHTS:
        raise _Invalid(f"right must be \"call\" or \"put\", got {_show(value)}")
    return value


def _contract(symbol: str, expiry: date, right: str, strike: float) -> OptionSymbol:
    try:
        return option_symbol(symbol, expiry, right, strike)
    except BadOptionSymbol as exc:
        raise _Invalid(f"not a listed option contract: {exc}") from None


def _strike(obj: dict[str, Any]) -> float:
    return _number(obj, "strike", ok=lambda v: v > 0, rule="> 0")


def _nonzero_contracts(obj: dict[str, Any]) -> int:
    return _integer(obj, "quantity", ok=lambda v: v != 0, rule="non-zero (signed contracts: + long, - short)")


def _premium(obj: dict[str, Any], field: str) -> float:
    return _number(obj, field, ok=lambda v: v >= 0, rule=">= 0")


def _risk_profile(raw: Any) -> RiskProfile:
    if not isinstance(raw, dict):
        raise _Invalid(f"must be an object, got {_type_name(raw)}")
    fields = tuple(RiskProfile.__struct_fields__)
    _check_fields(raw, fields, ())
    values: dict[str, Any] = {}
    pct = (lambda v: 0 < v <= 100, "> 0 and <= 100")
    rules: dict[str, tuple[Callable[[float], bool], str]] = {
        "max_position_pct": pct,
        "max_portfolio_delta_pct": (lambda v: v > 0, "> 0"),
        "stress_spot_pct": (lambda v: 0 < v < 100, "> 0 and < 100"),
        "stress_vol_points": (lambda v: v >= 0, ">= 0"),
    }
    for field, (ok, rule) in rules.items():
        if field in raw:
            values[field] = _number(raw, field, ok=ok, rule=rule)
    if "stress_days" in raw:
        values["stress_days"] = _integer(raw, "stress_days", ok=lambda v: 0 <= v <= 3650, rule=">= 0 and <= 3650")
    return RiskProfile(**values)


def _leg(raw: Any, symbol: str) -> Leg:
    if not isinstance(raw, dict):
        raise _Invalid(f"must be an object, got {_type_name(raw)}")
    _check_fields(raw, ("symbol", "expiry", "right", "strike", "quantity", "cost"),
                  ("expiry", "right", "strike", "quantity", "cost"))
    if "symbol" in raw and _symbol(raw) != symbol:
        raise _Invalid(f"symbol {_show(raw['symbol'])} differs from the structure's {symbol!r}: "
                       "all legs must be on one underlying")
    leg = Leg(expiry=_expiry(raw), right=_right(raw), strike=_strike(raw),  # type: ignore[arg-type]
              quantity=_nonzero_contracts(raw), cost=_premium(raw, "cost"))
    _contract(symbol, leg.expiry, leg.right, leg.strike)
    return leg


def _shape(kind: str, legs: list[Leg]) -> str | None:
    """Why the legs cannot be a `kind`, or None when they fit (ratios are not policed)."""
    n = len(legs)
    expiries = {leg.expiry for leg in legs}
    rights = [leg.right for leg in legs]
    strikes = {leg.strike for leg in legs}
    if kind == "custom":
        return None
    if kind == "iron_condor":
        if n != 4 or rights.count("call") != 2 or rights.count("put") != 2 or len(expiries) != 1:
            return "an iron_condor has 4 legs of one expiry: 2 puts and 2 calls"
        return None
    if n != 2:
        return f"a {kind} has 2 legs, got {n}"
    same_right = len(set(rights)) == 1
    if kind == "vertical" and not (same_right and len(expiries) == 1 and len(strikes) == 2):
        return "a vertical's 2 legs share expiry and right and differ in strike"
    if kind == "calendar" and not (same_right and len(strikes) == 1 and len(expiries) == 2):
        return "a calendar's 2 legs share strike and right and differ in expiry"
    if kind == "diagonal" and not (same_right and len(strikes) == 2 and len(expiries) == 2):
        return "a diagonal's 2 legs share right and differ in both strike and expiry"
    if kind == "straddle" and not (not same_right and len(strikes) == 1 and len(expiries) == 1):
        return "a straddle is a call and a put of one strike and expiry"
    if kind == "strangle" and not (not same_right and len(strikes) == 2 and len(expiries) == 1):
        return "a strangle is a call and a put of one expiry at different strikes"
    return None


def _position(raw: dict[str, Any]) -> Position:
    kind = raw.get("type")
    if kind is None:
        raise _Invalid(f"missing field 'type' (one of: {', '.join(POSITION_TYPES)})")
    if kind not in POSITION_TYPES:
        raise _Invalid(f"type must be one of {', '.join(POSITION_TYPES)}, got {_show(kind)}")
    if kind == "stock":
        _check_fields(raw, ("type", "id", "symbol", "quantity", "cost_basis"), ("id", "symbol", "quantity", "cost_basis"))
        return StockPosition(id=raw["id"], symbol=_symbol(raw),
                             quantity=_number(raw, "quantity", ok=lambda v: v != 0, rule="non-zero (signed shares)"),
                             cost_basis=_premium(raw, "cost_basis"))
    if kind == "option":
        fields = ("type", "id", "symbol", "expiry", "right", "strike", "quantity", "cost_basis")
        _check_fields(raw, fields, fields[1:])
        position = OptionPosition(id=raw["id"], symbol=_symbol(raw), expiry=_expiry(raw), right=_right(raw),  # type: ignore[arg-type]
                                  strike=_strike(raw), quantity=_nonzero_contracts(raw),
                                  cost_basis=_premium(raw, "cost_basis"))
        _contract(position.symbol, position.expiry, position.right, position.strike)
        return position
    _check_fields(raw, ("type", "id", "symbol", "kind", "legs", "net_debit"), ("id", "symbol", "kind", "legs"))
    symbol = _symbol(raw)
    structure_kind = _string(raw, "kind")
    if structure_kind not in KINDS:
        raise _Invalid(f"kind must be one of {', '.join(KINDS)}, got {_show(structure_kind)}")
    raw_legs = raw["legs"]
    if not isinstance(raw_legs, list):
        raise _Invalid(f"legs must be a list, got {_type_name(raw_legs)}")
    if len(raw_legs) < 2:
        raise _Invalid(f"legs must hold at least 2 legs (a single contract is an \"option\" position), got {len(raw_legs)}")
    legs: list[Leg] = []
    seen: dict[OptionSymbol, int] = {}
    for j, raw_leg in enumerate(raw_legs):
        try:
            leg = _leg(raw_leg, symbol)
        except _Invalid as exc:
            raise _Invalid(f"legs[{j}]: {exc.message}") from None
        contract = option_symbol(symbol, leg.expiry, leg.right, leg.strike)
        if contract in seen:
            raise _Invalid(f"legs[{j}]: the same contract as legs[{seen[contract]}] ({contract}); merge them")
        seen[contract] = j
        legs.append(leg)
    problem = _shape(structure_kind, legs)
    if problem:
        raise _Invalid(f"kind {structure_kind!r} does not fit the legs: {problem} (use kind \"custom\" otherwise)")
    net_debit = _number(raw, "net_debit") if "net_debit" in raw else structure_net_debit(legs)
    return Structure(id=raw["id"], symbol=symbol, kind=structure_kind, legs=legs, net_debit=net_debit)  # type: ignore[arg-type]


def _where(index: int, raw: Any) -> str:
    pid = raw.get("id") if isinstance(raw, dict) else None
    return f"positions[{index}] (id {json.dumps(pid)})" if isinstance(pid, str) else f"positions[{index}]"


def from_data(data: Any) -> Portfolio:
    """Validate decoded JSON into a Portfolio; raise PortfolioError naming the field and position."""
    if not isinstance(data, dict):
        raise PortfolioError(f"the portfolio must be a JSON object, got {_type_name(data)}")
    try:
        _check_fields(data, tuple(Portfolio.__struct_fields__), ())
        version = _integer(data, "version", ok=lambda v: v == SCHEMA_VERSION,
                           rule=f"{SCHEMA_VERSION} (the only version this build reads)") if "version" in data else 1
        cash = _number(data, "cash") if "cash" in data else 0.0
        currency = _string(data, "base_currency") if "base_currency" in data else "USD"
        if not _CURRENCY.match(currency):
            raise _Invalid(f"base_currency must be a 3-letter upper-case code such as USD, got {_show(currency)}")
        raw_positions = data.get("positions", [])
        if not isinstance(raw_positions, list):
            raise _Invalid(f"positions must be a list, got {_type_name(raw_positions)}")
    except _Invalid as exc:
        raise PortfolioError(exc.message) from None
    try:
        risk = _risk_profile(data["risk_profile"]) if "risk_profile" in data else RiskProfile()
    except _Invalid as exc:
        raise PortfolioError(f"risk_profile: {exc.message}") from None
    positions: list[Position] = []
    ids: dict[str, int] = {}
    for i, raw in enumerate(raw_positions):
        where = _where(i, raw)
        try:
            if not isinstance(raw, dict):
                raise _Invalid(f"must be an object, got {_type_name(raw)}")
            if "id" not in raw:
                raise _Invalid("missing field 'id'")
            pid = _string(raw, "id")
            if not _ID.match(pid):
                raise _Invalid(f"id must be 1-64 letters, digits, '.', '_' or '-', got {_show(pid)}")
            if pid in ids:
                raise _Invalid(f"id {pid!r} is already used by positions[{ids[pid]}]")
            ids[pid] = i
            positions.append(_position(raw))
        except _Invalid as exc:
            raise PortfolioError(f"{where}: {exc.message}") from None
    return Portfolio(version=version, cash=cash, base_currency=currency, risk_profile=risk, positions=positions)


def validate(portfolio: Portfolio) -> Portfolio:
    """Re-check a Portfolio built in code (the CLI's edits) by the same rules as a file."""
    return from_data(msgspec.to_builtins(portfolio))


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def loads(text: str | bytes) -> Portfolio:
    """Parse and validate portfolio JSON text; raise PortfolioError (one line)."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PortfolioError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PortfolioError(f"malformed JSON: {exc}") from None
    except RecursionError:  # the C parser's own depth guard (e.g. 100k nested `[`): no traceback
        raise PortfolioError("malformed JSON: nested too deeply for a portfolio") from None
    return from_data(data)


def dumps(portfolio: Portfolio) -> bytes:
    """Stable, pretty JSON (fields in model order, 2-space indent, trailing newline)."""
    return msgspec.json.format(msgspec.json.encode(portfolio), indent=2) + b"\n"
