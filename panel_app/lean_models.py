"""Bokeh models built without the default models their constructor's arguments replace.

Bokeh (3.9) sets each property given to a model's constructor through the property's descriptor, whose
setter first reads the property's current value to compare it with the new one. Before the constructor
has set anything that read is the property's default, and where the default is a model of its own (an
`InstanceDefault`: an axis's ticker, tick formatter and label policy, a renderer's CDS view and its filter,
a plot's ranges, scales and toolbar, a source's selection and policy) it builds that model, with its own
defaults recursively (a date axis's default ticker is 13 models), only to replace it at once with the
model given. A dashboard chart hands its parts to the constructors (panel_app/axes.py, charts.py), so
about half the models a chart made were such throwaways, each costing the server's one event loop its
property defaults and validation.

`install()` replaces `HasProps.__init__` with Bokeh's own steps but one: a property given to the
constructor whose class default is an `InstanceDefault` is set without building the default first (no
model equals a fresh default model, so Bokeh's "unchanged, keep the default" case cannot arise for it).
Every other property, and every later assignment, goes through Bokeh's code unchanged. A model built
either way has the same properties and serializes the same (`tests/ui/test_dashboard_parts.py` builds
the charts both ways and compares their documents' JSON, ids aside); `BOKEH_INIT` is the source's hash of
the constructor this replaces, so a Bokeh upgrade that changes it fails that test instead of passing
silently.
"""

from __future__ import annotations

import hashlib
import inspect
from types import FunctionType
from typing import Any

from bokeh.core.has_props import HasProps
from bokeh.core.property.instance import InstanceDefault
from bokeh.core.property.singletons import Intrinsic, Undefined

ORIGINAL_INIT = HasProps.__init__
# sha256 of inspect.getsource(HasProps.__init__) in Bokeh 3.9.2, the constructor `_init` reproduces
BOKEH_INIT = "8184f3bb"
_BUILDS_A_MODEL: dict[tuple[type, str], bool] = {}
_UNSET = object()  # the "old value" of a property the constructor sets before any default was built


def source_hash() -> str:
    """The first 8 hex digits of the sha256 of Bokeh's own `HasProps.__init__` source."""
    return hashlib.sha256(inspect.getsource(ORIGINAL_INIT).encode()).hexdigest()[:8]


def _default_is_a_model(obj: HasProps, name: str) -> bool:
    key = (type(obj), name)
    known = _BUILDS_A_MODEL.get(key)
    if known is None:
        descriptor = obj.lookup(name, raises=False)
        if descriptor is None:  # an alias or a non-property attribute: Bokeh's path
            known = False
        else:
            default = type(obj)._overridden_defaults().get(name, descriptor.property._default)
            if isinstance(default, InstanceDefault):
                known = True
            elif isinstance(default, FunctionType):
                # a function may build a model (a date formatter's context, a box's edges) or a plain value that a
                # given value can equal: it is called once per class and property to tell (False meanwhile: the
                # models it builds may ask about the same property)
                _BUILDS_A_MODEL[key] = False
                known = isinstance(default(), HasProps)
            else:
                known = False
        _BUILDS_A_MODEL[key] = known
    return known


def _init(self: HasProps, **properties: Any) -> None:
    """Bokeh's HasProps.__init__, but a given property whose default is a model does not build it first."""
    super(HasProps, self).__init__()
    self._property_values = {}
    self._unstable_default_values = unset = {}
    self._unstable_themed_values = {}
    themed = self.themed_values() is not None
    for name, value in properties.items():
        if value is Undefined or value is Intrinsic:
            continue
        if not themed and _default_is_a_model(self, name):
            # the setter's read of the old value finds this instead of building the default; setting the
            # value removes it (it never equals a value, so the value is always set)
            unset[name] = _UNSET
        setattr(self, name, value)
        if unset.get(name) is _UNSET:  # a setter that did not set (none does today): leave no trace
            del unset[name]
    initialized = set(properties.keys())
    for name in self.properties(_with_props=True):  # as Bokeh: build the defaults of what was not given
        if name in initialized:
            continue
        descriptor = self.lookup(name)
        if descriptor.has_unstable_default(self):
            descriptor._get(self)
    self._initialized = True


def install() -> None:
    """Build every Bokeh model of this process without the throwaway defaults (idempotent)."""
    HasProps.__init__ = _init  # type: ignore[method-assign]


def uninstall() -> None:
    """Bokeh's own constructor again (tests compare the two)."""
    HasProps.__init__ = ORIGINAL_INIT  # type: ignore[method-assign]
