"""Importing our modules reads no `OH_*` setting: each is read when it is used.

What it protects: the suite's fork server (devtools/forkserver.py) imports the `oh` CLI, every service and what they
import once, then forks each `oh` command and service from that; a setting read at import would be the server's
value in every child, whatever the child's own environment says (a test's `OH_SEGMENT_BYTES`, `OH_ABANDON_SECONDS`),
and a user's process started the same way would ignore its environment. The imports run in a fresh interpreter
whose `os.environ` records every key asked for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devtools.forkserver import OWN_PRELOAD
from devtools.paths import REPO

RECORDER = """
import importlib, json, os, sys

class Recording(os._Environ):
    asked = set()
    def __getitem__(self, key):
        Recording.asked.add(key)
        return super().__getitem__(key)
    def get(self, key, default=None):
        Recording.asked.add(key)
        return super().get(key, default)
    def __contains__(self, key):
        Recording.asked.add(key)
        return super().__contains__(key)

env = os.environ
os.environ = Recording(env._data, env.encodekey, env.decodekey, env.encodevalue, env.decodevalue)
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(key for key in Recording.asked if key.startswith("OH_"))))
"""


def _settings_read_importing(modules: tuple[str, ...]) -> list[str]:
    """The `OH_*` keys looked up while importing `modules`, in an environment without any (so a copy of the whole
    environment, as `subprocess` makes one, looks none up; a read of an unset setting still does)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OH_")}
    done = subprocess.run([sys.executable, "-c", RECORDER, *modules], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_and_every_service_reads_no_setting() -> None:
    """The fork server's own preload: nothing of it reads an `OH_*` variable while importing."""
    assert _settings_read_importing(OWN_PRELOAD) == []


def test_the_recorder_sees_a_setting_read_at_import(tmp_path: Path) -> None:
    """The check itself: a module that reads a setting at import is caught (else the tests above could not fail)."""
    (tmp_path / "reads_at_import.py").write_text('import os\nLIMIT = int(os.environ.get("OH_PROBE_LIMIT", "1"))\n')
    done = subprocess.run([sys.executable, "-c", RECORDER, "reads_at_import"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=True, env={"PYTHONPATH": str(tmp_path)})
    assert json.loads(done.stdout.splitlines()[-1]) == ["OH_PROBE_LIMIT"]
