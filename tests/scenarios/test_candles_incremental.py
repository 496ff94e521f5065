"""An incremental candles fetch (the `daily` job's) ends with the candles_daily rows full fetches of the same
windows would have written, and falls back to the whole window when it must: a new symbol, a hole in the
stored history, or a provider whose history changed in the overlap (a split). An explicit `ingest_candles`
still fetches its whole range, and the journal rebuilds the same table.

Each scenario runs on the in-process stack AND on the real bus (a ledger and every worker as processes). The
reference is the same windows fetched whole, in the same order, on a separate in-process stack: what the
daily did before it was incremental. Only the outside world is changed: the sim market has a split
(OH_SIM_SPLITS, in the environment of every process, set before the harness starts). Each scenario uses
symbols of its own; the fetch each symbol got is read from the rows its run emitted (meta.ingestion_run_assets).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from contracts import IngestCandles, RunDaily, run_id_for
from oh.domain import calendar
from services.ingest import OVERLAP_SESSIONS
from services.stack import InProcessStack
from tests.scenarios.harness import BusHarness, Harness, InProcessHarness

D1, D2, D3 = date(2025, 6, 3), date(2025, 6, 4), date(2025, 6, 5)
CANDLE_DAYS = 90  # ~62 sessions: more than the overlap, so a tail fetch and a whole window differ
SPLIT = "S0102"  # splits 2:1, its first session at the new price D2
COLUMNS = "symbol, date, open, high, low, close, volume, provider"


def window(day: date) -> tuple[date, date]:
    return day - timedelta(days=CANDLE_DAYS), day


def sessions(start: date, end: date) -> int:
    return len(calendar.sessions(start, end))


@pytest.fixture(scope="module", params=["inprocess", "bus"])
def harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OH_SIM_SPLITS", f"{SPLIT}@{D2}:2")  # inherited by the bus's processes, started below
        home = Home(tmp_path_factory.mktemp(f"incremental-{request.param}") / "oh_home").ensure()
        made = InProcessHarness(home) if request.param == "inprocess" else BusHarness(home)
        yield made
        made.close()


def stored(harness: Harness | InProcessStack, symbols: list[str]) -> list[dict[str, Any]]:
    return harness.query(f"SELECT {COLUMNS} FROM candles_daily WHERE list_contains(?, symbol) ORDER BY ALL",
                         [symbols]).to_pylist()


def full_fetches(root: Path, commands: list[IngestCandles]) -> list[dict[str, Any]]:
    """The candles of the same windows fetched whole, in the same order, on a fresh in-process stack."""
    stack = InProcessStack(Home(root).ensure(), workers=["ingest"])
    try:
        for command in commands:
            stack.run(IngestCandles(symbols=command.symbols, start=command.start, end=command.end))
        return stored(stack, sorted({s for c in commands for s in c.symbols}))
    finally:
        stack.close()


def emitted(harness: Harness, run_id: str) -> dict[str, tuple[int, int]]:
    """(rows inserted, rows updated) of each symbol of a candles run: what it fetched and sent."""
    rows = harness.query("SELECT partition_key, rows_inserted, rows_updated FROM meta.ingestion_run_assets "
                         "WHERE run_id = ? AND status = 'success'", [run_id]).to_pylist()
    return {r["partition_key"]: (r["rows_inserted"], r["rows_updated"]) for r in rows}


def run_candles(harness: Harness, command: IngestCandles) -> dict[str, tuple[int, int]]:
    assert harness.run(command).status == "success"
    return emitted(harness, run_id_for(command.id, "ingest_candles"))


def incremental(symbols: list[str], day: date) -> IngestCandles:
    start, end = window(day)
    return IngestCandles(symbols=symbols, start=start, end=end, incremental=True)


TAIL = (1, OVERLAP_SESSIONS)  # the next session inserted, the overlap re-written


def test_daily_days_end_with_the_rows_of_full_fetches(harness: Harness, tmp_path: Path) -> None:
    """Three dailies in a row: the first fetches the whole window, the next two only the new session and the
    overlap; the table holds what three full fetches of the same windows hold."""
    symbols = ["S0101"]
    fetched = []
    for day in (D1, D2, D3):
        daily = RunDaily(symbols=symbols, as_of=day, candle_days=CANDLE_DAYS, with_portfolio=False)
        assert harness.run(daily).status == "success"
        candles = harness.query("SELECT run_id FROM meta.ingestion_runs WHERE parent_run_id = ? AND job_name = "
                                "'ingest_candles'", [run_id_for(daily.id, "daily")]).column(0)[0].as_py()
        fetched.append(emitted(harness, candles))
    assert fetched == [{"S0101": (sessions(*window(D1)), 0)}, {"S0101": TAIL}, {"S0101": TAIL}]
    assert stored(harness, symbols) == full_fetches(tmp_path, [incremental(symbols, day) for day in (D1, D2, D3)])


def test_a_split_in_the_overlap_fetches_the_whole_window(harness: Harness, tmp_path: Path) -> None:
    """The day of the split the provider's overlap is halved: the whole window is fetched again (every earlier
    price adjusted, as a full fetch has it); the day after, the tail only again."""
    commands = [incremental([SPLIT], day) for day in (D1, D2, D3)]
    fetched = [run_candles(harness, command) for command in commands]
    whole = sessions(*window(D2))
    assert fetched == [{SPLIT: (sessions(*window(D1)), 0)}, {SPLIT: (1, whole - 1)}, {SPLIT: TAIL}]
    rows = stored(harness, [SPLIT])
    assert rows == full_fetches(tmp_path, commands)
    by_day = {r["date"]: r for r in rows}  # the one session only the first window held is as the split found it
    assert by_day[window(D2)[0]]["close"] < 0.6 * by_day[window(D1)[0]]["close"]


def test_a_new_symbol_gets_the_whole_window(harness: Harness, tmp_path: Path) -> None:
    """A symbol with nothing stored beside one that has its history: the whole window for it, the tail for the other."""
    commands = [incremental(["S0103"], D1), incremental(["S0103", "S0104"], D2)]
    fetched = [run_candles(harness, command) for command in commands]
    assert fetched[1] == {"S0103": TAIL, "S0104": (sessions(*window(D2)), 0)}
    assert stored(harness, ["S0103", "S0104"]) == full_fetches(tmp_path, commands)


@pytest.mark.parametrize(("symbol", "ranges"), [
    ("S0105", [(window(D1)[0], window(D1)[0] + timedelta(days=20)), (window(D1)[0] + timedelta(days=40), D1)]),
    ("S0106", [(D1 - timedelta(days=45), D1)]),  # stored from later than the window starts (candle_days grew)
], ids=["gap", "window-reaches-further-back"])
def test_a_hole_in_the_stored_window_fetches_the_whole_window(
    harness: Harness, tmp_path: Path, symbol: str, ranges: list[tuple[date, date]]
) -> None:
    """Sessions missing between the window's start and the newest stored one: the whole window, the hole filled."""
    commands = [IngestCandles(symbols=[symbol], start=a, end=b) for a, b in ranges] + [incremental([symbol], D2)]
    fetched = [run_candles(harness, command) for command in commands]
    whole = sessions(*window(D2))
    held = sum(sessions(max(a, window(D2)[0]), b) for a, b in ranges)
    assert fetched[-1] == {symbol: (whole - held, held)}
    rows = stored(harness, [symbol])
    assert len([r for r in rows if r["date"] >= window(D2)[0]]) == whole
    assert rows == full_fetches(tmp_path, commands)


def test_an_explicit_ingest_candles_fetches_its_whole_range(harness: Harness) -> None:
    """`oh emit ingest-candles` (no `incremental`) over a stored range re-fetches all of it."""
    start, end = window(D1)
    run_candles(harness, IngestCandles(symbols=["S0107"], start=start, end=end))
    again = run_candles(harness, IngestCandles(symbols=["S0107"], start=start, end=end))
    assert again == {"S0107": (0, sessions(start, end))}


def test_the_stored_window_is_read_in_chunks_of_symbols(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process only: with one symbol per bulk read, each symbol still finds its own history (the tail for both)."""
    import services.ingest

    monkeypatch.setattr(services.ingest, "READ_SYMBOLS", 1)
    harness = InProcessHarness(Home(tmp_path / "oh_home").ensure())
    try:
        run_candles(harness, incremental(["S0108", "S0109"], D1))
        assert run_candles(harness, incremental(["S0108", "S0109"], D2)) == {"S0108": TAIL, "S0109": TAIL}
    finally:
        harness.close()


def test_the_journal_rebuilds_the_same_candles(harness: Harness) -> None:
    """After the scenarios above (the module's last test): `oh replay --rebuild` gives the same candles_daily.
    Only on the bus: the in-process ledger keeps no journal."""
    if not isinstance(harness, BusHarness):
        pytest.skip("the in-process ledger keeps no journal")
    live = harness.query(f"SELECT {COLUMNS} FROM candles_daily ORDER BY ALL").to_pylist()
    assert len({r["symbol"] for r in live}) >= 7
    assert harness.client.rebuild().events > 0
    assert harness.query(f"SELECT {COLUMNS} FROM candles_daily ORDER BY ALL").to_pylist() == live
