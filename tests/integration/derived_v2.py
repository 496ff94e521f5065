"""The derived worker after a change of logic, for the replay backfill test: the next formula version, whose
expected move is quoted as the full straddle over spot times 2 (any visible change would do)."""

from __future__ import annotations

from typing import Any

from oh.domain import derived
from services import derived as worker
from services.runtime import main

_original = derived.derived_row
NEXT = derived.FORMULA_VERSION + 1


def derived_row_v2(*args: Any, **kwargs: Any) -> dict[str, Any]:
    row = _original(*args, **kwargs)
    return {**row, "formula_version": NEXT, "expected_move_pct": row["expected_move_pct"] * 2}


derived.FORMULA_VERSION = NEXT
derived.derived_row = derived_row_v2

if __name__ == "__main__":
    main("derived", worker.HANDLERS, worker.REACTIONS)
