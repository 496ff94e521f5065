"""Bokeh's property machinery without the work the dashboard's models throw away: defaults built to be replaced,
and plain defaults worked out again on every read.

Bokeh (3.9) sets each property given to a model's constructor through the property's descriptor, whose
setter first reads the property's current value to compare it with the new one. Before the constructor
has set anything that read is the property's default, and where the default is a model of its own (an
`InstanceDefault` or a function that builds one: an axis's ticker, tick formatter and label policy, a
renderer's CDS view and its filter, a plot's ranges, scales and toolbar, a date formatter's context, a box's
edges) it builds that model, with its own defaults recursively (a date axis's default ticker is 13 models),
only to replace it at once with the model given. A dashboard chart hands its parts to the constructors
(panel_app/axes.py, glyphs.py), so about half the models a chart made were such throwaways.

And each read of a property left at its default works the default out again: the class's overridden
defaults (a walk of its MRO) and the property's validation of the value. Every walk of a model graph
(Bokeh's document recomputes its models after each change, each chart is walked once before it is sent,
each section's patch is serialized) reads every property that can hold a model, most of them at their
default (None): 28% of `oh ui`'s busy time over cold Symbol explorer loads was `_get_default`.

`install()` replaces two of Bokeh's functions with its own steps but one each: `HasProps.__init__` sets a
given property whose default is a model without building the default first (no model equals a fresh
default model, so Bokeh's "unchanged, keep the default" case cannot arise for it), and
`PropertyDescriptor.instance_default` keeps a default that is None, a string, a number or a bool per class
and property once worked out (immutable: the same value Bokeh would return; a theme's value still wins).
Every other property, and every assignment after construction, goes through Bokeh's code unchanged. A model
built either way has the same properties and serializes the same (`tests/ui/test_dashboard_parts.py` builds
the charts both ways and compares their documents' JSON, ids aside); `BOKEH_SOURCES` are the hashes of the
two functions' source in the Bokeh this was written for, so an upgrade that changes them fails that test
instead of passing silently.
"""

from __future__ import annotations

import hashlib
import inspect
from types import FunctionType
from typing import Any

from bokeh.core.has_props import HasProps
from bokeh.core.property.descriptors import PropertyDescriptor
from bokeh.core.property.instance import InstanceDefault
from bokeh.core.property.singletons import Intrinsic, Undefined

ORIGINAL_INIT = HasProps.__init__
ORIGINAL_DEFAULT = PropertyDescriptor.instance_default
ORIGINAL_GET_DEFAULT = PropertyDescriptor._get_default
# sha256 of inspect.getsource of the three Bokeh 3.9.2 functions replaced here (what `_init`, `_default` and
# `_get_default` reproduce or shortcut)
BOKEH_SOURCES = "8184f3bb 25b04bb5 6173b5a3"
_BUILDS_A_MODEL: dict[tuple[type, str], bool] = {}
_UNSET = object()  # the "old value" of a property the constructor sets before any default was built
_PLAIN = (type(None), str, int, float, bool)  # immutable: one copy can be every instance's default
_DEFAULTS: dict[tuple[type, str], Any] = {}


def source_hash() -> str:
    """The first 8 hex digits of the sha256 of each of Bokeh's own functions replaced here."""
    return " ".join(hashlib.sha256(inspect.getsource(f).encode()).hexdigest()[:8]
                    for f in (ORIGINAL_INIT, ORIGINAL_DEFAULT, ORIGINAL_GET_DEFAULT))


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


def _default(self: PropertyDescriptor[Any], obj: HasProps) -> Any:
    """Bokeh's PropertyDescriptor.instance_default, but a plain immutable default (None, a string, a number) is
    worked out once per class and property, not on every read of a property left at it."""
    themed = obj.themed_values()
    if themed is not None and self.name in themed:
        return self.property.themed_default(obj.__class__, self.name, themed)
    key = (obj.__class__, self.name)
    found = _DEFAULTS.get(key, _UNSET)
    if found is not _UNSET:
        return found
    default = self.property.themed_default(obj.__class__, self.name, themed)
    if type(default) in _PLAIN and not self.has_unstable_default(obj):
        _DEFAULTS[key] = default
    return default


def _get_default(self: PropertyDescriptor[Any], obj: HasProps) -> Any:
    """Bokeh's PropertyDescriptor._get_default with a first step: a plain default already in the table is the
    value (Bokeh would work it out again, find it stable and return it: such a default is never kept per
    instance), unless a theme sets the property."""
    found = _DEFAULTS.get((obj.__class__, self.name), _UNSET)
    if found is not _UNSET:
        themed = obj.themed_values()
        if themed is None or self.name not in themed:
            return found
    return ORIGINAL_GET_DEFAULT(self, obj)


def install() -> None:
    """Build every Bokeh model of this process without the throwaway defaults, and read plain defaults from the
    per-class table (idempotent)."""
    HasProps.__init__ = _init  # type: ignore[method-assign]
    PropertyDescriptor.instance_default = _default  # type: ignore[method-assign]
    PropertyDescriptor._get_default = _get_default  # type: ignore[method-assign]


def uninstall() -> None:
    """Bokeh's own constructor and defaults again (tests compare the two)."""
    HasProps.__init__ = ORIGINAL_INIT  # type: ignore[method-assign]
    PropertyDescriptor.instance_default = ORIGINAL_DEFAULT  # type: ignore[method-assign]
    PropertyDescriptor._get_default = ORIGINAL_GET_DEFAULT  # type: ignore[method-assign]
