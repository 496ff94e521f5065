"""The snapshot worker: job `snapshot_options` (asset `options_snapshot_file`).

One run per command; for each symbol and each NYSE session in the range, the provider's full
chain goes out as one ChainSnapshotted event (stored in `option_snapshots`, keyed by underlying,
session and contract: `services.ledger.schema.FACT_KEYS`). A symbol that fails is
recorded as a failed asset and the others still land.
"""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa

from bus.arrow_ipc import to_ipc
from contracts import ChainSnapshotted, SnapshotOptions, utc_now
from contracts.catalog import job_of
from oh.adapters.registry import get_provider, served_by
from oh.domain import calendar
from services.runs import RunContext, each_symbol_session
from services.runtime import main

ASSET = job_of(SnapshotOptions).asset_key


def snapshot_options(command: SnapshotOptions, run: RunContext) -> None:
    """Emit one chain per symbol and session; fail the run (naming them) if any partition failed."""
    provider = get_provider(command.provider, command.fallback)
    days = [day.astype(object) for day in calendar.sessions(command.start, command.end)]
    if not days:
        raise ValueError(f"no NYSE session between {command.start} and {command.end}")

    def event(symbol: str, day: date, chain: pa.Table, started: datetime) -> ChainSnapshotted:
        return ChainSnapshotted(
            run_id=run.run_id, symbol=symbol, provider=served_by(chain, provider), snapshot_date=day,
            row_count=chain.num_rows, rows=to_ipc(chain), started_at=started, ended_at=utc_now(),
        )

    each_symbol_session(run, command.symbols, days, ASSET, provider.option_chain, event, "snapshots")


HANDLERS = {SnapshotOptions: snapshot_options}

if __name__ == "__main__":
    calendar.all_sessions()
    main("snapshot", HANDLERS)
