"""What the ledger exports (services/ledger/export.py): every projected table, partitioned by a session DATE column,
and SQL that is always the ledger's own."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from contracts.control import ExportRequest
from services.ledger import schema
from services.ledger.export import EXPORT_TABLES, ExportRefused, plan


def test_every_projected_table_is_exportable_and_nothing_else() -> None:
    """A table added to the warehouse must say how it is exported; the ledger's own tables never are."""
    assert set(EXPORT_TABLES) == set(schema.PROJECTED_TABLES)
    assert not [name for name in EXPORT_TABLES if name.startswith("ledger.")]


def test_partition_columns_are_session_dates_and_meta_tables_are_whole() -> None:
    """Hive partitions `column=YYYY-MM-DD` need a non-null DATE column; meta tables are not partitioned."""
    con = duckdb.connect()
    schema.create_schema(con)
    for name, spec in EXPORT_TABLES.items():
        if name.startswith("meta."):
            assert spec.partition_by is None and spec.range_expression is None, name
        if spec.partition_by:
            schema_name, _, table = name.rpartition(".")
            [(kind, nullable)] = con.execute(
                "SELECT data_type, is_nullable FROM information_schema.columns WHERE table_schema = ? AND "
                "table_name = ? AND column_name = ?", [schema_name or "main", table, spec.partition_by]).fetchall()
            assert (kind, nullable) == ("DATE", "NO"), name
        if spec.range_expression:  # the range filter is valid SQL on that table
            con.execute(f"SELECT count(*) FROM {name} WHERE {spec.range_expression} >= ?", [date(2025, 1, 1)])


@pytest.mark.parametrize("tables", [["ledger.events"], ["candles_daily; DROP TABLE briefings"], ["CANDLES_DAILY"],
                                    ["candles_daily", "nope"], ["../x"]])
def test_a_table_we_do_not_export_is_refused_by_name(tables: list[str]) -> None:
    """Table names are looked up, never put into SQL: anything else is refused, naming what can be exported."""
    with pytest.raises(ExportRefused, match="cannot export"):
        plan(ExportRequest(tables=tables))


def test_dates_are_parameters_and_the_order_is_the_one_asked() -> None:
    """The range becomes parameters on the session column; duplicates are dropped; none asked means all."""
    plans = plan(ExportRequest(tables=["options_flow", "meta.asset_checks", "options_flow"],
                               since=date(2025, 6, 2), until=date(2025, 6, 30)))
    assert [p.name for p in plans] == ["options_flow", "meta.asset_checks"]
    assert plans[0].select == "SELECT * FROM options_flow WHERE to_date >= ? AND to_date <= ? ORDER BY to_date"
    assert plans[0].params == [date(2025, 6, 2), date(2025, 6, 30)]
    assert plans[1].select == "SELECT * FROM meta.asset_checks" and plans[1].params == []
    assert [p.name for p in plan(ExportRequest())] == list(EXPORT_TABLES)
    with pytest.raises(ExportRefused, match="starts"):
        plan(ExportRequest(since=date(2025, 7, 1), until=date(2025, 6, 1)))
