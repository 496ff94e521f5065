"""The gap backfill planner (pure): gaps in, an ordered list of `oh` commands out.

Upstream assets come first (candles, bars and snapshots before flow and derived), each contiguous
missing range is one ranged command, and symbols that miss the same range share a command. Flow
and derived gaps are filled by replaying the stored snapshots (`oh replay --since --until`), and
are left out where a planned snapshot backfill covers them already (its chain recomputes them).
The same gaps always give the same plan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from contracts.catalog import ASSET_KEYS, JOB_BY_NAME, JOBS
from oh.domain.coverage import Gap

ASSET_ORDER = ASSET_KEYS  # upstream first
# A tracked dataset fetched from a provider is refilled by its `oh emit` command; one computed by a
# pipeline stage by replaying the journaled events of the job before it.
EMIT_JOB = {job.asset_key: job.cli for job in JOBS if job.asset_key and job.coverage and not job.after}
REPLAY_TYPE = {
    job.asset_key: JOB_BY_NAME[job.after].event.__name__  # type: ignore[union-attr]
    for job in JOBS if job.asset_key and job.coverage and job.after
}


@dataclass(frozen=True)
class PlannedCommand:
    """One command that fills the gaps of `symbols` over [start, end] for one asset."""

    asset_key: str
    job: str
    symbols: tuple[str, ...]
    start: date
    end: date
    sessions: int

    def argv(self) -> list[str]:
        """The `oh` arguments that run it."""
        if self.job == "replay":
            return ["replay", "--since", str(self.start), "--until", str(self.end), "--type", REPLAY_TYPE[self.asset_key],
                    "--symbols", ",".join(self.symbols)]
        return ["emit", self.job, "--symbols", ",".join(self.symbols), "--start", str(self.start), "--end", str(self.end)]

    def __str__(self) -> str:
        return "oh " + " ".join(self.argv())


def plan(gaps: list[Gap]) -> list[PlannedCommand]:
    """Order the commands that would fill `gaps` (assets without a backfill job are left out)."""
    snapshot_gaps = [g for g in gaps if g.asset_key == "options_snapshot_file"]

    def refilled(gap: Gap) -> bool:  # a snapshot backfill over these sessions chains flow and derived again
        return any(s.symbol == gap.symbol and s.start <= gap.start and gap.end <= s.end for s in snapshot_gaps)

    grouped: dict[tuple[str, date, date, int], list[str]] = defaultdict(list)
    for gap in gaps:
        if gap.asset_key in EMIT_JOB or (gap.asset_key in REPLAY_TYPE and not refilled(gap)):
            grouped[(gap.asset_key, gap.start, gap.end, gap.sessions)].append(gap.symbol)
    commands = [
        PlannedCommand(asset, EMIT_JOB.get(asset, "replay"), tuple(sorted(set(symbols))), start, end, sessions)
        for (asset, start, end, sessions), symbols in grouped.items()
    ]
    return sorted(commands, key=lambda c: (ASSET_ORDER.index(c.asset_key), c.start, c.end, c.symbols))
