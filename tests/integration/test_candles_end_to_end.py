"""Candles from the CLI to DuckDB through real processes: counts, idempotence, run lifecycle."""

from __future__ import annotations

import time
from datetime import date, datetime

import pytest

from bus.home import Home
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

EMIT_2025 = ("emit", "ingest-candles", "--symbols", "AAPL,MSFT", "--start", "2025-01-01", "--end", "2025-12-31", "--wait")


def test_supervised_ingest_is_idempotent_and_recorded(home: Home) -> None:
    """`oh up`, emit 2025 candles for 2 symbols twice, `oh down`: 500 rows, two success runs, right metadata."""
    up = run_oh("up")
    assert up.returncode == 0, up.stderr
    try:
        assert run_oh("status").returncode == 0
        first = run_oh(*EMIT_2025)
        assert first.returncode == 0, first.stderr
        assert "succeeded" in first.stdout
        counts = run_oh("query", "SELECT symbol, count(*) AS n FROM candles_daily GROUP BY ALL ORDER BY 1", "--format", "json")
        assert '"AAPL"' in counts.stdout and '"n": 250' in counts.stdout
        second = run_oh(*EMIT_2025)
        assert second.returncode == 0, second.stderr
        from bus.control_client import ControlClient

        client = ControlClient(home)
        assert client.query("SELECT count(*) FROM candles_daily").column(0)[0].as_py() == 500
        runs = client.query(
            "SELECT run_id, job_name, triggered_by, status, duration_ms, ended_at, provider, error_type "
            "FROM meta.ingestion_runs ORDER BY started_at"
        ).to_pylist()
        assert [r["status"] for r in runs] == ["success", "success"]
        assert {r["job_name"] for r in runs} == {"ingest_candles"}
        assert {r["triggered_by"] for r in runs} == {"cli"}
        assert all(r["duration_ms"] is not None and r["duration_ms"] >= 0 and r["ended_at"] for r in runs)
        assert all(r["error_type"] is None and r["provider"] == "sim" for r in runs)
        assets = client.query(
            "SELECT run_id, partition_key, status, rows_inserted, rows_updated, min_event_ts, max_event_ts "
            "FROM meta.ingestion_run_assets WHERE asset_key = 'candles_daily' ORDER BY started_at, partition_key"
        ).to_pylist()
        assert [(a["partition_key"], a["status"]) for a in assets] == [("AAPL", "success"), ("MSFT", "success")] * 2
        first_run, second_run = runs[0]["run_id"], runs[1]["run_id"]
        assert [(a["rows_inserted"], a["rows_updated"]) for a in assets if a["run_id"] == first_run] == [(250, 0)] * 2
        assert [(a["rows_inserted"], a["rows_updated"]) for a in assets if a["run_id"] == second_run] == [(0, 250)] * 2
        assert {(a["min_event_ts"], a["max_event_ts"]) for a in assets} == {
            (datetime(2025, 1, 2), datetime(2025, 12, 31))
        }
        marks = client.query(
            "SELECT scope_key, watermark_ts, last_run_id FROM meta.asset_watermarks WHERE asset_key = 'candles_daily' ORDER BY 1"
        ).to_pylist()
        assert marks == [
            {"scope_key": "AAPL", "watermark_ts": datetime(2025, 12, 31), "last_run_id": second_run},
            {"scope_key": "MSFT", "watermark_ts": datetime(2025, 12, 31), "last_run_id": second_run},
        ]
        client.close()
    finally:
        down = run_oh("down")
    assert down.returncode == 0, down.stderr
    assert run_oh("status").returncode == 3
    ledger_log = (home.logs / "ledger.log").read_text()
    assert "ledger stopped at seq" in ledger_log, "the ledger did not shut down cleanly on SIGTERM"
    supervisor_log = (home.logs / "supervisord.log").read_text()
    for program in ("ledger", "ingest", "checks", "snapshot", "flow", "derived"):
        assert f"stopped: {program} (exit status 0)" in supervisor_log, f"{program} did not exit cleanly"


def test_failing_symbol_fails_the_run_but_others_land(stack: Stack) -> None:
    """An unknown symbol fails its asset row and the run (exit 1, reason shown); the good symbol lands."""
    result = run_oh("emit", "ingest-candles", "--symbols", "AAPL,ZZNOPE", "--start", "2025-03-03", "--end", "2025-03-07", "--wait")
    assert result.returncode == 1
    assert "ZZNOPE" in result.stderr
    assert stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol = 'AAPL'") == 5
    run = stack.client.query("SELECT status, error_type, error_message, error_stack_hash FROM meta.ingestion_runs").to_pylist()[0]
    assert run["status"] == "failed"
    assert run["error_type"] == "UnknownSymbol"
    assert "ZZNOPE" in run["error_message"]
    assert run["error_stack_hash"]
    rows = stack.client.query("SELECT partition_key, status FROM meta.ingestion_run_assets").to_pylist()
    assets = {row["partition_key"]: row["status"] for row in rows}
    assert assets == {"AAPL": "success", "ZZNOPE": "failed"}


def test_command_sent_while_worker_down_runs_once_when_it_starts(home: Home) -> None:
    """A command emitted with no worker is run when the worker starts, and not again after a restart."""
    services = Stack(home)
    services.start_ledger()
    try:
        sent = run_oh("emit", "ingest-candles", "--symbols", "SPY", "--start", "2025-06-02", "--end", "2025-06-06")
        assert sent.returncode == 0, sent.stderr
        services.start_ingest()
        deadline = time.monotonic() + 30
        while services.scalar("SELECT count(*) FROM meta.ingestion_runs WHERE status = 'success'") != 1:
            assert time.monotonic() < deadline, "the late worker never ran the command"
            time.sleep(0.1)
        assert services.ingest.stop() == 0, "the worker did not exit cleanly on SIGTERM"
        services.start_ingest()  # a restart must not run the finished command again
        time.sleep(1.5)
        assert services.scalar("SELECT count(*) FROM meta.ingestion_runs") == 1
        assert services.scalar("SELECT count(*) FROM candles_daily") == 5
    finally:
        services.stop()


def test_bad_cli_arguments_exit_2_with_one_line(home: Home) -> None:
    """Unknown provider, inverted dates and malformed symbols exit 2 with a one-line reason (no ledger needed)."""
    cases = [
        (("--symbols", "AAPL", "--start", "2025-01-01", "--end", "2025-02-01", "--provider", "nope"), "'nope' is not one of 'sim', 'alpaca', 'yahoo'"),
        (("--symbols", "AAPL", "--start", "2025-02-01", "--end", "2025-01-01"), "after --end"),
        (("--symbols", "AAPL,12$", "--start", "2025-01-01", "--end", "2025-02-01"), "malformed symbol"),
        (("--symbols", "AAPL", "--start", "2025-13-01", "--end", "2025-02-01"), "not a date"),
    ]
    for args, reason in cases:
        result = run_oh("emit", "ingest-candles", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert reason in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert date.today()  # the checks above never needed a running ledger
