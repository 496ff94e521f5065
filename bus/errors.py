"""The error a home, its bus address or its CURVE keys raise when they are unusable or unsafe.

Its own module so the modules that read the bus configuration (bus/network.py) and the keys
(bus/curve.py) can raise it without importing bus/home.py, which uses them: no import circle.
"""

from __future__ import annotations


class HomeError(ValueError):
    """A directory of the home, its bus address or its keys are unusable or unsafe; the message says which and what to do."""
