"""Whether a group commit's check results are stored already is answered from meta.asset_checks' primary-key
index, in chunks, never by reading every stored check id (a cost that grew with the table, once per group
commit); the answer and the rows written stay exact: a redone run's results replace their rows, new ones are
inserted, in one write with more ids than one index probe takes."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from services.ledger import bookkeeping, schema


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    schema.create_schema(con)
    return con


def _row(check_id: str, status: str = "pass", partition: str = "S0001|2026-12-04") -> tuple[object, ...]:
    return (check_id, "options_flow", partition, "flow_values_consistent", "error", status,
            datetime(2026, 12, 4, 21, 0), "{}", "ok", "run-1")


def _stored(con: duckdb.DuckDBPyConnection, n: int) -> list[str]:
    con.execute("INSERT INTO meta.asset_checks SELECT uuid()::VARCHAR, 'a', 'p', 'c', 'warn', 'pass', "
                "TIMESTAMP '2026-12-04', '{}', 'm', 'r' FROM range(?)", [n])
    return [r[0] for r in con.execute("SELECT check_id FROM meta.asset_checks ORDER BY check_id LIMIT 3").fetchall()]


def test_the_answer_is_exact_across_chunks(con: duckdb.DuckDBPyConnection) -> None:
    """No id stored: False; one stored id in the last chunk of many: True; nothing asked: False."""
    stored = _stored(con, 5_000)
    fresh = [str(uuid.uuid4()) for _ in range(2 * bookkeeping.CHECK_PROBE + 7)]
    assert bookkeeping.any_check_stored(con, fresh) is False
    assert bookkeeping.any_check_stored(con, [*fresh, stored[1]]) is True
    assert bookkeeping.any_check_stored(con, [stored[0]]) is True
    assert bookkeeping.any_check_stored(con, []) is False


def test_the_lookup_reads_the_index_not_the_table(con: duckdb.DuckDBPyConnection) -> None:
    """The executed plan of a full chunk probes the primary key's index; no operator scans the table."""
    _stored(con, 200_000)
    ids = [str(uuid.uuid4()) for _ in range(bookkeeping.CHECK_PROBE)]
    plan = con.execute("EXPLAIN ANALYZE " + bookkeeping.CHECK_EXISTS_SQL, [ids]).fetchall()[0][1]
    scans = {t.strip() for t in re.findall(r"Type: ([A-Za-z ]+?)\s*│", plan)}
    assert "Index Scan" in scans, plan
    assert "Sequential Scan" not in scans, plan


def test_a_redone_runs_results_replace_and_new_ones_are_added(con: duckdb.DuckDBPyConnection) -> None:
    """A write of more results than one probe takes, one of them stored before with another status: that row
    is replaced (the later result wins), the rest are inserted, and none is duplicated."""
    first = bookkeeping.Pending()
    first.add_checks([_row("kept-id", status="fail")])
    first.flush(con)
    second = bookkeeping.Pending()
    new_ids = [str(uuid.uuid4()) for _ in range(bookkeeping.CHECK_PROBE + 3)]
    second.add_checks([*(_row(i, partition=f"S{n:04d}|2026-12-04") for n, i in enumerate(new_ids)),
                       _row("kept-id", status="pass")])
    second.flush(con)
    rows = dict(con.execute("SELECT check_id, status FROM meta.asset_checks").fetchall())
    assert len(rows) == len(new_ids) + 1
    assert rows["kept-id"] == "pass"
    assert con.execute("SELECT count(DISTINCT check_id) = count(*) FROM meta.asset_checks").fetchone() == (True,)


def test_a_first_write_inserts_every_field(con: duckdb.DuckDBPyConnection) -> None:
    """The plain insert (nothing stored) puts each field in its own column."""
    pending = bookkeeping.Pending()
    pending.add_checks([_row("only-id", status="fail")])
    pending.flush(con)
    row = con.execute("SELECT * FROM meta.asset_checks").fetchone()
    assert row == ("only-id", "options_flow", "S0001|2026-12-04", "flow_values_consistent", "error", "fail",
                   datetime(2026, 12, 4, 21, 0), "{}", "ok", "run-1")


def test_a_first_attempt_inserts_without_asking_the_index(con: duckdb.DuckDBPyConnection,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`new_ids` (a transaction's first attempt): no existence probe, a plain insert; a result stored before then
    fails the insert (the caller applies the transaction again without `new_ids`)."""
    def no_probe(*args: object) -> bool:
        raise AssertionError("the first attempt must not probe the index")

    monkeypatch.setattr(bookkeeping, "any_check_stored", no_probe)
    first = bookkeeping.Pending(new_ids=True)
    first.add_checks([_row("id-1"), _row("id-2", partition="S0002|2026-12-04")])
    first.flush(con)
    assert con.execute("SELECT count(*) FROM meta.asset_checks").fetchall() == [(2,)]
    again = bookkeeping.Pending(new_ids=True)
    again.add_checks([_row("id-3", partition="S0003|2026-12-04"), _row("id-1", status="fail")])
    with pytest.raises(duckdb.ConstraintException):
        again.flush(con)


def test_a_redone_runs_result_in_a_group_commit_replaces_its_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the warehouse: a group commit holding a check result stored by an earlier commit (same run, asset,
    partition, check: a redone run) fails its unchecked first attempt, commits on the checked retry (one probe),
    the later result wins, nothing is rejected and the offset moves past the batch."""
    from contracts import AssetChecked, CheckRecord
    from services.ledger.warehouse import Warehouse
    from tests.unit.factories import at, run_started

    def checked(partition: str, status: str, t: float) -> AssetChecked:
        return AssetChecked(run_id="r1", asset_key="options_flow", partition_key=partition, checked_at=at(t), ts=at(t),
                            results=[CheckRecord("flow_values_consistent", "error", status, f"{status} at {t}")])

    probes: list[int] = []
    real = bookkeeping.any_check_stored
    monkeypatch.setattr(bookkeeping, "any_check_stored", lambda c, ids: probes.append(len(ids)) or real(c, ids))
    warehouse = Warehouse(tmp_path / "oh.duckdb")
    warehouse.commit([(1, run_started("r1", 0)), (2, checked("S1|d", "fail", 1))], [1, 1])
    assert probes == []  # the first attempt of a commit of new results asks nothing
    rejected = warehouse.commit([(3, checked("S2|d", "pass", 2)), (4, checked("S1|d", "pass", 3))], [1, 1])
    assert rejected == [] and probes == [2] and warehouse.applied_seq == 4
    rows = dict(warehouse.con.execute("SELECT partition_key, status FROM meta.asset_checks").fetchall())
    assert rows == {"S1|d": "pass", "S2|d": "pass"}
