/* A hidden toolbar's buttons built when it is first shown (docs/dashboard.md, "Toolbar buttons when shown").

   Every chart's toolbar hides until the pointer enters its plot (`autohide`: the toolbar is there,
   `visibility: hidden`, nothing to see or focus). BokehJS still builds its buttons as the chart is
   added: a view per tool button, each with its own shadow root, stylesheets, icon and menu, rendered
   and measured (the overflow check reads each button's size) in every layout of the chart. Here a
   toolbar that starts hidden builds its buttons the first time it is shown (BokehJS's `set_visibility`,
   called when the pointer enters the plot), renders them and then shows itself as before. The
   toolbar's room above the plot does not depend on its buttons (BokehJS's ToolbarPanel reserves 30 px),
   the tools themselves (zoom, pan, hover, reset, save) are the plot's and work before any button
   exists, and a toolbar that is not hidden, or whose tools or buttons change, is unchanged.

   Inlined in the page after Bokeh's and Panel's scripts (panel_app/templates/oh.html), with
   oh_layout.js. It relies on the shape of ToolbarView in Bokeh 3.9.2 (lazy_initialize building the
   buttons, render reading `_tool_buttons`, set_visibility): tests/ui/test_dashboard_document.py
   checks that source, and test_dashboard_browser.py that a chart's buttons appear on hover. */
(function () {
  "use strict";
  var Bokeh = window.Bokeh;
  if (!Bokeh || !Bokeh.require) return;
  var ToolbarView = Bokeh.require("models/tools/toolbar").ToolbarView;
  if (!ToolbarView) return;
  var proto = ToolbarView.prototype;
  var lazy_initialize = proto.lazy_initialize;
  var build = proto._build_tool_button_views;
  var set_visibility = proto.set_visibility;
  var UIElementView = Object.getPrototypeOf(proto);
  proto.lazy_initialize = async function () {
    if (!(this.model.autohide && this.model.visible)) return lazy_initialize.call(this);
    await UIElementView.lazy_initialize.call(this);  // what ToolbarView's adds is the buttons: left for later
    this._tool_buttons = [];
    this._oh_unbuilt = true;
  };
  proto._build_tool_button_views = async function () {
    this._oh_unbuilt = false;  // built now (first shown, or its tools or buttons changed)
    return build.call(this);
  };
  proto.set_visibility = function (visible) {
    if (visible && this._oh_unbuilt) {
      this._oh_unbuilt = false;
      var view = this;
      build.call(this).then(function () {
        view.rerender();
        set_visibility.call(view, view._oh_pointer_in !== false);
      });
      this._oh_pointer_in = true;
      return;
    }
    this._oh_pointer_in = visible;
    set_visibility.call(this, visible);
  };
  window.ohToolbarWhenShown = true;
})();
