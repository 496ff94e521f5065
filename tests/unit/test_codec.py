"""The bus codec: every message type round trips; anything malformed is a FrameError, never a crash."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bus.codec
from bus.codec import (
    FrameError,
    decode_control_reply,
    decode_ingress_reply,
    decode_message,
    decode_request,
    encode,
    pack_seq,
    topic_of,
    unpack_seq,
)
from contracts import (
    MESSAGE_TYPES,
    AssetFailed,
    CandlesIngested,
    Heartbeat,
    IngestCandles,
    Message,
    RunFinished,
    RunStarted,
    TradeUpdated,
)
from contracts.control import (
    Ack,
    CatchUpReply,
    CatchUpRequest,
    ErrorReply,
    Nack,
    QueryRequest,
    RebuildReply,
    RebuildRequest,
    StatusReply,
    StatusRequest,
)

TS = datetime(2025, 6, 30, 20, 15, 1, 123456, tzinfo=UTC)

HAND_SAMPLES: dict[str, Message] = {
    "IngestCandles": IngestCandles(
        symbols=["AAPL", "BRK.B"], start=date(2024, 1, 2), end=date(2025, 12, 31), provider="sim",
        triggered_by="scheduler", ts=TS,
    ),
    "RunStarted": RunStarted(
        run_id="r-1", job_name="ingest_candles", command_id="c-1", parent_run_id="p-1", triggered_by="cli",
        provider="sim", args_json='{"a": 1}', git_sha="deadbeef", app_version="0.1.0", started_at=TS, ts=TS,
    ),
    "RunFinished": RunFinished(
        run_id="r-1", status="failed", ended_at=TS + timedelta(seconds=3), duration_ms=3000,
        error_type="ProviderError", error_message="boom", error_stack_hash="0123456789abcdef", ts=TS,
    ),
    "CandlesIngested": CandlesIngested(
        run_id="r-1", symbol="AAPL", provider="sim", first_date=date(2025, 1, 2), last_date=date(2025, 1, 31),
        row_count=20, rows=b"\x00\x01arrow-bytes\xff" * 100, started_at=TS, ended_at=TS, ts=TS,
    ),
    "AssetFailed": AssetFailed(
        run_id="r-1", asset_key="candles_daily", partition_key="ZZZ", error_type="UnknownSymbol",
        error_message="no such symbol", started_at=TS, ended_at=TS, ts=TS,
    ),
    "TradeUpdated": TradeUpdated(
        order_id="o-1", symbol="AAPL", event="fill", side="sell", qty=2.5, price=190.25,
        filled_at=TS, ts=TS,
    ),
    "Heartbeat": Heartbeat(service="ingest", pid=4242, state="busy", ts=TS),
}


def _value(info: mi.Type) -> object:
    """A non-default value of a msgspec type (structs get every field, optional ones included)."""
    if isinstance(info, mi.UnionType):
        return _value(next(t for t in info.types if not isinstance(t, mi.NoneType)))
    if isinstance(info, mi.StructType):
        return info.cls(**{f.name: _value(f.type) for f in info.fields if f.name not in ("id", "ts", "v")},
                        **({"ts": TS} if "ts" in info.cls.__struct_fields__ else {}))
    if isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        return [_value(info.item_type), _value(info.item_type)]
    if isinstance(info, mi.DictType):
        return {"k": _value(info.value_type)}
    simple = {
        mi.StrType: "text-\u00e9", mi.IntType: 7, mi.FloatType: 2.5, mi.BoolType: True, mi.BytesType: b"\x00\xff",
        mi.DateType: date(2025, 7, 3), mi.DateTimeType: TS, mi.AnyType: {"any": [1, "x"]},
    }
    for kind, value in simple.items():
        if isinstance(info, kind):
            return value
    raise NotImplementedError(f"no sample value for {info!r}: add a hand sample")


# A sample of every message type: written by hand where the values matter, generated otherwise.
SAMPLES: dict[str, Message] = {
    name: HAND_SAMPLES.get(name) or _value(mi.type_info(cls))  # type: ignore[misc]
    for name, cls in MESSAGE_TYPES.items()
}


def test_samples_cover_every_message_type() -> None:
    """The round-trip tests below really exercise every type the bus knows, each with its own class."""
    assert set(SAMPLES) == set(MESSAGE_TYPES)
    assert set(HAND_SAMPLES) <= set(MESSAGE_TYPES)
    for name, message in SAMPLES.items():
        assert type(message) is MESSAGE_TYPES[name]


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_every_message_type_round_trips(name: str) -> None:
    """encode then decode_message gives an equal message of the same type (id, ts and v included)."""
    message = SAMPLES[name]
    decoded = decode_message(encode(message))
    assert type(decoded) is type(message)
    assert decoded == message
    assert decoded.id == message.id and decoded.ts == message.ts and decoded.v == message.v


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_defaults_round_trip(name: str) -> None:
    """A message built with only its required fields (fresh id, now() timestamp) round trips too."""
    cls = MESSAGE_TYPES[name]
    required = {f.name: getattr(SAMPLES[name], f.name) for f in msgspec.structs.fields(cls) if f.required}
    message = cls(**required)
    assert decode_message(encode(message)) == message


def test_encoding_is_tagged_by_class_name() -> None:
    """The wire form carries the type name under `type`, which is what the journal and topics key on."""
    raw = msgspec.msgpack.decode(encode(SAMPLES["RunStarted"]))
    assert raw["type"] == "RunStarted"


def test_non_utc_timestamps_keep_their_instant() -> None:
    """An aware timestamp in another zone decodes to the same instant."""
    message = Heartbeat(service="x", pid=1, ts=datetime(2025, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5))))
    assert decode_message(encode(message)).ts == datetime(2025, 1, 1, 14, 30, tzinfo=UTC)


# -- rejection -----------------------------------------------------------------------------
def _raw(name: str) -> dict:
    return msgspec.msgpack.decode(encode(SAMPLES[name]))


@pytest.mark.parametrize(
    "frame",
    [
        encode({**_raw("RunStarted"), "type": "RunExploded"}),
        encode({k: v for k, v in _raw("RunStarted").items() if k != "type"}),
        encode(Ack(ids=["a"], seqs=[1])),  # a control message is not a bus message
        encode(QueryRequest(sql="SELECT 1")),
    ],
    ids=["unknown-type", "no-type", "ack", "query-request"],
)
def test_unknown_or_missing_type_is_a_frame_error(frame: bytes) -> None:
    """A frame whose tag is not a known message type is refused with FrameError."""
    with pytest.raises(FrameError):
        decode_message(frame)


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("IngestCandles", "symbols", "AAPL"),
        ("IngestCandles", "start", "2025-13-45"),
        ("IngestCandles", "end", 20250101),
        ("RunStarted", "run_id", 17),
        ("RunStarted", "started_at", "yesterday"),
        ("RunFinished", "duration_ms", "3s"),
        ("CandlesIngested", "rows", "not bytes"),
        ("CandlesIngested", "row_count", 1.5),
        ("TradeUpdated", "qty", "ten"),
        ("Heartbeat", "pid", None),
        ("Heartbeat", "id", 5),
        ("Heartbeat", "v", "1"),
    ],
)
def test_wrong_field_type_is_a_frame_error_naming_the_field(name: str, field: str, value: object) -> None:
    """A known type with a badly typed field is refused with FrameError, and the reason names the field."""
    frame = encode({**_raw(name), field: value})
    with pytest.raises(FrameError, match=field):
        decode_message(frame)


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_missing_required_field_is_a_frame_error(name: str) -> None:
    """Dropping any required field makes the frame invalid."""
    cls = MESSAGE_TYPES[name]
    for f in msgspec.structs.fields(cls):
        if f.required:
            raw = {k: v for k, v in _raw(name).items() if k != f.name}
            with pytest.raises(FrameError, match=f.name):
                decode_message(encode(raw))


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_every_truncation_of_a_valid_frame_is_a_frame_error(name: str) -> None:
    """A frame cut short at any byte is refused with FrameError."""
    frame = encode(SAMPLES[name])
    for end in range(len(frame)):
        with pytest.raises(FrameError):
            decode_message(frame[:end])


def test_trailing_bytes_after_a_valid_frame_are_a_frame_error() -> None:
    """Two messages glued together, or junk after one, are not a valid frame."""
    frame = encode(SAMPLES["Heartbeat"])
    with pytest.raises(FrameError):
        decode_message(frame + frame)
    with pytest.raises(FrameError):
        decode_message(frame + b"\x00")


def test_oversized_frame_is_a_frame_error_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame over `max_frame_bytes()` is refused (saying it exceeds the limit) even if it is valid msgpack."""
    frame = encode(SAMPLES["CandlesIngested"])
    monkeypatch.setattr(bus.codec, "max_frame_bytes", lambda: len(frame) - 1)
    with pytest.raises(FrameError, match="exceeds"):
        decode_message(frame)
    monkeypatch.setattr(bus.codec, "max_frame_bytes", lambda: len(frame))
    assert decode_message(frame) == SAMPLES["CandlesIngested"]


@pytest.mark.parametrize("decode", [decode_message, decode_request], ids=["message", "request"])
def test_invalid_utf8_in_a_string_is_a_frame_error(decode) -> None:
    """A string field holding invalid UTF-8 is a malformed frame (FrameError), not a UnicodeDecodeError that
    would escape the ledger's `except FrameError` and stop the process."""
    frame = bytearray(encode(SAMPLES["Heartbeat"]))
    at = frame.index(b"Heartbeat")
    frame[at] = 0xFF  # the type tag is no longer valid UTF-8
    with pytest.raises(FrameError):
        decode(bytes(frame))


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_every_single_byte_corruption_decodes_or_is_a_frame_error(name: str) -> None:
    """Flipping any one byte of a valid frame (three ways) gives a message or a FrameError, nothing else."""
    frame = encode(SAMPLES[name])
    for position in range(len(frame)):
        for mask in (0x01, 0x80, 0xFF):
            corrupt = bytearray(frame)
            corrupt[position] ^= mask
            try:
                decode_message(bytes(corrupt))
            except FrameError:
                pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_frame_error(frame: bytes) -> None:
    """Arbitrary bytes never raise anything but FrameError (from either decoder)."""
    for decode in (decode_message, decode_request):
        try:
            decode(frame)
        except FrameError:
            pass


_msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20)
    | st.binary(max_size=20) | st.datetimes(timezones=st.just(UTC)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(
    type_name=st.sampled_from(sorted(MESSAGE_TYPES)),
    base=st.sampled_from(sorted(MESSAGE_TYPES)),
    overrides=st.dictionaries(st.sampled_from(sorted({f for c in MESSAGE_TYPES.values() for f in c.__struct_fields__})),
                              _msgpack_values, max_size=4),
)
def test_well_formed_msgpack_with_wrong_fields_decodes_or_raises_frame_error(
    type_name: str, base: str, overrides: dict
) -> None:
    """Maps tagged with a real type but carrying fields of other types or wrong values either decode to that
    type or raise FrameError."""
    raw = {**_raw(base), **overrides, "type": type_name}
    try:
        message = decode_message(encode(raw))
    except FrameError:
        return
    assert type(message) is MESSAGE_TYPES[type_name]


# -- control channel and small helpers -----------------------------------------------------
@pytest.mark.parametrize(
    "request_",
    [QueryRequest(sql="SELECT 1", params=[1, "a", None]), CatchUpRequest(from_seq=5, to_seq=9, types=["RunStarted"]),
     StatusRequest(), RebuildRequest()],
)
def test_control_requests_round_trip(request_: object) -> None:
    """Every control request decodes to what was encoded."""
    assert decode_request(encode(request_)) == request_


def test_bus_message_is_not_a_control_request() -> None:
    """The control endpoint refuses a bus message with FrameError."""
    with pytest.raises(FrameError):
        decode_request(encode(SAMPLES["Heartbeat"]))


@pytest.mark.parametrize(
    "reply",
    [ErrorReply(message="nope", kind="refused"), CatchUpReply(count=2, last_seq=9, head_seq=12),
     RebuildReply(events=3, seconds=0.5),
     StatusReply(head_seq=3, applied_seq=3, started_at=1.5, counters={"a": 1}, heartbeats={"x": {"pid": 1}},
                 fsync="batch")],
)
def test_control_replies_round_trip(reply: object) -> None:
    """Every control reply header decodes to what was encoded."""
    assert decode_control_reply(encode(reply)) == reply


@pytest.mark.parametrize("reply", [Ack(ids=["a", "b"], seqs=[1, 2]), Nack(id=None, reason="bad"), Nack(id="x", reason="r")])
def test_ingress_replies_round_trip(reply: object) -> None:
    """Acks and Nacks decode to what was encoded."""
    assert decode_ingress_reply(encode(reply)) == reply


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_seq_frames_round_trip(seq: int) -> None:
    """pack_seq/unpack_seq is a bijection on u64 and always 8 bytes."""
    packed = pack_seq(seq)
    assert len(packed) == 8
    assert unpack_seq(packed) == seq


def test_topics_never_prefix_each_other() -> None:
    """PUB/SUB matches by prefix, so no topic may be a prefix of another type's topic."""
    topics = [topic_of(name) for name in MESSAGE_TYPES] + [topic_of("Run")]
    for a in topics:
        for b in topics:
            if a != b:
                assert not b.startswith(a)


def test_a_run_of_seqs_packs_in_one_frame_and_one_seq_packs_as_before() -> None:
    """The events channel's seq frame: a run of events published as one message carries all their seqs; a
    single seq (and the head tick) packs exactly as `pack_seq`, so one-event messages look as they always did."""
    from bus.codec import pack_seq, pack_seqs, unpack_seq, unpack_seqs

    assert pack_seqs([7]) == pack_seq(7) and unpack_seq(pack_seqs([7])) == 7
    assert unpack_seqs(pack_seqs([1, 2, 3, 2**40])) == (1, 2, 3, 2**40)
