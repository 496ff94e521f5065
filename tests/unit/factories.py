"""Builders shared by the unit tests: events with fixed timestamps, and a tiny in-process "ledger".

Every timestamp is fixed (never `now()`), so two warehouses fed the same events must hold the same
rows, and expected rows can be written out literally.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from bus.arrow_ipc import to_ipc
from bus.codec import encode
from bus.journal import Journal
from contracts import (
    AssetFailed,
    BriefingBuilt,
    CandlesIngested,
    ChainSnapshotted,
    DerivedComputed,
    FlowComputed,
    Message,
    OptionBarsIngested,
    RunFinished,
    RunStarted,
    TradeUpdated,
)
from oh.adapters.sim.options import option_chain
from oh.adapters.sim.provider import SimProvider
from services.ledger import schema
from services.ledger.warehouse import Warehouse

T0 = datetime(2025, 12, 1, 21, 0, tzinfo=UTC)

_SIM = SimProvider()


def at(seconds: float) -> datetime:
    """T0 plus `seconds` (aware UTC)."""
    return T0 + timedelta(seconds=seconds)


def naive(value: datetime) -> datetime:
    """The naive-UTC form DuckDB TIMESTAMP columns hand back."""
    return value.astimezone(UTC).replace(tzinfo=None)


def run_started(run_id: str, t: float = 0.0, **fields: Any) -> RunStarted:
    """A RunStarted of job ingest_candles at T0 + t."""
    values: dict[str, Any] = dict(
        run_id=run_id, job_name="ingest_candles", provider="sim", args_json='{"symbols": ["AAPL"]}',
        git_sha="abc123", app_version="0.1.0", started_at=at(t), ts=at(t),
    )
    values.update(fields)
    return RunStarted(**values)


def run_finished(run_id: str, t: float, status: str = "success", **fields: Any) -> RunFinished:
    """A RunFinished at T0 + t whose duration is t seconds."""
    values: dict[str, Any] = dict(
        run_id=run_id, status=status, ended_at=at(t), duration_ms=int(t * 1000), ts=at(t),
    )
    values.update(fields)
    return RunFinished(**values)


def candles(
    symbol: str, start: date, end: date, run_id: str, t: float = 1.0, provider: str = "sim"
) -> CandlesIngested:
    """A CandlesIngested carrying the sim market's candles for symbol over [start, end]."""
    table = _SIM.daily_candles(symbol, start, end)
    dates = table.column("date").to_pylist()
    return CandlesIngested(
        run_id=run_id, symbol=symbol, provider=provider,
        first_date=dates[0] if dates else start, last_date=dates[-1] if dates else end,
        row_count=table.num_rows, rows=to_ipc(table), started_at=at(t), ended_at=at(t + 0.5), ts=at(t + 0.5),
    )


def chain(symbol: str, day: date, run_id: str, t: float = 1.0) -> ChainSnapshotted:
    """A ChainSnapshotted carrying the sim market's full option chain for symbol on day."""
    table = option_chain(symbol, day)
    return ChainSnapshotted(
        run_id=run_id, symbol=symbol, provider="sim", snapshot_date=day, row_count=table.num_rows,
        rows=to_ipc(table), started_at=at(t), ended_at=at(t + 0.5), ts=at(t + 0.5),
    )


def option_bars(symbol: str, day: date, run_id: str, t: float = 1.0) -> OptionBarsIngested:
    """An OptionBarsIngested carrying the sim market's bars of symbol's contracts expiring within 30 days."""
    table = _SIM.option_bars(symbol, _SIM.option_contracts(symbol, day, 30), day, day)
    return OptionBarsIngested(
        run_id=run_id, symbol=symbol, provider="sim", bar_date=day, row_count=table.num_rows,
        rows=to_ipc(table), started_at=at(t), ended_at=at(t + 0.5), ts=at(t + 0.5),
    )


def briefing(day: date, run_id: str, t: float = 1.0, text: str = "# Briefing") -> BriefingBuilt:
    """A BriefingBuilt for `day` with a fixed Markdown text."""
    return BriefingBuilt(
        run_id=run_id, as_of=day, path=f"/tmp/briefings/{day}.md", markdown=f"{text} {day}\n", symbols=["AAPL"],
        started_at=at(t), ended_at=at(t + 0.5), ts=at(t + 0.5),
    )


def flow(symbol: str, before: date, day: date, run_id: str, t: float = 1.0) -> FlowComputed:
    """A FlowComputed carrying oh.domain.flow's rows (every grouping) between two sim chains."""
    import pyarrow as pa

    from oh.domain import flow as flow_core

    contracts = flow_core.contract_flow(option_chain(symbol, before), option_chain(symbol, day))
    table = pa.concat_tables([flow_core.group_flow(contracts, g, 1) for g in flow_core.GROUP_BYS])
    return FlowComputed(
        run_id=run_id, symbol=symbol, as_of=day, window=1, row_count=table.num_rows, rows=to_ipc(table),
        started_at=at(t), ended_at=at(t + 0.5), ts=at(t + 0.5),
    )


def derived_event(symbol: str, day: date, run_id: str, t: float = 1.0) -> DerivedComputed:
    """A DerivedComputed carrying oh.domain.derived's row for a sim chain (no closes, no IV history)."""
    from oh.domain import derived

    table = derived.derived_table([derived.derived_row(symbol, day, option_chain(symbol, day), [], None)])
    return DerivedComputed(
        run_id=run_id, symbol=symbol, as_of=day, row_count=table.num_rows, rows=to_ipc(table),
        started_at=at(t), ended_at=at(t + 0.5), ts=at(t + 0.5),
    )


def asset_failed(run_id: str, symbol: str, t: float = 1.0) -> AssetFailed:
    """One failed candles partition."""
    return AssetFailed(
        run_id=run_id, asset_key="candles_daily", partition_key=symbol, error_type="UnknownSymbol",
        error_message=f"the sim market has no symbol {symbol}", started_at=at(t), ended_at=at(t + 0.25),
        ts=at(t + 0.25),
    )


def trade(order_id: str, t: float, price: float | None = 101.5) -> TradeUpdated:
    """A fill."""
    return TradeUpdated(
        order_id=order_id, symbol="AAPL", event="fill", side="buy", qty=10.0, price=price,
        filled_at=at(t), ts=at(t),
    )


class MiniLedger:
    """The ledger's write path without sockets: journal the batch, sync, commit it to the warehouse."""

    def __init__(self, root: Path, fsync: str = "batch") -> None:
        self.journal = Journal(root / "journal", fsync=fsync)
        self.warehouse = Warehouse(root / "warehouse" / "oh.duckdb")

    def submit(self, events: Sequence[Message]) -> list[int]:
        """One group commit of `events`; returns their seqs."""
        payloads = [encode(ev) for ev in events]
        seqs = self.journal.append((type(ev).__name__, p) for ev, p in zip(events, payloads, strict=True))
        self.journal.sync()
        self.warehouse.commit(list(zip(seqs, events, strict=True)), [len(p) for p in payloads])
        return seqs

    def submit_in_groups(self, events: Sequence[Message], sizes: Sequence[int]) -> None:
        """One group commit per size, in order; whatever is left after the sizes in one last commit."""
        start = 0
        for size in sizes:
            if start < len(events):
                self.submit(events[start : start + size])
            start += size
        if start < len(events):
            self.submit(events[start:])

    def journal_only(self, events: Sequence[Message]) -> list[int]:
        """Journal without committing (the ledger died between the journal write and the commit)."""
        return self.journal.append((type(ev).__name__, encode(ev)) for ev in events)

    def close(self) -> None:
        self.journal.close()
        self.warehouse.close()


def table_rows(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
    """Every row of `table` as dicts, in a canonical order (sorted by all columns)."""
    cursor = con.execute(f"SELECT * FROM {table} ORDER BY ALL")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """The full sorted content of every projected table."""
    return {table: table_rows(con, table) for table in schema.PROJECTED_TABLES}


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Column names of `table`, in DDL order."""
    return [d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description]
