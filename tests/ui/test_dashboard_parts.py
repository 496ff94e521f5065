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
