"""Parsing the --symbols list a user types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oh.domain.symbols import BadSymbol, parse_symbols


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AAPL", ["AAPL"]),
        ("AAPL,MSFT", ["AAPL", "MSFT"]),
        (" aapl , msft ,spy", ["AAPL", "MSFT", "SPY"]),
        ("BRK.B,BF-B", ["BRK.B", "BF-B"]),
        ("X,GOOGL,QQQ3", ["X", "GOOGL", "QQQ3"]),
        ("AAPL,,MSFT,", ["AAPL", "MSFT"]),
    ],
)
def test_good_lists_are_upper_cased_in_order(text: str, expected: list[str]) -> None:
    """Tickers are trimmed, upper-cased and kept in the order typed; empty items are ignored."""
    assert parse_symbols(text) == expected


def test_duplicates_are_dropped_keeping_the_first() -> None:
    """A symbol typed twice (any case) is fetched once, at its first position."""
    assert parse_symbols("msft,AAPL,MSFT,aapl,spy") == ["MSFT", "AAPL", "SPY"]


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("AAPL,12X", "12X"),
        ("AAPL,TOOLONGX", "TOOLONGX"),
        ("AAPL, MS FT", "MS FT"),
        ("AAPL;MSFT", "AAPL;MSFT"),
        ("spy,$SPX", "$SPX"),
        ("BRK.", "BRK."),
        ("BRK.BBB", "BRK.BBB"),
        (".B", ".B"),
        ("aapl,m$ft", "m$ft"),
    ],
)
def test_malformed_symbols_raise_bad_symbol_naming_the_culprit(text: str, culprit: str) -> None:
    """The error quotes the offending item as typed, so the user knows which one to fix."""
    with pytest.raises(BadSymbol) as info:
        parse_symbols(text)
    assert repr(culprit) in str(info.value)


@pytest.mark.parametrize("text", ["", ",", " , ,, "])
def test_no_symbols_at_all_is_an_error(text: str) -> None:
    """An empty list is refused rather than starting a job that does nothing."""
    with pytest.raises(BadSymbol, match="no symbols"):
        parse_symbols(text)


@given(st.lists(st.from_regex(r"[A-Z][A-Z0-9]{0,5}([.\-][A-Z0-9]{1,2})?", fullmatch=True), min_size=1, max_size=8))
def test_any_list_of_valid_tickers_parses_to_its_unique_items(symbols: list[str]) -> None:
    """Joining valid tickers with commas (in lower case, with spaces) gives them back, deduplicated in order."""
    text = " , ".join(s.lower() for s in symbols)
    assert parse_symbols(text) == list(dict.fromkeys(symbols))
