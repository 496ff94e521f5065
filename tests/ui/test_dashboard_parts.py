"""The dashboard's moving parts without a browser: the query cache and its invalidation, the live
fan-out (bounded per-session buffers, one drain scheduled at a time, cleanup), and the run board."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from bus.home import Home
from contracts import AssetFailed, CandlesIngested, RunFinished, RunStarted
from panel_app.data import ANY_TABLE, LedgerDown, Queries, changed_by, tables_of
from panel_app.live import LedgerState, LiveEvent, LiveHub, summarize
from tests.lazy import lazy

runboard = lazy("panel_app.runboard")  # imports Panel: by the worker that runs these tests only (tests/lazy.py)

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
    board = runboard.RunBoard()
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
    assert 'data-status="failed"' in html and "oh-status-failed" in html
    # the error is a row of its own under the run, across every column, so it reads whole at any width
    assert '<tr class="oh-detail"><td colspan="7"><div>1 of 2 symbols failed</div></td></tr>' in html
    assert html.index('data-run-id="run-1"') < html.index("1 of 2 symbols failed")
    board.apply([summarize(6, RunStarted(run_id="run-2", job_name="ingest_candles", started_at=NOW)),
                 summarize(7, RunFinished(run_id="run-2", status="failed", ended_at=NOW, duration_ms=5,
                                          error_message="<b>" + "x" * 1000))])
    long = board.html()
    assert "&lt;b&gt;" + "x" * 100 in long and "x" * 1000 not in long and "…" in long
    assert summarize(1, start).symbols == ("A", "B")


def test_liveness_marks_silent_services() -> None:
    state = LedgerState(up=True, checked=100.0, head_seq=7, heartbeats={
        "ingest": {"pid": 1, "state": "idle", "last_seen": 99.0},
        "flow": {"pid": 2, "state": "idle", "last_seen": 50.0}})
    html = runboard.liveness_html(state, ["ledger", "ingest", "flow", "checks"], now=100.0)
    assert "head seq 7" in html and "silent for 50s" in html and "no heartbeat" in html
    assert "not answering" in runboard.liveness_html(LedgerState(up=False, checked=1.0), ["ledger"], now=1.0)


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

    from panel_app.axes import new_figure, set_axis, share_stateless_parts

    def figures() -> list[Any]:
        made = [new_figure(x_axis_type="datetime"), new_figure(x_axis_type="datetime"), new_figure()]
        set_axis(made[0].yaxis, kind="money")
        set_axis(made[1].yaxis, kind="money")
        set_axis(made[2].yaxis, kind="fraction")
        return made

    doc, other = Document(), Document()
    first, second, third = (share_stateless_parts(f, doc) for f in figures())
    assert first.xaxis[0].ticker is second.xaxis[0].ticker
    assert isinstance(first.xaxis[0].ticker, DatetimeTicker)
    assert first.xaxis[0].formatter is second.xaxis[0].formatter
    assert first.yaxis[0].formatter is second.yaxis[0].formatter  # the same money formatter
    assert third.yaxis[0].formatter is not first.yaxis[0].formatter  # a percent axis keeps its own
    assert third.xaxis[0].ticker is not first.xaxis[0].ticker  # a number axis is not a date axis
    assert first.xaxis[0].major_label_policy is third.yaxis[0].major_label_policy
    for fig in (first, second, third):
        doc.add_root(fig)
    shared = share_stateless_parts(figures()[0], other)
    assert shared.xaxis[0].ticker is not first.xaxis[0].ticker  # never a model of another document
    alone = [share_stateless_parts(f, None) for f in figures()[:2]]
    assert alone[0].xaxis[0].ticker is not alone[1].xaxis[0].ticker
    plain = Document()
    for fig in figures():
        plain.add_root(fig)
    assert len(doc.models) <= len(plain.models) - 13 - 2  # at least one date ticker and its two formatters fewer


def test_stateless_parts_are_shared_and_stateful_ones_are_not() -> None:
    """Within one document, two charts share their scales, their renderers' AllIndices filter, their sources'
    selection policy and their box-zoom overlays' handle styling (stateless in BokehJS: templates cloned per
    plot, or functions of what they are given); their ranges, sources, selections, views, overlays and tools
    stay their own (a shared range or selection would link charts the trader did not link)."""
    import pandas as pd
    from bokeh.document import Document
    from bokeh.models import BoxZoomTool

    from panel_app import charts
    from panel_app.axes import drop_unused_glyphs, share_stateless_parts

    oi = pd.DataFrame({"strike": [100.0, 100.0, 105.0, 105.0], "put_call": ["C", "P", "C", "P"],
                       "open_interest": [10, 20, 30, 40]})
    doc = Document()
    first, second = (share_stateless_parts(drop_unused_glyphs(charts.oi_by_strike(oi)), doc) for _ in range(2))
    assert first.x_scale is second.x_scale and first.y_scale is first.x_scale  # two LinearScales, one model
    filters = {id(r.view.filter) for fig in (first, second) for r in fig.renderers}
    policies = {id(r.data_source.selection_policy) for fig in (first, second) for r in fig.renderers}
    assert len(filters) == 1 and len(policies) == 1
    zooms = [next(t for t in fig.toolbar.tools if isinstance(t, BoxZoomTool)) for fig in (first, second)]
    assert zooms[0].overlay is not zooms[1].overlay and zooms[0].overlay.handles is zooms[1].overlay.handles
    assert first.x_range is not second.x_range and first.y_range is not second.y_range
    sources = [r.data_source for fig in (first, second) for r in fig.renderers]
    assert len({id(s) for s in sources}) == len(sources)
    assert len({id(s.selected) for s in sources}) == len(sources)
    assert len({id(r.view) for fig in (first, second) for r in fig.renderers}) == len(sources)
    assert zooms[0] is not zooms[1] and first.toolbar is not second.toolbar
    for fig in (first, second):
        doc.add_root(fig)
    unshared = Document()
    for fig in (charts.oi_by_strike(oi), charts.oi_by_strike(oi)):
        unshared.add_root(drop_unused_glyphs(fig))
    assert len(doc.models) < len(unshared.models)


def test_charts_carry_no_model_they_do_not_draw() -> None:
    """Models no chart draws are not built: no empty Bokeh title (each section has its heading), one CDS view
    per source and filter (the candles' three renderers of one source share one), one source for all the IV
    smile's lines (a shorter expiry is padded with NaN, where its line ends: each expiry keeps its line, colour
    and legend entry), and the candles and their volume in one figure (one date axis; the bars on a range of their
    own over the plot's bottom quarter, with their axis on the right along that part only)."""
    import math
    from datetime import date

    import pandas as pd
    from bokeh.models import GlyphRenderer, Plot

    from panel_app import charts
    from panel_app.axes import drop_unused_glyphs

    days = [date(2026, 6, d) for d in range(1, 6)]
    candles = pd.DataFrame({"date": days, "open": [1.0] * 5, "high": [2.0] * 5, "low": [0.5] * 5,
                            "close": [1.5] * 5, "volume": [100] * 5})
    candles["volume"] = [100, 400, 200, 300, 100]
    price = drop_unused_glyphs(charts.candles(candles))
    assert price.title is None and price.toolbar.tools and len(price.xaxis) == 1
    renderers = list(price.select({"type": GlyphRenderer}))
    assert len(renderers) == 3 and len({id(r.view) for r in renderers}) == 1
    volume_bars = [r for r in renderers if r.y_range_name == "volume"]
    assert len(volume_bars) == 1 and volume_bars[0].glyph.top == "volume"
    assert price.extra_y_ranges["volume"].end == 400 / 0.25  # the tallest bar reaches a quarter of the plot
    assert price.y_range.start < 0.5 < 2.0 < price.y_range.end  # the candles above: the range runs below their low
    right = price.right[0]
    assert right.y_range_name == "volume" and right.bounds == (0, 400)
    assert "scaled" in right.formatter.code  # volume in counts (12.3K), as it was on its own chart
    smile = pd.DataFrame({"expiry": [date(2026, 7, 1)] * 3 + [date(2026, 8, 1)] * 2,
                          "strike": [90.0, 100.0, 110.0, 95.0, 105.0], "iv": [0.3, 0.25, 0.28, 0.27, 0.26]})
    fig = charts.iv_smile(smile)
    lines = list(fig.renderers)  # in expiry order
    assert len(lines) == 2 and len({id(r.data_source) for r in lines}) == 1
    data = lines[0].data_source.data
    assert [data[lines[1].glyph.x][i] for i in range(2)] == [95.0, 105.0] and math.isnan(data[lines[1].glyph.x][2])
    assert [item.label.value for item in fig.legend[0].items] == ["2026-07-01", "2026-08-01"]
    assert not any(isinstance(m, Plot) and m.title is not None for m in fig.references())


def test_lighter_charts_keep_what_they_show() -> None:
    """Heatmaps carry no grid models (their cells cover the lines; hiding them still sent two models); the coverage
    heatmap is one renderer whose cells keep their state's colour and words; charts across strikes keep box zoom,
    reset, save and hover but no pan or wheel zoom; every legend under a plot of one document shares one callback
    that sets its columns from the plot's width (its item width and most columns ride on the legend's tags)."""
    from datetime import date

    import pandas as pd
    from bokeh.document import Document
    from bokeh.models import BoxZoomTool, CustomJS, GlyphRenderer, Grid, HoverTool, PanTool, WheelZoomTool

    from panel_app import charts
    from panel_app.axes import prepared

    coverage = pd.DataFrame({"symbol": ["SPY", "SPY", "AAPL"], "session": ["2026-12-03", "2026-12-04", "2026-12-04"],
                             "state": ["before_start", "missing", "present"]})
    heatmap = charts.coverage_heatmap(coverage).children[0]
    renderers = list(heatmap.select({"type": GlyphRenderer}))
    assert len(renderers) == 1 and not list(heatmap.select({"type": Grid}))
    data = renderers[0].data_source.data
    cells = {(sy, se): (c, w) for sy, se, c, w in zip(data["symbol"], data["session"], data["color"], data["state"], strict=True)}
    assert cells == {("AAPL", "2026-12-04"): ("#43a047", "present"), ("SPY", "2026-12-04"): ("#e53935", "missing"),
                     ("SPY", "2026-12-03"): ("#d5d9de", "before the symbol's first session")}
    assert renderers[0].glyph.fill_color == "color"
    stress = charts.stress_heatmap(pd.DataFrame({"spot_shock": [-0.1, 0.1], "vol_shock": [0.0, 0.0], "pnl": [-5.0, 7.0]}))
    assert not list(stress.select({"type": Grid}))
    flow = pd.DataFrame({"expiry": [date(2026, 12, 18)] * 2, "strike": [100.0, 105.0], "d_oi": [10, -5]})
    assert not list(charts.flow_heatmap(flow, "d_oi").select({"type": Grid}))
    oi = pd.DataFrame({"strike": [100.0, 105.0], "put_call": ["C", "P"], "open_interest": [10, 20]})
    smile = pd.DataFrame({"expiry": [date(2026, 7, 1)] * 2, "strike": [90.0, 110.0], "iv": [0.3, 0.28]})
    doc = Document()
    figures = [prepared(charts.oi_by_strike(oi), doc), prepared(charts.iv_smile(smile), doc)]
    for fig in figures:
        kinds = {type(t) for t in fig.toolbar.tools}
        assert {BoxZoomTool, HoverTool} <= kinds and not kinds & {PanTool, WheelZoomTool}
        assert fig.xgrid and fig.ygrid  # a chart with lines keeps its grid
    callbacks = [cb for fig in figures for cb in fig.js_property_callbacks["change:inner_width"]]
    assert len(callbacks) == 2 and callbacks[0] is callbacks[1] and isinstance(callbacks[0], CustomJS)
    assert [fig.legend[0].tags[1] for fig in figures] == [2, 3]  # most columns: 2 for calls/puts, 3 for expiries
    other = prepared(charts.oi_by_strike(oi), Document())
    assert other.js_property_callbacks["change:inner_width"][0] is not callbacks[0]  # never another session's


def test_a_chart_shown_in_a_slot_does_not_sync_back() -> None:
    """A chart a Slot shows is one-way (Bokeh's `syncable=False` on each of its models): the browser does not
    send back the ranges, sizes and legend columns it computes while laying the chart out (messages the server
    would parse between the sections it fills, and that nothing reads); the page's widgets still sync."""
    import pandas as pd

    from panel_app import charts
    from panel_app.components import Slot

    slot = Slot("Open interest")
    oi = pd.DataFrame({"strike": [100.0, 105.0], "put_call": ["C", "P"], "open_interest": [10, 20]})
    slot.chart(oi, charts.oi_by_strike, key="x")
    figure = slot.content[0].object
    models = list(figure.references())
    assert len(models) > 20 and not any(m.syncable for m in models)
    assert slot.panel.get_root().syncable  # the layout around it is not affected


def _chart_builders() -> list[Callable[[], Any]]:
    """Every kind of chart of the dashboard on small data (no clock: the runs are finished)."""
    from datetime import date, timedelta

    import numpy as np
    import pandas as pd

    from panel_app import charts

    days = [date(2026, 6, 1) + timedelta(days=i) for i in range(8)]
    candles = pd.DataFrame({"date": days, "open": np.linspace(100, 107, 8), "high": np.linspace(102, 109, 8),
                            "low": np.linspace(99, 106, 8), "close": np.linspace(101, 106, 8), "volume": range(100, 108)})
    smile = pd.DataFrame({"expiry": [date(2026, 7, 1)] * 3 + [date(2026, 8, 1)] * 2,
                          "strike": [90.0, 100.0, 110.0, 95.0, 105.0], "iv": [0.3, 0.25, 0.28, 0.27, 0.26]})
    oi = pd.DataFrame({"strike": [100.0, 100.0, 105.0, 105.0], "put_call": ["C", "P", "C", "P"],
                       "open_interest": [10, 20, 30, 40]})
    derived = pd.DataFrame({"session_date": days * 2, "series": ["atm_iv"] * 8 + ["rv_20"] * 8,
                            "volatility": np.linspace(0.1, 0.4, 16), "symbol": ["SPY"] * 8 + ["AAPL"] * 8,
                            "iv_rank": np.linspace(5, 95, 16)})
    coverage = pd.DataFrame({"symbol": ["SPY"] * 3, "session": days[:3], "state": ["present", "missing", "before_start"]})
    flow = pd.DataFrame({"strike": [100.0, 105.0, 100.0], "put_call": ["C", "C", "P"], "d_oi": [5, -3, 2],
                         "label": ["building", None, "unwinding"], "oi_today": [10, 20, 30],
                         "expiry": [date(2026, 7, 1), date(2026, 8, 1), date(2026, 7, 1)]})
    stress = pd.DataFrame([(s, v, 1000 * s - 50 * v) for s in (-0.1, 0.0, 0.1) for v in (-5, 0, 5)],
                          columns=["spot_shock", "vol_shock", "pnl"])
    performance = pd.DataFrame({"date": days, "value": np.linspace(1e5, 1.1e5, 8), "pnl": np.linspace(0, 1e4, 8)})
    runs = pd.DataFrame({"job_name": ["daily", "ingest_candles"], "status": ["success", "failed"], "run_id": ["a1", "b2"],
                         "started_at": pd.to_datetime(["2026-06-01 10:00", "2026-06-01 11:00"]),
                         "ended_at": pd.to_datetime(["2026-06-01 10:05", "2026-06-01 11:01"])})

    def timeline() -> Any:
        chart = charts.RunsTimeline()
        chart.update(runs)
        return chart.figure

    return [lambda: charts.candles(candles), lambda: charts.iv_smile(smile), lambda: charts.oi_by_strike(oi),
            lambda: charts.metric_history(derived, "volatility", by="series", kind="fraction", title="Volatility"),
            lambda: charts.coverage_heatmap(coverage), lambda: charts.flow_bars(flow, "strike", "d_oi"),
            lambda: charts.flow_bars(flow, "expiry", "d_oi"), lambda: charts.flow_heatmap(flow, "d_oi"),
            lambda: charts.iv_rank_bands(derived), lambda: charts.stress_heatmap(stress),
            lambda: charts.performance(performance), timeline]


def _session_json(builders: list[Callable[[], Any]]) -> tuple[str, int]:
    """The charts prepared as in one session's document: its JSON with ids renumbered in order, and its models."""
    import json
    import re

    from bokeh.document import Document

    from panel_app.axes import building_for, prepared

    doc = Document()
    with building_for(doc):
        figures = [prepared(build(), doc) for build in builders]
    for fig in figures:
        doc.add_root(fig)
    ids: dict[str, str] = {}
    text = json.dumps(doc.to_json(deferred=False), sort_keys=True)
    return re.sub(r'"p\d+"', lambda m: ids.setdefault(m.group(0), f'"m{len(ids)}"'), text), len(doc.models)


@contextmanager
def _made(cls: type) -> Iterator[list[Any]]:
    """Every instance of `cls` (or a subclass) initialised inside the block, in order (its `__init__` wrapped)."""
    made: list[Any] = []
    original = cls.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    cls.__init__ = counting  # type: ignore[misc]
    try:
        yield made
    finally:
        cls.__init__ = original  # type: ignore[misc]


def test_models_are_built_without_the_defaults_their_arguments_replace() -> None:
    """panel_app.lean_models: a Bokeh model given a property whose default is a model does not build that default
    first (a date axis given its ticker built a 13-model DatetimeTicker to throw away), and plain defaults are
    worked out once per class; every chart of the dashboard serializes to the same document with it as with
    Bokeh's own code (ids aside). And Bokeh's functions are still the ones it reproduces: a Bokeh upgrade that
    changes HasProps.__init__ or PropertyDescriptor.instance_default fails here."""
    from bokeh.core.has_props import HasProps
    from bokeh.models import DatetimeAxis, DatetimeTicker

    from panel_app import lean_models

    assert lean_models.source_hash() == lean_models.BOKEH_SOURCES, "Bokeh changed what lean_models replaces: review it"
    assert HasProps.__init__ is lean_models._init  # installed by panel_app.axes
    with _made(DatetimeTicker) as built:
        ticker = DatetimeTicker()
        axis = DatetimeAxis(ticker=ticker)
        assert axis.ticker is ticker and built == [ticker]  # no default ticker built to be replaced
        lean = _session_json(_chart_builders())
        lean_models.uninstall()
        try:
            built.clear()
            DatetimeAxis(ticker=ticker)
            assert len(built) == 1  # Bokeh's own: the default first (what the check above would catch)
            bokeh = _session_json(_chart_builders())
        finally:
            lean_models.install()
    assert lean == bokeh


def test_charts_build_few_models_they_do_not_keep() -> None:
    """Building a session's charts makes little more than they keep: each takes its session's stateless parts as
    it is built (axes.building_for), its renderers come without the glyph copies and views they would drop
    (glyphs.draw), constructors build no default they replace (lean_models). The Symbol explorer's four charts
    with the demo's data built 328 models for a document of 154 (2026-12-07); here 174 for 134 (Bokeh's figure still
    builds a default range and scale per axis that it replaces, and the sharing of scales drops a few)."""
    from bokeh.model import Model

    _session_json(_chart_builders()[:4])  # a server's first session: lean_models learns the classes' defaults once
    with _made(Model) as made:
        _, kept = _session_json(_chart_builders()[:4])  # the Symbol explorer's four
    assert kept < len(made) <= kept + 45, (len(made), kept)


def test_draw_is_bokehs_glyph_method_without_the_copies() -> None:
    """glyphs.draw builds the glyph, source, range and legend entry Bokeh's glyph method (`fig.line(...)`) would,
    less what every chart dropped from it (the selection-state and muted copies; a view of its own per renderer of
    one source): the same properties on each glyph, so a chart looks the same."""
    from bokeh.models import ColumnDataSource, Line, Rect, Scatter, Segment, Step, Text, VBar

    from panel_app.axes import drop_unused_glyphs, new_figure
    from panel_app.glyphs import draw

    cases = [(Line, "line", {"x": "a", "y": "b", "color": "#1e88e5", "line_width": 2, "legend_label": "one"}),
             (Scatter, "scatter", {"x": "a", "y": "b", "color": "#1e88e5", "size": 4, "legend_label": "one"}),
             (VBar, "vbar", {"x": "a", "top": "b", "width": 0.5, "color": "c", "y_range_name": "default"}),
             (VBar, "vbar", {"x": "a", "top": "b", "bottom": "a", "fill_color": "c", "line_color": "c"}),
             (Segment, "segment", {"x0": "a", "y0": "b", "x1": "a", "y1": "a", "color": "c", "line_width": 12}),
             (Rect, "rect", {"x": "a", "y": "b", "width": 0.9, "height": 0.8, "fill_color": "c", "line_color": None}),
             (Text, "text", {"x": "a", "y": "b", "text": "t", "text_align": "center", "text_font_size": "11px"}),
             (Step, "step", {"x": "a", "y": "b", "mode": "center", "color": "#e53935", "legend_label": "Puts"})]
    for glyph_type, method, props in cases:
        source = ColumnDataSource({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": ["red", "blue"], "t": ["x", "y"]})
        theirs_fig, ours_fig = new_figure(), new_figure()
        theirs = getattr(theirs_fig, method)(source=source, **props)
        drop_unused_glyphs(theirs_fig)
        ours = draw(ours_fig, glyph_type, source, **props)
        assert type(ours.glyph) is type(theirs.glyph) is glyph_type
        assert ours.glyph.properties_with_values() == theirs.glyph.properties_with_values(), method
        assert ours.nonselection_glyph is theirs.nonselection_glyph is None and ours.muted_glyph is None
        assert ours.y_range_name == theirs.y_range_name and ours.data_source is source
        assert [(i.label, len(i.renderers)) for legend in ours_fig.legend for i in legend.items] == \
            [(i.label, len(i.renderers)) for legend in theirs_fig.legend for i in legend.items]
    fig = new_figure()
    source = ColumnDataSource({"a": [1.0], "b": [2.0]})
    line, dots = (draw(fig, kind, source, x="a", y="b", legend_label="one") for kind in (Line, Scatter))
    assert line.view is dots.view and len(fig.legend[0].items) == 1  # one view per source; the dots join the entry
