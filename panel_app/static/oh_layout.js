/* One layout per children update (docs/dashboard.md, "One layout per filled section").

   When a layout's children change (a section's patch replaces its content), BokehJS's and Panel's
   `update_children` render the new children, call `r_after_render()`, whose `_after_render` lays out
   the whole root (`invalidate_layout`: every view's size read back from the DOM, every plot in the
   root laid out and painted, its axes measuring their labels), and then call `invalidate_layout()`
   again at their end: the same root laid out and painted twice in one task, nothing changed between
   the two. Here `_after_render` leaves the layout to that last call while its own view's
   `update_children` runs. And when two sections side by side (one root) change in one patch, each
   one's update lays the root out at its end: while another update under the same root has not
   finished, the root's layout is left to the last one (which lays it out in any case, even if it
   fails). A view's first render and every other path are unchanged.

   Inlined in the page after Bokeh's and Panel's scripts (panel_app/templates/oh.html), before the
   document is embedded. It relies on the shape of three functions of Bokeh 3.9.2 and Panel 1.9.4
   (LayoutDOMView._after_render and update_children, Panel's ColumnView.update_children):
   tests/ui/test_dashboard_document.py checks their source, and test_dashboard_browser.py that a root
   is laid out once per children update. */
(function () {
  "use strict";
  var Bokeh = window.Bokeh;
  if (!Bokeh || !Bokeh.require || !Bokeh.Models) return;
  var LayoutDOMView = Bokeh.require("models/layouts/layout_dom").LayoutDOMView;
  var proto = LayoutDOMView.prototype;
  var after_render = proto._after_render;
  var invalidate_layout = proto.invalidate_layout;
  function layout_root(view) {
    while (view.parent instanceof LayoutDOMView) view = view.parent;
    return view;
  }
  proto._after_render = function () {
    if (!this._oh_updating_children) after_render.call(this);
  };
  proto.invalidate_layout = function () {
    if (!(this.parent instanceof LayoutDOMView)) {
      if (this._oh_updates > 1) {  // another update under this root is still running: it lays the root out
        this._oh_deferred = true;
        return;
      }
      this._oh_deferred = false;
    }
    invalidate_layout.call(this);
  };
  function layout_once(view_proto) {
    var update_children = view_proto.update_children;
    view_proto.update_children = async function () {
      var root = layout_root(this);
      root._oh_updates = (root._oh_updates || 0) + 1;
      this._oh_updating_children = true;
      try {
        return await update_children.call(this);
      } finally {
        this._oh_updating_children = false;
        root._oh_updates -= 1;
        if (root._oh_updates === 0 && root._oh_deferred) root.invalidate_layout();
      }
    };
  }
  layout_once(proto);
  var column = Bokeh.Models["panel.models.layout.Column"];
  var view = column && column.prototype.default_view;
  if (view && Object.prototype.hasOwnProperty.call(view.prototype, "update_children")) layout_once(view.prototype);
  window.ohLayoutOnce = true;
})();
