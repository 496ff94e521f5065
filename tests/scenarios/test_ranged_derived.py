"""A long derived range (issue #14.1) is read in chunks of only the columns derived_row uses, the next chunk
read ahead in a thread, and its rows emitted a chunk at a time; it must write exactly what one command per
session, reading every column, wrote, and keep every per-partition promise. Protected here:

- `load_chains_many(..., columns=)` gives each symbol and session the wide read's rows and order, only
  those columns; an unknown column is refused naming it; `split_sorted` slices like a plain group-by;
- a range over several chunks (CHUNK_SESSIONS made small), its rows emitted one at a time, a few chunks
  at a time or all at the end (EMIT_ROWS), writes the per-session path's derived rows and one asset row
  per partition (a session with no chain skipped);
- a session whose computation fails fails only its own partition, the run ends failed naming it, and
  every other session writes what the per-session path with the same failure wrote;
- a read that fails mid-range ends the run failed with its error, the rows computed before it written,
  and a stop asked mid-range stops it (Shutdown, the run resumes on restart); either way no read-ahead
  thread is left behind.
"""

from __future__ import annotations

import itertools
import shutil
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from bus.home import Home
from contracts import ComputeDerived, IngestCandles, SnapshotOptions, run_id_for
from contracts.catalog import job_of
from oh.domain import calendar
from oh.domain import derived as domain
from services import derived, snapshots
from services.runs import Shutdown, execute
from services.stack import InProcessStack

SYMBOLS = ["AAPL", "SPY"]
FIRST, LAST = date(2025, 4, 14), date(2025, 4, 29)
MISSING = date(2025, 4, 22)  # no snapshot of AAPL this session
FAILING = date(2025, 4, 21)  # the session whose computation the failure tests break (mid-chunk with chunks of 3)
DAYS = [d.astype(date) for d in calendar.sessions(FIRST, LAST)]


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse file with candles of both symbols and their snapshots (AAPL misses a session), made once."""
    root = tmp_path_factory.mktemp("seed")
    stack = InProcessStack(Home(root / "home").ensure(), workers=["ingest", "snapshot"], warehouse=root / "seed.duckdb")
    stack.run(IngestCandles(symbols=SYMBOLS, start=date(2025, 1, 2), end=LAST))
    stack.run(SnapshotOptions(symbols=["SPY"], start=FIRST, end=LAST))
    for day in DAYS:
        if day != MISSING:
            stack.run(SnapshotOptions(symbols=["AAPL"], start=day, end=day))
    stack.close()
    return root / "seed.duckdb"


@pytest.fixture
def new_stack(seeded_file: Path, tmp_path: Path) -> Iterator[Any]:
    """Stacks on copies of the seeded warehouse (a fresh copy per call), closed at the end."""
    stacks: list[InProcessStack] = []
    counter = itertools.count()

    def make() -> InProcessStack:
        n = next(counter)
        shutil.copy(seeded_file, tmp_path / f"w{n}.duckdb")
        stacks.append(InProcessStack(Home(tmp_path / f"h{n}").ensure(), workers=[], warehouse=tmp_path / f"w{n}.duckdb"))
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.close()


def wide_chains(run: Any, symbols: list[str], chunk: list[date]) -> dict[str, dict[date, pa.Table]]:
    """The read before issue #14.1: every column of the chains."""
    return snapshots.load_chains_many(run.query, symbols, chunk[0], chunk[-1])


def per_session(stack: InProcessStack) -> list[str | None]:
    """One command per session, oldest first, reading every column (the path the range must match)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(derived, "_chains", wide_chains)
        return [execute(stack, ComputeDerived(symbols=SYMBOLS, sessions=[day]), derived.compute_derived, "derived")
                for day in DAYS]


def ranged(stack: InProcessStack, chunk: int = 3, emit_rows: int = 4) -> tuple[str | None, str]:
    """One command over every session, read `chunk` sessions at a time, rows emitted once `emit_rows` are
    waiting; (status, run id)."""
    command = ComputeDerived(symbols=SYMBOLS, sessions=DAYS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(snapshots, "CHUNK_SESSIONS", chunk)
        mp.setattr(derived, "EMIT_ROWS", emit_rows)
        status = execute(stack, command, derived.compute_derived, "derived")
    return status, run_id_for(command.id, job_of(command).name)


def rows(stack: InProcessStack) -> list[dict[str, Any]]:
    return stack.query("SELECT * FROM derived_daily ORDER BY ALL").to_pylist()


def assets(stack: InProcessStack, run_id: str | None = None) -> list[tuple[str, str]]:
    """(partition, status) of every derived asset row, of one run or of all."""
    where, params = (" AND run_id = ?", [run_id]) if run_id else ("", [])
    table = stack.query("SELECT partition_key, status FROM meta.ingestion_run_assets WHERE asset_key = ?"
                        f"{where} ORDER BY 1", [derived.ASSET, *params])
    return [(r["partition_key"], r["status"]) for r in table.to_pylist()]


def no_read_ahead_left() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("derived-read-ahead")]


def failing_on(day: date) -> Any:
    real = domain.derived_row

    def derived_row(symbol: str, as_of: date, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if as_of == day and symbol == "SPY":
            raise ZeroDivisionError(f"broken on {as_of}")
        return real(symbol, as_of, *args, **kwargs)

    return derived_row


def test_the_narrow_read_gives_the_wide_reads_rows_and_order_in_fewer_columns(new_stack: Any) -> None:
    stack = new_stack()
    for first, last, before in ((DAYS[0], DAYS[-1], 0), (DAYS[2], DAYS[5], 0), (DAYS[3], DAYS[6], 2), (MISSING, MISSING, 0)):
        wide = snapshots.load_chains_many(stack.query, [*SYMBOLS, "QQQ"], first, last, before)
        narrow = snapshots.load_chains_many(stack.query, [*SYMBOLS, "QQQ"], first, last, before, columns=domain.CHAIN_INPUTS)
        assert list(narrow) == list(wide) and "QQQ" not in narrow and narrow["SPY"]
        for symbol, chains in wide.items():
            assert list(narrow[symbol]) == list(chains)
            for day, chain in chains.items():
                assert narrow[symbol][day].column_names == ["underlying", "snapshot_date", *domain.CHAIN_INPUTS]
                assert narrow[symbol][day].equals(chain.select(narrow[symbol][day].column_names)), (symbol, day)
    with pytest.raises(ValueError, match="not a column of a stored chain: contract_id, nope"):
        snapshots.load_chains_many(stack.query, SYMBOLS, DAYS[0], DAYS[-1], columns=["strike", "nope", "contract_id"])


def test_derived_row_reads_exactly_the_chain_inputs(new_stack: Any) -> None:
    """A stored chain cut to CHAIN_INPUTS derives the full chain's row, and without any one of them it does not."""
    chain = snapshots.load_chains(new_stack().query, "SPY", FIRST, FIRST)[FIRST]
    closes = [100.0 + i for i in range(61)]  # not the chain's spot: a missing spot column would show

    def row(table: pa.Table) -> str:
        return repr(sorted(domain.derived_row("SPY", FIRST, table, closes).items()))

    full = row(chain)
    assert row(chain.select(domain.CHAIN_INPUTS)) == full
    for name in domain.CHAIN_INPUTS:
        assert row(chain.select([n for n in domain.CHAIN_INPUTS if n != name])) != full, name


@pytest.mark.parametrize("values", [
    ["SPY", "SPY", "AAPL", "AAPL", "AAPL", "QQQ"],
    [date(2025, 4, 14)] * 3 + [date(2025, 4, 15)] + [date(2025, 4, 17)] * 2,
    ["ONE"],
    [],
])
def test_split_sorted_slices_like_a_group_by(values: list[Any]) -> None:
    kind = pa.date32() if values and isinstance(values[0], date) else pa.string()
    half = len(values) // 2  # two chunks (one may be empty), so a run of one value may straddle them
    key = pa.chunked_array([pa.array(values[:half], kind), pa.array(values[half:], kind)], kind)
    table = pa.table({"key": key, "n": list(range(len(values)))})
    expected = {k: [i for i, _ in group] for k, group in itertools.groupby(enumerate(values), key=lambda p: p[1])}
    got = snapshots.split_sorted(table, "key")
    assert {k: t.column("n").to_pylist() for k, t in got.items()} == expected
    assert list(got) == list(expected)


@pytest.mark.parametrize("emit_rows", [1, 4, derived.EMIT_ROWS])  # every row alone; a few chunks; all at the end
def test_a_range_in_chunks_writes_what_one_command_per_session_wrote(new_stack: Any, emit_rows: int) -> None:
    old, new = new_stack(), new_stack()
    assert set(per_session(old)) == {"success"}
    status, run_id = ranged(new, emit_rows=emit_rows)
    assert status == "success"
    assert rows(new) == rows(old) and len(rows(new)) == 2 * len(DAYS) - 1
    assert assets(new, run_id) == assets(old) and len(assets(new, run_id)) == 2 * len(DAYS)
    assert [a for a in assets(new, run_id) if a[1] != "success"] == [(f"AAPL|{MISSING}", "skipped")]
    assert no_read_ahead_left()


@pytest.mark.parametrize("chunk", [1, 3, 20])
def test_a_failing_session_fails_only_its_partition(new_stack: Any, chunk: int) -> None:
    old, new = new_stack(), new_stack()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(domain, "derived_row", failing_on(FAILING))
        assert per_session(old).count("failed") == 1
        status, run_id = ranged(new, chunk)
    assert status == "failed"
    message = new.query("SELECT error_message FROM meta.ingestion_runs WHERE run_id = ?", [run_id]).column(0)[0].as_py()
    assert f"SPY|{FAILING}" in message and "broken on" in message
    assert rows(new) == rows(old) and len(rows(new)) == 2 * len(DAYS) - 2
    assert assets(new, run_id) == assets(old)
    assert (f"SPY|{FAILING}", "failed") in assets(new, run_id)
    assert no_read_ahead_left()


def test_a_read_that_fails_mid_range_fails_the_run_with_its_error(new_stack: Any) -> None:
    stack = new_stack()
    calls = itertools.count()
    real = snapshots.load_chains_many

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 2:
            raise RuntimeError("the third read broke")
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(derived, "load_chains_many", flaky)
        status, run_id = ranged(stack, emit_rows=1000)  # nothing sent before the failure: all of it on the way out
    assert status == "failed"
    message = stack.query("SELECT error_message FROM meta.ingestion_runs WHERE run_id = ?", [run_id]).column(0)[0].as_py()
    assert "the third read broke" in message
    assert {r["session_date"] for r in rows(stack)} == set(DAYS[:6]) - {MISSING}  # the chunks read before it: written
    assert no_read_ahead_left()


def test_a_stop_asked_mid_range_stops_it_and_leaves_no_reader(new_stack: Any) -> None:
    stack = new_stack()
    real = domain.derived_row

    def stop_on_the_fifth(symbol: str, as_of: date, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if as_of == DAYS[4]:
            stack.stop_requested = True
        return real(symbol, as_of, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(domain, "derived_row", stop_on_the_fifth)
        with pytest.raises(Shutdown) as stopped:
            ranged(stack)
    assert stopped.traceback and no_read_ahead_left()  # gone while the stopped run's frames are still alive
    assert {r["session_date"] for r in rows(stack)} <= set(DAYS[:6])
