"""The gap backfill planner (pure): gaps in, an ordered list of `oh emit` commands out.

Upstream assets come first (candles and snapshots before flow and derived), each contiguous
missing range is one ranged command, and symbols that miss the same range share a command. The
same gaps always give the same plan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from oh.coverage import Gap

# Upstream first. Candles and snapshots can be planned in this build; the others join with their jobs.
ASSET_ORDER = (
    "candles_daily", "options_bars", "options_snapshot_file", "options_flow", "derived_metrics", "briefing_markdown",
)
EMIT_JOB = {"candles_daily": "ingest-candles", "options_snapshot_file": "snapshot-options"}


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
        return ["emit", self.job, "--symbols", ",".join(self.symbols), "--start", str(self.start), "--end", str(self.end)]

    def __str__(self) -> str:
        return "oh " + " ".join(self.argv())


def plan(gaps: list[Gap]) -> list[PlannedCommand]:
    """Order the commands that would fill `gaps` (assets without a backfill job are left out)."""
    grouped: dict[tuple[str, date, date, int], list[str]] = defaultdict(list)
    for gap in gaps:
        if gap.asset_key in EMIT_JOB:
            grouped[(gap.asset_key, gap.start, gap.end, gap.sessions)].append(gap.symbol)
    commands = [
        PlannedCommand(asset, EMIT_JOB[asset], tuple(sorted(set(symbols))), start, end, sessions)
        for (asset, start, end, sessions), symbols in grouped.items()
    ]
    return sorted(commands, key=lambda c: (ASSET_ORDER.index(c.asset_key), c.start, c.end, c.symbols))
