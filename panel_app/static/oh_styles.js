/* An empty stylesheet of a BokehJS view enters its shadow root when it gets rules (docs/dashboard.md, "Empty
   stylesheets").

   Every BokehJS view renders into a shadow root of its own and installs a `<style>` element there for each
   of its stylesheets, among them four or five it fills only when it needs them (`vars`, `style`, `parent`,
   `display`, `position`): half the `<style>` elements of a filled Symbol explorer (384 of 778) were empty,
   each one more sheet in its scope for chromium to insert, process and collect when the scope's styles are
   updated. Here an empty one is installed as a placeholder (an empty comment, which no style engine looks
   at) and takes the placeholder's place once it gets rules, so the order of a root's stylesheets, and so
   the cascade, is the same; a sheet that had rules and is emptied again stays where it is, as before.

   Inlined in the page after Bokeh's and Panel's scripts (panel_app/templates/oh.html), with oh_layout.js.
   It relies on the shape of BokehJS 3.9.2's InlineStyleSheet (core/dom: `install` appends `el`, `_update`
   sets its text, `uninstall` and `remove` take it out): tests/ui/test_dashboard_document.py checks that
   source, and test_dashboard_browser.py that a filled page has no empty `<style>` left in a shadow root. */
(function () {
  "use strict";
  var Bokeh = window.Bokeh;
  if (!Bokeh || !Bokeh.require) return;
  var Sheet = Bokeh.require("core/dom").InlineStyleSheet;
  if (!Sheet) return;
  var proto = Sheet.prototype;
  var install = proto.install, update = proto._update, uninstall = proto.uninstall, remove = proto.remove;
  proto.install = function (target) {
    if (this.el.textContent !== "") {
      if (this._oh_mark) this._oh_mark.remove();
      install.call(this, target);
      return;
    }
    if (!this._oh_mark) this._oh_mark = document.createComment("");
    this.el.remove();
    target.append(this._oh_mark);
  };
  proto._update = function (css) {
    update.call(this, css);
    var mark = this._oh_mark;
    if (css !== "" && mark && mark.parentNode !== null) mark.replaceWith(this.el);
  };
  proto.uninstall = function () {
    if (this._oh_mark) this._oh_mark.remove();
    uninstall.call(this);
  };
  proto.remove = function () {
    if (this._oh_mark) this._oh_mark.remove();
    remove.call(this);
  };
  window.ohStylesWhenFilled = true;
})();
