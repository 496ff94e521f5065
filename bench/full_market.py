"""The full market: `daily` for 5,000 sim underlyings (~1.45M contracts) through every worker, against a direct insert.

Ours: a fresh home, the real ledger and workers (ingest, options_bars, snapshot, flow, derived, briefing, checks,
scheduler; `python -m services.NAME`) with `OH_SIM_SYNTHETIC` large enough to list S0000..S{N-1}. The
numbered sim names list the market's long tail (docs/sim_market.md: ~290 contracts on average), so
5,000 of them are about the whole US options market's daily listing. A first `RunDaily` for the
session before (untimed, its checks awaited) gives flow a day to compare with and derived an IV
history; then a `RunDaily` for the last closed session (the command `oh emit daily --wait` sends) is
timed from the send until a query through the ledger sees the `daily` run ended.

Printed for the timed day: every stage of the chain (start and end offsets from the send, so pipeline
overlap shows, duration, rows, rows/s); the CPU seconds each process spent; the ledger's RSS before
and its peak during the day (VmHWM after resetting it, and sampled every 0.2 s: the peak of each tenth of the
day too), each worker's peak;
DuckDB's own memory in the ledger by tag (`duckdb_memory()`) and its `memory_limit` (OH_DUCKDB_MEMORY_LIMIT);
the journal bytes the day added, per contract snapshotted and per event type; when the checks of
every delivery were committed.

Baseline, same run: the rows the day wrote (candles: the sessions each symbol's delivery held, the tail and
its overlap of an incremental daily; option bars, chains, flow, derived), read back
from the warehouse once the ledger has stopped, inserted into a fresh DuckDB file with the warehouse
schema (`INSERT INTO t SELECT * FROM arrow`, one transaction). Judged by: ours rows/s / direct rows/s
(= direct seconds / ours seconds). A second ratio: `oh replay --rebuild` over the journal (both days)
in events/s against reading the journal alone (open + every frame); table counts must come out equal.

    python -m bench.full_market [--symbols 5000] [--candle-days 400] [--skip-rebuild]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from itertools import pairwise

import pyarrow as pa

from bench._common import environ, fmt_rate, fresh_home, header, load_line, ratio_line, running_ledger
from bench.daily_fifty import ASSETS_SQL, TREE, running_workers, wait_checks
from bench.replay_rebuild import rebuild_cli
from bus.control_client import ControlClient
from bus.home import Home
from bus.journal import Journal
from bus.producer import Producer
from bus.subscriber import Subscriber
from contracts import RunDaily, RunFinished, run_id_for
from oh.adapters.sim.universe import SYNTHETIC_DEFAULT, SYNTHETIC_ENV, synthetic_symbols
from oh.domain import calendar
from services.ledger import schema
from services.ledger.warehouse import connect
from services.stack import WORKERS as STACK_WORKERS

WORKERS = tuple(STACK_WORKERS)  # every worker of the pipeline, as `python -m services.NAME`
# The rows a daily for `symbols` on `day` writes, per table (params: symbols, day; the candles: the daily's run id,
# their rows being the sessions each symbol's delivery held: a tail and its overlap, or the whole window).
DAY_ROWS = {
    "candles_daily": """SELECT c.* FROM candles_daily c JOIN (
        SELECT a.partition_key AS symbol, min(a.min_event_ts)::DATE AS first, max(a.max_event_ts)::DATE AS last
        FROM meta.ingestion_run_assets a JOIN meta.ingestion_runs r USING (run_id)
        WHERE r.parent_run_id = ? AND r.job_name = 'ingest_candles' AND a.status = 'success' GROUP BY ALL) w
      ON c.symbol = w.symbol AND c.date BETWEEN w.first AND w.last""",
    "options_bars": "SELECT * FROM options_bars WHERE list_contains(?, underlying) AND date = ?",
    "option_snapshots": "SELECT * FROM option_snapshots WHERE list_contains(?, underlying) AND snapshot_date = ?",
    "options_flow": "SELECT * FROM options_flow WHERE list_contains(?, symbol) AND to_date = ?",
    "derived_daily": "SELECT * FROM derived_daily WHERE list_contains(?, symbol) AND session_date = ?",
}
COUNTED = (*DAY_ROWS, "briefings", "meta.ingestion_runs", "meta.ingestion_run_assets", "meta.asset_checks",
           "meta.asset_watermarks", "ledger.events")
STAGES_SQL = TREE + """
SELECT r.job_name, r.status, r.started_at, r.ended_at, r.duration_ms FROM meta.ingestion_runs r JOIN tree USING (run_id)
ORDER BY r.started_at"""
STAGE_ASSET = {"ingest_candles": "candles_daily", "ingest_options_bars": "options_bars",
               "snapshot_options": "options_snapshot_file", "compute_flow": "options_flow",
               "compute_derived": "derived_metrics", "build_briefing": "briefing"}


# ---------------------------------------------------------------- processes: CPU and memory


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB) of a process, from /proc."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux `clear_refs` 5); False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class RssSampler(threading.Thread):
    """Samples the RSS of each process every `interval` seconds; keeps the peak of each."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.peak = dict.fromkeys(pids, 0)
        self.series: dict[str, list[int]] = {name: [] for name in pids}  # every sample (kB), for the timeline
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name, pid in self.pids.items():
                try:
                    rss = proc_status(pid)["VmRSS"]
                except (OSError, KeyError):
                    continue
                self.peak[name] = max(self.peak[name], rss)
                self.series[name].append(rss)
            self.done.wait(self.interval)

    def timeline(self, name: str, parts: int = 10) -> str:
        """`name`'s RSS (MB) at the end of each tenth of the sampled time, and the peak of each tenth."""
        samples = self.series[name]
        if not samples:
            return "no samples"
        cuts = [round(len(samples) * i / parts) for i in range(parts + 1)]
        return " ".join(f"{max(samples[a:b]) / 1024:,.0f}" for a, b in pairwise(cuts) if b > a)


@contextmanager
def sampled(pids: dict[str, int]) -> Iterator[RssSampler]:
    """An RssSampler running for the duration of the block."""
    sampler = RssSampler(pids)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.done.set()
        sampler.join()


# ---------------------------------------------------------------- the daily


def run_daily(home: Home, symbols: list[str], day: date, candle_days: int) -> tuple[float, str]:
    """Send RunDaily for `day`; seconds until its RunFinished is committed, and its run id (raises unless success).

    The end is seen on the ledger's events channel (a Subscriber of RunFinished, published after the commit),
    so measuring adds no query load to the ledger."""
    subscriber = Subscriber(home, types=[RunFinished.__name__])
    producer = Producer(home)
    command = RunDaily(symbols=symbols, as_of=day, provider="sim", candle_days=candle_days)
    run_id = run_id_for(command.id, "daily")
    try:
        subscriber.poll(100)  # joined the channel before the send
        t0 = time.monotonic()
        producer.send(command)
        producer.flush(timeout=120)
        deadline = t0 + 3600
        while time.monotonic() < deadline:
            for _, event in subscriber.poll(1000):
                if isinstance(event, RunFinished) and event.run_id == run_id:
                    if event.status != "success":
                        raise RuntimeError(f"daily {day} run {run_id} {event.status}: {event.error_message}")
                    return time.monotonic() - t0, run_id
        raise TimeoutError(f"daily {day} did not finish within an hour: see {home.logs}")
    finally:
        producer.close()
        subscriber.close()


# ---------------------------------------------------------------- reports


def journal_bytes(home: Home) -> int:
    """Bytes in the journal's segment files."""
    return sum(p.stat().st_size for p in home.journal.glob("*.seg"))


def report_stages(control: ControlClient, run_id: str, sent: datetime) -> dict[str, int]:
    """Print every run of the chain with its offsets from the send and its rows/s; rows per asset."""
    runs = control.query(STAGES_SQL, [run_id]).to_pylist()
    assets = control.query(ASSETS_SQL, [run_id]).to_pylist()
    rows = {a["asset_key"]: a["inserted"] + a["updated"] for a in assets if a["status"] == "success"}
    print("   stages (start and end seconds after the send, duration, rows written, rows/s of the stage):")
    for r in runs:
        start = (r["started_at"] - sent).total_seconds()
        end = (r["ended_at"] - sent).total_seconds() if r["ended_at"] else float("nan")
        n = rows.get(STAGE_ASSET.get(r["job_name"], ""), 0)
        rate = n / (r["duration_ms"] / 1000) if n and r["duration_ms"] else 0.0
        print(f"     {r['job_name']:<20} {r['status']:<8} {start:7.2f} -> {end:7.2f}s {r['duration_ms'] / 1000:7.2f}s "
              f"{n:>10,} rows {fmt_rate(rate):>10}/s")
    print("   rows per asset (status, partitions, inserted, updated, MB of Arrow):")
    for a in assets:
        print(f"     {a['asset_key']:<22} {a['status']:<8} {a['partitions']:>6,} {a['inserted']:>10,} "
              f"{a['updated']:>10,} {a['bytes'] / 1e6:9.1f}")
    return rows


def report_journal(control: ControlClient, first_seq: int, added: int, contracts: int) -> None:
    """The journal bytes the timed day added: per contract, and per event type (from ledger.events)."""
    by_type = control.query(
        "SELECT type, count(*) AS n, sum(bytes)::BIGINT AS b FROM ledger.events WHERE seq >= ? GROUP BY type "
        "ORDER BY b DESC", [first_seq]).to_pylist()
    print(f"   journal: +{added / 1e6:,.1f} MB for the day, {added / max(contracts, 1):,.0f} bytes per contract "
          f"snapshotted ({contracts:,})")
    for t in by_type:
        print(f"     {t['type']:<20} {t['n']:>8,} events {t['b'] / 1e6:9.1f} MB  {t['b'] / t['n']:>9,.0f} B/event")


def print_duckdb_memory(control: ControlClient) -> None:
    """DuckDB's own memory in the ledger (`duckdb_memory()`, by tag) and its cap (OH_DUCKDB_MEMORY_LIMIT)."""
    limit = control.query("SELECT current_setting('memory_limit') AS m").to_pylist()[0]["m"]
    tags = control.query("SELECT tag, memory_usage_bytes AS b FROM duckdb_memory() WHERE memory_usage_bytes > 0 "
                         "ORDER BY b DESC").to_pylist()
    print(f"   ledger's DuckDB memory after the day (memory_limit {limit}): "
          + ", ".join(f"{t['tag']} {t['b'] / 1e6:,.0f} MB" for t in tags))


def table_counts(con: object, tables: tuple[str, ...]) -> dict[str, int]:
    """Row counts of `tables` on an open DuckDB connection."""
    return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[attr-defined]


def day_rows(home: Home, symbols: list[str], run_id: str, day: date) -> dict[str, pa.Table]:
    """The rows the timed daily (run `run_id`) wrote, per table, read from the warehouse file (the ledger is stopped)."""
    con = connect(home.warehouse, read_only=True)
    try:
        out = {}
        for table, sql in DAY_ROWS.items():
            params: list[object] = [run_id] if table == "candles_daily" else [symbols, day]
            out[table] = con.sql(sql, params=params).to_arrow_table()
        return out
    finally:
        con.close()


def direct_insert(home: Home, tables: dict[str, pa.Table]) -> float:
    """Seconds to insert `tables` into a fresh DuckDB file with the warehouse schema, one transaction."""
    path = home.root / "direct.duckdb"
    con = connect(path)
    try:
        schema.create_schema(con)
        t0 = time.perf_counter()
        con.execute("BEGIN")
        for name, rows in tables.items():
            con.register("_rows", rows)
            con.execute(f"INSERT INTO {name} SELECT * FROM _rows")
            con.unregister("_rows")
        con.execute("COMMIT")
        seconds = time.perf_counter() - t0
        for name, rows in tables.items():
            stored = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
            assert stored == rows.num_rows, (name, stored, rows.num_rows)
        return seconds
    finally:
        con.close()
        path.unlink(missing_ok=True)


def read_journal(home: Home) -> tuple[int, int, float]:
    """(frames, payload bytes, seconds) to open the journal and read every frame: the floor of any replay."""
    t0 = time.perf_counter()
    journal = Journal(home.journal, read_only=True)
    try:
        frames = size = 0
        for frame in journal.read(1):
            frames += 1
            size += len(frame.payload)
    finally:
        journal.close()
    return frames, size, time.perf_counter() - t0


# ---------------------------------------------------------------- the benchmark


def bench(n_symbols: int, candle_days: int, rebuild: bool) -> None:
    """One full-market day (after an untimed one) in a fresh home; print every figure and the ratios."""
    header(f"full_market: RunDaily for {n_symbols:,} sim symbols through every worker")
    load_line("at start")
    symbols = synthetic_symbols(n_symbols)
    before, day = (d.astype(date) for d in calendar.last_sessions(calendar.last_closed_session(datetime.now(UTC)), 2))
    print(f"   symbols {symbols[0]}..{symbols[-1]}; sessions {before} (untimed) then {day} (timed); candle_days "
          f"{candle_days}; workers: {', '.join(WORKERS)}")
    # the environment variable is inherited by every service started below
    with environ(SYNTHETIC_ENV, str(max(n_symbols, SYNTHETIC_DEFAULT))), fresh_home("wide") as home:
        with running_ledger(home) as ledger, running_workers(home, WORKERS) as workers:
            first, first_id = run_daily(home, symbols, before, candle_days)
            first_checks = wait_checks(home, first_id, timeout=1800)
            print(f"   untimed daily ({before}) {first:.1f}s, its checks committed +{first_checks:.1f}s", flush=True)
            control = ControlClient(home, timeout=120.0)
            first_seq = control.status().head_seq + 1
            journal_before = journal_bytes(home)
            pids = {"ledger": ledger.proc.pid, **{w.name: w.proc.pid for w in workers}}  # type: ignore[union-attr]
            rss_before = proc_status(pids["ledger"])["VmRSS"]
            hwm_reset = reset_peak(pids["ledger"])
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            load_line("before the timed daily")
            sent = datetime.now(UTC).replace(tzinfo=None)
            with sampled(pids) as sampler:
                seconds, run_id = run_daily(home, symbols, day, candle_days)
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            ledger_hwm = proc_status(pids["ledger"])["VmHWM"]
            checks = wait_checks(home, run_id, timeout=1800)
            load_line("after the timed daily")
            print(f"   timed daily ({day}): {seconds:.2f}s from the send to its RunFinished committed; the checks "
                  f"of every delivery committed +{checks:.2f}s after", flush=True)
            rows = report_stages(control, run_id, sent)
            contracts = rows.get("options_snapshot_file", 0)
            report_journal(control, first_seq, journal_bytes(home) - journal_before, contracts)
            print(f"   CPU seconds during the timed daily: all processes {sum(cpu.values()):.1f}: " + ", ".join(
                f"{name} {cpu[name]:.1f}" for name in sorted(cpu, key=cpu.get, reverse=True)))  # type: ignore[arg-type]
            print(f"   ledger RSS: {rss_before / 1024:,.0f} MB before the timed daily, peak during it "
                  f"{(ledger_hwm if hwm_reset else sampler.peak['ledger']) / 1024:,.0f} MB "
                  f"({'VmHWM after reset' if hwm_reset else 'sampled'}; sampled peak "
                  f"{sampler.peak['ledger'] / 1024:,.0f} MB)")
            print(f"   ledger RSS peak in each tenth of the timed daily (MB): {sampler.timeline('ledger')}")
            print_duckdb_memory(control)
            print("   workers' sampled peak RSS (MB): " + ", ".join(
                f"{name} {sampler.peak[name] / 1024:,.0f}" for name in pids if name != "ledger"))
            control.close()
        tables = day_rows(home, symbols, run_id, day)
        total = sum(t.num_rows for t in tables.values())
        direct = direct_insert(home, tables)
        print(f"   direct insert of the same rows into a fresh DuckDB file: {direct:.2f}s for {total:,} rows "
              f"({fmt_rate(total / direct)}/s) | ours {seconds:.2f}s ({fmt_rate(total / seconds)}/s): "
              + ", ".join(f"{name} {t.num_rows:,}" for name, t in tables.items()))
        ratio_line(f"full_market ours/direct-insert rows/s, {n_symbols} symbols ({total:,} rows, {seconds:.1f}s)",
                   direct / seconds)
        if rebuild:
            rebuild_figures(home)
    load_line("at end")


def rebuild_figures(home: Home) -> None:
    """`oh replay --rebuild` of the journal (both days) against reading it alone; the tables must come out equal."""
    con = connect(home.warehouse, read_only=True)
    live = table_counts(con, COUNTED)
    con.close()
    frames, size, read_s = read_journal(home)
    print(f"   journal: {frames:,} events, {size / 1e6:,.1f} MB; read alone (open + every frame) {read_s:.2f}s: "
          f"{fmt_rate(frames / read_s)} events/s, {size / 1e6 / read_s:,.0f} MB/s")
    load_line("before the rebuild")
    wall, reported = rebuild_cli(home)
    con = connect(home.warehouse, read_only=True)
    rebuilt = table_counts(con, COUNTED)
    con.close()
    print(f"   oh replay --rebuild: {reported:.2f}s reported ({wall:.2f}s wall): {fmt_rate(frames / reported)} events/s, "
          f"{size / 1e6 / reported:,.1f} MB/s; tables equal to the live ones: {rebuilt == live}")
    if rebuilt != live:
        raise RuntimeError(f"the rebuild differs: {live} != {rebuilt}")
    ratio_line("full_market oh replay --rebuild / journal read events/s", read_s / reported)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.full_market", description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000, help="how many sim symbols (S0000, S0001, ...)")
    parser.add_argument("--candle-days", type=int, default=400, help="RunDaily.candle_days (calendar days of candles)")
    parser.add_argument("--skip-rebuild", action="store_true", help="do not time `oh replay --rebuild`")
    args = parser.parse_args(argv)
    bench(args.symbols, args.candle_days, not args.skip_rebuild)


if __name__ == "__main__":
    main()
