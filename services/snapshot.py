"""The snapshot worker: job `snapshot_options` (asset `options_snapshot_file`).

One run per command; for each symbol and each NYSE session in the range, the provider's full
chain goes out as one ChainSnapshotted event (stored in `option_snapshots`, keyed by underlying,
session and contract, so a day's chain for one symbol is one indexed read). A symbol that fails is
recorded as a failed asset and the others still land.
"""

from __future__ import annotations

from bus.arrow_ipc import to_ipc
from contracts import ChainSnapshotted, SnapshotOptions, utc_now
from oh import calendar
from oh.providers import get_provider, served_by
from services.runtime import RunContext, main, raise_if_partitions_failed

JOB = "snapshot_options"
ASSET = "options_snapshot_file"


def snapshot_options(command: SnapshotOptions, run: RunContext) -> None:
    """Emit one chain per symbol and session; fail the run (naming them) if any partition failed."""
    provider = get_provider(command.provider, command.fallback)
    days = [day.astype(object) for day in calendar.sessions(command.start, command.end)]
    if not days:
        raise ValueError(f"no NYSE session between {command.start} and {command.end}")
    failures: list[tuple[str, BaseException]] = []
    for symbol in command.symbols:
        for day in days:
            run.check_stop()
            started = utc_now()
            partition = f"{symbol}|{day}"
            try:
                chain = provider.option_chain(symbol, day)
            except Exception as exc:  # one partition's failure never stops the others
                run.asset_failed(ASSET, partition, exc, started)
                failures.append((partition, exc))
                continue
            run.emit(
                ChainSnapshotted(
                    run_id=run.run_id, symbol=symbol, provider=served_by(chain, provider), snapshot_date=day,
                    row_count=chain.num_rows, rows=to_ipc(chain), started_at=started, ended_at=utc_now(),
                )
            )
    raise_if_partitions_failed(failures, len(command.symbols) * len(days), "snapshots")


HANDLERS = {SnapshotOptions: (JOB, snapshot_options)}

if __name__ == "__main__":
    calendar.all_sessions()
    main("snapshot", HANDLERS)
