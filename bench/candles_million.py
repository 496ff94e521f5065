"""(b) One million candle rows through the bus into DuckDB, against a direct pyarrow-to-DuckDB insert.

Ours: 200 symbols x 5,000 sim candles, one `CandlesIngested` event per symbol (Arrow IPC rows,
schema `contracts.rows.CANDLES`), sent by a `Producer` (bracketed by RunStarted/RunFinished) to the
real ledger; the clock runs from the first send until a query through the ledger sees the
warehouse offset (`ledger.offsets`) at the last event, i.e. every row is upserted in
`candles_daily` and committed (`status().applied_seq` is printed too, but it can run ahead of the
COMMIT). Direct: the same rows
as one Arrow table, `INSERT INTO candles_daily SELECT ...` into a fresh DuckDB file whose schema
comes from `services.ledger.schema.create_schema` (same table). Optionally also
the end-to-end path: an `IngestCandles` command to the real ingest worker (sim provider).
Judged by: ours / direct rows/s (aim >= 0.5).

    python -m bench.candles_million [--symbols 200] [--rows 5000] [--repeat 3] [--no-e2e]
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import pyarrow as pa

from bench._common import (
    count_rows,
    fmt_rate,
    fresh_home,
    header,
    ratio_line,
    running_ledger,
    stop_service,
    wait_applied,
    wait_committed,
)
from bus.arrow_ipc import to_ipc
from bus.control_client import ControlClient
from bus.home import Home
from bus.producer import Producer
from contracts import (
    CandlesIngested,
    IngestCandles,
    RunFinished,
    RunStarted,
    new_id,
    run_id_for,
    utc_now,
)
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.sim.provider import SimProvider
from oh.domain import calendar


def symbols(count: int) -> list[str]:
    """`count` distinct, valid tickers: S0000, S0001, ..."""
    return [f"S{i:04d}" for i in range(count)]


def date_range(rows: int) -> tuple[date, date]:
    """The first `rows` NYSE sessions of the calendar, as (start, end)."""
    days = calendar.all_sessions()
    return days[0].astype(date), days[rows - 1].astype(date)


def build_tables(names: list[str], rows: int) -> list[pa.Table]:
    """Sim candles, `rows` sessions per symbol (deterministic)."""
    start, end = date_range(rows)
    provider = SimProvider()
    return [provider.daily_candles(symbol, start, end) for symbol in names]


def build_events(run_id: str, tables: list[pa.Table]) -> list[CandlesIngested]:
    """One CandlesIngested per symbol, rows as Arrow IPC bytes (what the ingest worker emits)."""
    now = utc_now()
    return [
        CandlesIngested(
            run_id=run_id, symbol=t.column("symbol")[0].as_py(), provider="sim",
            first_date=t.column("date")[0].as_py(), last_date=t.column("date")[-1].as_py(),
            row_count=t.num_rows, rows=to_ipc(t), started_at=now, ended_at=now,
        )
        for t in tables
    ]


def run_ours(home: Home, events: list[CandlesIngested], run_id: str, per_send: int) -> dict[str, float]:
    """Send the events through the ledger; time until the warehouse offset covers the last one.

    Two end points: `status().applied_seq` reaching the last seq, and a query seeing that offset
    committed (the judged one: only then can a reader see every row).
    """
    control = ControlClient(home, timeout=60.0)
    producer = Producer(home)
    started = utc_now()
    t0 = time.monotonic()
    producer.send(RunStarted(run_id=run_id, job_name="ingest_candles", provider="sim", started_at=started))
    for i in range(0, len(events), per_send):
        producer.send_many(events[i : i + per_send])
    producer.send(RunFinished(run_id=run_id, status="success", ended_at=utc_now(), duration_ms=0))
    producer.flush(timeout=300)
    t_acked = time.monotonic()
    t_status = wait_applied(control, producer.last_acked_seq, interval=0.005)
    t_end = wait_committed(control, producer.last_acked_seq)
    producer.close()
    control.close()
    return {"seconds": t_end - t0, "acked_seconds": t_acked - t0, "status_seconds": t_status - t0}


def run_direct(home: Home, tables: list[pa.Table], upserts: bool = False) -> dict[str, float]:
    """INSERT ... SELECT the same rows into a fresh DuckDB file with the same table.

    With `upserts`, also time (info) what the ledger's upsert does on the key (`schema.FACT_KEYS`: no PRIMARY KEY):
    delete the stored rows with the rows' keys, then insert them, into an empty and into a full table.
    """
    from services.ledger.schema import create_schema
    from services.ledger.warehouse import connect

    table = pa.concat_tables(tables)
    out = {}
    insert = "INSERT INTO candles_daily SELECT symbol, date, open, high, low, close, volume, 'sim' FROM _rows"
    delete = "DELETE FROM candles_daily c WHERE EXISTS (SELECT 1 FROM _rows r WHERE c.symbol = r.symbol AND c.date = r.date)"
    for label in ("insert", "upsert")[: 2 if upserts else 1]:
        path = home.root / f"direct-{label}.duckdb"
        con = connect(path)
        create_schema(con)
        con.register("_rows", table)
        statements = [delete, insert] if label == "upsert" else [insert]
        t0 = time.monotonic()
        for statement in statements:
            con.execute(statement)
        out[label] = time.monotonic() - t0
        if label == "upsert":  # the same again: every row's key is now stored
            t0 = time.monotonic()
            for statement in statements:
                con.execute(statement)
            out["upsert_conflicting"] = time.monotonic() - t0
        assert con.execute("SELECT count(*) FROM candles_daily").fetchone()[0] == table.num_rows  # type: ignore[index]
        con.close()
    return out


def run_e2e(names: list[str], rows: int) -> tuple[float, int]:
    """An IngestCandles command to the real ingest worker in a fresh home; time until its run succeeded."""
    start, end = date_range(rows)
    with fresh_home("candles-e2e") as home, running_ledger(home):
        worker = Service(home, "ingest").start()
        try:
            wait_for_heartbeat(home, "ingest", timeout=60)
            control = ControlClient(home, timeout=60.0)
            producer = Producer(home)
            command = IngestCandles(symbols=names, start=start, end=end, provider="sim")
            run_id = run_id_for(command.id, "ingest_candles")
            t0 = time.monotonic()
            producer.send(command)
            producer.flush(timeout=60)
            while True:
                table = control.query("SELECT status FROM meta.ingestion_runs WHERE run_id = ?", [run_id])
                status = table.column(0)[0].as_py() if table.num_rows else None
                if status in ("success", "failed"):
                    break
                if time.monotonic() - t0 > 600:
                    raise TimeoutError("the ingest run did not finish")
                time.sleep(0.02)
            seconds = time.monotonic() - t0
            if status != "success":
                raise RuntimeError(f"the ingest run {run_id} {status}")
            landed = count_rows(home, "candles_daily")
            producer.close()
            control.close()
        finally:
            stop_service(worker)
    return seconds, landed


def bench(n_symbols: int, rows: int, per_send: int, e2e: bool, repeat: int) -> float:
    """Run both paths, print the figures, return the judged ratio.

    The judged ratio is the median over `repeat` pairs, each a fresh home where the direct insert
    and our path run back to back into empty tables, so a noisy neighbour hits both sides alike.
    """
    header("candles_million: CandlesIngested (Arrow IPC) -> ledger -> journal -> DuckDB candles_daily upsert")
    names = symbols(n_symbols)
    tables = build_tables(names, rows)
    total = sum(t.num_rows for t in tables)
    events = build_events(new_id(), tables)
    ipc_mb = sum(len(e.rows) for e in events) / 1e6
    print(f"   {n_symbols} symbols x {rows} rows = {total:,} rows; {len(events)} events, {ipc_mb:.1f} MB of Arrow IPC")
    ratios = []
    for i in range(repeat):
        with fresh_home("candles") as home:
            direct = run_direct(home, tables, upserts=i == 0)
            with running_ledger(home):
                ours = run_ours(home, events, events[0].run_id, per_send)
                landed = count_rows(home, "candles_daily")
            journal_mb = sum(p.stat().st_size for p in home.journal.glob("*.seg")) / 1e6
        ours_rate, direct_rate = total / ours["seconds"], total / direct["insert"]
        ratios.append(ours_rate / direct_rate)
        if i == 0:
            print(
                f"   direct upsert (info): {fmt_rate(total / direct['upsert'])} rows/s into empty, "
                f"{fmt_rate(total / direct['upsert_conflicting'])} rows/s all-conflicting; "
                f"journal {journal_mb:.1f} MB; {per_send} events per send_many"
            )
        print(
            f"#{i + 1} direct INSERT ... SELECT {fmt_rate(direct_rate):>9} rows/s ({direct['insert']:.3f}s) | "
            f"ours {fmt_rate(ours_rate):>9} rows/s ({ours['seconds']:.3f}s to committed; acked "
            f"{ours['acked_seconds']:.3f}s, status applied_seq {ours['status_seconds']:.3f}s) | "
            f"ours/direct {ratios[-1]:.3f} | rows {landed:,}/{total:,}",
            flush=True,
        )
    if e2e:
        seconds, e2e_rows = run_e2e(names, rows)
        print(
            f"ours, IngestCandles -> ingest worker (sim) -> ledger: {fmt_rate(e2e_rows / seconds)} rows/s "
            f"({seconds:.2f}s for {e2e_rows:,} rows, command to run success; info)"
        )
    ratio = sorted(ratios)[len(ratios) // 2]
    ratio_line(f"candles_million ours/direct rows/s (median of {repeat} pairs)", ratio, ">= 0.5")
    return ratio


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.candles_million", description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--rows", type=int, default=5000, help="sessions per symbol (at most 11,577)")
    parser.add_argument("--per-send", type=int, default=10, help="CandlesIngested events per send_many")
    parser.add_argument("--no-e2e", action="store_true", help="skip the ingest-worker end-to-end run")
    parser.add_argument("--repeat", type=int, default=3, help="judged (direct, ours) pairs; the median ratio is used")
    args = parser.parse_args(argv)
    bench(args.symbols, args.rows, args.per_send, not args.no_e2e, args.repeat)


if __name__ == "__main__":
    main()
