"""A DuckDB FATAL error stalls the ledger, and its retry reopens the warehouse: no restart needed, nothing lost.

DuckDB invalidates a database after a FATAL error (a checkpoint that could not write or pin a block):
every later statement on that connection fails until the file is opened again. The ledger stalled on
it (it says nothing about the events), but its retry went on using the dead connection, so it stayed
stalled until someone restarted it. Here the real `Ledger` (its journal and DuckDB file in a temp
home; the loop is not run, its commit and retry steps are called directly) meets a projection that
fails FATAL and kills the connection as DuckDB does; the retry must reopen, apply the journaled
batch once, and accept events again.
"""

from __future__ import annotations

import duckdb
import pytest

from bus.codec import encode
from bus.home import Home
from services.ledger import projections
from services.ledger.app import Ledger
from tests.unit.factories import run_started, table_rows


def test_a_fatal_error_stalls_then_the_retry_reopens_and_applies_the_batch_once(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(home)
    try:
        events = [run_started("r1", 0), run_started("r2", 1)]
        payloads = [encode(event) for event in events]
        types = [type(event).__name__ for event in events]
        seqs = ledger.journal.append(zip(types, payloads, strict=True))
        before = ledger.warehouse.applied_seq

        def fatal(con: duckdb.DuckDBPyConnection, batch: object, new_ids: bool = False) -> None:
            con.close()  # as DuckDB does: the connection is unusable from here on
            raise duckdb.FatalException("FATAL Error: Failed to create checkpoint because of error: could not pin")

        monkeypatch.setattr(projections, "apply_events", fatal)
        ledger._commit(types, payloads, events, seqs)
        monkeypatch.undo()
        assert ledger.stall is not None and ledger.warehouse.invalidated
        assert ledger._refusal() is not None  # nothing new is acknowledged meanwhile
        assert ledger.warehouse.applied_seq == before

        ledger.stall.next_try = 0.0  # due now (the retry's pace is not what this test is about)
        ledger._retry_stall()
        assert ledger.stall is None and ledger._refusal() is None
        assert ledger.warehouse.applied_seq == seqs[-1]
        runs = table_rows(ledger.warehouse.con, "meta.ingestion_runs")
        assert sorted(row["run_id"] for row in runs) == ["r1", "r2"]
        assert table_rows(ledger.warehouse.con, "ledger.rejected") == []
    finally:
        ledger.close()


def test_a_retry_that_fails_fatal_again_reopens_on_the_next_one(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reopen is asked for again whenever a retry itself fails FATAL, not only after the first failure."""
    ledger = Ledger(home)
    try:
        events = [run_started("r1", 0)]
        payloads = [encode(event) for event in events]
        types = [type(event).__name__ for event in events]
        seqs = ledger.journal.append(zip(types, payloads, strict=True))

        def fatal(con: duckdb.DuckDBPyConnection, batch: object, new_ids: bool = False) -> None:
            con.close()
            raise duckdb.FatalException("FATAL Error: could not write the WAL")

        monkeypatch.setattr(projections, "apply_events", fatal)
        ledger._commit(types, payloads, events, seqs)
        ledger.stall.next_try = 0.0  # type: ignore[union-attr]
        ledger._retry_stall()  # reopens, then fails FATAL again in catch-up
        assert ledger.stall is not None and ledger.warehouse.invalidated
        monkeypatch.undo()
        ledger.stall.next_try = 0.0
        ledger._retry_stall()
        assert ledger.stall is None and ledger.warehouse.applied_seq == seqs[-1]
    finally:
        ledger.close()
