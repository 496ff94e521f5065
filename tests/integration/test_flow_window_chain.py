"""A flow run over a multi-session window chains nothing; a one-session flow run still chains derived metrics.

Protects services/pipeline.py's CHAINS_ON: derived metrics read the chains and the briefing one-session flow, so
after `compute-flow --window 2` a chained derived run (and its briefing) would only recompute the rows they hold
(what `oh demo` did after its 5-session window). And `follow_chain` (`oh demo`, `oh replay --wait`, `daily`) ends
at such a run instead of waiting for a successor that is never sent, while it still follows a one-session flow
run to its derived run and briefing. Real ledger, snapshot, flow, derived and briefing workers on sim
chains.
"""

from __future__ import annotations

from datetime import date

import pytest

from bus.codec import decode_message
from bus.home import Home
from bus.producer import Producer
from contracts import Command, ComputeFlow, run_id_for
from services.pipeline import Step, follow_chain, step_of
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

DAYS = (date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4))


def _send(home: Home, command: Command) -> None:
    producer = Producer(home)
    try:
        producer.send(command)
        producer.flush(timeout=30.0)
    finally:
        producer.close()


def _snapshot_chain(stack: Stack, symbol: str) -> dict[Step, str]:
    """Snapshot `symbol` on DAYS and follow the chain that starts."""
    snap = run_oh("emit", "snapshot-options", "--symbols", symbol, "--start", str(DAYS[0]), "--end", str(DAYS[-1]),
                  "--wait")
    assert snap.returncode == 0, snap.stderr
    run_id = str(stack.scalar("SELECT run_id FROM meta.ingestion_runs WHERE job_name = 'snapshot_options' "
                              "AND args_json LIKE ?", [f'%"{symbol}"%']))
    return follow_chain(stack.client.query, Step("snapshot_options", run_id), 60.0, 120.0)


def _journaled_parents(stack: Stack, kind: str) -> list[str | None]:
    """The parent_run_id of every `kind` command in the journal, read to its head."""
    parents: list[str | None] = []
    seq = 1
    while True:
        header, frames = stack.client.catch_up(seq, 0, [kind])
        parents += [getattr(decode_message(payload), "parent_run_id", None) for _, _, payload in frames]
        seq = header.last_seq + 1
        if header.last_seq >= header.head_seq:
            return parents


def test_a_windowed_flow_run_chains_nothing_and_its_chain_ends_there(pipeline: Stack, home: Home) -> None:
    """Snapshots of 3 sessions chain one-session flow, then derived (as always). A 2-session flow window for the last
    session then succeeds, and `follow_chain` from it returns its flow step alone; once the derived worker has run a
    command journaled after the windowed run ended (so it has reacted to that run first), no ComputeDerived in the
    journal names the windowed run as its parent, while one names the one-session flow run."""
    chain = _snapshot_chain(pipeline, "AAPL")
    assert [(step.job, status) for step, status in chain.items()] == [
        ("snapshot_options", "success"), ("compute_flow", "success"), ("compute_derived", "success"),
        ("build_briefing", "success")]
    windowed = ComputeFlow(symbols=["AAPL"], sessions=[DAYS[-1]], window=2)
    _send(home, windowed)
    outcome = follow_chain(pipeline.client.query, step_of(windowed), 60.0, 120.0)
    assert [(step.job, status) for step, status in outcome.items()] == [("compute_flow", "success")]
    assert pipeline.scalar("SELECT count(*) FROM options_flow WHERE window_sessions = 2") > 0
    later = run_oh("emit", "compute-derived", "--symbols", "AAPL", "--as-of", str(DAYS[-1]), "--wait")
    assert later.returncode == 0, later.stderr
    parents = _journaled_parents(pipeline, "ComputeDerived")
    one_session_flow = next(step.run_id for step in chain if step.job == "compute_flow")
    assert run_id_for(windowed.id, "compute_flow") not in parents
    assert one_session_flow in parents


def test_follow_chain_still_follows_a_one_session_flow_to_its_derived_run(pipeline: Stack, home: Home) -> None:
    """A one-session flow command over stored chains chains a derived run, and follow_chain waits for it."""
    _snapshot_chain(pipeline, "SPY")
    again = ComputeFlow(symbols=["SPY"], sessions=[DAYS[-1]], window=1)
    _send(home, again)
    outcome = follow_chain(pipeline.client.query, step_of(again), 60.0, 120.0)
    assert [(step.job, status) for step, status in outcome.items()] == [
        ("compute_flow", "success"), ("compute_derived", "success"), ("build_briefing", "success")]
