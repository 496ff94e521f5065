"""Widget helpers shared by pages: values from the URL, symbol pickers filled from the warehouse."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import panel as pn
import pyarrow as pa

from panel_app.data import LedgerDown, QueryError


def url_arg(name: str) -> str | None:
    """The first `?name=` value of the session's URL (None outside a server session or when absent)."""
    args = pn.state.session_args or {}
    values = args.get(name)
    if not values:
        return None
    value = values[0]
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def url_list(name: str) -> list[str]:
    """A list-valued URL parameter (`["A", "B"]` as Panel writes it, or `A,B`)."""
    raw = url_arg(name)
    if not raw:
        return []
    import json

    try:
        value = json.loads(raw)
        if isinstance(value, list):
            return [str(v) for v in value]
    except ValueError:
        pass
    return [part for part in raw.split(",") if part]


def options_of(read: Callable[[str, list[Any] | None], pa.Table], sql: str, params: list[Any] | None = None) -> list[Any]:
    """The first column of a query, or [] when the ledger is down or the query fails (the page says why)."""
    try:
        table = read(sql, params)
    except (LedgerDown, QueryError):
        return []
    return table.column(0).to_pylist()


def symbol_select(read: Callable[[str, list[Any] | None], pa.Table], sql: str, wanted: str | None,
                  name: str = "Symbol") -> pn.widgets.Select:
    """A symbol picker over the stored symbols; a symbol named in the URL is kept even if unknown yet."""
    options = [str(s) for s in options_of(read, sql)]
    if wanted and wanted not in options:
        options.append(wanted)
    value = wanted if wanted else (options[0] if options else None)
    return pn.widgets.Select(name=name, options=options, value=value)


def date_picker(name: str, wanted: str | None) -> pn.widgets.DatePicker:
    """A date picker starting at the URL's date (empty means the page's default range)."""
    value = None
    if wanted:
        try:
            value = date.fromisoformat(wanted.strip('"'))
        except ValueError:
            value = None
    return pn.widgets.DatePicker(name=name, value=value)
