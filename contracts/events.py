"""Events: past-tense facts, journaled by the ledger and projected into DuckDB."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from contracts.base import Event


class RunStarted(Event, kw_only=True):
    """A job began a run; projected as a `started` row in `meta.ingestion_runs`."""

    run_id: str
    job_name: str
    service: str | None = None
    command_id: str | None = None
    parent_run_id: str | None = None
    triggered_by: str = "cli"
    provider: str | None = None
    storage_backend: str = "duckdb"
    args_json: str | None = None
    git_sha: str | None = None
    app_version: str | None = None
    started_at: datetime


RUN_ENDED = ("success", "failed", "abandoned")  # RunFinished.status: a run's final statuses
RUN_FAILED = ("failed", "abandoned")  # of them, the failures (what health, the briefing and notify report)


class RunFinished(Event, kw_only=True):
    """A run ended; `status` is one of RUN_ENDED (with the error fields unless `success`).

    Version 2 carries `job_name`, so a worker that chains on finished runs knows what finished
    without a query; version 1 events (older journals) have it None and still replay.
    """

    v: int = 2
    run_id: str
    job_name: str | None = None
    status: str
    ended_at: datetime
    duration_ms: int
    error_type: str | None = None
    error_message: str | None = None
    error_stack_hash: str | None = None


class CandlesIngested(Event, kw_only=True):
    """Daily candles for one symbol (one chunk of a range); `rows` is an Arrow IPC stream.

    The ledger upserts them into `candles_daily` on (symbol, date), records the asset row in
    `meta.ingestion_run_assets` and advances the symbol's watermark.
    """

    run_id: str
    symbol: str
    provider: str
    first_date: date
    last_date: date
    row_count: int
    rows: bytes
    started_at: datetime
    ended_at: datetime


class AssetFailed(Event, kw_only=True):
    """One asset partition of a run failed (for example one symbol), or was `skipped` (nothing to do);
    other partitions go on. Only `failed` partitions fail the run."""

    run_id: str
    status: str = "failed"
    asset_key: str
    asset_kind: str = "table"
    partition_key: str
    error_type: str
    error_message: str
    started_at: datetime
    ended_at: datetime


class TradeUpdated(Event, kw_only=True):
    """A broker trade update (a fill is a fact): journaled and projected into `trade_updates`."""

    order_id: str
    symbol: str
    event: str
    side: str
    qty: float
    price: float | None = None
    filled_at: datetime | None = None


class CheckRecord(msgspec.Struct, frozen=True):
    """One data-quality check result (status pass, fail or skip; severity error, warn or info)."""

    check_name: str
    severity: str
    status: str
    message: str
    metrics_json: str = "{}"


class AssetChecked(Event, kw_only=True):
    """Check results for one asset partition, linked to the run that wrote the data (or a check run).

    A result's identity is (run_id, asset_key, partition_key, scope, check_name): the ledger keeps one
    row per identity in `meta.asset_checks`, the latest, so a run redone after a crash (its data events
    sent again under new ids) never doubles a check. `scope` separates results on different slices of
    one partition within one run (the chunks of a long candle delivery: its first date); None for the
    whole partition.
    """

    run_id: str | None
    asset_key: str
    partition_key: str | None
    scope: str | None = None
    checked_at: datetime
    results: list[CheckRecord]


class ChainSnapshotted(Event, kw_only=True):
    """The full option chain of one underlying on one session; `rows` is Arrow IPC (contracts.rows.CHAIN).

    The ledger upserts it into `option_snapshots` on (underlying, snapshot_date, contract_symbol),
    records the asset row (`options_snapshot_file`, partition `SYMBOL|DATE`) and the watermark.
    """

    run_id: str
    symbol: str
    provider: str
    snapshot_date: date
    row_count: int
    rows: bytes
    started_at: datetime
    ended_at: datetime


class FlowComputed(Event, kw_only=True):
    """Flow rows of one symbol for the window ending at `as_of`, every grouping (Arrow IPC, oh.domain.flow's
    GROUP_FLOW_SCHEMA); upserted into `options_flow` on its persisted key."""

    run_id: str
    symbol: str
    as_of: date
    window: int
    row_count: int
    rows: bytes
    started_at: datetime
    ended_at: datetime


class DerivedComputed(Event, kw_only=True):
    """The derived-metrics row of one symbol and session (Arrow IPC, contracts.rows.DERIVED), upserted
    into `derived_daily` on (symbol, session_date)."""

    run_id: str
    symbol: str
    as_of: date
    row_count: int
    rows: bytes
    started_at: datetime
    ended_at: datetime


class OptionBarsIngested(Event, kw_only=True):
    """Daily bars of one underlying's option contracts on one session (Arrow IPC, contracts.rows.OPTION_BARS);
    upserted into `options_bars` on (contract_symbol, date), asset `options_bars`, partition `SYMBOL|DATE`."""

    run_id: str
    symbol: str
    provider: str
    bar_date: date
    row_count: int
    rows: bytes
    started_at: datetime
    ended_at: datetime


class BriefingBuilt(Event, kw_only=True):
    """The Markdown briefing of session `as_of`; upserted into `briefings` on as_of, asset
    `briefing_markdown`, partition `DATE`. `path` is where the worker wrote the file."""

    run_id: str
    as_of: date
    path: str
    markdown: str
    symbols: list[str]
    started_at: datetime
    ended_at: datetime


class SymbolsForgotten(Event, kw_only=True):
    """The trader retired `symbols` (`oh symbols forget`): they leave freshness, gaps, the coverage heatmap and
    the backfill plan, their stored history stays. Projected into `meta.forgotten_symbols` (so `oh replay
    --rebuild` keeps it); data written for a symbol after this event brings it back, as does SymbolsRemembered."""

    symbols: list[str]
    reason: str | None = None


class SymbolsRemembered(Event, kw_only=True):
    """The trader brought forgotten `symbols` back (`oh symbols remember`): their rows leave `meta.forgotten_symbols`."""

    symbols: list[str]


class NotificationSent(Event, kw_only=True):
    """The notification hook ran for a failed run or a failed check (the `notify` worker, oh/adapters/notify.py),
    with its outcome; projected into `meta.notifications`, one row per id.

    The id derives from what triggered it (`trigger_key`), so a notification is recorded once however often the
    trigger is redelivered. `trigger` is `run_failed` or `check_failed`; `subject` the job name or the failed
    checks' names. `status` is `sent` (the command exited 0), `failed` (it exited non-zero, or could not start),
    `timeout` (killed after the configured seconds) or `config_error` (notify.toml is malformed: nothing ran).
    `program` is the command's program name only: its arguments may hold secrets (a webhook token).
    """

    trigger: str
    trigger_key: str
    run_id: str | None = None
    subject: str
    partition_key: str | None = None
    title: str
    message: str
    program: str | None = None
    status: str
    exit_code: int | None = None
    error: str | None = None
    started_at: datetime
    ended_at: datetime
