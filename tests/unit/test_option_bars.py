"""Sim option bars (deterministic, consistent with the chains) and the options-bars checks."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from contracts import rows
from oh.adapters.base import UnknownSymbol
from oh.adapters.sim.options import option_chain
from oh.adapters.sim.provider import SimProvider
from oh.domain.checks import option_bars_checks
from oh.domain.osi import BadOptionSymbol

SIM = SimProvider()
DAY = date(2025, 6, 3)


def _bars(day: date = DAY, dte: int = 30) -> pa.Table:
    return SIM.option_bars("AAPL", SIM.option_contracts("AAPL", day, dte), day, day)


def test_contract_list_holds_exactly_the_listed_contracts_within_the_dte() -> None:
    """option_contracts is the chain's contracts that expire within max_dte days, nothing else."""
    chain = option_chain("AAPL", DAY)
    listed = SIM.option_contracts("AAPL", DAY, 30)
    within = chain.filter(pc.less_equal(pc.subtract(chain["expiry"], pa.scalar(DAY, pa.date32())),
                                        pa.scalar(30 * 86400 * 1000, pa.duration("ms"))))
    assert sorted(listed) == sorted(within.column("contract_symbol").to_pylist())
    assert 0 < len(listed) < chain.num_rows


def test_bars_are_deterministic_and_agree_with_the_day_s_chain() -> None:
    """The same request gives the same bars; the close is the chain's last trade and the volume its volume;
    a contract with no volume that day has no bar."""
    bars = _bars()
    assert bars.equals(_bars())
    assert bars.schema.equals(rows.OPTION_BARS)
    chain = {r["contract_symbol"]: r for r in option_chain("AAPL", DAY).select(["contract_symbol", "last", "volume"]).to_pylist()}
    for bar in bars.slice(0, 200).to_pylist():
        assert bar["close"] == chain[bar["contract_symbol"]]["last"]
        assert bar["volume"] == chain[bar["contract_symbol"]]["volume"] > 0
    traded = sum(1 for c in SIM.option_contracts("AAPL", DAY, 30) if chain[c]["volume"] > 0)
    assert bars.num_rows == traded


def test_bars_pass_their_own_checks_over_a_range() -> None:
    """Bars over a week are ordered per contract, never negative, one per contract and day, and OHLC-consistent."""
    contracts = SIM.option_contracts("SPY", date(2025, 6, 2), 30)
    bars = SIM.option_bars("SPY", contracts, date(2025, 6, 2), date(2025, 6, 6))
    assert set(bars.column("date").to_pylist()) == {date(2025, 6, d) for d in range(2, 7)}
    assert {r.status for r in option_bars_checks(bars)} == {"pass"}


def test_bad_inputs_are_clear_errors() -> None:
    """An unknown underlying is UnknownSymbol; a contract on another root is BadOptionSymbol."""
    with pytest.raises(UnknownSymbol):
        SIM.option_bars("ZZFAKE", [], DAY, DAY)
    with pytest.raises(BadOptionSymbol):
        SIM.option_bars("AAPL", ["MSFT250620C00100000"], DAY, DAY)


def _results(table: pa.Table, session: date | None = None) -> dict[str, tuple[str, str]]:
    return {r.check_name: (r.severity, r.status) for r in option_bars_checks(table, session)}


def test_checks_catch_negative_prices_duplicates_disorder_and_off_date_bars() -> None:
    """Each seed check fails (error) on the defect it names, and passes on clean bars."""
    bars = _bars().slice(0, 20)
    assert set(_results(bars, DAY).values()) == {("error", "pass"), ("warn", "pass")}

    negative = bars.set_column(bars.schema.get_field_index("low"), "low",
                               pa.array(np.r_[-1.0, bars.column("low").to_numpy()[1:]]))
    assert _results(negative)["options_bars_no_negative_prices"] == ("error", "fail")

    duplicated = pa.concat_tables([bars, bars.slice(0, 1)])
    assert _results(duplicated)["options_bars_duplicate_pk"] == ("error", "fail")

    earlier = _bars(date(2025, 6, 2)).filter(pc.is_in(_bars(date(2025, 6, 2))["contract_symbol"], bars["contract_symbol"]))
    backwards = pa.concat_tables([bars, earlier])  # a contract's bar of the day before comes after today's
    assert _results(backwards)["options_bars_monotonic_ts"] == ("error", "fail")
    assert _results(backwards, DAY)["options_bars_session_date"] == ("warn", "fail")
