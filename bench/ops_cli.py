"""`oh down` through supervisord's XML-RPC, and `oh query -f json` encoded column-wise (issue #15).

1. **oh down.** A fresh home, `oh up` (every program under supervisord, untimed), then the stop is timed as a
   subprocess from its start until it returns (everything exited). Ours: `oh down` (XML-RPC: the workers stopped
   at once, then the ledger, then supervisord). Baseline, same run, same interpreter start-up and imports: the
   old way, `supervisorctl shutdown` then polling `supervisorctl pid` and the pidfile's pid every 0.1 s until
   both are gone (supervisord stops the programs one at a time). The pairs alternate which goes first.
2. **oh query -f json.** A 200,000-row table shaped like `derived_daily` rows (symbol, date, six floats with NaN,
   an integer): ours, `oh.cli.formats.write_json`; baseline, `json.dumps(table.to_pylist(), default=str,
   indent=1)` (the old encoder), both in this process. csv and parquet for information, and the whole `oh query
   -f json` through the ledger on `range(200000)` for information.

Prints each pair and `RATIO oh_down old/new` and `RATIO query_json_200k json.dumps/ours` (medians).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa

from bench._common import REPO, fresh_home, header, load_line, ratio_line, running_ledger
from bus.home import Home
from devtools.paths import OH

OLD_DOWN = """
import os, subprocess, sys, time
import oh.cli.main  # the same imports as `oh down`
from bus.home import Home
from oh.adapters import supervisor
home = Home.from_env()
env = supervisor.environment(home)
with supervisor.conf_path() as conf:
    ctl = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf)]
    def running():
        return subprocess.run([*ctl, "pid"], env=env, capture_output=True, text=True).returncode == 0
    if running():
        pid = supervisor.supervisord_pid(home)
        subprocess.run([*ctl, "shutdown"], env=env, capture_output=True, text=True)
        while running() or (pid and supervisor.pid_alive(pid)):
            time.sleep(0.1)
"""


def _oh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OH, *args], cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=600)


def _timed_stop(way: str) -> float:
    with fresh_home(f"down-{way}"):
        os.environ["OH_UI_PORT"] = "0"
        up = _oh("up", "--timeout", "180")
        if up.returncode != 0:
            raise SystemExit(f"oh up failed: {up.stderr}")
        time.sleep(2.0)  # let every program settle after its first heartbeat
        started = time.perf_counter()
        if way == "new":
            done = _oh("down")
        else:
            done = subprocess.run([sys.executable, "-c", OLD_DOWN], cwd=REPO, env=dict(os.environ),
                                  capture_output=True, text=True, timeout=600)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{way} stop failed: {done.stderr}")
        return seconds


def bench_down(repeat: int) -> float:
    print("-- oh down: seconds from the command's start until everything has exited")
    ratios = []
    for i in range(repeat):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        took = {way: _timed_stop(way) for way in order}
        ratios.append(took["old"] / took["new"])
        print(f"   pair {i + 1}: old (supervisorctl shutdown + polling) {took['old']:.2f} s, "
              f"new (oh down, XML-RPC) {took['new']:.2f} s, ratio {ratios[-1]:.2f}", flush=True)
    return statistics.median(ratios)


def _derived_like(rows: int) -> pa.Table:
    rng = np.random.default_rng(7)
    floats = {name: rng.random(rows) * scale for name, scale in
              (("spot", 500), ("atm_iv", 1), ("iv_rank", 100), ("iv_percentile", 100), ("expected_move_pct", 10),
               ("net_gex", 1e9))}
    floats["atm_iv"][::97] = np.nan
    return pa.table({
        "symbol": pa.array(rng.choice(["SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA"], rows)),
        "session_date": pa.array(np.arange(rows) % 5000, pa.int32()).cast(pa.date32()),
        **floats,
        "iv_history_count": pa.array(np.arange(rows) % 252, pa.int32()),
    })


def bench_json(rows: int, repeat: int) -> float:
    from oh.cli import formats

    table = _derived_like(rows)
    print(f"-- oh query encoders on {rows:,} rows x {table.num_columns} columns (derived_daily-like)")
    ratios = []
    for i in range(repeat):
        started = time.perf_counter()
        old = json.dumps(table.to_pylist(), default=str, indent=1).encode()
        old_s = time.perf_counter() - started
        started = time.perf_counter()
        out = io.BytesIO()
        formats.write_json(table, out)
        new_s = time.perf_counter() - started
        ratios.append(old_s / new_s)
        print(f"   pair {i + 1}: json.dumps {old_s:.2f} s ({len(old) / 1e6:.0f} MB), ours {new_s:.3f} s "
              f"({len(out.getvalue()) / 1e6:.0f} MB), ratio {ratios[-1]:.1f}", flush=True)
    for name, write in (("csv", formats.write_csv), ("parquet", formats.write_parquet)):
        started = time.perf_counter()
        write(table, io.BytesIO())
        print(f"   {name}: {time.perf_counter() - started:.3f} s (for information)")
    return statistics.median(ratios)


def bench_end_to_end(rows: int) -> None:
    sql = (f"SELECT i AS n, i * 0.5 AS x, 'S' || (i % 100) AS symbol, DATE '2025-01-01' + (i % 500)::INT AS day "
           f"FROM range({rows}) t(i)")
    with fresh_home("query"), running_ledger(Home.from_env()):
        for fmt in ("json", "csv", "parquet"):
            started = time.perf_counter()
            done = subprocess.run([OH, "query", sql, "-f", fmt], cwd=REPO, env=dict(os.environ), capture_output=True,
                                  timeout=600)
            took = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(done.stderr.decode())
            print(f"   `oh query -f {fmt}` of {rows:,} rows through the ledger, whole command: {took:.2f} s "
                  f"({len(done.stdout) / 1e6:.1f} MB, for information)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="pairs per measurement (medians are judged)")
    parser.add_argument("--rows", type=int, default=200_000, help="rows for the query encoders")
    parser.add_argument("--skip-down", action="store_true", help="only the query encoders")
    args = parser.parse_args()
    header("ops_cli: oh down over XML-RPC, oh query -f json column-wise")
    load_line("at start")
    json_ratio = bench_json(args.rows, args.repeat)
    bench_end_to_end(args.rows)
    down_ratio = None if args.skip_down else bench_down(args.repeat)
    load_line("at end")
    ratio_line("query_json_200k json.dumps/ours", json_ratio, "> 10")
    if down_ratio is not None:
        ratio_line("oh_down old/new", down_ratio, "new under 2 s")


if __name__ == "__main__":
    main()
