"""`snapshot_parseable_contract_symbol` counts exactly what oh.domain.osi cannot parse, without parsing every row."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from oh.adapters.sim.options import option_chain
from oh.domain.checks import unparseable_symbols
from oh.domain.osi import parse_many

GOOD = option_chain("AAPL", date(2025, 6, 3)).column("contract_symbol").to_pylist()[:50]
JUNK = ["", "AAPL", "AAPL251399C00100000", "AAPL250230C00100000", "aapl250620C00100000", "AAPL250620X00100000",
        "AAPL250620C00000000", "TOOLONGX250620C00100000", "AAPL  250620C00100000", "AAPL250620C0010000"]


def test_same_messages_as_parsing_every_row() -> None:
    """A chain mixing valid symbols and every kind of junk gives parse_many's messages, in row order."""
    rows = GOOD[:5] + JUNK + GOOD[5:10]
    assert unparseable_symbols(pa.array(rows)) == parse_many(rows)[1]
    assert len(unparseable_symbols(pa.array(rows))) >= 7


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(GOOD + JUNK), st.text(max_size=24),
                          st.from_regex(r"[A-Z]{1,3}[0-9]{6}[CP][0-9]{8}", fullmatch=True)), max_size=40))
def test_agrees_with_parse_many_on_any_input(rows: list[str]) -> None:
    """Whatever the strings (valid, malformed, impossible dates, random text), the two agree exactly."""
    assert unparseable_symbols(pa.array(rows, pa.string())) == parse_many(rows)[1]
