"""Health: what ran, what is running now, what failed (grouped), what is stale, where the gaps are,
the failed checks, the backfill plan ready to copy, and whether each service is alive.

Everything but the live run board and liveness comes from `oh.read.health.health_report` (the same
report as `oh db health`), read through the dashboard's cached queries.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import panel as pn

from contracts.catalog import TRACKED
from contracts.events import RUN_FAILED
from oh.adapters import supervisor
from oh.domain import units
from oh.read.health import HealthOptions, health_report
from panel_app import charts
from panel_app.axes import building_for, prepared
from panel_app.components import Slot, empty_text, frame, html_pane, side_by_side, sync_url
from panel_app.live import LedgerState, LiveEvent
from panel_app.page import Page
from panel_app.runboard import RECENT_RUNS, RunBoard, liveness_html

TIMELINE = """
SELECT * FROM (SELECT job_name, status, started_at, ended_at, run_id FROM meta.ingestion_runs
               WHERE started_at >= ? ORDER BY started_at DESC LIMIT ?)
ORDER BY started_at
"""
TIMELINE_RUNS = 1000  # more segments than this are unreadable (and would make the page grow without bound)
RUN_EVENTS = frozenset({"RunStarted", "RunFinished", "AssetFailed"})


LATEST_COLUMNS = [("job_name", "job"), ("status", "status"), ("started_at", "started (UTC)"), ("ended_at", "ended"),
                  ("duration_ms", "took (ms)"), ("triggered_by", "by"), ("error_message", "error")]
FAILURE_COLUMNS = [("job_name", "job"), ("error_type", "error type"), ("failures", "failures"),
                   ("first_seen", "first seen"), ("last_seen", "last seen"), ("last_status", "last status"),
                   ("last_message", "last message")]
FRESHNESS_COLUMNS = [("asset_key", "asset"), ("scope_key", "symbol"), ("watermark_ts", "data through"),
                     ("staleness_sessions", "sessions behind"), ("updated_at", "updated (UTC)")]
CHECK_COLUMNS = [("checked_at", "checked (UTC)"), ("asset_key", "asset"), ("partition_key", "partition"),
                 ("check_name", "check"), ("severity", "severity"), ("message", "message")]


class _Lazy:
    """A value computed on first use (the health report: only once a section asks for it)."""

    def __init__(self, compute: Any) -> None:
        self._compute = compute
        self._value: Any = None
        self._done = False

    def __call__(self) -> Any:
        if not self._done:
            self._value, self._done = self._compute(), True
        return self._value


def _bad_run(row: dict[str, Any]) -> str:
    return "oh-bad" if row.get("status") in RUN_FAILED else ""


def _stale(row: dict[str, Any]) -> str:
    return "oh-bad oh-stale-row" if row.get("stale") or row.get("future") else "oh-fresh-row"  # future: cannot be real


class HealthPage(Page):
    """The ops page the trader keeps open: live runs first, then the health report."""

    slug = "health"
    title = "Health"
    watch = frozenset({"RunStarted", "RunFinished", "AssetFailed", "AssetChecked", "CandlesIngested",
                       "ChainSnapshotted", "OptionBarsIngested", "FlowComputed", "DerivedComputed", "BriefingBuilt"})
    min_interval = 2.0

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.days = pn.widgets.Select(name="Look back (days)", options=[1, 3, 7, 30, 90, 365], value=7)
        self.stale = pn.widgets.IntInput(name="Stale after (sessions)", value=1, start=0, end=30)
        self.asset = pn.widgets.Select(name="Coverage of", options={units.label(a): a for a in TRACKED},
                                       value="candles_daily")
        for widget, name in ((self.days, "days"), (self.stale, "stale"), (self.asset, "asset")):
            sync_url(widget, name)
        self.control(self.days, self.stale, self.asset)
        self.board = RunBoard()
        self.programs = supervisor.program_names()
        self.runs_slot = Slot("Runs (live)")
        self.services_slot = Slot("Services")
        self.latest = Slot("Latest run per job")
        self.timeline = Slot("Runs timeline", min_height=260)
        with building_for(pn.state.curdoc):
            self.timeline_chart = charts.RunsTimeline()
        self.failures = Slot("Recurring failures")
        self.freshness = Slot("Freshness per asset and symbol (trading sessions behind; stale in red)")
        self.coverage = Slot("Coverage (symbol x session, last 30 sessions)", min_height=200)
        self.checks = Slot("Failed checks")
        self.plan = Slot("Gap backfill plan")
        self._plan_text: str | None = None

    def controls(self) -> list[Any]:
        return [self.days, self.stale, self.asset]

    def layout(self) -> list[Any]:
        return [
            side_by_side(self.runs_slot.panel, self.services_slot.panel, basis=360, grow=(2, 1)),
            self.latest.panel, self.timeline.panel, self.failures.panel,
            side_by_side(self.freshness.panel, self.coverage.panel, basis=420),
            self.checks.panel, self.plan.panel,
        ]

    # ---------------------------------------------------------------- live
    def on_events(self, events: list[LiveEvent]) -> None:
        if self.board.apply(events):
            self.runs_slot.html(self.board.html())

    def on_state(self, state: LedgerState) -> None:
        self.services_slot.html(liveness_html(state, self.programs))

    # ---------------------------------------------------------------- history
    def update(self) -> None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)  # stable params: cache hits within a minute
        options = HealthOptions(days=int(self.days.value), stale_days=int(self.stale.value), coverage=True, now=now)
        # one report per refresh, computed by the first section that needs it; shared by every open Health
        # page of the server until a committed event changes what it read
        report = _Lazy(lambda: self.ctx.queries.memo(("health_report", options), None,
                                                     lambda: health_report(self.read, options)))
        self.fill(self.runs_slot, self._fill_runs, "The run board")
        if not self.services_slot.content:
            self.services_slot.html(liveness_html(self.ctx.hub.state if self.ctx.hub.state.checked else None,
                                                  self.programs))
        first_run = "oh emit ingest-candles --symbols SPY --start 2025-01-02 --end 2025-03-31 --wait"
        self.fill(self.latest, lambda: self._table(self.latest, report()["latest_runs"], LATEST_COLUMNS, "runs",
                                                   first_run, _bad_run))
        self.fill(self.freshness, lambda: self._table(self.freshness, report()["watermarks"], FRESHNESS_COLUMNS,
                                                      "datasets", first_run, _stale))
        self.fill(self.failures, lambda: self._table(self.failures, report()["failure_groups"], FAILURE_COLUMNS,
                                                     "recurring failures", None))
        self.fill(self.checks, lambda: self._table(self.checks, report()["failed_checks"], CHECK_COLUMNS,
                                                   "failed checks", None))
        self.fill(self.plan, lambda: self._fill_plan(report()))
        self.fill(self.timeline, lambda: self._fill_timeline(now, options.days))
        self.fill(self.coverage, lambda: self._fill_coverage(report()))

    def _fill_runs(self) -> None:
        self.board.load(self.read(RECENT_RUNS, [self.board.size]).to_pylist())
        self.runs_slot.html(self.board.html())

    def _table(self, slot: Slot, rows: list[dict[str, Any]], columns: list[tuple[str, str]], what: str,
               command: str | None, row_class: Any = None) -> None:
        if not rows:
            slot.notice("empty" if command else "info", empty_text(what, command) if command else f"No {what} in this window.")
            return
        slot.rows(rows, columns, row_class=row_class)

    def _fill_timeline(self, now: datetime, days: int) -> None:
        since = (now - pd.Timedelta(days=days)).replace(tzinfo=None)
        runs = frame(self.read(TIMELINE, [since, TIMELINE_RUNS]))
        if runs.empty:
            self.timeline.notice("info", "No runs in this window.")
            return
        self.timeline_chart.update(runs)
        if self.timeline._kind != "timeline":
            figure = prepared(self.timeline_chart.figure, pn.state.curdoc)
            self.timeline._replace("timeline", pn.pane.Bokeh(figure, sizing_mode="stretch_width"), None)

    def _fill_coverage(self, report: dict[str, Any]) -> None:
        rows = report.get("coverage", {}).get(self.asset.value) or []
        if not rows:
            self.coverage.notice("info", f"No {units.label(self.asset.value).lower()} stored yet, so no coverage to show.")
            return
        self.coverage.set_title(f"Coverage of {units.label(self.asset.value).lower()} (symbol x session, last "
                                f"{units.plural(len({r['session'] for r in rows}), 'session')})")
        self.coverage.chart(pd.DataFrame(rows), charts.coverage_heatmap, key=self.asset.value)

    def _fill_plan(self, report: dict[str, Any]) -> None:
        steps = report["plan"]
        window = report["gap_window"]
        if not steps:
            self._plan_text = ""
            self.plan.notice("info", f"No gaps over the last {window['sessions']} sessions: nothing to backfill.")
            return
        text = "\n".join(step["command"] for step in steps)
        if self._plan_text == text:
            return
        self._plan_text = text
        copy = pn.widgets.Button(name="Copy commands", button_type="primary", width=160)
        copy.js_on_click(args={"text": text}, code="navigator.clipboard.writeText(text)")
        gaps = len(report["gaps"])
        self.plan.show(
            pn.pane.Markdown(f"{units.plural(gaps, 'gap')} over {window['start']} .. {window['end']}; run these in "
                             "order (upstream first), or `oh db health --run`:", sizing_mode="stretch_width"),
            html_pane(f'<pre class="oh-plan">{html.escape(text)}</pre>'),
            copy,
        )
