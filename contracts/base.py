"""The envelope every message on the bus shares: tag, id, UTC timestamp, schema version."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import msgspec

SCHEMA_VERSION = 1


def new_id() -> str:
    """Return a fresh random 128-bit id as 32 hex characters (uuid4-strength, cheaper to make)."""
    return os.urandom(16).hex()


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (every timestamp on the bus is UTC)."""
    return datetime.now(UTC)


class Message(msgspec.Struct, tag=True, tag_field="type", kw_only=True, omit_defaults=False, gc=False):
    """Base of every command and event: tagged by class name so one decoder reads the union.

    `id` is unique per message and is what the ledger de-duplicates on; a producer that
    resends keeps the id. `v` is the schema version of the message's own type.

    `gc=False` (msgspec): Python's cycle collector does not track messages. A message holds only
    values decoded from the wire (strings, numbers, dates, bytes, lists and dicts of them), so it can
    never be part of a reference cycle; a group commit holds thousands of them at once, and tracking
    them made the collector walk every one on each young collection.
    """

    id: str = msgspec.field(default_factory=new_id)
    ts: datetime = msgspec.field(default_factory=utc_now)
    v: int = SCHEMA_VERSION


# `triggered_by` of an orchestrator that runs every pipeline stage as a step of its own (oh_dagster):
# the workers do not chain the next stage after a run it triggered (services/pipeline.py).
ORCHESTRATORS: tuple[str, ...] = ("dagster",)


class Command(Message, kw_only=True):
    """An imperative request for one worker to do a job (exactly one handler).

    `orchestrator_run_id` is the run of the orchestrator that sent it (the Dagster run id when
    `triggered_by` is `dagster`); like every other field it lands in the run's `args_json`. It is
    optional with a default, so commands journaled before it existed still decode.
    """

    triggered_by: str = "cli"
    orchestrator_run_id: str | None = None


class Event(Message, kw_only=True):
    """A past-tense fact; fans out to every interested subscriber."""
