"""(n) `oh export` (the ledger streams Arrow pages, the client writes Parquet) against DuckDB's own COPY.

A real ledger holds `--symbols` x `--sessions` sim candles (sent as CandlesIngested events) and
`--trades` TradeUpdated rows. Ours: the export path of `oh export` in this process (ControlClient
export pages -> oh.adapters.parquet_export.write_export: `candles_daily` hive-partitioned by date,
`trade_updates` one file), timed from the request to the renamed directory. Baseline, same run, same
rows, same machine: with the ledger stopped, DuckDB opens the warehouse file read-only and runs
`COPY (SELECT * FROM candles_daily ORDER BY date) TO dir (FORMAT parquet, PARTITION_BY (date),
COMPRESSION zstd)` and `COPY trade_updates TO file`, which the ledger cannot do itself (its
connections have no file access, on purpose). Both outputs are read back and counted.
Judged by: ours / COPY rows/s for both tables together (median of pairs).

    python -m bench.export [--symbols 50] [--sessions 2000] [--trades 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench._common import (
    fmt_rate,
    fresh_home,
    header,
    load_line,
    ratio_line,
    running_ledger,
    stop_service,
    wait_applied,
)
from bench.bus_throughput import make_trades
from bench.candles_million import build_events, build_tables, symbols
from bus.control_client import ControlClient
from bus.home import Home
from bus.producer import Producer
from oh.adapters.parquet_export import write_export

TABLES = ["candles_daily", "trade_updates"]


def fill(home: Home, n_symbols: int, sessions: int, trades: int) -> int:
    producer = Producer(home)
    try:
        producer.send_many(build_events("bench-export", build_tables(symbols(n_symbols), sessions)))
        messages = make_trades(trades)
        for i in range(0, trades, 1000):
            producer.send_many(messages[i : i + 1000])
        producer.flush(timeout=900)
    finally:
        producer.close()
    return producer.last_acked_seq


def ours(home: Home, target: Path) -> tuple[float, int]:
    client = ControlClient(home, timeout=120)
    try:
        started = time.perf_counter()
        opened = client.export_open(TABLES)
        manifest = write_export(opened, lambda: client.export_fetch(opened.export_id), target)
        seconds = time.perf_counter() - started
    finally:
        client.close()
    return seconds, sum(t["rows"] for t in manifest["tables"])


def copy(home: Home, target: Path) -> tuple[float, int]:
    import duckdb

    target.mkdir()
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        started = time.perf_counter()
        con.execute(f"COPY (SELECT * FROM candles_daily ORDER BY date) TO '{target}/candles_daily' "
                    "(FORMAT parquet, PARTITION_BY (date), COMPRESSION zstd)")
        (target / "trade_updates").mkdir()
        con.execute(f"COPY trade_updates TO '{target}/trade_updates/part-0.parquet' (FORMAT parquet, COMPRESSION zstd)")
        seconds = time.perf_counter() - started
    finally:
        con.close()
    return seconds, _count(target)


def _count(root: Path) -> int:
    import duckdb

    con = duckdb.connect()
    try:
        return sum(con.sql(f"SELECT count(*) FROM read_parquet('{root}/{t}/**/*.parquet', hive_partitioning = true)")
                   .fetchall()[0][0] for t in TABLES)
    finally:
        con.close()


def one_pair(n_symbols: int, sessions: int, trades: int) -> dict[str, float]:
    with fresh_home("export") as home, tempfile.TemporaryDirectory(prefix="oh-bench-export-out-") as out:
        with running_ledger(home) as ledger:
            seq = fill(home, n_symbols, sessions, trades)
            client = ControlClient(home, timeout=120)
            try:
                wait_applied(client, seq)
                rows = sum(int(client.query(f"SELECT count(*) FROM {t}").column(0)[0].as_py()) for t in TABLES)
            finally:
                client.close()
            ours_s, ours_rows = ours(home, Path(out) / "ours")
            assert ours_rows == rows == _count(Path(out) / "ours")
            stop_service(ledger)
        copy_s, copy_rows = copy(home, Path(out) / "copy")
        assert copy_rows == rows
    return {"rows": rows, "ours_s": ours_s, "copy_s": copy_s}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    header(f"export: {args.symbols} x {args.sessions} candles ({args.sessions} date partitions) and {args.trades:,} "
           "trades; oh export's path vs DuckDB COPY")
    load_line("at start")
    ratios = []
    for i in range(args.repeat):
        f = one_pair(args.symbols, args.sessions, args.trades)
        ratio = (f["rows"] / f["ours_s"]) / (f["rows"] / f["copy_s"])
        print(f"pair {i + 1}: {int(f['rows']):,} rows; oh export {f['ours_s']:.2f}s ({fmt_rate(f['rows'] / f['ours_s'])} "
              f"rows/s), DuckDB COPY {f['copy_s']:.2f}s ({fmt_rate(f['rows'] / f['copy_s'])} rows/s); ratio {ratio:.3f}",
              flush=True)
        ratios.append(ratio)
    load_line("at end")
    value = statistics.median(ratios)
    ratio_line("oh export / DuckDB COPY rows/s (median of pairs)", value, ">= 0.5")
    return value


if __name__ == "__main__":
    main()
