"""Every provider job on `--provider alpaca` and `--provider yahoo`, end to end with the real SDKs.

The ledger and the ingest and snapshot workers run as processes; alpaca-py and yfinance run unmodified
inside them and talk HTTP to a local server answering with recorded Alpaca and Yahoo responses
(tests/http_replay.py, tests/fixtures/http/). The only thing pointing them there is configuration:
`$OH_HOME/config/alpaca.env` (keys, APCA_API_BASE_URL, APCA_API_DATA_URL) and
`$OH_HOME/config/providers.toml` (feeds, Yahoo's base URL, short retries).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from devtools.processes import Service, wait_for_heartbeat
from tests.http_replay import FIXTURES, ReplayServer, replay_server
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

KEY_ID = "PKINTEGRATION7Q2W9E4R"
SECRET = "itg-Secret-9fK2mP7xQ4vL8nR3tY6wZ1"
PROVIDER_VARIABLES = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "APCA_API_BASE_URL", "APCA_API_DATA_URL",
                      "OH_PROVIDER_FALLBACK", "OH_ALPACA_STOCK_FEED", "OH_ALPACA_OPTION_FEED", "OH_YAHOO_BASE_URL")
WEEK = ("--start", "2025-06-02", "--end", "2025-06-06")


def write_config(home: Home, server: ReplayServer, *, keys: tuple[str, str] | None = (KEY_ID, SECRET),
                 stock_feed: str = "iex", default_fallback: str | None = None) -> None:
    """alpaca.env and providers.toml pointing both SDKs at `server`, with short retries (Retry-After kept)."""
    env = [f"APCA_API_BASE_URL={server.service_url('alpaca-trading')}",
           f"APCA_API_DATA_URL={server.service_url('alpaca-data')}"]
    if keys:
        env = [f"APCA_API_KEY_ID={keys[0]}", f"APCA_API_SECRET_KEY={keys[1]}", *env]
    (home.config / "alpaca.env").write_text("\n".join(env) + "\n")
    toml = [f'default_fallback = "{default_fallback}"' if default_fallback else "",
            "[alpaca]", f'stock_feed = "{stock_feed}"', 'option_feed = "indicative"',
            "[yahoo]", f'base_url = "{server.service_url("yahoo")}"',
            "[retry]", "attempts = 2", "base_delay = 0.01", "max_delay = 1.0", "timeout = 5"]
    (home.config / "providers.toml").write_text("\n".join(toml) + "\n")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplayServer]:
    """The recorded Alpaca and Yahoo services, checking Alpaca's keys; no provider variable leaks in."""
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with replay_server(alpaca_keys=(KEY_ID, SECRET)) as state:
        yield state


@pytest.fixture
def stack(home: Home, server: ReplayServer) -> Iterator[Stack]:
    """Ledger, ingest and snapshot workers, configured for the recorded services."""
    write_config(home, server)
    services = Stack(home)
    services.start_ledger()
    services.start_ingest()
    snapshot = Service(home, "snapshot").start()
    wait_for_heartbeat(home, "snapshot")
    yield services
    snapshot.stop()
    services.stop()


def _assets(stack: Stack, asset_key: str) -> dict[str, dict[str, Any]]:
    """The newest asset row per partition: status, provider (extra_json) or error."""
    rows = stack.client.query(
        "SELECT a.partition_key, a.status, a.extra_json FROM meta.ingestion_run_assets a "
        "JOIN meta.ingestion_runs r USING (run_id) WHERE a.asset_key = ? ORDER BY r.started_at", [asset_key]
    ).to_pylist()
    return {r["partition_key"]: {"status": r["status"], **json.loads(r["extra_json"] or "{}")} for r in rows}


def _recorded(vendor: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / vendor / name).read_text())


def test_alpaca_candles_paginate_retry_and_fail_only_the_unknown_symbol(stack: Stack, server: ReplayServer) -> None:
    """AAPL comes over two pages, MSFT after a 429 with Retry-After, ZZNOPE is unknown: AAPL and MSFT land
    (provider alpaca, Alpaca's numbers), ZZNOPE's asset row fails with UnknownSymbol, and the run fails naming it."""
    result = run_oh("emit", "ingest-candles", "--provider", "alpaca", "--symbols", "AAPL,MSFT,ZZNOPE", *WEEK, "--wait")
    assert result.returncode == 1 and "1 of 3 symbols failed" in result.stderr and "ZZNOPE" in result.stderr
    recorded = [bar["c"] for page in ("page1", "page2")
                for bar in _recorded("alpaca", f"v2_stocks_bars_AAPL_iex_{page}.json")["bars"]["AAPL"]]
    stored = stack.client.query("SELECT close FROM candles_daily WHERE symbol = 'AAPL' ORDER BY date").column(0)
    assert stored.to_pylist() == recorded
    assert stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol = 'MSFT' AND provider = 'alpaca'") == 5
    assets = _assets(stack, "candles_daily")
    assert (assets["AAPL"], assets["MSFT"]) == ({"status": "success", "provider": "alpaca"},) * 2
    assert assets["ZZNOPE"]["status"] == "failed" and assets["ZZNOPE"]["error_type"] == "UnknownSymbol"
    assert "alpaca does not know the symbol ZZNOPE" in assets["ZZNOPE"]["error_message"]
    assert len(server.hits("alpaca-data", "/v2/stocks/bars", symbols="AAPL")) == 2  # both pages
    assert [s.status for s in server.hits("alpaca-data", "/v2/stocks/bars", symbols="MSFT")] == [429, 200]


def test_alpaca_option_bars_and_chain_snapshots(stack: Stack, server: ReplayServer) -> None:
    """ingest_options_bars and snapshot_options on alpaca: the week's contracts' bars (two pages) and the full
    chain (two pages of snapshots, open interest from the contract list) land; ZZNOPE fails alone."""
    bars = run_oh("emit", "ingest-options-bars", "--provider", "alpaca", "--symbols", "AAPL,ZZNOPE",
                  "--as-of", "2025-06-06", "--max-dte", "7", "--wait")
    assert bars.returncode == 1 and "1 of 2 bar days failed" in bars.stderr
    recorded = {**_recorded("alpaca", "v1beta1_options_bars_AAPL_2025-06-13_page1.json")["bars"],
                **_recorded("alpaca", "v1beta1_options_bars_AAPL_2025-06-13_page2.json")["bars"]}
    stored = stack.client.query("SELECT contract_symbol, close, trade_count FROM options_bars WHERE provider = 'alpaca'")
    assert {r["contract_symbol"]: (r["close"], r["trade_count"]) for r in stored.to_pylist()} == {
        c: (b[0]["c"], b[0]["n"]) for c, b in recorded.items()}
    chain = run_oh("emit", "snapshot-options", "--provider", "alpaca", "--symbols", "AAPL,ZZNOPE",
                   "--as-of", "2025-06-06", "--wait")
    assert chain.returncode == 1 and "1 of 2 snapshots failed" in chain.stderr
    assert stack.scalar("SELECT count(*) FROM option_snapshots WHERE underlying = 'AAPL' AND provider = 'alpaca' "
                        "AND snapshot_date = DATE '2025-06-06'") == 24
    assert stack.scalar("SELECT open_interest FROM option_snapshots WHERE contract_symbol = 'AAPL250620C00200000'") == \
        int(next(c["open_interest"] for c in _recorded("alpaca", "v2_options_contracts_AAPL_active_page1.json")[
            "option_contracts"] if c["symbol"] == "AAPL250620C00200000"))
    assets = {**_assets(stack, "options_bars"), **{f"chain {k}": v for k, v in _assets(stack, "options_snapshot_file").items()}}
    assert assets["AAPL|2025-06-06"]["provider"] == assets["chain AAPL|2025-06-06"]["provider"] == "alpaca"
    assert assets["ZZNOPE|2025-06-06"]["error_type"] == assets["chain ZZNOPE|2025-06-06"]["error_type"] == "UnknownSymbol"
    assert len(server.hits("alpaca-data", "/v1beta1/options/snapshots/AAPL")) == 2


def test_yahoo_serves_every_job(stack: Stack, server: ReplayServer) -> None:
    """ingest_candles (Yahoo's split-adjusted close, the dividend left out), snapshot_options (every expiry,
    Greeks computed) and ingest_options_bars (one chart per contract) on yahoo; ZZNOPE's chain fails alone."""
    candles = run_oh("emit", "ingest-candles", "--provider", "yahoo", "--symbols", "AAPL",
                     "--start", "2025-05-08", "--end", "2025-05-14", "--wait")
    assert candles.returncode == 0, candles.stderr
    quote = _recorded("yahoo", "v8_chart_AAPL_2025-05-08_2025-05-14.json")["chart"]["result"][0]["indicators"]["quote"][0]
    stored = stack.client.query("SELECT close FROM candles_daily WHERE symbol = 'AAPL' AND provider = 'yahoo' ORDER BY date")
    assert stored.column(0).to_pylist() == quote["close"]
    chain = run_oh("emit", "snapshot-options", "--provider", "yahoo", "--symbols", "AAPL,ZZNOPE",
                   "--as-of", "2025-06-06", "--wait")
    assert chain.returncode == 1 and "1 of 2 snapshots failed" in chain.stderr
    assert stack.scalar("SELECT count(*) FROM option_snapshots WHERE provider = 'yahoo' AND isfinite(delta)") == 23
    assert stack.scalar("SELECT count(*) FROM option_snapshots WHERE provider = 'yahoo'") == 24
    bars = run_oh("emit", "ingest-options-bars", "--provider", "yahoo", "--symbols", "AAPL", "--as-of", "2025-06-06",
                  "--max-dte", "7", "--wait")
    assert bars.returncode == 0, bars.stderr
    assert stack.scalar("SELECT count(*) FROM options_bars WHERE provider = 'yahoo' AND date = DATE '2025-06-06'") == 6
    assert _assets(stack, "options_snapshot_file")["ZZNOPE|2025-06-06"]["error_type"] == "UnknownSymbol"
    assert server.hits("yahoo", "/v7/finance/options/AAPL", date="1752796800")


def test_a_feed_without_entitlement_fails_each_symbol_saying_which_feed(home: Home, stack: Stack) -> None:
    """stock_feed = "sip" on an account without it: Alpaca's 403 fails each symbol's asset row with
    NotEntitled naming the sip feed and the iex setting to use; the run says why."""
    text = (home.config / "providers.toml").read_text().replace('stock_feed = "iex"', 'stock_feed = "sip"')
    (home.config / "providers.toml").write_text(text)
    result = run_oh("emit", "ingest-candles", "--provider", "alpaca", "--symbols", "AAPL", *WEEK, "--wait")
    assert result.returncode == 1 and "not entitled to the sip stock feed" in result.stderr
    failed = _assets(stack, "candles_daily")["AAPL"]
    assert (failed["status"], failed["error_type"]) == ("failed", "NotEntitled")
    assert 'stock_feed = "iex"' in failed["error_message"]
    assert stack.scalar("SELECT count(*) FROM candles_daily") == 0


def test_fallback_serves_per_symbol_and_records_who_served(home: Home, stack: Stack, server: ReplayServer) -> None:
    """--fallback yahoo: AAPL from alpaca; TSLA, on which alpaca keeps answering 503, from yahoo (after
    Yahoo's own 429). Each asset row and candle says which provider served it. Then the same without
    --fallback, with default_fallback = "yahoo" in providers.toml."""
    result = run_oh("emit", "ingest-candles", "--provider", "alpaca", "--fallback", "yahoo",
                    "--symbols", "AAPL,TSLA", *WEEK, "--wait")
    assert result.returncode == 0, result.stderr
    assets = _assets(stack, "candles_daily")
    assert (assets["AAPL"]["provider"], assets["TSLA"]["provider"]) == ("alpaca", "yahoo")
    served = stack.client.query("SELECT symbol, provider, count(*) AS n FROM candles_daily GROUP BY ALL ORDER BY 1")
    assert served.to_pylist() == [{"symbol": "AAPL", "provider": "alpaca", "n": 5},
                                  {"symbol": "TSLA", "provider": "yahoo", "n": 5}]
    assert {s.status for s in server.hits("alpaca-data", "/v2/stocks/bars", symbols="TSLA")} == {503}
    write_config(home, server, default_fallback="yahoo")
    again = run_oh("emit", "ingest-candles", "--provider", "alpaca", "--symbols", "TSLA", *WEEK, "--wait")
    assert again.returncode == 0, again.stderr
    runs = stack.client.query(
        "SELECT a.extra_json FROM meta.ingestion_run_assets a JOIN meta.ingestion_runs r USING (run_id) "
        "WHERE a.partition_key = 'TSLA' ORDER BY r.started_at"
    ).column(0).to_pylist()
    assert [json.loads(r)["provider"] for r in runs] == ["yahoo", "yahoo"]


def test_no_credentials_fail_fast_with_one_line_and_a_failed_run(home: Home, server: ReplayServer) -> None:
    """`--provider alpaca` with no keys anywhere: the CLI prints one `error:` line saying what to set (no
    traceback), the run is `failed` in meta.ingestion_runs with MissingCredentials, and no request is sent."""
    write_config(home, server, keys=None)
    services = Stack(home)
    services.start_ledger()
    services.start_ingest()
    try:
        result = run_oh("emit", "ingest-candles", "--provider", "alpaca", "--symbols", "AAPL", "--wait")
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 1 and len(errors) == 1
        assert "alpaca: no credentials: set APCA_API_KEY_ID and APCA_API_SECRET_KEY" in errors[0]
        assert str(home.config / "alpaca.env") in errors[0]
        assert "Traceback" not in result.stderr + result.stdout
        run = services.client.query("SELECT job_name, status, error_type FROM meta.ingestion_runs").to_pylist()
        assert run == [{"job_name": "ingest_candles", "status": "failed", "error_type": "MissingCredentials"}]
        assert server.seen == []
    finally:
        services.stop()


def test_daily_without_credentials_fails_fast_naming_them(home: Home, server: ReplayServer) -> None:
    """`oh emit daily --provider alpaca` with no keys: one `error:` line that says what to set (no traceback),
    a failed `daily` run and failed fetch runs in the ledger, no request sent, and no step left waiting."""
    from devtools.processes import Service, wait_for_heartbeat

    write_config(home, server, keys=None)
    services = Stack(home)
    services.start_ledger()
    services.start_ingest()
    workers = [Service(home, name).start() for name in ("snapshot", "flow", "derived", "briefing", "scheduler")]
    try:
        for worker in workers:
            wait_for_heartbeat(home, worker.name)
        result = run_oh("emit", "daily", "--provider", "alpaca", "--symbols", "AAPL", "--as-of", "2025-06-13",
                        "--without-portfolio", "--wait")
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 1 and len(errors) == 1, result.stderr
        assert "alpaca: no credentials: set APCA_API_KEY_ID and APCA_API_SECRET_KEY" in errors[0]
        assert "Traceback" not in result.stderr + result.stdout
        runs = services.client.query(
            "SELECT job_name, status, error_type FROM meta.ingestion_runs ORDER BY job_name").to_pylist()
        assert {(r["job_name"], r["status"]) for r in runs} == {
            ("daily", "failed"), ("ingest_candles", "failed"), ("ingest_options_bars", "failed"),
            ("snapshot_options", "failed"),
        }
        assert {r["error_type"] for r in runs if r["job_name"] != "daily"} == {"MissingCredentials"}
        assert server.seen == []
    finally:
        for worker in workers:
            worker.stop()
        services.stop()


def _files_under(root: Path, skip: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents:
            yield path


def test_credentials_appear_nowhere_the_platform_writes(home: Home, stack: Stack, server: ReplayServer) -> None:
    """After successful, failing (unknown symbol, feed 403) and refused-key (401) alpaca runs, neither the
    configured secret nor the key id, nor a wrong secret tried later, is in any byte of the journal, the
    DuckDB file, the logs or the state, in any text column of any table, or in what the CLI printed,
    although the recorded service did receive them."""
    printed = [run_oh("emit", "ingest-candles", "--provider", "alpaca", "--symbols", "AAPL,ZZNOPE", *WEEK, "--wait")]
    printed.append(run_oh("emit", "snapshot-options", "--provider", "alpaca", "--symbols", "AAPL",
                          "--as-of", "2025-06-06", "--wait"))
    write_config(home, server, stock_feed="sip")
    printed.append(run_oh("emit", "ingest-candles", "--provider", "alpaca", "--symbols", "MSFT", *WEEK, "--wait"))
    wrong_secret = "wrong-Secret-Qq3Ww8Ee5Rr2Tt7"
    write_config(home, server, keys=(KEY_ID, wrong_secret))
    refused = run_oh("emit", "ingest-candles", "--provider", "alpaca", "--symbols", "AAPL", *WEEK, "--wait")
    printed.append(refused)
    assert refused.returncode == 1 and "the API keys were refused" in refused.stderr
    assert any(s.headers.get("apca-api-secret-key") == SECRET for s in server.seen)
    assert any(s.headers.get("apca-api-secret-key") == wrong_secret for s in server.seen)
    stack.stop()  # the warehouse and the logs are complete and flushed
    secrets = [s.encode() for s in (KEY_ID, SECRET, wrong_secret)]
    checked = 0
    for path in _files_under(home.root, skip=home.config):
        data = path.read_bytes()
        checked += 1
        leaked = [s for s in secrets if s in data]
        assert not leaked, f"{path.relative_to(home.root)} holds a credential"
    assert checked >= 3 and home.warehouse.exists() and any(home.journal.iterdir())
    import duckdb

    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR'"
        ).fetchall()
        for schema, table, column in columns:
            for secret in (KEY_ID, SECRET, wrong_secret):
                hits = con.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}" LIKE ?',
                                   [f"%{secret}%"]).fetchone()
                assert hits == (0,), f"{schema}.{table}.{column} holds a credential"
    assert len(columns) > 20
    for result in printed:
        assert not any(s in result.stdout + result.stderr for s in (KEY_ID, SECRET, wrong_secret))
