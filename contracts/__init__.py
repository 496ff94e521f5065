"""Typed contracts: every message on the bus is a msgspec Struct defined here.

`AnyMessage` is the tagged union the ingress decoder reads in one call; `JOURNALED` lists the
types the ledger journals (everything but heartbeats).
"""

from __future__ import annotations

from contracts.base import SCHEMA_VERSION, Command, Event, Message, new_id, utc_now
from contracts.commands import (
    JOB_OF_COMMAND,
    ComputeDerived,
    ComputeFlow,
    SERVICE_OF_JOB,
    IngestCandles,
    RunChecks,
    SnapshotOptions,
    run_id_for,
)
from contracts.control import Heartbeat
from contracts.events import (
    AssetChecked,
    AssetFailed,
    CandlesIngested,
    ChainSnapshotted,
    CheckRecord,
    DerivedComputed,
    FlowComputed,
    RunFinished,
    RunStarted,
    TradeUpdated,
)

AnyMessage = (
    IngestCandles | RunChecks | SnapshotOptions | ComputeFlow | ComputeDerived | RunStarted | RunFinished
    | CandlesIngested | ChainSnapshotted | FlowComputed | DerivedComputed | AssetFailed | AssetChecked
    | TradeUpdated | Heartbeat
)

MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (
        IngestCandles, RunChecks, SnapshotOptions, ComputeFlow, ComputeDerived, RunStarted, RunFinished,
        CandlesIngested, ChainSnapshotted, FlowComputed, DerivedComputed, AssetFailed, AssetChecked,
        TradeUpdated, Heartbeat,
    )
}

EPHEMERAL_TYPES = frozenset({"Heartbeat"})

__all__ = [
    "SCHEMA_VERSION", "AnyMessage", "ComputeDerived", "DerivedComputed", "ComputeFlow", "FlowComputed", "ChainSnapshotted", "SnapshotOptions", "AssetChecked", "AssetFailed", "CheckRecord", "RunChecks", "SERVICE_OF_JOB", "CandlesIngested", "Command", "EPHEMERAL_TYPES",
    "Event", "Heartbeat", "IngestCandles", "MESSAGE_TYPES", "Message", "RunFinished", "RunStarted",
    "TradeUpdated", "JOB_OF_COMMAND", "new_id", "run_id_for", "utc_now",
]
