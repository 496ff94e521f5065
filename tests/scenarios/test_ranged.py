"""Ranged work is one command per range, and writes exactly what one command per session wrote.

Flow, derived metrics and briefings over 6 sessions of two symbols, computed once as one command
per session (oldest first, as the pipeline used to send them) and once as one command for the whole
range, on two in-process stacks seeded with the same candles and snapshots: the tables are equal,
the run ledger records one partition per symbol and session either way, and a session with no
snapshot is skipped in the range without failing the others.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from bus.home import Home
from contracts import BuildBriefing, Command, ComputeDerived, ComputeFlow, IngestCandles, SnapshotOptions, run_id_for
from contracts.catalog import job_of
from oh.domain import calendar
from services import briefing, derived, flow
from services.runs import execute
from services.stack import InProcessStack

SYMBOLS = ["AAPL", "SPY"]
FIRST, LAST = date(2025, 4, 16), date(2025, 4, 24)  # 6 sessions, across Good Friday
MISSING = date(2025, 4, 22)  # no snapshot of AAPL this session
HANDLERS = {ComputeFlow: (flow.compute_flow, "flow"), ComputeDerived: (derived.compute_derived, "derived"),
            BuildBriefing: (briefing.build_briefing, "briefing")}


def seeded(root: Path) -> InProcessStack:
    """Candles and snapshots only (no worker that chains), the same on every call."""
    stack = InProcessStack(Home(root).ensure(), workers=["ingest", "snapshot"])
    stack.run(IngestCandles(symbols=SYMBOLS, start=date(2025, 1, 2), end=LAST))
    stack.run(SnapshotOptions(symbols=["SPY"], start=FIRST, end=LAST))
    days = [d.astype(date) for d in calendar.sessions(FIRST, LAST)]
    for day in days:
        if day != MISSING:
            stack.run(SnapshotOptions(symbols=["AAPL"], start=day, end=day))
    return stack


def run(stack: InProcessStack, command: Command) -> str | None:
    handler, service = HANDLERS[type(command)]
    return execute(stack, command, handler, service)


def tables(stack: InProcessStack) -> dict[str, list[dict[str, Any]]]:
    root = str(stack.home.root)
    out = {
        "options_flow": stack.query("SELECT * FROM options_flow ORDER BY ALL").to_pylist(),
        "derived_daily": stack.query("SELECT * FROM derived_daily ORDER BY ALL").to_pylist(),
        "briefings": [{**r, "markdown": r["markdown"].replace(root, "$OH_HOME")} for r in
                      stack.query("SELECT as_of, markdown FROM briefings ORDER BY ALL").to_pylist()],
    }
    return out


def test_one_command_per_range_writes_what_one_command_per_session_wrote(tmp_path: Path) -> None:
    days = [d.astype(date) for d in calendar.sessions(FIRST, LAST)]
    per_session = seeded(tmp_path / "per-session")
    for kind in (ComputeFlow, ComputeDerived, BuildBriefing):
        for day in days:
            assert run(per_session, kind(symbols=SYMBOLS, sessions=[day])) in ("success", "failed")
    ranged = seeded(tmp_path / "ranged")
    commands = [kind(symbols=SYMBOLS, sessions=days) for kind in (ComputeFlow, ComputeDerived, BuildBriefing)]
    for command in commands:
        assert run(ranged, command) == "success"
    written = tables(ranged)  # read once: tens of thousands of flow rows as dicts
    assert written == tables(per_session)
    assert len(written["derived_daily"]) == 2 * len(days) - 1
    derived_run = run_id_for(commands[1].id, job_of(commands[1]).name)
    partitions = ranged.query(
        "SELECT partition_key, status FROM meta.ingestion_run_assets WHERE run_id = ? ORDER BY 1", [derived_run]
    ).to_pylist()
    assert len(partitions) == 2 * len(days)
    assert [p for p in partitions if p["status"] != "success"] == [{"partition_key": f"AAPL|{MISSING}", "status": "skipped"}]
    ranks = ranged.query("SELECT iv_history_count FROM derived_daily WHERE symbol = 'SPY' ORDER BY session_date")
    assert ranks.column(0).to_pylist() == list(range(len(days)))  # each session ranks against the ones this run computed
