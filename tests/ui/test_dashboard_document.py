"""How a page's template goes into its session's Bokeh document, without a browser: Bokeh recomputes
the document's set of models (a walk over every property of every model) each time its graph changes
outside a freeze, so the template's roots (banner, title, sections, sidebar items: about 20) are added
under one freeze (`panel_app/components.OhTemplate.server_doc`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.lazy import lazy

if TYPE_CHECKING:
    from bokeh.document import Document

# Panel, Bokeh and the dashboard's modules are imported in the tests, not at the top: only the worker that runs
# them pays for Panel (tests/lazy.py says why).
pn = lazy("panel")
components = lazy("panel_app.components")


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
    from bokeh.document import Document

    slots = [components.Slot(f"Section {i}", min_height=100) for i in range(6)]
    template = components.shell("symbol", "Symbol explorer", [pn.Column(), *(s.panel for s in slots)],
                                [pn.widgets.Select(options=["SPY", "QQQ"])], components.html_pane(""),
                                components.html_pane(""))
    doc = Document()
    calls = _counting_recomputes(doc)
    template.server_doc(doc)
    assert calls[0] == 1
    roots: list[Any] = list(doc.roots)
    assert len(roots) >= 10
    for root in roots:
        for model in root.references():
            assert doc.get_model_by_id(model.id) is model


def _stylesheet_urls(doc: Document) -> set[str]:
    urls = set()
    for model in doc.models:
        for sheet in getattr(model, "stylesheets", None) or []:
            url = getattr(sheet, "url", None)
            if url:
                urls.add(url)
    return urls


def test_bootstrap_is_the_pages_stylesheet_not_every_components() -> None:
    """Bootstrap's 220 KB stylesheet styles the page's frame (header, sidebar) from the page's head; the
    components' shadow DOMs do not link it again (Panel's Bootstrap design adds it to each root's shadow DOM;
    and to every component rendered after it; `OhDesign` leaves it out), while they keep Panel's Bootstrap theme and the dashboard's own stylesheet."""
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    slots = [components.Slot(f"Section {i}") for i in range(3)]
    template = components.shell("health", "Health", [pn.Column(), *(s.panel for s in slots)],
                                [pn.widgets.Select(options=["SPY", "QQQ"])], components.html_pane(""),
                                components.html_pane(""))
    doc = Document()
    template.server_doc(doc)
    with set_curdoc(doc):  # sections filled after the page was built: their panes are rendered then
        slots[0].html("<b>filled</b>")
        slots[1].notice("info", "filled")
        slots[2].show(pn.widgets.Select(options=["a", "b"]))
    urls = _stylesheet_urls(doc)
    assert not [u for u in urls if "bootstrap.min.css" in u]
    assert [u for u in urls if u.endswith("theme/bootstrap.css") or "theme/bootstrap.css?" in u]
    assert [u for u in urls if "oh.css" in u]
    head = doc._template_variables["template_resources"]["css"]
    assert [u for u in head.values() if "bootstrap5/css/bootstrap.min.css" in u]


def test_the_favicon_is_a_versioned_static_file() -> None:
    """The page's icon comes from a URL with `?v=` (sent with a ten-year max-age, so a second visit asks for
    nothing), not Bokeh's /favicon.ico (sent without caching headers: fetched again on every page load)."""
    from bokeh.document import Document

    template = components.shell("explorer", "Data explorer", [pn.Column()], [], components.html_pane(""),
                                components.html_pane(""))
    doc = Document()
    template.server_doc(doc)
    favicon = doc._template_variables["app_favicon"]
    assert favicon.startswith("static/") and "?v=" in favicon, favicon


def _esm_probe() -> Any:
    """An ES-module component (a class made here, not at import: Panel's state notes every one made)."""
    from panel.custom import JSComponent

    class EsmProbe(JSComponent):
        _esm = "export function render({ model }) { return document.createElement('div') }"

    return EsmProbe()


def _page_scripts(objects: list[Any]) -> list[str]:
    """The script URLs Panel links in the page of a session document holding `objects`."""
    from bokeh.document import Document
    from bokeh.resources import Resources as BokehResources
    from panel.io.resources import Resources, bundle_resources
    from panel.io.state import set_curdoc

    from panel_app.server import esm_where_used

    doc = Document()
    with set_curdoc(doc):
        pn.Column(*objects).server_doc(doc)
        esm_where_used(doc)
        bundle = bundle_resources(doc.roots, Resources.from_bokeh(BokehResources(mode="server")))
    return [str(url) for url in bundle.js_files]


def test_the_es_module_shim_is_linked_only_on_pages_with_an_es_module_component() -> None:
    """The ES-module shim (38 KB, parsed and run on every cold load) goes only to a page whose document holds an
    ES-module component (the Live page's JSComponents load through it); once any page imported one, Panel linked
    it on every page. The other scripts stay the same."""
    plain = _page_scripts([components.html_pane("a table")])
    with_esm = _page_scripts([components.html_pane("a table"), _esm_probe()])
    assert not [url for url in plain if "es-module-shims" in url], plain
    assert [url for url in with_esm if "es-module-shims" in url], with_esm
    assert [url for url in with_esm if "es-module-shims" not in url] == plain


# The code of BokehJS 3.9.2 and Panel 1.9.4 that panel_app/static/oh_layout.js relies on: a layout root's
# `_after_render` lays it out, and `update_children` (Bokeh's LayoutDOMView's, Panel's ColumnView's) renders the
# new children, calls `r_after_render()` (so that first layout) and then lays the root out again at its end.
AFTER_RENDER = """        _after_render() {
            // XXX no super
            if (!this.is_managed) {
                this.invalidate_layout();
            }
        }"""
UPDATE_CHILDREN_END = """            this.r_after_render();
            this._update_children();
            this.invalidate_layout();
        }"""


def _script(package: Any, *parts: str) -> str:
    from pathlib import Path

    return Path(package.__file__).parent.joinpath(*parts).read_text(encoding="utf-8")


def test_the_layout_script_relies_on_what_bokeh_and_panel_do() -> None:
    """The page's script that lays a root out once per children update (two layouts and paints of every plot in
    it before) rests on three functions of Bokeh's and Panel's scripts: an upgrade that changes them fails here,
    so the script is looked at again (its browser test, test_dashboard_browser, checks the one layout)."""
    import bokeh  # here, not at the top: only the worker that runs it pays for Bokeh and Panel
    import panel

    from panel_app.components import LAYOUT_JS

    bokeh_js = _script(bokeh, "server", "static", "js", "bokeh.js")
    layout_dom = bokeh_js[bokeh_js.index("class LayoutDOMView extends"):]
    layout_dom = layout_dom[:layout_dom.index("\n    class ")]
    assert AFTER_RENDER in layout_dom
    assert "async update_children() {" in layout_dom and UPDATE_CHILDREN_END in layout_dom
    panel_js = _script(panel, "dist", "panel.js")
    column = panel_js[panel_js.index("class ColumnView extends column_1.ColumnView"):]
    column = column[:column.index("\n    class ")]
    update = column[column.index("async update_children() {"):]
    assert update.index(UPDATE_CHILDREN_END) < update.index("\n        }\n")
    assert "update_children" in LAYOUT_JS and "_after_render" in LAYOUT_JS


# The code of BokehJS 3.9.2 that panel_app/static/oh_toolbar.js relies on: a toolbar builds its buttons in
# `lazy_initialize` (after its super's), renders what `_build_tool_button_views` left in `_tool_buttons`, is shown
# by `set_visibility` (the plot's pointer enter and leave) when it autohides, and its panel's room above the plot
# does not depend on its buttons.
TOOLBAR_PARTS = (
    """        async lazy_initialize() {
            await super.lazy_initialize();
            await this._build_tool_button_views();
        }""",
    """        set_visibility(visible) {
            if (visible != this._visible) {
                this._visible = visible;
                this._on_visible_change();
            }
        }""",
    "            for (const [, button_view] of this._tool_button_views) {",
    "            const bars = this._tool_buttons.map((group) => {",
    "return !this.model.visible ? false : (!this.model.autohide || (this._visible ?? false));",
    "    class ToolbarView extends ui_element_1.UIElementView {",
)
TOOLBAR_PANEL_PARTS = ("this.toolbar_view.set_visibility(true);", "this.toolbar_view.set_visibility(false);",
                       "                height: 30,\n")


def _class_source(source: str, head: str) -> str:
    body = source[source.index(head):]
    return body[:body.index("\n    class ")]


def test_the_toolbar_script_relies_on_what_bokeh_does() -> None:
    """The page's script that builds a hidden toolbar's buttons when it is first shown rests on BokehJS's
    ToolbarView and ToolbarPanelView: an upgrade that changes them fails here, so the script is looked at again
    (test_dashboard_browser checks that the buttons appear on hover)."""
    import bokeh

    from panel_app.components import TOOLBAR_JS

    bokeh_js = _script(bokeh, "server", "static", "js", "bokeh.js")
    toolbar = _class_source(bokeh_js, "class ToolbarView extends")
    assert all(part in bokeh_js for part in TOOLBAR_PARTS[-1:])
    assert all(part in toolbar for part in TOOLBAR_PARTS[:-1]), [p for p in TOOLBAR_PARTS if p not in toolbar]
    panel = _class_source(bokeh_js, "class ToolbarPanelView extends")
    assert all(part in panel for part in TOOLBAR_PANEL_PARTS), [p for p in TOOLBAR_PANEL_PARTS if p not in panel]
    assert 'Bokeh.require("models/tools/toolbar")' in TOOLBAR_JS and "set_visibility" in TOOLBAR_JS


# The code of BokehJS 3.9.2 that panel_app/static/oh_styles.js relies on: a view's InlineStyleSheet (core/dom) is
# installed by appending its `<style>` element, filled by `_update` (every replace, append, prepend and clear goes
# through it), and taken out by `uninstall` and `remove`.
STYLE_SHEET = """    class StyleSheet {
        install(el) {
            el.append(this.el);
        }
        uninstall() {
            this.el.remove();
        }
    }"""
INLINE_STYLE_SHEET_PARTS = (
    "            this.el = (0, exports.style)();",
    """        _update(css) {
            this.el.textContent = css;
        }""",
    "            this._update(this._to_css(css, styles));",
    """        remove() {
            this.el.remove();
        }""",
)


def test_the_styles_script_relies_on_what_bokeh_does() -> None:
    """The page's script that keeps a view's empty stylesheets out of its shadow root until they get rules rests on
    BokehJS's InlineStyleSheet: an upgrade that changes it fails here, so the script is looked at again
    (test_dashboard_browser checks that a filled page has no empty `<style>` in a shadow root)."""
    import bokeh

    from panel_app.components import PAGE_JS, STYLES_JS

    bokeh_js = _script(bokeh, "server", "static", "js", "bokeh.js")
    dom = bokeh_js[bokeh_js.index("/* core/dom.js */"):]
    dom = dom[:dom.index("\n/* ", 10)]
    assert STYLE_SHEET in dom
    inline = _class_source(dom, "class InlineStyleSheet extends StyleSheet {")
    assert all(part in inline for part in INLINE_STYLE_SHEET_PARTS), [p for p in INLINE_STYLE_SHEET_PARTS if p not in inline]
    assert inline.count("this._update(") == 5  # the constructor (twice), replace, prepend, append: no other writer
    assert 'Bokeh.require("core/dom").InlineStyleSheet' in STYLES_JS and STYLES_JS in PAGE_JS


# The code of BokehJS 3.9.2 that panel_app/static/oh_legend.js relies on: a legend's ResizeObserver on its element
# asks for a repaint on every report (the first too), a legend with a side panel gives the plot's layout its size
# from `bbox`, and `bbox` is its element's box.
LEGEND_PARTS = (
    """            this._resize_observer = new ResizeObserver((_entries) => this.request_layout());
            this._resize_observer.observe(this.el, { box: "border-box" });""",
    """        _get_size() {
            const { width, height } = this.bbox;""",
    "                this.layout = new side_panel_1.SideLayout(panel, () => this.get_size());",
    "            const legend_bbox = (0, dom_1.bounding_box)(this.el);",
)


def test_the_legend_script_relies_on_what_bokeh_does() -> None:
    """The page's script that spares a plot the repaint for its legend's first report of an unchanged size rests on
    BokehJS's LegendView: an upgrade that changes it fails here, so the script is looked at again
    (test_dashboard_browser checks that each Symbol explorer chart is painted once)."""
    import bokeh

    from panel_app.components import LEGEND_JS, PAGE_JS

    legend = _class_source(_script(bokeh, "server", "static", "js", "bokeh.js"), "class LegendView extends")
    assert all(part in legend for part in LEGEND_PARTS), [p for p in LEGEND_PARTS if p not in legend]
    assert 'Bokeh.require("models/annotations/legend")' in LEGEND_JS and LEGEND_JS in PAGE_JS
