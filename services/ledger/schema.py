"""DuckDB DDL for every projection, the `meta.*` control plane and the ledger's own offsets.

The `meta.*` tables follow the observability contract in the seed notes column for column.

SCHEMA_VERSION is written in `ledger.offsets` when a file is created and checked whenever one is
opened (`stored_version`, `version_problem`): a file of an older version is rebuilt from the
journal (the journal is the truth; services/ledger/warehouse.py), a newer one is refused, since this
`oh` cannot know what a later one changed. Bump SCHEMA_VERSION with any change to the DDL or to what a
projection writes.
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = 3  # 2: meta.notifications; 3: the fact tables without a PRIMARY KEY (FACT_KEYS)

# The key of each fact table: unique, kept so by the ledger's upsert (services/ledger/projections.py, `_bulk_upsert`),
# the tables' only writer, and not by a PRIMARY KEY. DuckDB reads none of these tables through a multi-column index (a key
# lookup is a sequential scan that zone maps prune), so the index only enforced the key, while maintaining it for the
# millions of option rows a full-market day inserts cost about a third of the ledger's insert CPU (and ~100 MB of RSS
# inserting 840k chain rows; the full-market day's peak did not move).
FACT_KEYS: dict[str, tuple[str, ...]] = {
    "candles_daily": ("symbol", "date"),
    "option_snapshots": ("underlying", "snapshot_date", "contract_symbol"),
    "options_bars": ("contract_symbol", "date"),
    "options_flow": ("symbol", "from_date", "to_date", "window_sessions", "group_by", "row_key"),
    "derived_daily": ("symbol", "session_date"),
}

DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE SCHEMA IF NOT EXISTS ledger;

CREATE TABLE IF NOT EXISTS ledger.offsets (
  projection  VARCHAR PRIMARY KEY,
  seq         BIGINT NOT NULL,
  schema_version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger.events (
  seq     BIGINT NOT NULL,
  id      VARCHAR NOT NULL,
  type    VARCHAR NOT NULL,
  ts      TIMESTAMP NOT NULL,
  bytes   BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger.rejected (
  seq     BIGINT NOT NULL,
  type    VARCHAR NOT NULL,
  error   VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS candles_daily (  -- key: FACT_KEYS
  symbol   VARCHAR NOT NULL,
  date     DATE NOT NULL,
  open     DOUBLE NOT NULL,
  high     DOUBLE NOT NULL,
  low      DOUBLE NOT NULL,
  close    DOUBLE NOT NULL,
  volume   BIGINT NOT NULL,
  provider VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS option_snapshots (  -- key: FACT_KEYS
  underlying      VARCHAR NOT NULL,
  snapshot_date   DATE NOT NULL,
  contract_symbol VARCHAR NOT NULL,   -- OCC compact form
  expiry          DATE NOT NULL,
  put_call        VARCHAR NOT NULL,   -- 'C' or 'P' (`right` on the wire; RIGHT is an SQL keyword)
  strike          DOUBLE NOT NULL,
  spot            DOUBLE NOT NULL,
  bid             DOUBLE NOT NULL,
  ask             DOUBLE NOT NULL,
  last            DOUBLE NOT NULL,
  mark            DOUBLE NOT NULL,
  volume          BIGINT NOT NULL,
  open_interest   BIGINT NOT NULL,
  iv              DOUBLE NOT NULL,
  delta           DOUBLE NOT NULL,
  gamma           DOUBLE NOT NULL,
  vega            DOUBLE NOT NULL,
  theta           DOUBLE NOT NULL,
  rho             DOUBLE NOT NULL,
  provider        VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS options_bars (  -- key: FACT_KEYS
  contract_symbol VARCHAR NOT NULL,   -- OCC compact form
  date            DATE NOT NULL,
  underlying      VARCHAR NOT NULL,
  open            DOUBLE NOT NULL,
  high            DOUBLE NOT NULL,
  low             DOUBLE NOT NULL,
  close           DOUBLE NOT NULL,
  volume          BIGINT NOT NULL,
  trade_count     BIGINT NOT NULL,
  vwap            DOUBLE NOT NULL,
  provider        VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS briefings (
  as_of       DATE PRIMARY KEY,
  markdown    VARCHAR NOT NULL,
  path        VARCHAR NOT NULL,
  symbols     VARCHAR[] NOT NULL,
  run_id      VARCHAR NOT NULL,
  built_at    TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS options_flow (  -- key: FACT_KEYS
  symbol          VARCHAR NOT NULL,
  from_date       DATE NOT NULL,
  to_date         DATE NOT NULL,
  window_sessions INTEGER NOT NULL,   -- the flow's window (WINDOW is an SQL keyword)
  group_by        VARCHAR NOT NULL,   -- contract | strike | expiry | expiry-strike
  row_key         VARCHAR NOT NULL,
  put_call        VARCHAR,
  expiry          DATE,
  strike          DOUBLE,
  oi_before       BIGINT,
  oi_today        BIGINT,
  d_oi            BIGINT,
  d_oi_notional   DOUBLE,
  volume          BIGINT,
  volume_notional DOUBLE,
  volume_oi_ratio DOUBLE,
  delta_notional  DOUBLE,
  rows            BIGINT,
  label           VARCHAR
);

CREATE TABLE IF NOT EXISTS derived_daily (  -- key: FACT_KEYS
  symbol             VARCHAR NOT NULL,
  session_date       DATE NOT NULL,
  formula_version    INTEGER NOT NULL,
  spot               DOUBLE,
  pcr_oi             DOUBLE,
  pcr_volume         DOUBLE,
  call_wall          DOUBLE,
  put_wall           DOUBLE,
  gamma_peak_strike  DOUBLE,
  front_expiry       DATE,
  second_expiry      DATE,
  atm_strike         DOUBLE,
  atm_iv             DOUBLE,
  expected_move_pct  DOUBLE,
  skew_25d_pts       DOUBLE,
  term_slope_pts     DOUBLE,
  atm_iv_30d         DOUBLE,
  max_pain           DOUBLE,
  net_gex            DOUBLE,
  rv_20              DOUBLE,
  rv_60              DOUBLE,
  iv_rv_20           DOUBLE,
  iv_rv_60           DOUBLE,
  iv_percentile      DOUBLE,
  iv_rank            DOUBLE,
  iv_history_count   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS trade_updates (
  event_id  VARCHAR PRIMARY KEY,
  ts        TIMESTAMP NOT NULL,
  order_id  VARCHAR NOT NULL,
  symbol    VARCHAR NOT NULL,
  event     VARCHAR NOT NULL,
  side      VARCHAR NOT NULL,
  qty       DOUBLE NOT NULL,
  price     DOUBLE,
  filled_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS meta.ingestion_runs (
  run_id           VARCHAR PRIMARY KEY,
  parent_run_id    VARCHAR,
  job_name         VARCHAR NOT NULL,
  triggered_by     VARCHAR NOT NULL,
  status           VARCHAR NOT NULL,
  started_at       TIMESTAMP NOT NULL,
  ended_at         TIMESTAMP,
  duration_ms      BIGINT,
  provider         VARCHAR,
  storage_backend  VARCHAR,
  args_json        VARCHAR,
  git_sha          VARCHAR,
  app_version      VARCHAR,
  error_type       VARCHAR,
  error_message    VARCHAR,
  error_stack_hash VARCHAR
);

CREATE TABLE IF NOT EXISTS meta.ingestion_run_assets (
  run_id           VARCHAR NOT NULL,
  asset_key        VARCHAR NOT NULL,
  asset_kind       VARCHAR NOT NULL,
  partition_key    VARCHAR,
  status           VARCHAR NOT NULL,
  rows_inserted    BIGINT,
  rows_updated     BIGINT,
  rows_deleted     BIGINT,
  bytes_written    BIGINT,
  min_event_ts     TIMESTAMP,
  max_event_ts     TIMESTAMP,
  extra_json       VARCHAR,
  started_at       TIMESTAMP,
  ended_at         TIMESTAMP,
  duration_ms      BIGINT,
  PRIMARY KEY (run_id, asset_key, partition_key)
);

CREATE TABLE IF NOT EXISTS meta.asset_watermarks (
  asset_key        VARCHAR NOT NULL,
  scope_key        VARCHAR NOT NULL,
  watermark_ts     TIMESTAMP NOT NULL,
  updated_at       TIMESTAMP NOT NULL,
  last_run_id      VARCHAR,
  PRIMARY KEY (asset_key, scope_key)
);

CREATE TABLE IF NOT EXISTS meta.forgotten_symbols (
  symbol           VARCHAR PRIMARY KEY,
  forgotten_at     TIMESTAMP NOT NULL,   -- the SymbolsForgotten event's time
  reason           VARCHAR
);

CREATE TABLE IF NOT EXISTS meta.notifications (
  notification_id  VARCHAR PRIMARY KEY,   -- the NotificationSent event's id (derived from its trigger)
  trigger          VARCHAR NOT NULL,      -- run_failed | check_failed
  trigger_key      VARCHAR NOT NULL,
  run_id           VARCHAR,
  subject          VARCHAR NOT NULL,      -- the job, or the failed checks
  partition_key    VARCHAR,
  title            VARCHAR NOT NULL,
  message          VARCHAR NOT NULL,
  program          VARCHAR,               -- the hook's program name (never its arguments)
  status           VARCHAR NOT NULL,      -- sent | failed | timeout | config_error
  exit_code        INTEGER,
  error            VARCHAR,
  started_at       TIMESTAMP NOT NULL,
  ended_at         TIMESTAMP NOT NULL,
  duration_ms      BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS meta.asset_checks (
  check_id         VARCHAR PRIMARY KEY,
  asset_key        VARCHAR NOT NULL,
  partition_key    VARCHAR,
  check_name       VARCHAR NOT NULL,
  severity         VARCHAR NOT NULL,
  status           VARCHAR NOT NULL,
  checked_at       TIMESTAMP NOT NULL,
  metrics_json     VARCHAR,
  message          VARCHAR,
  run_id           VARCHAR
);
"""

# Tables whose content is a pure function of the journal (compared by the rebuild test).
PROJECTED_TABLES = (
    "candles_daily",
    "option_snapshots",
    "options_bars",
    "options_flow",
    "derived_daily",
    "briefings",
    "trade_updates",
    "meta.ingestion_runs",
    "meta.ingestion_run_assets",
    "meta.asset_watermarks",
    "meta.asset_checks",
    "meta.forgotten_symbols",
    "meta.notifications",
)


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table if missing; idempotent."""
    con.execute(DDL)
    con.execute(
        "INSERT INTO ledger.offsets VALUES ('warehouse', 0, ?) ON CONFLICT DO NOTHING", [SCHEMA_VERSION]
    )


def applied_seq(con: duckdb.DuckDBPyConnection) -> int:
    """The last journal seq whose effects are committed in this DuckDB file."""
    row = con.execute("SELECT seq FROM ledger.offsets WHERE projection = 'warehouse'").fetchone()
    return int(row[0]) if row else 0


def stored_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version of the open file: None if it holds no table yet, 0 if it predates versioning."""
    [(has_offsets, any_table)] = con.execute(
        "SELECT count(*) FILTER (WHERE schema_name = 'ledger' AND table_name = 'offsets'), count(*) "
        "FROM duckdb_tables()"
    ).fetchall()
    if not has_offsets:
        return 0 if any_table else None
    columns = {row[0] for row in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'ledger' AND table_name = 'offsets'"
    ).fetchall()}
    if "schema_version" not in columns:
        return 0
    rows = con.execute("SELECT schema_version FROM ledger.offsets WHERE projection = 'warehouse'").fetchall()
    return int(rows[0][0]) if rows else 0


def too_new(path: object, found: int) -> str:
    """The one-line refusal of a warehouse written by a newer `oh`."""
    return (f"the warehouse {path} has schema version {found}, newer than this oh's {SCHEMA_VERSION}: it was "
            "written by a newer oh; upgrade oh (or point OH_HOME elsewhere). Nothing was changed.")


def too_old(path: object, found: int) -> str:
    """The one-line refusal to read an older warehouse without rebuilding it."""
    return (f"the warehouse {path} has schema version {found}, older than this oh's {SCHEMA_VERSION}: start the "
            "ledger (`oh up`) or run `oh replay --rebuild` to rebuild it from the journal")
