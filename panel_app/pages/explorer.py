"""Data explorer: schemas, tables, columns, row counts, a preview, and a read-only SQL box.

The SQL box sends the statement to the ledger's query endpoint like any page query; the ledger
refuses anything but one SELECT/EXPLAIN, and the refusal is shown as a clear message.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import panel as pn

from bus.control_client import QueryError
from oh.domain import units
from panel_app.components import Slot, error_text, frame, frame_table, html_pane, side_by_side, sync_url
from panel_app.data import LedgerDown
from panel_app.page import Page
from panel_app.widgets import url_arg

TABLES = """
SELECT schema_name, table_name, column_count, estimated_size FROM duckdb_tables()
ORDER BY schema_name = 'ledger', schema_name, table_name
"""
COLUMNS = """
SELECT column_name, data_type, is_nullable FROM duckdb_columns()
WHERE schema_name = ? AND table_name = ? ORDER BY column_index
"""
RESULT_ROWS = 1000  # rows shown of a free query (it scrolls inside its card; `oh query` gives them all)
DEFAULT_SQL = "SELECT symbol, count(*) AS sessions, min(date) AS first, max(date) AS last\nFROM candles_daily GROUP BY symbol ORDER BY symbol"


def _quoted(qualified: str) -> str:
    schema, _, table = qualified.partition(".")
    return f'"{schema}"."{table}"'


def _literal(text: str) -> str:
    return text.replace("'", "''")


def counts_sql(qualified: list[str]) -> str:
    """One query counting the rows of every table (names come from the catalog, quoted)."""
    parts = [f"SELECT '{_literal(name)}' AS name, count(*) AS rows FROM {_quoted(name)}" for name in qualified]
    return " UNION ALL ".join(parts)


class ExplorerPage(Page):
    """Browse the warehouse and ask it questions, read-only."""

    slug = "explorer"
    title = "Data explorer"
    watch = frozenset()  # any committed event may change a count: see relevant()
    min_interval = 3.0

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        names = [f"{r['schema_name']}.{r['table_name']}" for r in self._catalog()]
        wanted = url_arg("table")
        self.table = pn.widgets.Select(name="Table", options=names or ([wanted] if wanted else []),
                                       value=wanted if wanted in names else (self._default(names)))
        self.sql = pn.widgets.TextAreaInput(name="Read-only SQL (one SELECT, WITH, DESCRIBE, SHOW or EXPLAIN)",
                                            value=url_arg("sql") or DEFAULT_SQL, height=120,
                                            sizing_mode="stretch_width", css_classes=["oh-sql"])
        self.run = pn.widgets.Button(name="Run query", button_type="primary", width=140, css_classes=["oh-run-sql"])
        sync_url(self.table, "table")
        self.control(self.table)
        self.run.on_click(lambda _e: self._run_sql())
        self.tables = Slot("Tables")
        self.columns = Slot("Columns")
        self.preview = Slot("Preview (first 100 rows)")
        self.result = Slot("Result", page_size=RESULT_ROWS)
        self.result.notice("info", "Write a query and press **Run query**. Writes are refused: the dashboard is read-only.")

    @staticmethod
    def _default(names: list[str]) -> str | None:
        return "main.candles_daily" if "main.candles_daily" in names else (names[0] if names else None)

    def _catalog(self) -> list[dict[str, Any]]:
        try:
            return self.read(TABLES).to_pylist()
        except (LedgerDown, QueryError):
            return []

    def controls(self) -> list[Any]:
        return [self.table]

    def layout(self) -> list[Any]:
        box = pn.Column(pn.pane.Markdown("#### SQL", margin=(0, 5)), self.sql, self.run, self.result.panel,
                        sizing_mode="stretch_width")
        return [box, side_by_side(self.tables.panel, self.columns.panel, basis=380), self.preview.panel]

    def relevant(self, event: Any) -> bool:
        return True

    def update(self) -> None:
        catalog = self.read(TABLES).to_pylist()
        names = [f"{r['schema_name']}.{r['table_name']}" for r in catalog]
        if names and list(self.table.options) != names:
            keep = self.table.value if self.table.value in names else self._default(names)
            self.table.options, self.table.value = names, keep
        self.fill(self.tables, lambda: self._fill_tables(catalog, names), "The table list")
        if self.table.value in names:
            self.fill(self.columns, self._fill_columns, "The columns")
            self.fill(self.preview, self._fill_preview, "The preview")

    def _fill_tables(self, catalog: list[dict[str, Any]], names: list[str]) -> None:
        if not names:
            self.tables.notice("empty", "**No tables yet.** Run `oh db init` or `oh up`: the ledger creates them.")
            return
        counts = {r["name"]: r["rows"] for r in self.read(counts_sql(names)).to_pylist()}
        rows = pd.DataFrame([{"schema": r["schema_name"], "table": r["table_name"], "rows": counts.get(name),
                              "columns": r["column_count"]} for r, name in zip(catalog, names, strict=True)])
        self.tables.set_title(f"Tables ({units.plural(len(rows), 'table')})")
        self.tables.table(rows)

    def _fill_columns(self) -> None:
        schema, _, table = self.table.value.partition(".")
        self.columns.set_title(f"Columns of {self.table.value}")
        self.columns.table(frame(self.read(COLUMNS, [schema, table])))

    def _fill_preview(self) -> None:
        self.preview.set_title(f"Preview of {self.table.value} (first 100 rows)")
        rows = frame(self.read(f"SELECT * FROM {_quoted(self.table.value)} LIMIT 100"))
        if rows.empty:
            self.preview.notice("info", f"`{self.table.value}` is empty.")
            return
        self.preview.table(_displayable(rows))

    def _run_sql(self) -> None:
        sql = (self.sql.value or "").strip()
        if not sql:
            self.result.notice("info", "Nothing to run: write a query first.")
            return
        if pn.state.location is not None:
            pn.state.location.update_query(sql=sql)
        try:
            table = self.read(sql)
        except LedgerDown as exc:
            self.result.notice("down", f"**{exc}** Start the services with `oh up`.")
            return
        except QueryError as exc:
            if exc.kind == "refused":
                self.result.notice("refused", f"**Refused: the dashboard is read-only.** {html.escape(str(exc))}")
            else:
                self.result.notice("error", error_text(str(exc), "The query"))
            return
        rows = _displayable(frame(table.slice(0, RESULT_ROWS)))
        self.result.set_title(f"Result: {units.plural(table.num_rows, 'row')}" +
                              (f" (first {units.count(RESULT_ROWS)} shown; `oh query` gives them all)"
                               if table.num_rows > RESULT_ROWS else ""))
        if rows.empty:
            self.result.notice("info", "The query returned no rows.")
            return
        self.result.show(html_pane(frame_table(rows, RESULT_ROWS), css_classes=["oh-result"]))


def _displayable(df: pd.DataFrame) -> pd.DataFrame:
    """Columns a table cell cannot show as they are (lists, bytes, long text) become short strings."""
    out = df.copy()
    for column in out.columns:
        if out[column].dtype == object:
            sample = next((v for v in out[column] if v is not None), None)
            if isinstance(sample, (list, dict, bytes, tuple)) or (isinstance(sample, str) and len(sample) > 200):
                out[column] = out[column].map(lambda v: None if v is None else str(v)[:200])
    return out
