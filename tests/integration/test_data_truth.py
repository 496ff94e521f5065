"""The data's truth through the real processes: no sessions that have not closed, no invented symbols, and a
symbol the trader forgets leaves health (and stays forgotten across a rebuild)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from bus.home import Home
from oh.domain import calendar
from tests.integration.conftest import Stack, run_oh, shared_home

pytestmark = pytest.mark.integration

DATA_TABLES = ("candles_daily", "options_bars", "option_snapshots", "options_flow", "derived_daily", "briefings")


def _last_closed() -> date:
    return calendar.last_closed_session(datetime.now(UTC))


def _next_session() -> date:
    """The first session that has not closed yet (the wall clock decides, as it does for `oh emit`)."""
    last = _last_closed()
    return calendar.all_sessions()[calendar.session_index(last) + 1].astype(date)


def _stored(stack: Stack) -> dict[str, int]:
    return {table: int(stack.scalar(f"SELECT count(*) FROM {table}")) for table in DATA_TABLES}  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def refusing_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One ledger and ingest worker for every refusal case: each case refuses before sending anything and checks
    that the journal and every table are still empty, so one that did store something fails itself."""
    with shared_home(tmp_path_factory.mktemp("refusals")) as home:
        stack = Stack(home)
        try:
            stack.start_ledger()
            stack.start_ingest()
            yield stack
        finally:
            stack.stop()


@pytest.mark.parametrize(
    "args",
    [
        ("ingest-candles", "--symbols", "AAPL", "--start", "{last}", "--end", "{future}"),
        ("ingest-candles", "--symbols", "AAPL", "--as-of", "{future}"),
        ("ingest-candles", "--symbols", "AAPL", "--start", "{later}", "--end", "{later}"),
        ("ingest-options-bars", "--symbols", "AAPL", "--as-of", "{future}"),
        ("snapshot-options", "--symbols", "AAPL", "--start", "{last}", "--end", "{later}"),
        ("compute-flow", "--symbols", "AAPL", "--as-of", "{future}"),
        ("compute-derived", "--symbols", "AAPL", "--as-of", "{later}"),
        ("briefing", "--symbols", "AAPL", "--as-of", "{future}"),
        ("daily", "--symbols", "AAPL", "--as-of", "{later}"),
    ],
    ids=["candles-range", "candles-as-of", "candles-later", "bars", "snapshot-range", "flow", "derived", "briefing",
         "daily"],
)
def test_oh_emit_refuses_a_session_that_has_not_closed(refusing_stack: Stack, args: tuple[str, ...]) -> None:
    """Every `oh emit` job exits 2 with one line naming the last closed session when its --as-of or --end reaches
    a session that has not closed (the next one, or one weeks later); no command is sent, nothing is stored."""
    future = _next_session()
    later = calendar.all_sessions()[calendar.session_index(future) + 10].astype(date)
    argv = [a.format(last=_last_closed(), future=future, later=later) for a in args]
    result = run_oh("emit", *argv, "--wait")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"the last closed session is {_last_closed()}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert refusing_stack.scalar("SELECT count(*) FROM ledger.events") == 0
    assert set(_stored(refusing_stack).values()) == {0}


def test_the_sim_worker_refuses_a_future_session_sent_past_the_cli(stack: Stack, home: Home) -> None:
    """A command sent straight to the bus for a range reaching a session that has not closed (a scheduler, a
    script) fails its partition with SessionNotClosed in the worker; the sim invents nothing."""
    from bus.producer import Producer
    from contracts import IngestCandles, run_id_for

    command = IngestCandles(symbols=["AAPL", "MSFT"], start=_last_closed() - timedelta(days=10),
                            end=_next_session() + timedelta(days=20), provider="sim")
    producer = Producer(home)
    producer.send(command)
    producer.flush(10)
    producer.close()
    run_id = run_id_for(command.id, "ingest_candles")
    deadline = time.monotonic() + 60
    while stack.scalar("SELECT count(*) FROM meta.ingestion_runs WHERE run_id = ? AND status = 'failed'", [run_id]) != 1:
        assert time.monotonic() < deadline, "the run did not fail"
        time.sleep(0.05)
    failed = stack.client.query(
        "SELECT partition_key, extra_json FROM meta.ingestion_run_assets WHERE status = 'failed' ORDER BY 1").to_pylist()
    assert [f["partition_key"] for f in failed] == ["AAPL", "MSFT"]
    assert all(json.loads(f["extra_json"])["error_type"] == "SessionNotClosed" for f in failed)
    assert f"last closed session is {_last_closed()}" in failed[0]["extra_json"]
    assert _stored(stack)["candles_daily"] == 0


@pytest.mark.parametrize("typo", ["AAPLL", "MSFTT", "ZZNOPE"])
def test_an_unknown_symbol_fails_its_partition_and_stores_nothing(stack: Stack, typo: str) -> None:
    """A typo is not a sim symbol: its partition fails naming it (UnknownSymbol), the good symbol lands, no row
    and no watermark exist for the typo, and health shows it nowhere but in the failed run."""
    result = run_oh("emit", "ingest-candles", "--symbols", f"AAPL,{typo}", "--start", "2025-05-01", "--end",
                    "2025-05-30", "--wait")
    assert result.returncode == 1 and typo in result.stderr
    failed = stack.client.query("SELECT partition_key, extra_json FROM meta.ingestion_run_assets "
                                "WHERE status = 'failed'").to_pylist()
    assert [f["partition_key"] for f in failed] == [typo]
    assert json.loads(failed[0]["extra_json"])["error_type"] == "UnknownSymbol"
    assert stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol = ?", [typo]) == 0
    assert stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol = 'AAPL'") == 21
    assert stack.scalar("SELECT count(*) FROM meta.asset_watermarks WHERE scope_key = ?", [typo]) == 0
    report = json.loads(run_oh("db", "health", "--json").stdout)
    assert typo not in {w["scope_key"] for w in report["watermarks"]}
    assert typo not in {g["symbol"] for g in report["gaps"]}


def _health(with_text: bool = False) -> tuple[dict, str]:  # type: ignore[type-arg]
    """`oh db health --json --coverage` (and the text report when asked)."""
    as_json = run_oh("db", "health", "--json", "--coverage")
    text = run_oh("db", "health") if with_text else None
    assert as_json.returncode == 0 and (text is None or text.returncode == 0), as_json.stderr
    return json.loads(as_json.stdout), text.stdout if text else ""


def _mentions(report: dict, symbol: str) -> dict[str, bool]:  # type: ignore[type-arg]
    return {
        "freshness": symbol in {w["scope_key"] for w in report["watermarks"]},
        "gaps": symbol in {g["symbol"] for g in report["gaps"]},
        "coverage": any(c["symbol"] == symbol for cells in report["coverage"].values() for c in cells),
        "plan": any(symbol in p["symbols"] for p in report["plan"]),
    }


def test_forget_takes_a_symbol_out_of_health_keeps_its_rows_and_survives_a_rebuild(stack: Stack) -> None:
    """KO was ingested with a hole (stale, gaps, in the plan). After `oh symbols forget KO`, `oh db health` (text
    and --json, coverage included) no longer shows it, its candles stay, and `oh replay --rebuild` keeps it
    forgotten; `oh symbols remember KO` brings it back; new data for it brings it back by itself."""
    last = _last_closed()
    start = calendar.last_sessions(last, 40)[0].astype(date)
    hole_end = calendar.last_sessions(last, 10)[0].astype(date)
    for symbol, end in (("AAPL", last), ("KO", hole_end)):
        assert run_oh("emit", "ingest-candles", "--symbols", symbol, "--start", str(start), "--end", str(end),
                      "--wait").returncode == 0
    report, text = _health(with_text=True)
    assert _mentions(report, "KO") == {"freshness": True, "gaps": True, "coverage": True, "plan": True}
    assert "--symbols KO" in text

    forget = run_oh("symbols", "forget", "KO", "--reason", "delisted from my book")
    assert forget.returncode == 0, forget.stderr
    report, text = _health(with_text=True)
    assert _mentions(report, "KO") == {"freshness": False, "gaps": False, "coverage": False, "plan": False}
    assert _mentions(report, "AAPL")["freshness"]
    assert [f["symbol"] for f in report["forgotten"]] == ["KO"]
    assert "--symbols KO" not in text and "Forgotten symbols" in text and "KO" in text.split("Forgotten symbols")[1]
    rows = stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol = 'KO'")
    assert rows == 31

    rebuilt = run_oh("replay", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    report, _ = _health()
    assert not any(_mentions(report, "KO").values())
    assert stack.scalar("SELECT count(*) FROM candles_daily WHERE symbol = 'KO'") == rows
    listed = run_oh("symbols", "forgotten")
    assert "KO" in listed.stdout and "delisted from my book" in listed.stdout

    assert run_oh("symbols", "remember", "KO").returncode == 0
    report, _ = _health()
    assert _mentions(report, "KO") == {"freshness": True, "gaps": True, "coverage": True, "plan": True}
    again = run_oh("symbols", "remember", "KO")
    assert again.returncode == 2 and "not forgotten" in again.stderr

    assert run_oh("symbols", "forget", "KO").returncode == 0
    assert not _mentions(_health()[0], "KO")["freshness"]
    refill = run_oh("emit", "ingest-candles", "--symbols", "KO", "--start", str(hole_end), "--end", str(last), "--wait")
    assert refill.returncode == 0, refill.stderr
    report, _ = _health()
    assert _mentions(report, "KO")["freshness"] and report["forgotten"] == []


def test_forget_refuses_bad_input_and_needs_the_ledger(home: Home) -> None:
    """A malformed symbol exits 2 with one line; with no ledger running, forget exits 1 and journals nothing."""
    bad = run_oh("symbols", "forget", "A$B")
    assert bad.returncode == 2 and "malformed symbol" in bad.stderr
    down = run_oh("symbols", "forget", "KO", timeout=60)
    assert down.returncode == 1 and "is oh running" in down.stderr
    assert not any(home.journal.glob("*.seg")) or all(p.stat().st_size == 0 for p in home.journal.glob("*.seg"))
