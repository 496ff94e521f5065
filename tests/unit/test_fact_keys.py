"""The fact tables' keys (`schema.FACT_KEYS`) stay unique with no PRIMARY KEY to enforce them: whatever the
deliveries (the same rows again, in later commits or in one batch, a key repeated inside one event, events whose
fields name another symbol than their rows), each key is stored once, with the last delivery's values, and the
asset rows count the repeats as updated. The ledger's upsert (services/ledger/projections.py) is the only guard."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bus.arrow_ipc import from_ipc, to_ipc
from contracts import Message
from services.ledger import schema
from tests.unit.factories import MiniLedger, candles, chain, derived_event, flow, option_bars

DAY, BEFORE = date(2025, 3, 4), date(2025, 3, 3)
DELIVERIES = {  # one delivery per fact table by run `run`, made anew (a fresh event id) on each call
    "candles_daily": lambda run="r": candles("AAPL", date(2025, 2, 3), DAY, run),
    "option_snapshots": lambda run="r": chain("AAPL", DAY, run),
    "options_bars": lambda run="r": option_bars("AAPL", DAY, run),
    "options_flow": lambda run="r": flow("AAPL", BEFORE, DAY, run),
    "derived_daily": lambda run="r": derived_event("AAPL", DAY, run),
}


def replace(event: Message, **changes: object) -> Message:
    """`event` with `changes`, as a new event (its own id)."""
    return msgspec.structs.replace(event, id=uuid.uuid4().hex, **changes)


def _ledger(tmp_path: Path) -> MiniLedger:
    return MiniLedger(tmp_path)


def _keys_repeated(ledger: MiniLedger, table: str) -> int:
    keys = ", ".join(schema.FACT_KEYS[table])
    [(rows, distinct)] = ledger.warehouse.con.execute(
        f"SELECT count(*), count(DISTINCT ({keys})) FROM {table}").fetchall()
    assert rows > 0
    return rows - distinct


def _stored(ledger: MiniLedger, table: str) -> list[tuple]:
    return ledger.warehouse.con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def _updated(ledger: MiniLedger) -> list[int]:
    return [row[0] for row in ledger.warehouse.con.execute(
        "SELECT rows_updated FROM meta.ingestion_run_assets ORDER BY run_id").fetchall()]


def test_no_fact_table_has_a_primary_key_and_every_key_column_exists(tmp_path: Path) -> None:
    """What this module guards: the fact tables carry no index of their own, and FACT_KEYS names their columns."""
    con = _ledger(tmp_path).warehouse.con
    constrained = {row[0] for row in con.execute(
        "SELECT table_name FROM duckdb_constraints() WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')").fetchall()}
    assert not constrained & set(schema.FACT_KEYS)
    for table, keys in schema.FACT_KEYS.items():
        columns = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
        assert set(keys) <= columns, table


@pytest.mark.parametrize("table", sorted(DELIVERIES))
@pytest.mark.parametrize("together", [False, True], ids=["later commit", "same batch"])
def test_the_same_rows_again_are_stored_once_and_count_as_updated(tmp_path: Path, table: str, together: bool) -> None:
    """A delivery repeated (a redone run) leaves the table as one delivery did; the repeat counts every row updated."""
    once, twice = _ledger(tmp_path / "once"), _ledger(tmp_path / "twice")
    first, again = DELIVERIES[table](), DELIVERIES[table]("r2")
    once.submit([first])
    if together:
        twice.submit([first, again])
    else:
        twice.submit([first])
        twice.submit([again])
    assert _keys_repeated(twice, table) == 0
    assert _stored(twice, table) == _stored(once, table)
    assert _updated(twice) == [0, again.row_count]  # runs r, r2


def _doubled_with_new_values(event: Message, column: str) -> Message:
    """`event` whose rows appear twice, the second copy with `column` doubled (the same keys, other values)."""
    rows = from_ipc(event.rows)
    index = rows.schema.get_field_index(column)
    changed = rows.set_column(index, rows.schema.field(index), pc.multiply(rows.column(column), 2))
    both = pa.concat_tables([rows, changed])
    return replace(event, rows=to_ipc(both), row_count=both.num_rows)


@pytest.mark.parametrize(("table", "column"), [("options_flow", "volume"), ("option_snapshots", "bid"),
                                                ("candles_daily", "close"), ("derived_daily", "spot")])
def test_a_key_repeated_inside_one_event_keeps_its_last_row(tmp_path: Path, table: str, column: str) -> None:
    """One event listing a key twice (a producer's bug or an attack) stores it once, with the values of its last row."""
    ledger = _ledger(tmp_path)
    ledger.submit([_doubled_with_new_values(DELIVERIES[table](), column)])
    assert _keys_repeated(ledger, table) == 0
    reference = _ledger(tmp_path / "ref")
    single = DELIVERIES[table]()
    reference.submit([single])
    stored = ledger.warehouse.con.execute(f"SELECT sum({column}) FROM {table}").fetchone()[0]
    expected = reference.warehouse.con.execute(f"SELECT sum({column}) FROM {table}").fetchone()[0]
    assert stored == pytest.approx(2 * expected)


def test_events_naming_other_symbols_than_their_rows_still_store_each_key_once(tmp_path: Path) -> None:
    """The events' own fields (symbol, session) are not trusted to tell deliveries apart: the rows' keys are."""
    ledger = _ledger(tmp_path)
    real = chain("AAPL", DAY, "r")
    mislabelled = replace(chain("AAPL", DAY, "r"), symbol="MSFT")
    ledger.submit([real, mislabelled])
    ledger.submit([replace(chain("AAPL", DAY, "r"), symbol="SPY", snapshot_date=BEFORE)])
    assert _keys_repeated(ledger, "option_snapshots") == 0
    assert ledger.warehouse.con.execute("SELECT count(*) FROM option_snapshots").fetchone()[0] == real.row_count
