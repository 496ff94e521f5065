"""The briefing at the end of the chain: snapshot -> flow -> derived -> build_briefing with real processes on the
sim market writes one Markdown file and one `briefings` row per session; running the chain again changes nothing;
a malformed portfolio file is reported inside the briefing, which is still written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from bus.home import Home
from devtools.processes import Service, wait_for_heartbeat
from oh.adapters.portfolio_file import save
from oh.domain.portfolio import Leg, OptionPosition, Portfolio, StockPosition, Structure
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

D1, D2 = date(2025, 6, 2), date(2025, 6, 3)
EXPIRY = date(2025, 7, 18)


def write_portfolio(home: Home) -> Path:
    """A single leg, a vertical and an iron condor on SPY (contracts the sim lists on D1 and D2), plus AAPL stock."""
    path = home.config / "portfolio.json"
    save(path, Portfolio(cash=10_000, positions=[
        OptionPosition(id="call", symbol="SPY", expiry=EXPIRY, right="call", strike=130, quantity=2, cost_basis=11),
        Structure(id="bps", symbol="SPY", kind="vertical", net_debit=-3.3,
                  legs=[Leg(EXPIRY, "put", 125, -1, 8.5), Leg(EXPIRY, "put", 115, 1, 5.2)]),
        Structure(id="ic", symbol="SPY", kind="iron_condor", net_debit=-2.0, legs=[
            Leg(EXPIRY, "put", 110, 1, 4.0), Leg(EXPIRY, "put", 120, -1, 6.6),
            Leg(EXPIRY, "call", 145, -1, 5.5), Leg(EXPIRY, "call", 155, 1, 3.0)]),
        StockPosition(id="aapl", symbol="AAPL", quantity=10, cost_basis=250),
    ]))
    return path


def finished(stack: Stack, job: str, count: int, timeout: float = 120.0) -> list[dict]:  # type: ignore[type-arg]
    """Wait until `count` runs of `job` have ended; their rows, oldest first."""
    deadline = time.monotonic() + timeout
    while True:
        runs = stack.client.query(
            "SELECT run_id, status, triggered_by, parent_run_id, error_message FROM meta.ingestion_runs "
            "WHERE job_name = ? AND status != 'started' ORDER BY started_at", [job]).to_pylist()
        if len(runs) >= count:
            return runs
        assert time.monotonic() < deadline, f"only {len(runs)} {job} runs ended"
        time.sleep(0.1)


def briefing_files(home: Home) -> dict[str, tuple[str, int]]:
    return {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in sorted((home.root / "briefings").glob("*.md"))}


def test_the_chain_writes_a_briefing_per_session_and_a_rerun_changes_nothing(pipeline: Stack, home: Home) -> None:
    """Two sessions of snapshots give one build_briefing run over both (success, chained from the derived run), a
    file and a `briefings` row per session with the same text, showing the portfolio (single leg, vertical, condor),
    derived metrics, flow and health. Emitting the same snapshots again leaves every file (bytes and mtime) and
    every briefing text as it was."""
    before_portfolio = write_portfolio(home).read_bytes()
    snap = run_oh("emit", "snapshot-options", "--symbols", "SPY", "--start", str(D1), "--end", str(D2), "--wait")
    assert snap.returncode == 0, snap.stderr
    runs = finished(pipeline, "build_briefing", 1)
    derived = {r["run_id"] for r in finished(pipeline, "compute_derived", 1)}
    assert [(r["status"], r["triggered_by"]) for r in runs] == [("success", "pipeline")], runs
    assert {r["parent_run_id"] for r in runs} == derived
    rows = pipeline.client.query("SELECT as_of, markdown, path, symbols FROM briefings ORDER BY as_of").to_pylist()
    files = briefing_files(home)
    assert [r["as_of"] for r in rows] == [D1, D2] and list(files) == [f"{D1}.md", f"{D2}.md"]
    for row in rows:
        assert row["path"] == str(home.root / "briefings" / f"{row['as_of']}.md")
        assert files[f"{row['as_of']}.md"][0] == row["markdown"]
        assert row["symbols"] == ["AAPL", "SPY"]  # the command's symbols and the portfolio's underlyings
    latest = rows[1]["markdown"]
    assert latest.startswith(f"# Briefing {D2}\n\n> Not financial advice.")
    for needle in ("| call | option | SPY |", "| bps | vertical | SPY |", "| ic | iron_condor | SPY |",
                   "SPY250718P00110000", "### Stress PnL today", "### Stress PnL in 7 days", "## Derived highlights",
                   "| SPY | ", "### On contracts you hold", "**Data health:**"):
        assert needle in latest, needle
    assert "No building or unwinding flow stored for 2025-06-02." in rows[0]["markdown"]  # D1 had no session before it
    assets = pipeline.client.query(
        "SELECT partition_key, status FROM meta.ingestion_run_assets WHERE asset_key = 'briefing_markdown' ORDER BY 1"
    ).to_pylist()
    assert assets == [{"partition_key": str(D1), "status": "success"}, {"partition_key": str(D2), "status": "success"}]

    again = run_oh("emit", "snapshot-options", "--symbols", "SPY", "--start", str(D1), "--end", str(D2), "--wait")
    assert again.returncode == 0, again.stderr
    rerun = finished(pipeline, "build_briefing", 2)
    assert {r["status"] for r in rerun} == {"success"}
    after = pipeline.client.query("SELECT as_of, markdown FROM briefings ORDER BY as_of").to_pylist()
    assert after == [{"as_of": r["as_of"], "markdown": r["markdown"]} for r in rows]
    assert briefing_files(home) == files
    assert (home.config / "portfolio.json").read_bytes() == before_portfolio


def test_a_malformed_portfolio_is_reported_inside_a_briefing_that_is_still_written(pipeline: Stack, home: Home) -> None:
    """A portfolio file with a bad strike: the run succeeds, the briefing names the field in its portfolio section
    and still has the derived and flow sections; the file is not rewritten."""
    path = home.config / "portfolio.json"
    path.write_text('{"positions": [{"type": "option", "id": "bad", "symbol": "SPY", "expiry": "2025-07-18", '
                    '"right": "call", "strike": -5, "quantity": 1, "cost_basis": 1}]}')
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    snap = run_oh("emit", "snapshot-options", "--symbols", "SPY", "--as-of", str(D2), "--wait")
    assert snap.returncode == 0, snap.stderr
    (run,) = finished(pipeline, "build_briefing", 1)
    assert run["status"] == "success", run["error_message"]
    text = (home.root / "briefings" / f"{D2}.md").read_text()
    assert 'positions[0] (id "bad"): strike must be > 0, got -5' in text
    assert "## Derived highlights" in text and "## Notable flow" in text and "| SPY | " in text
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.fixture
def briefing_only(home: Home) -> Iterator[Stack]:
    stack = Stack(home)
    stack.start_ledger()
    worker = Service(home, "briefing").start()
    wait_for_heartbeat(home, "briefing")
    yield stack
    worker.stop()
    stack.stop()


def _stored_briefing(stack: Stack, home: Home) -> tuple[object, bytes]:
    row = stack.client.query("SELECT as_of, markdown, run_id FROM briefings").to_pylist()
    return row, (home.root / "briefings" / f"{D2}.md").read_bytes()


def test_a_missing_portfolio_never_replaces_a_good_briefing(briefing_only: Stack, home: Home, tmp_path: Path) -> None:
    """With a good briefing of D2 written from portfolio P: `oh emit briefing --portfolio` naming a missing or a
    malformed file exits 2 with one line and sends nothing; a BuildBriefing whose file vanished after it was sent
    fails its run. Either way the D2 briefing (file bytes and `briefings` row) is unchanged."""
    path = write_portfolio(home)
    good = run_oh("emit", "briefing", "--symbols", "SPY", "--as-of", str(D2), "--portfolio", str(path), "--wait")
    assert good.returncode == 0, good.stderr
    before = _stored_briefing(briefing_only, home)
    assert "## Portfolio" in before[1].decode() and "iron_condor" in before[1].decode()
    events = briefing_only.scalar("SELECT count(*) FROM ledger.events")

    moved = tmp_path / "elsewhere.json"
    path.rename(moved)
    missing = run_oh("emit", "briefing", "--symbols", "SPY", "--as-of", str(D2), "--portfolio", str(path), "--wait")
    assert missing.returncode == 2 and "no portfolio file" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    moved.write_text('{"positions": [{"type": "stock", "id": "x", "symbol": "SPY", "quantity": "ten"}]}')
    malformed = run_oh("emit", "briefing", "--symbols", "SPY", "--as-of", str(D2), "--portfolio", str(moved))
    assert malformed.returncode == 2 and str(moved) in malformed.stderr
    assert briefing_only.scalar("SELECT count(*) FROM ledger.events") == events  # nothing was sent

    from bus.producer import Producer
    from contracts import BuildBriefing

    producer = Producer(home)
    producer.send(BuildBriefing(symbols=["SPY"], sessions=[D2], portfolio=str(path)))  # checked once, then gone
    producer.flush(10)
    producer.close()
    (run,) = [r for r in finished(briefing_only, "build_briefing", 2) if r["status"] != "success"]
    assert run["status"] == "failed" and "is gone" in run["error_message"]
    assert _stored_briefing(briefing_only, home) == before
