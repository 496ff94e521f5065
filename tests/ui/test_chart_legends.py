"""A legend entry stands for everything drawn for its series: clicking it (click_policy "hide")
hides the series' line and its dots together, never leaving dots behind without their line."""

from __future__ import annotations

from datetime import date

import pandas as pd


def _history() -> pd.DataFrame:
    days = [date(2025, 6, d) for d in (2, 3, 4)]
    return pd.DataFrame({
        "session_date": days * 2,
        "symbol": ["SPY"] * 3 + ["QQQ"] * 3,
        "iv_rank": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
    })


def test_each_metric_history_legend_entry_holds_the_line_and_its_dots() -> None:
    from bokeh.models import GlyphRenderer, Legend  # here, not at the top: only the worker that runs it pays for Bokeh

    from panel_app import charts

    for fig in (charts.metric_history(_history(), "iv_rank"), charts.iv_rank_bands(_history())):
        legend = next(item for item in fig.select(type=Legend))
        assert legend.click_policy == "hide"
        drawn = [r for r in fig.renderers if isinstance(r, GlyphRenderer)]
        entries = {item.label["value"]: item.renderers for item in legend.items}
        assert sorted(entries) == ["QQQ", "SPY"]
        for label, renderers in entries.items():
            kinds = sorted(type(r.glyph).__name__ for r in renderers)
            assert kinds == ["Line", "Scatter"], (label, kinds)
        held = [r for renderers in entries.values() for r in renderers]
        assert sorted(map(id, held)) == sorted(map(id, drawn))  # every glyph drawn is in exactly one entry


def test_a_legend_has_no_more_columns_than_entries() -> None:
    """A legend under a plot starts with as many columns as the browser's width callback gives it on a wide screen
    (never more than its entries), so there it keeps them: a change re-rendered the legend and laid out and painted
    its plot once more on every load (two series, up to four columns: two; six expiries, up to three: three)."""
    from bokeh.models import Legend  # here, not at the top: only the worker that runs it pays for Bokeh

    from panel_app import charts

    two = next(item for item in charts.metric_history(_history(), "iv_rank").select(type=Legend))
    assert len(two.items) == 2 and two.ncols == 2
    rows = [{"expiry": date(2025, 7, d), "strike": k, "iv": 0.2} for d in range(1, 7) for k in (95.0, 100.0)]
    six = next(item for item in charts.iv_smile(pd.DataFrame(rows)).select(type=Legend))
    assert len(six.items) == 6 and six.ncols == 3
