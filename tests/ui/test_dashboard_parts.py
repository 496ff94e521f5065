"""The dashboard's moving parts without a browser: the query cache and its invalidation, the live
fan-out (bounded per-session buffers, one drain scheduled at a time, cleanup), and the run board."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from bus.home import Home
from contracts import AssetFailed, CandlesIngested, RunFinished, RunStarted
from panel_app.data import ANY_TABLE, LedgerDown, Queries, changed_by, tables_of
from panel_app.live import LedgerState, LiveEvent, LiveHub, summarize
from panel_app.runboard import RunBoard, liveness_html

NOW = datetime(2025, 6, 4, 20, 0, tzinfo=UTC)


class FakeClient:
    """Answers every query with a one-row table and counts the requests; `during` runs mid-query."""

    def __init__(self) -> None:
        self.calls = 0
        self.during: Callable[[], None] | None = None

    def query(self, sql: str, params: list[Any] | None = None, timeout: float | None = None) -> pa.Table:
        self.calls += 1
        if self.during is not None:
            self.during()
        return pa.table({"n": [self.calls]})

    def close(self) -> None:
        pass


@pytest.fixture
def queries(home: Home) -> Queries:
    fake = Queries(home, client=FakeClient())  # type: ignore[arg-type]
    fake.socket_exists = lambda: True  # type: ignore[method-assign]
    return fake


def test_tables_named_by_sql() -> None:
    assert tables_of("SELECT * FROM meta.ingestion_runs r JOIN meta.ingestion_run_assets a USING (run_id)") == {
        "ingestion_runs", "ingestion_run_assets"}
    assert tables_of("SELECT count(*) FROM candles_daily WHERE symbol = ?") == {"candles_daily"}
    assert tables_of("SELECT * FROM duckdb_tables()") == {ANY_TABLE}
    assert tables_of("SELECT seq FROM ledger.offsets") == {"ledger_offsets"}
    assert "candles_daily" in changed_by("CandlesIngested") and "ingestion_runs" not in changed_by("CandlesIngested")
    assert "candles_daily" in changed_by("SomeFutureEvent")  # unknown types drop everything


def test_results_are_cached_per_sql_and_params(queries: Queries) -> None:
    first = queries.read("SELECT * FROM candles_daily WHERE symbol = ?", ["SPY"])
    assert queries.read("SELECT * FROM candles_daily WHERE symbol = ?", ["SPY"]) is first
    queries.read("SELECT * FROM candles_daily WHERE symbol = ?", ["QQQ"])
    queries.read("SELECT * FROM x WHERE s IN (SELECT unnest(?))", [["A", "B"]])  # list params are keys too
    assert (queries.hits, queries.misses) == (1, 3)


def test_an_event_drops_only_what_it_changes(queries: Queries) -> None:
    runs = queries.read("SELECT * FROM meta.ingestion_runs")
    candles = queries.read("SELECT * FROM candles_daily")
    catalog = queries.read("SELECT * FROM duckdb_tables()")
    assert queries.invalidate("RunStarted") == 2  # the runs and the catalog query (unknown tables)
    assert queries.read("SELECT * FROM candles_daily") is candles
    assert queries.read("SELECT * FROM meta.ingestion_runs") is not runs
    assert queries.read("SELECT * FROM duckdb_tables()") is not catalog
    queries.clear()
    assert queries.size == 0


def test_a_result_overtaken_by_an_event_is_not_cached(queries: Queries) -> None:
    client = queries._client
    assert isinstance(client, FakeClient)
    client.during = lambda: queries.invalidate("RunFinished")  # the event lands while the query runs
    queries.read("SELECT * FROM meta.ingestion_runs")
    client.during = None
    assert queries.size == 0
    queries.read("SELECT * FROM meta.ingestion_runs")
    assert queries.size == 1


def test_the_cache_is_bounded(home: Home) -> None:
    small = Queries(home, max_entries=3, client=FakeClient())  # type: ignore[arg-type]
    small.socket_exists = lambda: True  # type: ignore[method-assign]
    for i in range(10):
        small.read("SELECT ? FROM candles_daily", [i])
    assert small.size == 3


def test_no_ledger_fails_at_once(home: Home) -> None:
    queries = Queries(home)
    with pytest.raises(LedgerDown, match="not running"):
        queries.read("SELECT 1")
    queries.close()


class FakeDoc:
    """A Bokeh document stand-in: next-tick callbacks are collected and run when the test says."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []
        self.session_context = None

    def add_next_tick_callback(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def run(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()


def _event(seq: int, type_name: str = "RunStarted") -> LiveEvent:
    return LiveEvent(seq=seq, type=type_name, received=0.0, run_id=f"r{seq}")


def test_fan_out_is_bounded_per_session_and_drained_once(home: Home) -> None:
    hub = LiveHub(home, Queries(home), maxlen=8)  # not started: the test plays the subscriber thread
    slow, fast = FakeDoc(), FakeDoc()
    got: dict[str, list[tuple[list[int], bool]]] = {"slow": [], "fast": []}
    hub.subscribe(slow, lambda events, state, lost: got["slow"].append(([e.seq for e in events], lost)))
    hub.subscribe(fast, lambda events, state, lost: got["fast"].append(([e.seq for e in events], lost)))
    for seq in range(1, 4):
        hub._fan_out(event=_event(seq))
    fast.run()
    for seq in range(4, 21):
        hub._fan_out(event=_event(seq))
    assert len(slow.callbacks) == 1  # one drain pending per session, however many events
    slow.run()
    fast.run()
    assert got["slow"] == [(list(range(13, 21)), True)]  # the oldest were dropped and the page is told
    assert got["fast"] == [([1, 2, 3], False), (list(range(13, 21)), True)]


def test_a_closed_session_stops_receiving(home: Home) -> None:
    hub = LiveHub(home, Queries(home))
    doc = FakeDoc()
    seen: list[int] = []
    feed = hub.subscribe(doc, lambda events, state, lost: seen.extend(e.seq for e in events))
    assert hub.sessions == 1
    feed.close()
    feed.close()
    assert hub.sessions == 0
    hub._fan_out(event=_event(1))
    doc.run()
    assert seen == []


def test_a_session_gets_the_latest_ledger_state(home: Home) -> None:
    hub = LiveHub(home, Queries(home))
    doc = FakeDoc()
    states: list[bool | None] = []
    hub.subscribe(doc, lambda events, state, lost: states.append(None if state is None else state.up))
    hub._fan_out(state=LedgerState(up=True, checked=1.0))
    hub._fan_out(state=LedgerState(up=False, checked=2.0))
    doc.run()
    assert states == [False]  # conflated: only the newest state


def test_run_board_follows_events() -> None:
    start = RunStarted(run_id="run-1", job_name="ingest_candles", started_at=NOW, args_json='{"symbols": ["A", "B"]}')
    board = RunBoard()
    board.apply([summarize(1, start)])
    assert 'data-run-id="run-1" data-status="started"' in board.html()
    delivered = CandlesIngested(run_id="run-1", symbol="A", provider="sim", first_date=NOW.date(),
                                last_date=NOW.date(), row_count=1, rows=b"", started_at=NOW, ended_at=NOW)
    failed = AssetFailed(run_id="run-1", asset_key="candles_daily", partition_key="B", error_type="X",
                         error_message="no such symbol", started_at=NOW, ended_at=NOW)
    board.apply([summarize(2, delivered), summarize(3, delivered), summarize(4, failed)])
    assert "1 done · 1 failed" in board.html()
    board.apply([summarize(5, RunFinished(run_id="run-1", status="failed", ended_at=NOW, duration_ms=5,
                                          error_message="1 of 2 symbols failed"))])
    html = board.html()
    assert 'data-status="failed"' in html and "1 of 2 symbols failed" in html and "oh-status-failed" in html
    assert summarize(1, start).symbols == ("A", "B")


def test_liveness_marks_silent_services() -> None:
    state = LedgerState(up=True, checked=100.0, head_seq=7, heartbeats={
        "ingest": {"pid": 1, "state": "idle", "last_seen": 99.0},
        "flow": {"pid": 2, "state": "idle", "last_seen": 50.0}})
    html = liveness_html(state, ["ledger", "ingest", "flow", "checks"], now=100.0)
    assert "head seq 7" in html and "silent for 50s" in html and "no heartbeat" in html
    assert "not answering" in liveness_html(LedgerState(up=False, checked=1.0), ["ledger"], now=1.0)


def test_charts_drop_tick_labels_that_would_overlap() -> None:
    """Every chart's axes (panel_app.axes.new_figure) skip a tick label that would overlap its neighbour,
    so a phone-wide timeline or heatmap shows fewer labels rather than a smear (Bokeh's NoOverlap)."""
    import pandas as pd
    from bokeh.models import NoOverlap

    from panel_app import charts
    from panel_app.axes import new_figure

    for fig in (new_figure(), new_figure(x_axis_type="datetime")):
        assert all(isinstance(axis.major_label_policy, NoOverlap) for axis in (*fig.xaxis, *fig.yaxis))
    coverage = pd.DataFrame({"symbol": ["SPY", "SPY"], "session": ["2026-12-03", "2026-12-04"],
                             "state": ["present", "missing"]})
    heatmap = charts.coverage_heatmap(coverage).children[0]
    assert all(isinstance(axis.major_label_policy, NoOverlap) for axis in heatmap.xaxis)


def test_equal_axis_parts_are_shared_within_a_document_only() -> None:
    """Within one session's document, axes with equal tickers, formatters and label policies share one copy of
    each (a date axis alone is 15 models); axes formatted differently keep their own; another document (another
    browser session) gets its own copies; without a document nothing is shared."""
    from bokeh.document import Document
    from bokeh.models import DatetimeTicker

    from panel_app.axes import new_figure, set_axis, share_axis_parts

    def figures() -> list[Any]:
        made = [new_figure(x_axis_type="datetime"), new_figure(x_axis_type="datetime"), new_figure()]
        set_axis(made[0].yaxis, kind="money")
        set_axis(made[1].yaxis, kind="money")
        set_axis(made[2].yaxis, kind="fraction")
        return made

    doc, other = Document(), Document()
    first, second, third = (share_axis_parts(f, doc) for f in figures())
    assert first.xaxis[0].ticker is second.xaxis[0].ticker
    assert isinstance(first.xaxis[0].ticker, DatetimeTicker)
    assert first.xaxis[0].formatter is second.xaxis[0].formatter
    assert first.yaxis[0].formatter is second.yaxis[0].formatter  # the same money formatter
    assert third.yaxis[0].formatter is not first.yaxis[0].formatter  # a percent axis keeps its own
    assert third.xaxis[0].ticker is not first.xaxis[0].ticker  # a number axis is not a date axis
    assert first.xaxis[0].major_label_policy is third.yaxis[0].major_label_policy
    for fig in (first, second, third):
        doc.add_root(fig)
    shared = share_axis_parts(figures()[0], other)
    assert shared.xaxis[0].ticker is not first.xaxis[0].ticker  # never a model of another document
    alone = [share_axis_parts(f, None) for f in figures()[:2]]
    assert alone[0].xaxis[0].ticker is not alone[1].xaxis[0].ticker
    plain = Document()
    for fig in figures():
        plain.add_root(fig)
    assert len(doc.models) <= len(plain.models) - 13 - 2  # at least one date ticker and its two formatters fewer
