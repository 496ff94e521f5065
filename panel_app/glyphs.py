"""Glyph renderers as the dashboard's charts keep them, built without the models they would drop.

`draw(fig, Line, source, x=..., y=..., color=..., legend_label=...)` is `fig.line(x=..., source=source, ...)`
less what `axes.drop_unused_glyphs` removed from every renderer once built: Bokeh's glyph methods make each
glyph three times (the glyph, a selection-state copy and a muted copy: no chart selects, and legends hide
rather than mute) and give each renderer a CDS view of its own (here the renderers of one source share the
first one's view, whose filter is the session's `AllIndices`). The glyph's visual properties are resolved by
Bokeh's own code (`pop_visuals`: `color` sets the line, fill and hatch colours the way `fig.line(color=...)`
does), and a legend label joins or makes the figure's legend item as Bokeh's `legend_label` does.
"""

from __future__ import annotations

from typing import Any

from bokeh.core.property.vectorization import value
from bokeh.models import AllIndices, CDSView, ColumnDataSource, GlyphRenderer, Legend, LegendItem
from bokeh.models.glyph import Glyph
from bokeh.plotting._renderer import make_glyph, pop_visuals

from panel_app.axes import part

RENDERER_ARGS = ("x_range_name", "y_range_name", "level", "name", "visible")


def draw(fig: Any, glyph_type: type[Glyph], source: ColumnDataSource, *, legend_label: str | None = None,
         **props: Any) -> GlyphRenderer:
    """Add a renderer of `glyph_type` (Line, VBar, ...) drawing `source` to `fig`; `props` as for Bokeh's glyph
    method of that name (fields, values, `color`, `line_width`, `y_range_name`, ...). Returns the renderer."""
    renderer_args = {name: props.pop(name) for name in RENDERER_ARGS if name in props}
    glyph = make_glyph(glyph_type, props, pop_visuals(glyph_type, props))
    view = next((r.view for r in fig.renderers if isinstance(r, GlyphRenderer) and r.data_source is source), None)
    if view is None:
        view = CDSView(filter=part(("filter", "all"), AllIndices))
    renderer = GlyphRenderer(glyph=glyph, data_source=source, view=view, nonselection_glyph=None, muted_glyph=None,
                             **renderer_args)
    fig.renderers.append(renderer)
    if legend_label is not None:
        _legend_item(fig, legend_label, renderer)
    return renderer


def _legend_item(fig: Any, label: str, renderer: GlyphRenderer) -> None:
    """Bokeh's `legend_label`: the renderer joins the item of that label, or a new item of the figure's legend
    (made in the plot's centre, as Bokeh does; `axes.legend_outside` moves it)."""
    legends = [obj for obj in (*fig.above, *fig.below, *fig.left, *fig.right, *fig.center) if isinstance(obj, Legend)]
    if legends:
        legend = legends[0]
    else:
        legend = Legend()
        fig.add_layout(legend)
    text = value(label)
    item = next((item for item in legend.items if item.label == text), None)
    if item is not None:
        item.renderers.append(renderer)
    else:
        legend.items.append(LegendItem(label=text, renderers=[renderer]))
