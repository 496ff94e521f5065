"""Where the checkout and this interpreter's `oh` console script are: the processes tests and benchmarks start."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OH = str(Path(sys.executable).parent / "oh")
