/* A legend outside its plot repaints the plot when its size changed, not when it first reports the size the plot
   was laid out with (docs/dashboard.md, "No repaint for a legend's first size").

   BokehJS 3.9 draws a legend in the DOM: a ResizeObserver on its element asks its plot for a repaint whenever
   it reports a size, and a ResizeObserver always reports once when it starts observing. A legend beside or
   under the plot (the dashboard's legends, `legend_outside`) has a side panel in the plot's layout, sized
   from the legend's element when the plot is laid out (its `_get_size`); so that first report usually
   carries the very size the plot was just laid out and painted with, and the plot was painted a second time
   for nothing: 3 of the 7 plot paints of a cold Symbol explorer load. Here the observer skips a report whose
   border box is the size the plot's last layout took from the legend; any other size (a first layout that
   ran before the legend had one, a wrapped legend, new items) repaints as before, and a legend inside the
   plot area (no side panel, no layout size recorded) is unchanged.

   Inlined in the page after Bokeh's and Panel's scripts (panel_app/templates/oh.html), with oh_layout.js.
   It relies on the shape of BokehJS 3.9.2's LegendView (initialize creating `_resize_observer` on `el`,
   `_get_size` from `bbox`, `update_position` measuring `el`): tests/ui/test_dashboard_document.py checks
   that source, and test_dashboard_browser.py the paints of a chart with a legend. */
(function () {
  "use strict";
  var Bokeh = window.Bokeh;
  if (!Bokeh || !Bokeh.require) return;
  var LegendView = Bokeh.require("models/annotations/legend").LegendView;
  if (!LegendView) return;
  var proto = LegendView.prototype;
  var initialize = proto.initialize;
  var get_size = proto._get_size;
  proto._get_size = function () {
    var bbox = this.bbox;
    this._oh_laid_out = {width: bbox.width, height: bbox.height};  // the size the plot's layout takes
    return get_size.call(this);
  };
  proto.initialize = function () {
    initialize.call(this);
    var view = this;
    this._resize_observer.disconnect();
    this._resize_observer = new ResizeObserver(function (entries) {
      var laid = view._oh_laid_out;
      var box = entries[entries.length - 1].borderBoxSize[0];
      if (laid && Math.abs(laid.width - box.inlineSize) < 0.01 && Math.abs(laid.height - box.blockSize) < 0.01) return;
      view.request_layout();
    });
    this._resize_observer.observe(this.el, {box: "border-box"});
  };
  window.ohLegendSized = true;
})();
