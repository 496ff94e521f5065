"""The ledger decodes each event's Arrow rows once: the projection of a drain uses the table `validate` decoded.

Protects: the intake keeps, per fresh bulk event, the table its validation decoded (`Intake.decoded`); within
`decoded_rows` the projection takes exactly that table for exactly that payload object, and decodes anything
else itself (a replay, an event the intake never saw, a different bytes object under a reused id); and a
group commit projected with the intake's tables gives the same warehouse as one projected without them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import services.ledger.projections as projections
from bus.codec import encode, pack_messages
from services.ledger.dedup import RecentIds
from services.ledger.intake import Intake
from services.ledger.projections import decoded_rows
from tests.unit.factories import MiniLedger, candles, run_finished, run_started, snapshot, trade

ME = b"producer-1"


def _intake() -> Intake:
    def fail(*args: object) -> None:
        raise AssertionError(f"nothing should be rejected or refused: {args}")

    return Intake(RecentIds(100), {}, None, fail, fail, lambda name, by: None)


def _events() -> list:
    return [run_started("r1", 0.0),
            candles("AAPL", date(2025, 1, 1), date(2025, 3, 1), "r1", 1.0),
            trade("o-1", 1.0),
            candles("MSFT", date(2025, 1, 1), date(2025, 2, 1), "r1", 2.0),
            run_finished("r1", 3.0)]


def test_the_intake_keeps_the_table_validate_decoded_and_the_projection_uses_it() -> None:
    """Each fresh bulk event's rows are decoded at the door and that very table is what the projection reads."""
    intake = _intake()
    intake.admit_frame(ME, pack_messages([encode(m) for m in _events()]))
    bulk = [m for m in intake.messages if hasattr(m, "rows")]
    assert len(bulk) == 2 and len(intake.decoded) == 2
    with decoded_rows(intake.decoded):
        for message in bulk:
            rows = projections._rows_of(message)
            assert rows is intake.decoded[id(message.rows)][1]
            assert rows.num_rows == message.row_count
    outside = projections._rows_of(bulk[0])  # no decoded rows in scope: decoded afresh, same rows
    assert outside is not intake.decoded[id(bulk[0].rows)][1]
    assert outside.equals(intake.decoded[id(bulk[0].rows)][1])


def test_a_table_is_used_only_for_the_very_bytes_it_was_decoded_from() -> None:
    """An entry under the id of other bytes (an id reused after the first object was freed) is ignored."""
    intake = _intake()
    event = candles("AAPL", date(2025, 1, 1), date(2025, 3, 1), "r1", 1.0)
    other = candles("MSFT", date(2025, 1, 1), date(2025, 2, 1), "r1", 2.0)
    intake.admit_frame(ME, encode(other))
    [(rows, table)] = intake.decoded.values()
    forged = {id(event.rows): (rows, table)}  # the other event's table filed under this event's id
    with decoded_rows(forged):
        got = projections._rows_of(event)
    assert got is not table and got.column("symbol").to_pylist()[0] == "AAPL"


def test_a_drain_projected_with_the_intakes_tables_equals_one_projected_without(tmp_path: Path) -> None:
    """Same tables, row for row, whether the projection reads the door's tables or decodes the payloads itself."""
    events = _events()
    intake = _intake()
    intake.admit_frame(ME, pack_messages([encode(m) for m in events]))
    with_tables, without = MiniLedger(tmp_path / "a"), MiniLedger(tmp_path / "b")
    with decoded_rows(intake.decoded):
        with_tables.submit(intake.messages)
    without.submit(events)
    assert snapshot(with_tables.warehouse.con) == snapshot(without.warehouse.con)
    assert snapshot(with_tables.warehouse.con)["candles_daily"]
