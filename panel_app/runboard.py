"""The Health page's live run board and service liveness: pure state, rendered as small HTML tables.

The board is loaded from `meta.ingestion_runs` (with each run's partitions by status) and then moved
forward by live events, so a run that starts, delivers partitions or fails shows up as soon as its
event is committed, before any query runs again. Progress is kept as sets of partition keys, the
same keys the ledger records in `meta.ingestion_run_assets`, so an event that a reload already
counted is not counted twice. A later reload from the warehouse replaces the board (the warehouse
is the truth; events are only the fast path). A failed run's error is a line of its own under the run, across
the table, so it reads whole at any width instead of stretching a column past the card.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from panel_app.components import html_table
from panel_app.live import LedgerState, LiveEvent

RECENT_RUNS = """
SELECT r.run_id, r.job_name, r.status, r.started_at, r.ended_at, r.triggered_by, r.error_message,
       list(a.partition_key) FILTER (WHERE a.status = 'success') AS done,
       list(a.partition_key) FILTER (WHERE a.status = 'failed') AS failed,
       list(a.partition_key) FILTER (WHERE a.status = 'skipped') AS skipped
FROM (SELECT * FROM meta.ingestion_runs ORDER BY started_at DESC, run_id LIMIT ?) r
LEFT JOIN meta.ingestion_run_assets a USING (run_id)
GROUP BY ALL
ORDER BY r.started_at DESC, r.run_id
"""
DELIVERIES = frozenset({"CandlesIngested", "ChainSnapshotted", "OptionBarsIngested", "FlowComputed",
                        "DerivedComputed", "BriefingBuilt"})
SILENT_AFTER = 10.0  # seconds without a heartbeat before a service shows as silent
ERROR_CHARS = 400  # of a failed run's error, on a line of its own under the run (cut with '…' past it)


@dataclass
class BoardRun:
    """One run as the board shows it."""

    run_id: str
    job_name: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None = None
    triggered_by: str | None = None
    error: str | None = None
    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)

    @property
    def progress(self) -> str:
        parts = [f"{len(self.done)} done"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return " · ".join(parts)

    def row(self) -> dict[str, Any]:
        duration = ""
        if self.started_at and self.ended_at:
            duration = f"{(self.ended_at - self.started_at).total_seconds():.1f}s"
        return {"job": self.job_name, "status": self.status, "run_id": self.run_id[:8],
                "started": f"{self.started_at:%m-%d %H:%M:%S}" if self.started_at else "",
                "duration": duration, "progress": self.progress, "by": self.triggered_by or "",
                "_error": self.error or "", "_id": self.run_id}


class RunBoard:
    """The most recent runs, newest first."""

    def __init__(self, size: int = 12) -> None:
        self.size = size
        self.runs: dict[str, BoardRun] = {}

    def load(self, rows: list[dict[str, Any]]) -> None:
        """Replace the board with rows of RECENT_RUNS."""
        self.runs = {
            r["run_id"]: BoardRun(
                run_id=r["run_id"], job_name=r["job_name"], status=r["status"], started_at=r["started_at"],
                ended_at=r["ended_at"], triggered_by=r["triggered_by"], error=r["error_message"],
                done=set(r["done"] or ()), failed=set(r["failed"] or ()), skipped=set(r["skipped"] or ()))
            for r in rows
        }

    def apply(self, events: list[LiveEvent]) -> bool:
        """Move the board forward by committed events; True if anything shown changed."""
        changed = False
        for event in events:
            run = self.runs.get(event.run_id or "")
            if event.type == "RunStarted" and event.run_id:
                self.runs[event.run_id] = BoardRun(event.run_id, event.job_name or "?", "started", _naive(event.at))
                changed = True
            elif run is None:
                continue
            elif event.type == "RunFinished":
                run.status, run.ended_at, run.error = event.status or "finished", _naive(event.at), event.error
                changed = True
            elif event.type == "AssetFailed":
                (run.skipped if event.status == "skipped" else run.failed).add(event.partition or "?")
                changed = True
            elif event.type in DELIVERIES and event.partition:
                run.done.add(event.partition)
                changed = True
        if len(self.runs) > self.size:
            newest = sorted(self.runs.values(), key=lambda r: (r.started_at or datetime.min), reverse=True)
            self.runs = {r.run_id: r for r in newest[: self.size]}
        return changed

    def html(self) -> str:
        """The board as an HTML table (each row carries data-run-id and data-status)."""
        runs = sorted(self.runs.values(), key=lambda r: (r.started_at or datetime.min), reverse=True)
        if not runs:
            return '<div class="oh-empty-runs">No runs yet: run <code>oh demo</code> or <code>oh emit ingest-candles ...</code>.</div>'
        return html_table(
            [r.row() for r in runs],
            [("job", "job"), ("status", "status"), ("progress", "progress"), ("started", "started (UTC)"),
             ("duration", "took"), ("by", "by"), ("run_id", "run")],
            row_attrs=lambda row: f'class="oh-run" data-run-id="{row["_id"]}" data-status="{row["status"]}"',
            cell_class=lambda key, row: f"oh-status-{row['status']}" if key == "status" else "",
            detail=lambda row: _cut(row["_error"], ERROR_CHARS),
        )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _naive(value: datetime | None) -> datetime | None:
    """UTC datetimes without tzinfo, like the warehouse's TIMESTAMP columns."""
    return value.replace(tzinfo=None) if value is not None and value.tzinfo else value


def liveness_html(state: LedgerState | None, programs: list[str], now: float | None = None) -> str:
    """Each service: beating, silent or never heard, from the ledger's heartbeat table."""
    now = time.time() if now is None else now
    if state is None:
        return "<div>Waiting for the ledger's status ...</div>"
    names = list(dict.fromkeys([*programs, *sorted(state.heartbeats)]))
    rows = []
    for name in names:
        beat = state.heartbeats.get(name)
        if name == "ledger":
            text = f"answering · head seq {state.head_seq:,} · applied {state.applied_seq:,}" if state.up else "not answering"
            rows.append({"service": name, "state": text, "css": "" if state.up else "oh-silent"})
        elif beat is None:
            rows.append({"service": name, "state": "no heartbeat" if state.up else "unknown (ledger down)",
                         "css": "oh-never"})
        else:
            age = now - float(beat.get("last_seen", 0))
            silent = age > SILENT_AFTER
            text = f"silent for {age:.0f}s" if silent else f"{beat.get('state', 'running')} · {age:.0f}s ago"
            rows.append({"service": name, "state": f"{text} · pid {beat.get('pid')}",
                         "css": "oh-silent" if silent else ""})
    return html_table(rows, [("service", "service"), ("state", "state")],
                      row_attrs=lambda row: f'class="oh-service" data-service="{row["service"]}"',
                      cell_class=lambda key, row: row["css"] if key == "state" else "")
