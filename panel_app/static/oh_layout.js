/* One layout per children update (docs/dashboard.md, "One layout per filled section").

   When a layout's children change (a section's patch replaces its content), BokehJS's and Panel's
   `update_children` render the new children, call `r_after_render()`, whose `_after_render` lays out
   the whole root (`invalidate_layout`: every view's size read back from the DOM, every plot in the
   root laid out and painted, its axes measuring their labels), and then call `invalidate_layout()`
   again at their end: the same root laid out and painted twice in one task, nothing changed between
   the two. Here `_after_render` leaves the layout to that last call while its own view's
   `update_children` runs. A view's first render and every other path are unchanged.

   Inlined in the page after Bokeh's and Panel's scripts (panel_app/templates/oh.html), before the
   document is embedded. It relies on the shape of three functions of Bokeh 3.9.2 and Panel 1.9.4
   (LayoutDOMView._after_render and update_children, Panel's ColumnView.update_children):
   tests/ui/test_dashboard_document.py checks their source, and a browser test that a root is laid out
   once per children update. */
(function () {
  "use strict";
  var Bokeh = window.Bokeh;
  if (!Bokeh || !Bokeh.require || !Bokeh.Models) return;
  var LayoutDOMView = Bokeh.require("models/layouts/layout_dom").LayoutDOMView;
  var after_render = LayoutDOMView.prototype._after_render;
  LayoutDOMView.prototype._after_render = function () {
    if (!this._oh_updating_children) after_render.call(this);
  };
  function layout_once(proto) {
    var update_children = proto.update_children;
    proto.update_children = async function () {
      this._oh_updating_children = true;
      try {
        return await update_children.call(this);
      } finally {
        this._oh_updating_children = false;
      }
    };
  }
  layout_once(LayoutDOMView.prototype);
  var column = Bokeh.Models["panel.models.layout.Column"];
  var view = column && column.prototype.default_view;
  if (view && Object.prototype.hasOwnProperty.call(view.prototype, "update_children")) layout_once(view.prototype);
  window.ohLayoutOnce = true;
})();
