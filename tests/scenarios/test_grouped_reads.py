"""Flow, derived and the briefing read many symbols at once, and write exactly what reading one symbol at a time wrote.

A wide daily (thousands of symbols, one session) used to cost each job a few reads through the ledger
per symbol; `services.snapshots.read_plan` groups the symbols of a short range into one read
(`load_chains_many`, and derived's closes and IV history per group). Protected here:

- `load_chains_many` gives each symbol exactly what `load_chains` (the old one-symbol read) gives it,
  with and without sessions before the range, for symbols with gaps, thin listings and nothing stored;
- the jobs on a stack whose plan is one symbol per read with the old `load_chains` (the old path) and
  on stacks reading all symbols at once, or two per read, write identical tables and run ledgers, for
  single sessions and for a range.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from contracts import BuildBriefing, Command, ComputeDerived, ComputeFlow, IngestCandles, SnapshotOptions
from oh.domain import calendar
from services import briefing, derived, flow, snapshots
from services.runs import execute
from services.stack import InProcessStack

SYMBOLS = ["AAPL", "S0001", "S0007", "SPY", "QQQ"]  # QQQ: candles, never a snapshot; S000x: thin listings
FIRST, LAST = date(2025, 4, 22), date(2025, 4, 29)
MISSING = date(2025, 4, 24)  # no snapshot of AAPL this session
HANDLERS = {ComputeFlow: (flow.compute_flow, "flow"), ComputeDerived: (derived.compute_derived, "derived"),
            BuildBriefing: (briefing.build_briefing, "briefing")}


def _days() -> list[date]:
    return [d.astype(date) for d in calendar.sessions(FIRST, LAST)]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse file holding candles of every symbol and snapshots of all but QQQ (AAPL misses a session),
    seeded once through the ingest and snapshot handlers; each test works on a copy of its own (`seeded`)."""
    root = tmp_path_factory.mktemp("seed")
    stack = InProcessStack(Home(root / "home").ensure(), workers=["ingest", "snapshot"], warehouse=root / "seed.duckdb")
    stack.run(IngestCandles(symbols=SYMBOLS, start=date(2025, 1, 2), end=LAST))
    stack.run(SnapshotOptions(symbols=["SPY", "S0001", "S0007"], start=FIRST, end=LAST))
    for day in _days():
        if day != MISSING:
            stack.run(SnapshotOptions(symbols=["AAPL"], start=day, end=day))
    stack.close()
    return root / "seed.duckdb"


def seeded(seed: Path, root: Path) -> InProcessStack:
    """A stack on `root` whose warehouse is a copy of the seeded one (the same data on every call)."""
    home = Home(root).ensure()
    warehouse = root / "seeded.duckdb"
    shutil.copyfile(seed, warehouse)
    return InProcessStack(home, workers=["ingest", "snapshot"], warehouse=warehouse)


def one_symbol_reads(symbols: list[str], days: list[date], extra: int = 0) -> Any:
    """The old plan: one symbol per read, all the sessions of the command."""
    for symbol in symbols:
        yield [symbol], [days]


def old_load(read: Any, symbols: list[str], first: date, last: date, before: int = 0, columns: Any = None) -> dict[str, Any]:
    """The old read: `load_chains` once per symbol, every column (`columns`, the ones a job asks for, ignored)."""
    return {s: chains for s in symbols if (chains := snapshots.load_chains(read, s, first, last, before))}


def run_jobs(stack: InProcessStack) -> dict[str, list[dict[str, Any]]]:
    """Flow, derived and briefing for each session alone, then for the range; every table they write."""
    days = _days()
    commands: list[Command] = []
    for kind in (ComputeFlow, ComputeDerived, BuildBriefing):
        commands += [kind(symbols=SYMBOLS, sessions=[day]) for day in days[:2]]
    commands += [kind(symbols=SYMBOLS, sessions=days[2:]) for kind in (ComputeFlow, ComputeDerived, BuildBriefing)]
    for command in commands:
        handler, service = HANDLERS[type(command)]
        assert execute(stack, command, handler, service) in ("success", "failed")
    root = str(stack.home.root)
    return {
        "options_flow": stack.query("SELECT * FROM options_flow ORDER BY ALL").to_pylist(),
        "derived_daily": stack.query("SELECT * FROM derived_daily ORDER BY ALL").to_pylist(),
        "briefings": [{**r, "markdown": r["markdown"].replace(root, "$OH_HOME")} for r in
                      stack.query("SELECT as_of, markdown FROM briefings ORDER BY ALL").to_pylist()],
        "runs": stack.query("SELECT job_name, status, error_message FROM meta.ingestion_runs "
                            "WHERE job_name <> 'ingest_candles' AND job_name <> 'snapshot_options' ORDER BY ALL").to_pylist(),
        "assets": stack.query("SELECT asset_key, partition_key, status, rows_inserted, rows_updated "
                              "FROM meta.ingestion_run_assets ORDER BY ALL").to_pylist(),
    }


def test_load_chains_many_gives_each_symbol_what_load_chains_gives_it(seed: Path, tmp_path: Path) -> None:
    stack = seeded(seed, tmp_path / "s")
    days = _days()
    for first, last in ((days[0], days[-1]), (days[3], days[3]), (MISSING, MISSING), (days[1], days[4])):
        for before in (0, 1, 3):
            many = snapshots.load_chains_many(stack.query, SYMBOLS, first, last, before)
            for symbol in SYMBOLS:
                one = snapshots.load_chains(stack.query, symbol, first, last, before)
                got = many.get(symbol, {})
                assert list(got) == list(one), (symbol, first, last, before)
                for day, chain in one.items():
                    assert got[day].equals(chain), (symbol, day, before)
            assert "QQQ" not in many and many["SPY"]
    assert snapshots.load_chains_many(stack.query, [], days[0], days[-1]) == {}


@pytest.fixture(scope="module")
def old(seed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The tables the old path (one symbol per read) writes: computed once, compared with each grouped plan."""
    with pytest.MonkeyPatch.context() as mp:
        for module in (flow, derived):
            mp.setattr(module, "read_plan", one_symbol_reads)
            mp.setattr(module, "load_chains_many", old_load)
        mp.setattr(briefing, "SYMBOLS_PER_READ", 1)
        return run_jobs(seeded(seed, tmp_path_factory.mktemp("old")))


@pytest.mark.parametrize("per_read", [1000, 4])  # every symbol in one read; two symbols per read (window 1)
def test_grouped_reads_write_what_one_symbol_reads_wrote(
        seed: Path, tmp_path: Path, old: dict[str, list[dict[str, Any]]], per_read: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(snapshots, "SYMBOL_SESSIONS_PER_READ", per_read)
        mp.setattr(briefing, "SYMBOLS_PER_READ", 2)
        grouped = run_jobs(seeded(seed, tmp_path / "grouped"))
    for table in old:
        assert grouped[table] == old[table], table
    assert old["options_flow"] and old["derived_daily"] and old["briefings"]
    assert {"QQQ", "AAPL"} <= {a["partition_key"].split("|")[0] for a in old["assets"] if a["status"] == "skipped"}
