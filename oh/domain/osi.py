"""OCC option symbols (OSI): parse, format and translate between providers (pure).

The OSI symbol is root + expiry (YYMMDD) + right (C/P) + strike x 1000 in 8 digits. The
padded form pads the root with spaces to 6 characters (21 in all): `AAPL  260320C00150000`;
the compact form drops the padding: `AAPL260320C00150000`. Roots may carry digits
(adjusted contracts after a corporate action, e.g. `AAPL1`). Vendor spellings stop here:
the rest of `oh` passes OptionSymbol values around, never strings to re-parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal

Right = Literal["C", "P"]
Form = Literal["padded", "compact"]

CONTRACT_MULTIPLIER = 100  # shares per listed equity option contract (the OCC standard)

ROOT_WIDTH = 6
_TAIL = 15  # YYMMDD + right + 8 strike digits
_ROOT = re.compile(r"^[A-Z0-9]{1,6}$")
_MAX_STRIKE_MILLS = 99_999_999  # 8 digits of strike x 1000
_MILLS = Decimal(1000)

# Which spelling each provider uses. Alpaca's contract symbols and Yahoo's contractSymbol
# are compact; the simulated market follows Alpaca; "occ" is the exchange's padded form.
PROVIDER_FORMS: dict[str, Form] = {"alpaca": "compact", "yahoo": "compact", "sim": "compact", "occ": "padded"}


class BadOptionSymbol(ValueError):
    """Text or fields that cannot make an OCC option symbol; the message names what is wrong."""


def _strike_decimal(strike: Decimal | float | int | str) -> Decimal:
    """The strike as an exact Decimal with at most 3 places (what 8 OSI digits can hold).

    Floats from providers (12.5, or 0.1 + 0.2) are snapped to the nearest 1/1000 when within
    1e-6 of it; anything finer is a real sub-mill strike OSI cannot express, so it is refused.
    """
    if isinstance(strike, bool) or not isinstance(strike, (Decimal, float, int, str)):
        raise BadOptionSymbol(f"bad strike {strike!r}: expected a number")
    if isinstance(strike, float):
        mills_f = strike * 1000
        if not abs(mills_f) < 1e12 or abs(mills_f - round(mills_f)) > 1e-6:
            raise BadOptionSymbol(f"bad strike {strike!r}: OSI strikes are positive with at most 3 decimals")
        value = Decimal(round(mills_f)) / _MILLS
    else:
        try:
            value = Decimal(strike)
        except InvalidOperation:
            raise BadOptionSymbol(f"bad strike {strike!r}: expected a number") from None
    if not value.is_finite() or value <= 0:
        raise BadOptionSymbol(f"bad strike {strike!r}: must be a positive number")
    mills = value * _MILLS
    if mills != mills.to_integral_value():
        raise BadOptionSymbol(f"bad strike {strike!r}: OSI strikes have at most 3 decimals")
    if mills > _MAX_STRIKE_MILLS:
        raise BadOptionSymbol(f"bad strike {strike!r}: above 99999.999, the most 8 OSI digits hold")
    # One spelling per value: Decimal("12.500") -> 12.5, Decimal("1.5E+2") -> 150.
    canonical = value.quantize(Decimal("0.001")).normalize()
    return canonical.quantize(Decimal(1)) if canonical == canonical.to_integral_value() else canonical


@dataclass(frozen=True, slots=True)
class OptionSymbol:
    """One listed option contract, validated on construction.

    strike accepts Decimal, int, str or float and is stored as a canonical Decimal
    (Decimal("12.5"), Decimal("150")), so equal contracts compare and hash equal.
    """

    root: str
    expiry: date
    right: Right
    strike: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.root, str) or not self.root:
            raise BadOptionSymbol("empty root: an option symbol starts with the underlying's root")
        if not _ROOT.match(self.root):
            raise BadOptionSymbol(f"bad root {self.root!r}: expected 1-6 upper-case letters or digits")
        if not isinstance(self.expiry, date) or not 2000 <= self.expiry.year <= 2099:
            raise BadOptionSymbol(f"bad date {self.expiry!r}: OSI expiries are dates in 2000-2099")
        if self.right not in ("C", "P"):
            raise BadOptionSymbol(f"bad right {self.right!r}: expected 'C' (call) or 'P' (put)")
        object.__setattr__(self, "strike", _strike_decimal(self.strike))

    @property
    def padded(self) -> str:
        """The 21-character OSI form, root padded with spaces to 6: `AAPL  260320C00150000`."""
        return format_osi(self, "padded")

    @property
    def compact(self) -> str:
        """The unpadded form used by Alpaca and Yahoo: `AAPL260320C00150000`."""
        return format_osi(self, "compact")

    def __str__(self) -> str:
        return self.compact


def format_osi(sym: OptionSymbol, form: Form = "padded") -> str:
    """Spell a symbol in the padded (21-char, exchange) or compact (vendor) OSI form."""
    root = sym.root.ljust(ROOT_WIDTH) if form == "padded" else sym.root
    mills = int(sym.strike * _MILLS)
    return f"{root}{sym.expiry:%y%m%d}{sym.right}{mills:08d}"


def parse_osi(text: str, form: Form | None = None) -> OptionSymbol:
    """Read a padded or compact OSI symbol (or only `form`, when given); raise BadOptionSymbol.

    The tail of 15 characters (YYMMDD, C/P, 8 strike digits) is fixed, so the root is whatever
    precedes it: that is how compact symbols with digit roots (`AAPL1260320C...`) stay unambiguous.
    """
    if not isinstance(text, str):
        raise BadOptionSymbol(f"bad symbol {text!r}: expected text")
    s = text.rstrip().upper()  # leading spaces are kept: they would be an empty root
    if not s:
        raise BadOptionSymbol("empty symbol")
    if len(s) == _TAIL:
        raise BadOptionSymbol(f"empty root in {text!r}: nothing before YYMMDD")
    if not _TAIL + 1 <= len(s) <= ROOT_WIDTH + _TAIL:
        raise BadOptionSymbol(
            f"bad length {len(s)} in {text!r}: expected 16-21 characters "
            "(root of 1-6, YYMMDD, C/P, 8 strike digits)"
        )
    head, yymmdd, right, digits = s[:-_TAIL], s[-_TAIL:-9], s[-9], s[-8:]
    root = head.rstrip(" ")
    if not root:
        raise BadOptionSymbol(f"empty root in {text!r}")
    padded = root != head
    if padded and len(head) != ROOT_WIDTH:
        raise BadOptionSymbol(f"bad root padding in {text!r}: the padded form pads the root to exactly 6")
    if form is not None and padded != (form == "padded") and len(root) < ROOT_WIDTH:
        raise BadOptionSymbol(f"bad form in {text!r}: expected the {form} OSI form")
    if not _ROOT.match(root):
        raise BadOptionSymbol(f"bad root {root!r} in {text!r}: expected 1-6 upper-case letters or digits")
    if not (yymmdd.isascii() and yymmdd.isdigit()):
        raise BadOptionSymbol(f"bad date {yymmdd!r} in {text!r}: expected YYMMDD digits")
    try:
        expiry = date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError as exc:
        raise BadOptionSymbol(f"bad date {yymmdd!r} in {text!r}: {exc}") from exc
    if right not in ("C", "P"):
        raise BadOptionSymbol(f"bad right {right!r} in {text!r}: expected C (call) or P (put)")
    if not (digits.isascii() and digits.isdigit()):
        raise BadOptionSymbol(f"bad strike {digits!r} in {text!r}: expected 8 digits of strike x 1000")
    if int(digits) == 0:
        raise BadOptionSymbol(f"bad strike {digits!r} in {text!r}: a strike must be positive")
    return OptionSymbol(root, expiry, right, Decimal(int(digits)) / _MILLS)  # type: ignore[arg-type]


def _form_of(provider: str) -> Form:
    try:
        return PROVIDER_FORMS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}: expected one of {sorted(PROVIDER_FORMS)}") from None


def to_provider(sym: OptionSymbol, provider: str) -> str:
    """The symbol as `provider` spells it (see PROVIDER_FORMS); ValueError for an unknown provider."""
    return format_osi(sym, _form_of(provider))


def from_provider(text: str, provider: str) -> OptionSymbol:
    """Parse a provider's symbol, insisting on that provider's form so mix-ups fail loudly."""
    return parse_osi(text, _form_of(provider))


def parse_many(texts: list[str]) -> tuple[list[OptionSymbol | None], list[str]]:
    """Parse a column of symbols without stopping at the first bad one.

    Returns one OptionSymbol (or None where parsing failed) per input, in order, and one message
    per failure naming its index and what is wrong, so a chain with a few junk rows still loads.
    """
    symbols: list[OptionSymbol | None] = []
    errors: list[str] = []
    for i, text in enumerate(texts):
        try:
            symbols.append(parse_osi(text))
        except BadOptionSymbol as exc:
            symbols.append(None)
            errors.append(f"[{i}] {exc}")
    return symbols, errors
