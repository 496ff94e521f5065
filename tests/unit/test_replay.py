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
    """Snapshots replay into flow, flow into derived, derived into briefings: new commands, triggered_by replay;
    a range of sessions with the same symbols is one command over those sessions, oldest first."""
    flow_payload = [encode(flow("SPY", date(2025, 3, 3), date(2025, 3, 4), "r1"))]
    derived_payload = [encode(derived_event("SPY", date(2025, 3, 4), "r1"))]
    covered_flow = sessions_covered(flow_payload, date(2025, 3, 1), date(2025, 3, 31))
    assert covered_flow == {date(2025, 3, 4): ["SPY"]}
    (command,) = replay_commands("FlowComputed", covered_flow)
    assert isinstance(command, ComputeDerived) and command.triggered_by == "replay"
    (brief,) = replay_commands("DerivedComputed", sessions_covered(derived_payload, date(2025, 3, 1), date(2025, 3, 31)))
    assert isinstance(brief, BuildBriefing) and brief.days() == [date(2025, 3, 4)]
    (ranged,) = replay_commands("ChainSnapshotted", {date(2025, 3, 3): ["SPY"], date(2025, 3, 4): ["SPY"]})
    assert isinstance(ranged, ComputeFlow) and ranged.days() == [date(2025, 3, 3), date(2025, 3, 4)]
    with pytest.raises(ValueError, match="cannot replay"):
        replay_commands("CandlesIngested", covered_flow)


def test_sessions_with_different_symbols_replay_as_one_command_per_symbol_set() -> None:
    """A range whose sessions covered different symbols is a few commands, each over its own sessions."""
    covered = {date(2025, 3, 3): ["AAPL", "SPY"], date(2025, 3, 4): ["SPY"], date(2025, 3, 5): ["AAPL", "SPY"]}
    commands = replay_commands("FlowComputed", covered)
    assert [(c.symbols, c.days()) for c in commands] == [
        (["AAPL", "SPY"], [date(2025, 3, 3), date(2025, 3, 5)]), (["SPY"], [date(2025, 3, 4)]),
    ]
