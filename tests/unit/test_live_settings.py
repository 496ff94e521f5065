"""The Live page's `OH_LIVE_*` settings: a value that is not a whole number (or is below its least) stops the
process that reads it with one line naming the variable, not a ValueError traceback from deep in an import
(panel_app.live_channel, panel_app.live_marks, panel_app.pages.live read them through services.settings.env_int)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devtools.paths import REPO

READERS = [  # (variable, a bad value, the module that reads it)
    ("OH_LIVE_FRAME_MS", "fast", "panel_app.live_channel"),
    ("OH_LIVE_WINDOW", "0", "panel_app.live_channel"),
    ("OH_LIVE_MARK_MS", "2.5", "panel_app.live_marks"),
    ("OH_LIVE_REFRESH_MS", "-1", "panel_app.pages.live"),
]


def _import(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OH_LIVE_")}
    return subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("name", "bad", "module"), READERS)
def test_a_bad_value_names_its_variable(name: str, bad: str, module: str) -> None:
    """Protects: a typo in a Live setting is reported as that setting (`oh ui` stops with one line), not as a bare
    `invalid literal for int()` traceback that names no variable."""
    result = _import(module, {name: bad})
    assert result.returncode != 0
    assert name in result.stderr and repr(bad) in result.stderr
    assert "Traceback" not in result.stderr


def test_good_values_are_taken() -> None:
    """Protects: the values a user sets are the ones used (the cadence and the window, in seconds and frames)."""
    probe = _import("panel_app.live_channel as c; print(c.FRAME_EVERY, c.WINDOW)", {"OH_LIVE_FRAME_MS": "60", "OH_LIVE_WINDOW": "2"})
    assert probe.stdout.split() == ["0.06", "2"], probe.stderr
