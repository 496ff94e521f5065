"""`oh emit --wait` and `oh demo`'s progress lines (oh.cli.follow._Board), fed events in-process.

Protects: a followed run's line counts the partitions its run and the runs it started stored, and stays as
the run ended: the flow, derived metrics and briefing a snapshot chains after it ends are not counted on it
(`oh demo` showed `snapshot_options 250/80`), while a `daily` line, which ends after its chain, counts them;
events of runs nobody follows change nothing.
"""

from __future__ import annotations

from datetime import date

from contracts import ChainSnapshotted, FlowComputed, RunFinished, RunStarted, utc_now
from oh.cli.follow import _Board, _Root

DAY = date(2026, 12, 4)


def _started(run_id: str, job: str, parent: str | None = None) -> RunStarted:
    return RunStarted(run_id=run_id, job_name=job, parent_run_id=parent, started_at=utc_now())


def _finished(run_id: str, job: str) -> RunFinished:
    return RunFinished(run_id=run_id, job_name=job, status="success", ended_at=utc_now(), duration_ms=1)


def _chain(run_id: str, symbol: str) -> ChainSnapshotted:
    now = utc_now()
    return ChainSnapshotted(run_id=run_id, symbol=symbol, provider="sim", snapshot_date=DAY, row_count=10, rows=b"",
                            started_at=now, ended_at=now)


def _flow(run_id: str, symbol: str) -> FlowComputed:
    now = utc_now()
    return FlowComputed(run_id=run_id, symbol=symbol, as_of=DAY, window=1, row_count=7, rows=b"", started_at=now,
                        ended_at=now)


def test_a_finished_snapshot_line_does_not_count_the_flow_it_chained() -> None:
    first, second = _Root("snap-1", "snapshot_options", 2), _Root("snap-2", "snapshot_options", 1)
    board = _Board([first, second])
    for event in (_started("snap-1", "snapshot_options"), _chain("snap-1", "SPY"), _chain("snap-1", "QQQ")):
        assert board.apply(event) is first
    assert board.apply(_finished("snap-1", "snapshot_options")) is first
    assert first.finished is not None and board.waiting == [second]
    # the flow the snapshot chained runs while the second snapshot is followed
    for event in (_started("flow-1", "compute_flow", parent="snap-1"), _flow("flow-1", "SPY"), _flow("flow-1", "QQQ"),
                  _finished("flow-1", "compute_flow")):
        assert board.apply(event) is None
    assert len(first.partitions) == 2 and first.rows == 20
    assert board.apply(_chain("snap-2", "IWM")) is second
    assert len(second.partitions) == 1


def test_a_daily_line_counts_the_partitions_of_every_run_in_its_chain() -> None:
    daily = _Root("daily-1", "daily", 0)
    board = _Board([daily])
    for event in (_started("daily-1", "daily"), _started("snap-1", "snapshot_options", parent="daily-1"),
                  _chain("snap-1", "SPY"), _finished("snap-1", "snapshot_options"),
                  _started("flow-1", "compute_flow", parent="snap-1"), _flow("flow-1", "SPY")):
        assert board.apply(event) is daily
    assert daily.partitions == {("snapshot_options", "SPY|2026-12-04"), ("compute_flow", "SPY|2026-12-04")}
    assert daily.running == {"daily-1": "daily", "flow-1": "compute_flow"}
    assert board.apply(_finished("daily-1", "daily")) is daily and board.waiting == []


def test_events_of_runs_nobody_follows_change_nothing() -> None:
    root = _Root("snap-1", "snapshot_options", 1)
    board = _Board([root])
    assert board.apply(_started("other", "ingest_candles")) is None
    assert board.apply(_chain("other", "SPY")) is None
    assert board.apply(_finished("other", "ingest_candles")) is None
    assert not root.partitions and board.waiting == [root]
