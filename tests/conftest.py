"""Fixtures shared by every test: each test gets its own OH_HOME (never ./data)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from devtools import forkserver, signals

# The suite's `oh` processes fork from a server that has imported the third-party libraries once
# (devtools/forkserver.py); OH_TEST_FORKSERVER=0 runs each as a fresh interpreter instead.
forkserver.enable()


@pytest.fixture(scope="session", autouse=True)
def calendar_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the calendar cache inside the test session's temp dir (inherited by child processes)."""
    import os

    path = tmp_path_factory.mktemp("calendar-cache")
    previous = os.environ.get("OH_CALENDAR_CACHE")
    os.environ["OH_CALENDAR_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("OH_CALENDAR_CACHE", None)
    else:
        os.environ["OH_CALENDAR_CACHE"] = previous


@pytest.fixture(autouse=True)
def no_browser_event_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that does not drive the browser runs with no asyncio loop marked running on its thread.

    Playwright's sync API (tests/ui: the session's `chromium`) leaves its own loop marked running on the main
    thread for the rest of the xdist worker's life, so any later test in that worker that calls `asyncio.run`
    (Dagster's automation evaluation, our own code) failed with "cannot be called from a running event loop",
    depending only on which modules the worker had run before. The browser's loop is hidden for such a test
    and put back after it."""
    loop = asyncio.events._get_running_loop()
    if loop is None or "chromium" in request.fixturenames:
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(loop)


@pytest.fixture(autouse=True)
def signals_restored() -> Iterator[None]:
    """Each test starts with the worker's own SIGTERM/SIGINT/SIGHUP/SIGQUIT handlers: one a test left ignored
    would be inherited by every process a later test starts (devtools/signals.py says how that happened)."""
    with signals.restored():
        yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A fresh OH_HOME in a temp dir, exported to child processes through the environment."""
    monkeypatch.setenv("OH_HOME", str(tmp_path / "oh_home"))
    monkeypatch.setenv("OH_UI_PORT", "0")  # `oh up` starts the dashboard too: never on the user's 5006
    monkeypatch.delenv("OH_SOCKET_DIR", raising=False)
    monkeypatch.delenv("OH_FSYNC", raising=False)
    monkeypatch.delenv("OH_BUS", raising=False)  # the local ipc bus unless a test says otherwise
    monkeypatch.delenv("OH_BUS_KEYS", raising=False)
    home = Home.from_env().ensure()
    yield home
    if home.sockets.parent != home.root:
        shutil.rmtree(home.sockets, ignore_errors=True)


# Scheduling only (pytest-xdist hands out modules in collection order): the modules that take longest
# start first, so no worker is left running one of them alone at the end (longest-processing-time-first).
# Measured: each module's summed test wall time in a full run (devtools/cpu_report.py's log, `wall-s`; the
# run's schedule: devtools/schedule_report.py), largest first, down to about 1/100 of the run's; a module
# missing here only starts later (most tests first), nothing else changes. From a run at load 25-44 (27 min):
# read_path_attack 367 s, inline_backfill 363, the two `populated` modules 267 together, ... (test_wheel, 330 s
# then, took 75 s at load ~23 once it linked its dependencies instead of installing them: moved down). Before them
# all: the WAITING unit (below).
LONGEST_FIRST = (
    "tests/integration/test_read_path_attack.py",
    "tests/dagster/test_inline_backfill.py",
    "tests/ui/test_dashboard_browser.py",  # with test_dashboard_layout: one unit (SHARED_UNITS)
    "tests/ui/test_dashboard_layout.py",
    "tests/ui/test_live_page.py",
    "tests/integration/test_demo.py",
    "tests/integration/test_wheel.py",
    "tests/ui/test_live_channel.py",
    "tests/unit/test_warehouse.py",
    "tests/scenarios/test_jobs.py",
    "tests/integration/test_worker_subscription.py",
    "tests/integration/test_replay_backfill.py",
    "tests/dagster/test_bus_mode.py",
    "tests/dagster/test_definitions.py",
    "tests/unit/test_sandbox.py",
    "tests/integration/test_providers_real_sdk.py",
    "tests/scenarios/test_ranged_derived.py",
    "tests/integration/test_ops_cli.py",
    "tests/scenarios/test_grouped_reads.py",
    "tests/integration/test_live_stream.py",
    "tests/integration/test_journal_faults.py",
    "tests/ui/test_dashboard_states.py",
    "tests/integration/test_data_truth.py",
    "tests/integration/test_query_budget.py",
    "tests/integration/test_private_home.py",
    "tests/integration/test_journal_identity.py",
    "tests/ui/test_dashboard_access.py",
    "tests/unit/test_forkserver.py",
    "tests/integration/test_exactly_once_checks.py",
    "tests/unit/test_codec.py",
    "tests/scenarios/test_ranged.py",
    "tests/integration/test_schema_version.py",
    "tests/integration/test_candles_end_to_end.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate((*WAITING, *(p for p in LONGEST_FIRST if p not in WAITING)))}
    root = Path(__file__).parent.parent
    sizes = Counter(item.path for item in items)

    def order(item: pytest.Item) -> tuple[int, int]:
        # the rest: the modules with more tests first (what xdist's own reordering did, below)
        return rank.get(item.path.relative_to(root).as_posix(), len(rank)), -sizes[item.path]

    items.sort(key=order)  # stable: tests keep their order within a module


# Every xdist worker collects the whole suite, so what a test module imports at its top every worker imports: Dagster
# (~1.3 CPU-s) and Panel with Bokeh's plotting (~1.4 CPU-s), five times over for the one worker that runs their tests.
# Their test modules read them through tests/lazy.py or import them in the tests; tests/unit/test_suite_units.py holds
# the line with what a worker had imported once it had collected.
SPARED_AT_COLLECTION = ("dagster", "panel", "bokeh.plotting")
IMPORTED_AT_COLLECTION = pytest.StashKey[set[str]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[IMPORTED_AT_COLLECTION] = {name for name in SPARED_AT_COLLECTION if name in sys.modules}


# Every module is one work unit, so its module-scoped stack starts once, on one worker. xdist's own loadscope
# takes a test id's scope as what precedes its last "::", so a test whose parameter holds one (an IPv6 address:
# `[::1]`, `fe80::1`) was a unit of its own, and built its module's stack (and a chromium) again wherever it
# landed (seen: test_live_channel's `[http://[::1]:{port}]` alone on a worker, ~7 CPU-s). No module is split
# on purpose either: test_read_path_attack was, in two parts each seeding its own homes (~12 CPU-s each), for
# a module that ends long before the suite does when it starts first. Modules that share a session-scoped
# stack: one work unit, so one worker builds it once, not one per worker that happens to get one of them
# (tests/ui/conftest.py's `populated`: services, 26 sessions of sim data and `oh ui`, about half a minute of
# CPU each time).
SHARED_UNITS = {
    "tests/ui/test_dashboard_browser.py": "tests/ui::populated",
    "tests/ui/test_dashboard_layout.py": "tests/ui::populated",
}

# Modules that mostly wait (a disk stall's retries, a run's abandonment, a cron tick, a hung client's timeout): ~235 s
# of wall for ~17 CPU-s, measured on the quiet box (devtools/cpu_report.py and schedule_report.py, 2026-12-07). Spread
# over the workers they came in the second half of the run, all four workers waiting at once: the box was 16.6% idle
# over the suite, 60-75% idle for half a minute. As one work unit, first, they run one after another on one worker
# (`make test`'s 5th) while the others keep both cores busy with everything else.
WAITING = (
    "tests/integration/test_disk_full.py", "tests/integration/test_daily_pipeline.py",
    "tests/integration/test_tcp_bus.py", "tests/integration/test_runs_end.py", "tests/unit/test_producer_resend.py",
    "tests/integration/test_ledger_busy.py", "tests/unit/test_tcp_listener.py", "tests/unit/test_pool_shutdown.py",
    "tests/unit/providers/test_yahoo_provider.py", "tests/dagster/test_inline_tcp.py",
)
SHARED_UNITS.update({module: "waiting" for module in WAITING})


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadscope":
        return None
    # xdist (3.6+) hands out its work units largest first by test count unless told not to: that put the
    # one-test test_wheel and the few-test test_inline_backfill, the two longest, last, each running alone at
    # the end (seen in a full run). The order above is the one to keep.
    config.option.loadscopereorder = False
    from xdist.scheduler import LoadScopeScheduling

    class ModuleUnits(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ModuleUnits(config, log)


def work_unit(nodeid: str) -> str:
    """The work unit of a test under --dist loadscope: its module (a parameter's "::" is no boundary), or the
    unit it shares with other modules (SHARED_UNITS)."""
    module = nodeid.split("::", 1)[0]
    return SHARED_UNITS.get(module, module)
