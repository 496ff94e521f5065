"""Backfill by replay: from journaled events of a date range, the commands that recompute what follows them.

`oh replay --since D1 --until D2 --type T` reads the journaled events of type T (through the
ledger, never refetching from a provider) and, for each session in the range, sends the command of
the step after T for the symbols T covered that day:

    ChainSnapshotted -> ComputeFlow -> (chained) ComputeDerived -> BuildBriefing
    FlowComputed     -> ComputeDerived -> (chained) BuildBriefing
    DerivedComputed  -> BuildBriefing

The commands are new (fresh ids, `triggered_by = replay`), so a step runs again even though it
ran before: that is the point after a change of logic. A command computes its sessions oldest
first, so a metric that uses only earlier sessions (IV rank) sees the recomputed earlier days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import msgspec

from contracts import Command
from contracts.catalog import JOB_BY_NAME, JOBS, Job

# The event of each job a pipeline stage follows, and that stage: replaying the event runs the stage.
STAGE_AFTER_EVENT: dict[str, Job] = {
    JOB_BY_NAME[job.after].event.__name__: job for job in JOBS if job.after and JOB_BY_NAME[job.after].event
}
REPLAYABLE = tuple(STAGE_AFTER_EVENT)


class _Key(msgspec.Struct):
    """The few fields of a journaled data event that say what it covered (the Arrow rows are skipped)."""

    symbol: str
    snapshot_date: date | None = None
    as_of: date | None = None
    window: int | None = None


_key_decoder = msgspec.msgpack.Decoder(_Key)


def sessions_covered(
    payloads: Iterable[bytes], since: date, until: date, symbols: set[str] | None = None
) -> dict[date, list[str]]:
    """The symbols each journaled event covered, by session, within [since, until] (and `symbols`)."""
    covered: dict[date, set[str]] = {}
    for payload in payloads:
        key = _key_decoder.decode(payload)
        day = key.snapshot_date or key.as_of
        if day is None or not since <= day <= until or (symbols and key.symbol not in symbols):
            continue
        if key.window not in (None, 1):
            continue  # derived and briefings follow the one-session flow only
        covered.setdefault(day, set()).add(key.symbol)
    return {day: sorted(covered[day]) for day in sorted(covered)}


def replay_commands(event_type: str, covered: dict[date, list[str]]) -> list[Command]:
    """The stage after `event_type` over the covered sessions: one command per set of symbols, its sessions oldest
    first (usually one command for the whole range)."""
    if event_type not in REPLAYABLE:
        raise ValueError(f"cannot replay {event_type!r}: choose one of {', '.join(REPLAYABLE)}")
    by_symbols: dict[tuple[str, ...], list[date]] = {}
    for day, symbols in sorted(covered.items()):
        by_symbols.setdefault(tuple(symbols), []).append(day)
    stage = STAGE_AFTER_EVENT[event_type].command
    return [stage(symbols=list(symbols), sessions=days, triggered_by="replay")  # type: ignore[call-arg]
            for symbols, days in by_symbols.items()]
