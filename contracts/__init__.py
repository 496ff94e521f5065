"""Typed contracts: every message on the bus is a msgspec Struct defined here.

`AnyMessage` is the tagged union the ingress decoder reads in one call; `JOURNALED` lists the
types the ledger journals (everything but heartbeats).
"""

from __future__ import annotations

from contracts.base import SCHEMA_VERSION, Command, Event, Message, new_id, utc_now
from contracts.commands import (
    BuildBriefing,
    ComputeDerived,
    ComputeFlow,
    IngestCandles,
    IngestOptionsBars,
    RunChecks,
    RunDaily,
    SnapshotOptions,
    StartLive,
    StopLive,
    run_id_for,
)
from contracts.control import Heartbeat
from contracts.events import (
    AssetChecked,
    AssetFailed,
    BriefingBuilt,
    CandlesIngested,
    ChainSnapshotted,
    CheckRecord,
    DerivedComputed,
    FlowComputed,
    NotificationSent,
    OptionBarsIngested,
    RunFinished,
    RunStarted,
    SymbolsForgotten,
    SymbolsRemembered,
    TradeUpdated,
)

AnyMessage = (
    IngestCandles | IngestOptionsBars | RunChecks | SnapshotOptions | ComputeFlow | ComputeDerived | BuildBriefing
    | RunDaily | StartLive | StopLive | RunStarted | RunFinished | CandlesIngested | OptionBarsIngested | ChainSnapshotted | FlowComputed
    | DerivedComputed | BriefingBuilt | AssetFailed | AssetChecked | TradeUpdated | SymbolsForgotten | SymbolsRemembered
    | NotificationSent | Heartbeat
)

MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (
        IngestCandles, IngestOptionsBars, RunChecks, SnapshotOptions, ComputeFlow, ComputeDerived, BuildBriefing,
        RunDaily, StartLive, StopLive, RunStarted, RunFinished, CandlesIngested, OptionBarsIngested, ChainSnapshotted, FlowComputed,
        DerivedComputed, BriefingBuilt, AssetFailed, AssetChecked, TradeUpdated, SymbolsForgotten, SymbolsRemembered,
        NotificationSent, Heartbeat,
    )
}

EPHEMERAL_TYPES = frozenset({"Heartbeat"})

__all__ = [
    "EPHEMERAL_TYPES",
    "MESSAGE_TYPES",
    "SCHEMA_VERSION",
    "AnyMessage",
    "AssetChecked",
    "AssetFailed",
    "BriefingBuilt",
    "BuildBriefing",
    "CandlesIngested",
    "ChainSnapshotted",
    "CheckRecord",
    "Command",
    "ComputeDerived",
    "ComputeFlow",
    "DerivedComputed",
    "Event",
    "FlowComputed",
    "Heartbeat",
    "IngestCandles",
    "IngestOptionsBars",
    "Message",
    "NotificationSent",
    "OptionBarsIngested",
    "RunChecks",
    "RunDaily",
    "RunFinished",
    "RunStarted",
    "SnapshotOptions",
    "StartLive",
    "StopLive",
    "SymbolsForgotten",
    "SymbolsRemembered",
    "TradeUpdated",
    "new_id",
    "run_id_for",
    "utc_now",
]
