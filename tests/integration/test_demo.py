"""`oh demo` (what `make demo` runs) on a fresh home, smaller than the default (1 year, 11 sessions): it starts every
service under supervisord, and when it returns every stage has filled for every demo symbol: candles, a chain per
session, one-session flow for each session after the first and the multi-session (5) flow window for the latest
five (the Flow page's window choice), derived rows, the latest session's briefing and the sample portfolio, and every
service (the dashboard too) is up.

Protects the demo's promise that every feature shows on the first look (its 5-session flow window was missing: the
daily chain computes one-session flow only), and that sending the snapshot range in parts, whose chains overlap, gives
exactly the derived rows one ranged command over every session gives (a part's IV rank and percentile must see the
IV history of the parts before it). One test, real processes, about a minute and a half.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from bus.home import Home
from oh.adapters.watchlists import DEFAULT_WATCHLIST
from oh.cli.demo import CHAIN_PARTS
from oh.domain import calendar
from tests.integration.conftest import run_oh

pytestmark = pytest.mark.integration

SESSIONS = 11  # the 5-session window of the 5th-latest session needs 6 chains: 11 sessions give it whole


def _rows(sql: str) -> list[dict[str, object]]:
    done = run_oh("query", sql, "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


DERIVED = "SELECT * FROM derived_daily ORDER BY symbol, session_date"


def test_demo_fills_every_stage_and_a_multi_session_flow_window(home: Home) -> None:
    """`oh demo --years 1 --sessions 11` exits 0 with every service up and its stages timed; flow has windows 1 (10
    sessions) and 5 (the latest 5) for every symbol, derived and chains cover all 11 sessions (the 10 before the latest
    snapshotted in CHAIN_PARTS runs), the latest briefing and the sample portfolio are written; and one ranged
    `compute-derived` over the 11 sessions afterwards recomputes exactly the derived rows the demo left."""
    last = calendar.last_closed_session(calendar.wall_clock())
    try:
        demo = run_oh("demo", "--years", "1", "--sessions", str(SESSIONS), timeout=900.0)
        assert demo.returncode == 0, demo.stderr + demo.stdout
        assert "Stages: start " in demo.stdout and "5-session flow " in demo.stdout
        assert run_oh("status").returncode == 0  # the demo ends with every service up, the dashboard too
        symbols = len(DEFAULT_WATCHLIST)
        windows = _rows("SELECT window_sessions, count(DISTINCT to_date) AS days, count(DISTINCT symbol) AS symbols, "
                        "max(to_date) AS latest FROM options_flow GROUP BY 1 ORDER BY 1")
        assert [(w["window_sessions"], w["days"], w["symbols"]) for w in windows] == [
            (1, SESSIONS - 1, symbols), (5, 5, symbols)]
        assert {date.fromisoformat(str(w["latest"])) for w in windows} == {last}
        [chains] = _rows("SELECT count(DISTINCT snapshot_date) AS days FROM option_snapshots")
        [derived] = _rows("SELECT count(DISTINCT session_date) AS days, count(DISTINCT symbol) AS symbols "
                          "FROM derived_daily")
        assert chains["days"] == SESSIONS and derived == {"days": SESSIONS, "symbols": symbols}
        [snapshots] = _rows("SELECT count(*) FILTER (WHERE triggered_by = 'cli') AS parts, count(*) AS runs "
                            "FROM meta.ingestion_runs WHERE job_name = 'snapshot_options' AND status = 'success'")
        assert snapshots == {"parts": CHAIN_PARTS, "runs": CHAIN_PARTS + 1}  # the parts, and the daily's
        left = _rows(DERIVED)
        first = calendar.last_sessions(last, SESSIONS)[0].astype(date)
        again = run_oh("emit", "compute-derived", "--watchlist", "default", "--start", str(first), "--end", str(last),
                       "--wait", timeout=300.0)
        assert again.returncode == 0, again.stderr
        recomputed = _rows(DERIVED)
        assert len(recomputed) == SESSIONS * symbols and recomputed == left
        assert (home.root / "briefings" / f"{last}.md").exists()
        assert (home.config / "portfolio.json").exists()
    finally:
        down = run_oh("down")
    assert down.returncode == 0, down.stderr
