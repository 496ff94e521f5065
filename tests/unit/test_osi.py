"""OCC option symbols: both spellings round trip, providers get their form, junk fails with a reason."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oh.domain.osi import (
    BadOptionSymbol,
    OptionSymbol,
    format_osi,
    from_provider,
    parse_many,
    parse_osi,
    to_provider,
)

AAPL = OptionSymbol("AAPL", date(2026, 3, 20), "C", Decimal("150"))


def test_formats_the_padded_and_compact_forms() -> None:
    """The padded form pads the root to 6 (21 chars); the compact form does not; strike is x1000 in 8 digits."""
    assert AAPL.padded == "AAPL  260320C00150000"
    assert len(AAPL.padded) == 21
    assert AAPL.compact == "AAPL260320C00150000"
    assert str(AAPL) == AAPL.compact


@pytest.mark.parametrize(
    ("padded", "compact", "sym"),
    [
        ("AAPL  260320C00150000", "AAPL260320C00150000", AAPL),
        ("AAPL1 260320P00012500", "AAPL1260320P00012500",
         OptionSymbol("AAPL1", date(2026, 3, 20), "P", Decimal("12.5"))),
        ("F     250117C00000500", "F250117C00000500", OptionSymbol("F", date(2025, 1, 17), "C", Decimal("0.5"))),
        ("GOOGL1270115P01234567", "GOOGL1270115P01234567",
         OptionSymbol("GOOGL1", date(2027, 1, 15), "P", Decimal("1234.567"))),
        ("SPXW  261231C05000000", "SPXW261231C05000000", OptionSymbol("SPXW", date(2026, 12, 31), "C", Decimal(5000))),
    ],
)
def test_round_trips_known_symbols(padded: str, compact: str, sym: OptionSymbol) -> None:
    """Digit roots (adjusted contracts), fractional and sub-dollar strikes parse and format both ways."""
    assert parse_osi(padded) == sym and parse_osi(compact) == sym
    assert format_osi(sym, "padded") == padded and format_osi(sym, "compact") == compact


def test_strike_types_normalize_to_one_value() -> None:
    """Decimal, str, int and float strikes (with float noise) make equal, equally hashed symbols."""
    expiry = date(2026, 3, 20)
    variants = [Decimal("12.500"), "12.5", 12.5, (0.1 + 12.4), Decimal("1.25E+1")]
    syms = {OptionSymbol("X", expiry, "C", s) for s in variants}  # type: ignore[arg-type]
    assert len(syms) == 1
    (only,) = syms
    assert only.strike == Decimal("12.5") and str(only.strike) == "12.5"
    assert str(OptionSymbol("X", expiry, "C", 150).strike) == "150"  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", ["alpaca", "yahoo", "sim"])
def test_vendor_providers_use_the_compact_form(provider: str) -> None:
    """Alpaca symbols and Yahoo contractSymbols are compact, and from_provider reads them back."""
    sym = OptionSymbol("AAPL1", date(2026, 3, 20), "P", Decimal("12.5"))
    text = to_provider(sym, provider)
    assert text == "AAPL1260320P00012500"
    assert from_provider(text, provider) == sym


def test_occ_provider_uses_the_padded_form() -> None:
    """The exchange spelling is padded and round trips through from_provider."""
    assert to_provider(AAPL, "occ") == "AAPL  260320C00150000"
    assert from_provider("AAPL  260320C00150000", "occ") == AAPL


def test_provider_form_mixups_fail_loudly() -> None:
    """A padded symbol handed to a compact provider (or the reverse) is rejected, naming the expected form."""
    with pytest.raises(BadOptionSymbol, match="compact"):
        from_provider("AAPL  260320C00150000", "alpaca")
    with pytest.raises(BadOptionSymbol, match="padded"):
        from_provider("AAPL260320C00150000", "occ")
    # A 6-letter root is spelt the same both ways, so it is accepted by both.
    assert from_provider("GOOGL1270115P01234567", "yahoo") == from_provider("GOOGL1270115P01234567", "occ")


def test_unknown_provider_is_a_value_error() -> None:
    """An unknown provider name is a programming error, not a bad symbol."""
    with pytest.raises(ValueError, match="unknown provider"):
        to_provider(AAPL, "polygon")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty symbol"),
        ("AAPL", "bad length"),
        ("TOOLONGROOT260320C00150000", "bad length"),
        ("260320C00150000", "empty root"),
        ("      260320C00150000", "empty root"),
        ("AAPL 260320C00150000", "bad root padding"),
        ("AA-L260320C00150000", "bad root"),
        ("AAPL26032XC00150000", "bad date"),
        ("AAPL261320C00150000", "bad date"),
        ("AAPL260230C00150000", "bad date"),
        ("AAPL260320X00150000", "bad right"),
        ("AAPL260320C0015000A", "bad strike"),
        ("AAPL260320C-0150000", "bad strike"),
        ("AAPL260320C00000000", "bad strike"),
    ],
)
def test_malformed_text_names_what_is_wrong(text: str, reason: str) -> None:
    """Each kind of malformed symbol raises BadOptionSymbol whose message names the problem and the input."""
    with pytest.raises(BadOptionSymbol, match=reason) as info:
        parse_osi(text)
    if text:
        assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (("", date(2026, 3, 20), "C", 1), "empty root"),
        (("AAPLXYZ", date(2026, 3, 20), "C", 1), "bad root"),
        (("aapl", date(2026, 3, 20), "C", 1), "bad root"),
        (("AAPL", date(1999, 3, 20), "C", 1), "bad date"),
        (("AAPL", "2026-03-20", "C", 1), "bad date"),
        (("AAPL", date(2026, 3, 20), "X", 1), "bad right"),
        (("AAPL", date(2026, 3, 20), "C", 0), "bad strike"),
        (("AAPL", date(2026, 3, 20), "C", -5), "bad strike"),
        (("AAPL", date(2026, 3, 20), "C", Decimal("1.2345")), "bad strike"),
        (("AAPL", date(2026, 3, 20), "C", 1.2345), "bad strike"),
        (("AAPL", date(2026, 3, 20), "C", 100000), "bad strike"),
        (("AAPL", date(2026, 3, 20), "C", "abc"), "bad strike"),
        (("AAPL", date(2026, 3, 20), "C", float("nan")), "bad strike"),
        (("AAPL", date(2026, 3, 20), "C", True), "bad strike"),
    ],
)
def test_invalid_fields_are_refused_at_construction(fields: tuple[object, ...], reason: str) -> None:
    """An OptionSymbol that could not be spelt in OSI is never built."""
    with pytest.raises(BadOptionSymbol, match=reason):
        OptionSymbol(*fields)  # type: ignore[arg-type]


def test_bad_symbol_is_a_value_error() -> None:
    """Callers that catch ValueError (e.g. generic row validation) also catch BadOptionSymbol."""
    assert issubclass(BadOptionSymbol, ValueError)


def test_parse_many_keeps_good_rows_and_reports_bad_ones() -> None:
    """A column with junk rows parses the good ones in place and lists one indexed message per bad one."""
    symbols, errors = parse_many(["AAPL260320C00150000", "junk", "AAPL  260320P00150000", "AAPL260320Z00150000"])
    assert symbols[0] == AAPL and symbols[2] == OptionSymbol("AAPL", date(2026, 3, 20), "P", Decimal(150))
    assert symbols[1] is None and symbols[3] is None
    assert len(errors) == 2
    assert errors[0].startswith("[1] bad length") and errors[1].startswith("[3] bad right")


_roots = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6)
_symbols = st.builds(
    OptionSymbol,
    root=_roots,
    expiry=st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    right=st.sampled_from(["C", "P"]),
    strike=st.integers(1, 99_999_999).map(lambda mills: Decimal(mills) / 1000),
)


@given(_symbols)
def test_any_symbol_round_trips_in_both_forms(sym: OptionSymbol) -> None:
    """Every valid symbol survives format -> parse in both forms and through every provider."""
    assert len(sym.padded) == 21
    assert parse_osi(sym.padded) == sym
    assert parse_osi(sym.compact) == sym
    for provider in ("alpaca", "yahoo", "sim", "occ"):
        assert from_provider(to_provider(sym, provider), provider) == sym


@given(st.text(max_size=25))
def test_arbitrary_text_either_parses_or_raises_bad_symbol(text: str) -> None:
    """No input makes the parser fail with anything but BadOptionSymbol, and what parses re-formats to itself."""
    try:
        sym = parse_osi(text)
    except BadOptionSymbol:
        return
    assert text.rstrip().upper() in (sym.padded, sym.compact)
