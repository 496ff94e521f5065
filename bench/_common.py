"""Shared benchmark plumbing: a fresh temp OH_HOME, the real ledger process, timing and printing.

Every benchmark runs in its own `tempfile.mkdtemp()` home (sockets fall back to a short private
/tmp/oh-<random> directory when the temp path is too long for `ipc://`), starts the real
`python -m services.ledger` through `devtools.processes`, and removes everything when it ends.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/x.py` or a foreign cwd: make the project importable
    sys.path.insert(0, str(REPO))

from bus.control_client import ControlClient, LedgerUnavailable  # noqa: E402
from bus.home import Home  # noqa: E402
from devtools.processes import Service, wait_for_ledger  # noqa: E402


@contextmanager
def environ(name: str, value: str) -> Iterator[None]:
    """`name` set to `value` for the block (inherited by every process started in it), then put back as it was."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@contextmanager
def fresh_home(tag: str) -> Iterator[Home]:
    """A brand-new OH_HOME (exported in os.environ for child processes), deleted afterwards."""
    saved = {key: os.environ.get(key) for key in ("OH_HOME", "OH_SOCKET_DIR", "OH_FSYNC")}
    root = tempfile.mkdtemp(prefix=f"oh-bench-{tag}-")
    os.environ["OH_HOME"] = root
    os.environ.pop("OH_SOCKET_DIR", None)
    os.environ.pop("OH_FSYNC", None)
    home = Home.from_env().ensure()
    try:
        yield home
    finally:
        if home.sockets.parent != home.root and home.sockets.name.startswith("oh-"):
            shutil.rmtree(home.sockets, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def running_ledger(home: Home, fsync: str = "batch") -> Iterator[Service]:
    """The real ledger process for `home`, ready to serve; SIGTERM (then SIGKILL) on exit."""
    ledger = Service(home, "ledger", "--fsync", fsync).start()
    try:
        wait_for_ledger(home, timeout=60)
        yield ledger
    finally:
        stop_service(ledger)


def stop_service(service: Service) -> None:
    """Stop one child process we started: SIGTERM, then SIGKILL if it does not exit in time."""
    if service.proc is None or service.proc.poll() is not None:
        return
    try:
        service.stop(timeout=30)
    except Exception:  # subprocess.TimeoutExpired or a vanished process
        service.kill()


def wait_applied(client: ControlClient, seq: int, timeout: float = 300.0, interval: float = 0.002) -> float:
    """Poll the ledger until its warehouse offset reaches `seq`; return the monotonic time it was seen."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.status(timeout=5.0).applied_seq >= seq:
                return time.monotonic()
        except LedgerUnavailable:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the warehouse did not reach seq {seq} within {timeout:.0f}s")
        time.sleep(interval)


def wait_committed(client: ControlClient, seq: int, timeout: float = 300.0, interval: float = 0.005) -> float:
    """Poll until a query sees the warehouse offset at `seq` (committed and visible); return when.

    Stricter than `wait_applied`: the ledger's status reports `applied_seq` as soon as the offset
    is updated inside the transaction, before its COMMIT has finished; a query only sees it after.
    """
    deadline = time.monotonic() + timeout
    sql = "SELECT seq FROM ledger.offsets WHERE projection = 'warehouse'"
    while True:
        try:
            if int(client.query(sql, timeout=30.0).column(0)[0].as_py()) >= seq:
                return time.monotonic()
        except LedgerUnavailable:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the committed offset did not reach seq {seq} within {timeout:.0f}s")
        time.sleep(interval)


def dir_bytes(path: Path) -> int:
    """Total size of the regular files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fmt_rate(value: float) -> str:
    """A rate with thousands separators, e.g. `1,234,567`."""
    return f"{value:,.0f}"


def header(title: str) -> None:
    """Print a benchmark's title line and the machine it runs on."""
    print(f"== {title}")
    print(f"   python {sys.version.split()[0]}, {os.cpu_count()} cpus, pid {os.getpid()}")


def ratio_line(name: str, value: float, aim: str = "") -> None:
    """Print THE ratio a benchmark is judged by, in one greppable line."""
    suffix = f"   (aim: {aim})" if aim else ""
    print(f"RATIO {name} = {value:.3f}{suffix}", flush=True)


def count_rows(home: Home, table: str) -> int:
    """`SELECT count(*)` of a warehouse table through the running ledger."""
    client = ControlClient(home, timeout=60.0)
    try:
        return int(client.query(f"SELECT count(*) FROM {table}").column(0)[0].as_py())
    finally:
        client.close()


def load_line(label: str) -> None:
    """Print the 1/5/15-minute load averages: the machine is shared, so every figure carries its load."""
    one, five, fifteen = os.getloadavg()
    print(f"   load average {label}: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cpus)", flush=True)


def wait_query(
    client: ControlClient, sql: str, params: list[object], done: Callable[[object], bool],
    timeout: float = 300.0, interval: float = 0.005,
) -> float:
    """Poll a one-value query through the ledger until `done(value)`; return the monotonic time it held.

    A query sees committed data only, so e.g. a row count reaching N means those rows are committed.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            table = client.query(sql, params, timeout=30.0)
            if table.num_rows and done(table.column(0)[0].as_py()):
                return time.monotonic()
        except LedgerUnavailable:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sql!r} {params} did not reach the expected value within {timeout:.0f}s")
        time.sleep(interval)


def wait_run(client: ControlClient, run_id: str, timeout: float = 600.0, interval: float = 0.005) -> tuple[float, str]:
    """Poll `meta.ingestion_runs` until run `run_id` has ended; return (monotonic time seen, status)."""
    statuses: list[str] = []

    def ended(status: object) -> bool:
        statuses.append(str(status))
        return status not in (None, "started")

    seen = wait_query(client, "SELECT status FROM meta.ingestion_runs WHERE run_id = ?", [run_id], ended,
                      timeout, interval)
    return seen, statuses[-1]
