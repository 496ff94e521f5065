"""Ranged replay: which sessions and symbols the journaled events covered, and the commands that follow."""

from __future__ import annotations

from datetime import date

import pytest

from bus.codec import encode
from contracts import BuildBriefing, ComputeDerived, ComputeFlow
from oh.domain.replay import replay_commands, sessions_covered
from tests.unit.factories import chain, derived_event, flow


def test_sessions_covered_filters_by_range_and_symbol() -> None:
    """Only events inside [since, until] (and of the chosen symbols) count; sessions come oldest first."""
    payloads = [encode(chain(s, d, "r1")) for s, d in
                [("SPY", date(2025, 3, 4)), ("AAPL", date(2025, 3, 3)), ("SPY", date(2025, 3, 3)), ("SPY", date(2025, 2, 28))]]
    covered = sessions_covered(payloads, date(2025, 3, 1), date(2025, 3, 31))
    assert covered == {date(2025, 3, 3): ["AAPL", "SPY"], date(2025, 3, 4): ["SPY"]}
    assert sessions_covered(payloads, date(2025, 3, 1), date(2025, 3, 31), {"AAPL"}) == {date(2025, 3, 3): ["AAPL"]}


def test_each_type_replays_into_the_step_after_it() -> None:
    """Snapshots replay into flow, flow into derived, derived into briefings: new commands, triggered_by replay."""
    flow_payload = [encode(flow("SPY", date(2025, 3, 3), date(2025, 3, 4), "r1"))]
    derived_payload = [encode(derived_event("SPY", date(2025, 3, 4), "r1"))]
    covered_flow = sessions_covered(flow_payload, date(2025, 3, 1), date(2025, 3, 31))
    assert covered_flow == {date(2025, 3, 4): ["SPY"]}
    (command,) = replay_commands("FlowComputed", covered_flow)
    assert isinstance(command, ComputeDerived) and command.triggered_by == "replay"
    (brief,) = replay_commands("DerivedComputed", sessions_covered(derived_payload, date(2025, 3, 1), date(2025, 3, 31)))
    assert isinstance(brief, BuildBriefing) and brief.as_of == date(2025, 3, 4)
    first, second = replay_commands("ChainSnapshotted", {date(2025, 3, 3): ["SPY"], date(2025, 3, 4): ["SPY"]})
    assert isinstance(first, ComputeFlow) and first.as_of < second.as_of and first.id != second.id
    with pytest.raises(ValueError, match="cannot replay"):
        replay_commands("CandlesIngested", covered_flow)
