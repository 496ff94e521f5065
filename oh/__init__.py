"""options-helper: the CLI and the pure domain library (calendar, providers, symbols).

Importing this package is cheap on purpose: the CLI starts in well under a second.
"""

__version__ = "0.1.0"
