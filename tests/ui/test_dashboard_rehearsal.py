"""The rehearsal of a page's first fill (panel_app/page.py), without a browser: while it runs nothing on the page
changes (no pane, no heading, no widget event, no page attribute), its charts are built and kept, and the real
fill shows those very figures when their data is unchanged, and builds anew when it changed in between."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pandas as pd
import panel as pn

from panel_app import charts
from panel_app.components import Slot
from panel_app.page import Page, _Rehearsal

OI = pd.DataFrame({"strike": [100.0, 100.0, 105.0, 105.0], "put_call": ["C", "P", "C", "P"],
                   "open_interest": [10, 20, 30, 40]})


class FakeDoc:
    """Collects next-tick callbacks instead of running them (the test turns the event loop by hand)."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []

    def add_next_tick_callback(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def turn(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()


class ChartPage(Page):
    """A page with a picker its fill sets, a heading it changes, an attribute it remembers and a chart."""

    slug = "test"
    rehearse = True

    def __init__(self, data: dict[str, pd.DataFrame]) -> None:
        super().__init__(SimpleNamespace(queries=SimpleNamespace(read=None, is_down=False)))  # type: ignore[arg-type]
        self.data = data
        self.picker = pn.widgets.Select(label="Expiry", options=[])
        self.user_changes: list[Any] = []
        self.picker.param.watch(lambda event: self.user_changes.append(event.new), "value")
        self.slot = Slot("Open interest")
        self.last_text: str | None = None
        self.built: list[pd.DataFrame] = []  # mutated in place: a rehearsal puts back attributes, not contents

    def controls(self) -> list[Any]:
        return [self.picker]

    def update(self) -> None:
        if not self.picker.options:
            self.picker.options = ["2026-12-24", "2027-01-15"]
            self.picker.value = "2026-12-24"
        self.fill(self.slot, self._fill_chart)

    def _fill_chart(self) -> None:
        self.last_text = f"expiry {self.picker.value}"
        self.slot.set_title(f"Open interest, expiry {self.picker.value}")
        self.slot.chart(self.data["oi"], self._build, key=self.picker.value)

    def _build(self, data: pd.DataFrame) -> Any:
        self.built.append(data)
        return charts.oi_by_strike(data)


def rehearse(page: ChartPage) -> FakeDoc:
    doc = FakeDoc()
    page.doc = doc  # type: ignore[assignment]
    page._rehearsal = _Rehearsal(page)
    doc.add_next_tick_callback(page._rehearse)
    while doc.callbacks:  # update(), then one section per turn
        doc.turn()
    page.doc = None  # the real fill below runs outside a session: synchronously
    return doc


def test_a_rehearsal_changes_nothing_on_the_page_and_the_real_fill_shows_its_charts() -> None:
    """During the rehearsal the chart is built once, but no pane, heading, widget value, widget event or page
    attribute changes; the real fill then sets the picker (its events now reach the browser), shows the heading
    and the very figure the rehearsal built, without building it again."""
    page = ChartPage({"oi": OI})
    rehearse(page)
    assert len(page.built) == 1
    assert page.slot.box.objects == [] and "Open interest, expiry" not in page.slot.title.object
    assert page.picker.options == [] and page.picker.value is None and page.user_changes == []
    assert page.last_text is None and page._rehearsal is None
    rehearsed = page.slot._rehearsed[2]  # type: ignore[index]
    page.first_fill()
    assert len(page.built) == 1
    assert page.slot.box.objects[0].object is rehearsed
    assert page.picker.options == ["2026-12-24", "2027-01-15"] and page.user_changes == ["2026-12-24"]
    assert page.last_text == "expiry 2026-12-24" and "expiry 2026-12-24" in page.slot.title.object


def test_a_chart_whose_data_changed_after_the_rehearsal_is_built_again() -> None:
    """A committed event between the rehearsal and the real fill (new open interest): the real fill shows the
    new data, never the rehearsed figure."""
    page = ChartPage({"oi": OI})
    rehearse(page)
    rehearsed = page.slot._rehearsed[2]  # type: ignore[index]
    page.data["oi"] = OI.assign(open_interest=[11, 21, 31, 41])
    page.first_fill()
    assert len(page.built) == 2
    shown = page.slot.box.objects[0].object
    assert shown is not rehearsed
    assert sorted(y for r in shown.renderers for y in r.data_source.data["y"]) == [11, 21, 31, 41]


def test_a_fill_that_starts_during_the_rehearsal_ends_it_first() -> None:
    """The browser's "loaded" (or a live refresh) arriving mid-rehearsal: the widgets are put back as the browser
    has them before update() reads them, so the real fill sets and sends them; the rest of the rehearsal is
    dropped."""
    page = ChartPage({"oi": OI})
    doc = FakeDoc()
    page.doc = doc  # type: ignore[assignment]
    page._rehearsal = _Rehearsal(page)
    doc.add_next_tick_callback(page._rehearse)
    doc.turn()  # update() ran: the picker was set without events, the chart is still queued
    assert page.picker.value == "2026-12-24" and page.user_changes == []
    page.doc = None
    page.first_fill()
    assert page.user_changes == ["2026-12-24"] and page.slot.box.objects
    doc.turn()  # the queued rehearsal turn finds the rehearsal over and does nothing
    assert len(page.built) == 1 and not doc.callbacks


def test_a_failed_query_stops_the_rehearsal_quietly() -> None:
    """A section that raises while rehearsed (the ledger down, a bad query) ends the rehearsal without a trace on
    the page; the real fill reports it in its section as always."""
    page = ChartPage({})
    rehearse(page)
    assert page.slot.box.objects == [] and page._rehearsal is None
    page.first_fill()
    assert "could not be loaded" in page.slot.box.objects[0].object
