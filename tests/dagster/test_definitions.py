"""The Dagster definitions without a stack: the graph comes from the catalog, the partitions are NYSE
sessions x watchlist symbols, the schedule is the scheduler service's, and a step's commands are the
ones `oh emit` would send."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from bus.home import Home
from contracts import ComputeFlow, IngestCandles, SnapshotOptions
from contracts.catalog import ASSET_KEYS, JOB_BY_NAME
from devtools.processes import REPO
from oh.domain import calendar
from tests.lazy import lazy

# Imported by the worker that runs these tests, not by every worker that collects them (tests/lazy.py).
dg = lazy("dagster")
automation = lazy("oh_dagster.automation")
commands = lazy("oh_dagster.commands")
definitions = lazy("oh_dagster.definitions")
graph = lazy("oh_dagster.graph")
materialize = lazy("oh_dagster.materialize")
partitions = lazy("oh_dagster.partitions")
resources = lazy("oh_dagster.resources")

NY = ZoneInfo("America/New_York")


def test_definitions_load_with_every_catalog_asset_and_a_check_per_checked_asset() -> None:
    """`dagster dev -m oh_dagster.definitions` can load them: one asset per catalog asset key (the seed's
    names), each checked asset with its `quality` check, both jobs, the schedule and the sensors."""
    dg.Definitions.validate_loadable(definitions.defs)
    asset_graph = definitions.defs.resolve_asset_graph()
    assert sorted(key.to_user_string() for key in asset_graph.get_all_asset_keys()) == sorted(ASSET_KEYS)
    checked = sorted(key.asset_key.to_user_string() for key in asset_graph.asset_check_keys)
    assert checked == sorted(["candles_daily", "options_bars", "options_snapshot_file", "options_flow", "derived_metrics"])
    assert definitions.per_symbol_job().name == "per_symbol" and definitions.per_session_job().name == "per_session"
    assert definitions.defs.resolve_schedule_def("daily").cron_schedule == "30 17 * * 1-5"


def test_the_dagster_cli_loads_the_code_location(dagster_home: Path) -> None:
    """`dagster definitions validate -m oh_dagster.definitions` (what `dagster dev -m ...` loads) succeeds."""
    done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m",
                           "oh_dagster.definitions"], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_range_of_symbols_must_be_adjacent_in_the_partitions(instance: dg.DagsterInstance) -> None:
    """A range of a dynamic dimension is the keys between its ends: missing symbols are added at the end, and
    symbols with another one between them are refused naming it (the range would include it)."""
    instance.add_dynamic_partitions(partitions.SYMBOLS.name, ["AAPL", "MSFT", "SPY"])
    assert materialize.symbol_range(instance, ["MSFT", "AAPL"]) == ("AAPL", "MSFT")
    assert materialize.symbol_range(instance, ["SPY", "IWM"]) == ("SPY", "IWM")  # IWM added after SPY
    with pytest.raises(ValueError, match="MSFT"):
        materialize.symbol_range(instance, ["AAPL", "SPY"])


def test_step_processes_fork_from_a_server_that_imported_the_instances_storage(instance: dg.DagsterInstance) -> None:
    """The multiprocess executor's forkserver preloads the definitions, the modules of this instance's storage
    classes and what a step imports on its first rows (materialize.step_preload), so a step does not import them
    again; each name imports (the forkserver skips one that does not, without a word)."""
    ref = instance.get_ref()
    preload = materialize.step_preload(instance)
    storages = {d.module_name for d in (ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data)}
    assert storages <= set(preload) and set(materialize.STEP_IMPORTS) <= set(preload)
    assert [name for name in preload if importlib.util.find_spec(name) is None] == []
    config = materialize.run_config("inline", 2, preload=preload)["execution"]["config"]
    assert config["multiprocess"]["start_method"]["forkserver"]["preload_modules"] == ["oh_dagster.definitions", *preload]
    assert materialize.run_config("inline", None)["execution"]["config"] == {"in_process": {}}


def test_lineage_follows_the_chain_and_what_each_job_reads() -> None:
    """ingest -> snapshot -> flow -> derived -> briefing, plus what derived reads (candles, its own history)."""
    asset_graph = definitions.defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in asset_graph.get(dg.AssetKey(key)).parent_keys}

    assert parents("candles_daily") == set() and parents("options_bars") == set()
    assert parents("options_snapshot_file") == set()
    assert parents("options_flow") == {"options_snapshot_file"}
    assert parents("derived_metrics") == {"options_flow", "candles_daily", "options_snapshot_file", "derived_metrics"}
    assert parents("briefing_markdown") == {"derived_metrics"}


def _upstream(instance: dg.DagsterInstance, asset: str, upstream: str, key: str) -> list[str]:
    """The upstream partitions one partition of `asset` reads, by its dependency's partition mapping."""
    job, parent = graph.JOB_OF_ASSET[asset], graph.JOB_OF_ASSET[upstream]
    dep = next(d for d in graph.deps_of(job) if d.asset_key == dg.AssetKey(upstream))
    mapping = dep.partition_mapping or dg.IdentityPartitionMapping()
    down, up = graph.partitions_of(job), graph.partitions_of(parent)
    from dagster._core.definitions.partitions.context import partition_loading_context

    with partition_loading_context(dynamic_partitions_store=instance):
        result = mapping.get_upstream_mapped_partitions_result_for_partitions(
            down.subset_with_partition_keys([key]), down, up, dynamic_partitions_store=instance)
        return sorted(result.partitions_subset.get_partition_keys())


def test_partition_mappings_order_a_backfill_as_the_daily_path(instance: dg.DagsterInstance) -> None:
    """Flow of a session reads that session's chain and the one before (across a holiday: Juneteenth);
    derived reads its own previous session; the briefing reads every symbol's derived row of its session."""
    instance.add_dynamic_partitions(partitions.SYMBOLS.name, ["AAPL", "SPY"])
    assert _upstream(instance, "options_flow", "options_snapshot_file", "2025-06-20|AAPL") == [
        "2025-06-18|AAPL", "2025-06-20|AAPL"]
    assert _upstream(instance, "derived_metrics", "derived_metrics", "2025-06-20|SPY") == ["2025-06-18|SPY"]
    assert _upstream(instance, "derived_metrics", "candles_daily", "2025-06-20|SPY") == ["2025-06-20|SPY"]
    assert _upstream(instance, "briefing_markdown", "derived_metrics", "2025-06-20") == [
        "2025-06-20|AAPL", "2025-06-20|SPY"]


def test_session_partitions_are_exactly_the_nyse_sessions() -> None:
    """No weekend and no holiday is a partition; every session is (two years, against exchange-calendars)."""
    keys = partitions.session_partitions(date(2024, 1, 2)).get_partition_keys(
        current_time=datetime(2025, 12, 31, 18, tzinfo=NY))
    sessions = [d.astype(date).isoformat() for d in calendar.sessions(date(2024, 1, 2), date(2025, 12, 31))]
    assert keys == sessions
    assert "2025-06-19" not in keys and "2025-12-25" not in keys and "2025-06-21" not in keys
    assert partitions.SESSIONS.get_first_partition_key() == "2020-01-02"


def test_commands_are_those_oh_emit_sends_for_the_same_work() -> None:
    """Range jobs get one command per run of consecutive sessions (candles with daily's look-back); session
    jobs one command over every session of a set of symbols, oldest first; all triggered by dagster with the
    Dagster run id."""
    days = [date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 5)]  # 2025-06-04 missing: two ranges
    by_day = {day: ["AAPL", "SPY"] for day in days}
    candles = commands.commands_for(JOB_BY_NAME["ingest_candles"], by_day, "dg-run-1",
                                    commands.Settings(candle_days=400))
    back = timedelta(days=400)
    assert [(type(c), c.start, c.end) for c in candles] == [
        (IngestCandles, date(2025, 6, 2) - back, date(2025, 6, 3)), (IngestCandles, date(2025, 6, 5) - back, date(2025, 6, 5))]
    chains = commands.commands_for(JOB_BY_NAME["snapshot_options"], by_day, "dg-run-1",
                                   commands.Settings(provider="yahoo"))
    assert [(type(c), c.start, c.end, c.provider) for c in chains] == [
        (SnapshotOptions, date(2025, 6, 2), date(2025, 6, 3), "yahoo"), (SnapshotOptions, date(2025, 6, 5), date(2025, 6, 5), "yahoo")]
    flow = commands.commands_for(JOB_BY_NAME["compute_flow"], by_day, "dg-run-1", commands.Settings())
    assert [(type(c), c.days(), c.symbols) for c in flow] == [(ComputeFlow, days, ["AAPL", "SPY"])]
    for command in [*candles, *chains, *flow]:
        assert (command.triggered_by, command.orchestrator_run_id) == (commands.TRIGGERED_BY, "dg-run-1")
    again = commands.commands_for(JOB_BY_NAME["compute_flow"], by_day, "dg-run-1", commands.Settings())
    other_run = commands.commands_for(JOB_BY_NAME["compute_flow"], by_day, "dg-run-2", commands.Settings())
    assert [c.id for c in again] == [c.id for c in flow]  # a retried step sends the same commands: dropped
    assert not {c.id for c in other_run} & {c.id for c in flow}  # a new Dagster run is new work


def test_command_without_orchestrator_run_id_still_decodes() -> None:
    """A command journaled before `orchestrator_run_id` existed decodes with it None (backward compatible)."""
    old = {"type": "ComputeFlow", "id": "ab" * 16, "ts": "2025-06-04T21:00:00Z", "v": 1, "triggered_by": "cli",
           "symbols": ["AAPL"], "as_of": "2025-06-04", "window": 1, "parent_run_id": None}
    command = msgspec.json.decode(json.dumps(old), type=ComputeFlow)
    assert command.orchestrator_run_id is None and command.symbols == ["AAPL"]


def _tick(schedule: dg.ScheduleDefinition, instance: dg.DagsterInstance, home: Home,
          when: datetime) -> list[dg.RunRequest] | dg.SkipReason:
    """One evaluation of the schedule at `when`, on `home`."""
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                   resources={"oh": resources.OhResource(home=str(home.root))}) as context:
        return schedule(context)


def test_the_daily_schedule_requests_one_run_per_symbol_of_the_closed_session(
        home: Home, instance: dg.DagsterInstance) -> None:
    """At 17:30 New York on a session: one run per symbol (schedule symbols + watchlist + none from the missing
    portfolio) for that session, with the file's provider; on a holiday nothing; a bad file is a skip, not a crash."""
    (home.config / "watchlists.json").write_text(json.dumps({"version": 1, "watchlists": {"default": ["SPY"]}}))
    (home.config / "scheduler.toml").write_text(
        '[daily]\ncron = "30 17 * * 1-5"\ntimezone = "America/New_York"\nwatchlist = "default"\n'
        'symbols = ["AAPL"]\nprovider = "yahoo"\n')
    schedule = automation.daily_schedule(definitions.per_symbol_assets, automation.schedule_config(home))
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 17 * * 1-5", "America/New_York")
    requests = _tick(schedule, instance, home, datetime(2025, 6, 4, 17, 30, tzinfo=NY))
    assert isinstance(requests, list)
    assert sorted(str(r.partition_key) for r in requests) == ["2025-06-04|AAPL", "2025-06-04|SPY"]
    assert {r.run_config["resources"]["oh"]["config"]["provider"] for r in requests} == {"yahoo"}
    assert sorted(instance.get_dynamic_partitions(partitions.SYMBOLS.name)) == ["AAPL", "SPY"]  # added for the runs
    holiday = _tick(schedule, instance, home, datetime(2025, 6, 19, 17, 30, tzinfo=NY))
    assert isinstance(holiday, dg.SkipReason) and "not an NYSE session" in (holiday.skip_message or "")
    (home.config / "scheduler.toml").write_text('[daily]\nwatchlist = "nosuchlist"\n')
    bad = _tick(schedule, instance, home, datetime(2025, 6, 5, 17, 30, tzinfo=NY))
    assert isinstance(bad, dg.SkipReason) and "nosuchlist" in (bad.skip_message or "")


def test_symbol_partitions_follow_the_watchlists(home: Home, instance: dg.DagsterInstance) -> None:
    """Every watchlist's symbols become partitions; an edit adds the new ones and removes the dropped ones."""
    path = home.config / "watchlists.json"
    path.write_text(json.dumps({"version": 1, "watchlists": {"default": ["SPY", "QQQ"], "tech": ["AAPL"]}}))
    (home.config / "scheduler.toml").write_text('[daily]\nsymbols = ["IWM"]\n')
    oh_resources = {"oh": resources.OhResource(home=str(home.root))}

    def tick() -> dg.SensorResult | dg.SkipReason:
        with dg.build_sensor_context(instance=instance, resources=oh_resources) as context:
            result = automation.watchlist_symbols(context)
        for request in getattr(result, "dynamic_partitions_requests", None) or []:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            else:
                for key in request.partition_keys:
                    instance.delete_dynamic_partition(request.partitions_def_name, key)
        return result

    tick()
    assert sorted(instance.get_dynamic_partitions(partitions.SYMBOLS.name)) == ["AAPL", "IWM", "QQQ", "SPY"]
    assert isinstance(tick(), dg.SkipReason)  # nothing changed
    path.write_text(json.dumps({"version": 1, "watchlists": {"default": ["SPY"], "tech": ["AAPL", "MSFT"]}}))
    tick()
    assert sorted(instance.get_dynamic_partitions(partitions.SYMBOLS.name)) == ["AAPL", "IWM", "MSFT", "SPY"]


@pytest.mark.parametrize("mode", ["bus", "inline"])
def test_a_step_without_a_ledger_fails_in_one_line_and_sends_nothing(
        home: Home, instance: dg.DagsterInstance, mode: str) -> None:
    """No stack running: the step fails at once saying to start it; no command waits in a producer forever."""
    instance.add_dynamic_partitions(partitions.SYMBOLS.name, ["AAPL"])
    result = dg.materialize(
        [a for a in definitions.ASSETS if a.key == dg.AssetKey("options_bars")], instance=instance,
        partition_key="2025-06-04|AAPL", resources={"oh": resources.OhResource(home=str(home.root), mode=mode)},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "does not answer" in message and "oh up" in message
    assert not (home.journal.exists() and any(home.journal.iterdir()))


def test_the_briefing_is_requested_once_after_the_tick_when_derived_metrics_updated(
        instance: dg.DagsterInstance) -> None:
    """The briefing's automation: nothing before the schedule's tick, nothing after it until a derived partition of
    the session is updated, then that session's briefing once, and not again on the next evaluation."""
    instance.add_dynamic_partitions(partitions.SYMBOLS.name, ["AAPL", "SPY"])
    briefing = dg.AssetKey("briefing_markdown")
    cursor = None

    def requested(when: datetime) -> list[str]:
        nonlocal cursor
        result = dg.evaluate_automation_conditions(
            defs=definitions.defs, instance=instance, asset_selection=dg.AssetSelection.assets(briefing),
            evaluation_time=when, cursor=cursor)
        cursor = result.cursor
        return sorted(result.get_requested_partitions(briefing))

    assert requested(datetime(2025, 6, 4, 17, 0, tzinfo=NY)) == []
    assert requested(datetime(2025, 6, 4, 17, 35, tzinfo=NY)) == []
    instance.report_runless_asset_event(dg.AssetMaterialization("derived_metrics", partition="2025-06-04|AAPL"))
    assert requested(datetime(2025, 6, 4, 17, 40, tzinfo=NY)) == ["2025-06-04"]
    assert requested(datetime(2025, 6, 4, 17, 45, tzinfo=NY)) == []


@pytest.mark.parametrize("mode", ["inlin", "BUS", "", "bus "])
def test_an_unknown_mode_fails_the_step_naming_the_modes(home: Home, instance: dg.DagsterInstance, mode: str) -> None:
    """A mistyped `mode` in the run config is a one-line step failure that lists the modes; nothing is sent."""
    instance.add_dynamic_partitions(partitions.SYMBOLS.name, ["AAPL"])
    result = dg.materialize(
        [a for a in definitions.ASSETS if a.key == dg.AssetKey("candles_daily")], instance=instance,
        partition_key="2025-06-04|AAPL", resources={"oh": resources.OhResource(home=str(home.root), mode=mode)},
        raise_on_error=False,
    )
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"mode {mode!r} is not one of bus, inline" in failure.event_specific_data.error.message
