"""How a page's template goes into its session's Bokeh document, without a browser: Bokeh recomputes
the document's set of models (a walk over every property of every model) each time its graph changes
outside a freeze, so the template's roots (banner, title, sections, sidebar items: about 20) are added
under one freeze (`panel_app/components.OhTemplate.server_doc`)."""

from __future__ import annotations

from typing import Any

import panel as pn
from bokeh.document import Document

from panel_app.components import Slot, html_pane, shell


def _counting_recomputes(doc: Document) -> list[int]:
    calls = [0]
    recompute = doc.models.recompute

    def counted() -> None:
        calls[0] += 1
        recompute()

    doc.models.recompute = counted  # type: ignore[method-assign]
    return calls


def test_the_template_joins_its_document_with_one_recompute_of_its_models() -> None:
    """A page's ~20 roots cost one walk of the document's model graph, not one per root (each of a growing
    graph); and every root and model is still in the document afterwards."""
    slots = [Slot(f"Section {i}", min_height=100) for i in range(6)]
    template = shell("symbol", "Symbol explorer", [pn.Column(), *(s.panel for s in slots)],
                     [pn.widgets.Select(options=["SPY", "QQQ"])], html_pane(""), html_pane(""))
    doc = Document()
    calls = _counting_recomputes(doc)
    template.server_doc(doc)
    assert calls[0] == 1
    roots: list[Any] = list(doc.roots)
    assert len(roots) >= 10
    for root in roots:
        for model in root.references():
            assert doc.get_model_by_id(model.id) is model
