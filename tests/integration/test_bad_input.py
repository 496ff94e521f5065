"""Malformed, truncated, oversized and unknown frames are rejected and counted; good producers go on."""

from __future__ import annotations

import random

import msgspec
import pytest
import zmq

from bus.codec import encode
from bus.home import Home
from bus.producer import Producer
from contracts import CandlesIngested, TradeUpdated, utc_now
from devtools.processes import wait_applied
from tests.integration.conftest import Stack, run_oh

pytestmark = pytest.mark.integration

MAX_FRAME = 1 << 20


def _bad_frames(rng: random.Random) -> dict[str, list[bytes]]:
    good = encode(TradeUpdated(order_id="x", symbol="AAPL", event="fill", side="buy", qty=1.0))
    now = utc_now()
    bad_rows = CandlesIngested(
        run_id="r", symbol="AAPL", provider="sim", first_date=now.date(), last_date=now.date(),
        row_count=1, rows=b"not arrow", started_at=now, ended_at=now,
    )
    return {
        "random": [rng.randbytes(rng.randint(0, 300)) for _ in range(1500)],
        "truncated": [good[: rng.randint(0, len(good) - 1)] for _ in range(1500)],
        "unknown_type": [msgspec.msgpack.encode({"type": f"Bogus{i}", "id": str(i)}) for i in range(500)],
        "wrong_fields": [msgspec.msgpack.encode({"type": "TradeUpdated", "id": str(i), "qty": "lots"}) for i in range(500)],
        "oversized": [b"\x00" * (MAX_FRAME + 1 + i) for i in range(5)],
        "invalid_payload": [encode(msgspec.structs.replace(bad_rows, id=str(i))) for i in range(100)],
    }


def test_fuzzed_ingress_is_counted_and_good_events_all_land(home: Home) -> None:
    """Thousands of bad frames interleaved with good events: every bad one counted, every good one committed."""
    services = Stack(home, ledger_env={"OH_MAX_FRAME_BYTES": str(MAX_FRAME)})
    services.start_ledger()
    fuzzer = zmq.Context.instance().socket(zmq.DEALER)
    fuzzer.setsockopt(zmq.LINGER, 0)
    fuzzer.connect(home.endpoint("ingress"))
    producer = Producer(home)
    try:
        bad = _bad_frames(random.Random(7))
        frames = [frame for group in bad.values() for frame in group]
        random.Random(8).shuffle(frames)
        good_sent = 0
        for start in range(0, len(frames), 50):
            for frame in frames[start : start + 50]:
                fuzzer.send(frame)
            producer.send_many(
                TradeUpdated(order_id=f"g{good_sent + i}", symbol="MSFT", event="fill", side="buy", qty=1.0)
                for i in range(10)
            )
            good_sent += 10
        fuzzer.send_multipart([b"", b"\x01"])  # a multipart message: each part is judged as a frame
        producer.flush(timeout=60)
        wait_applied(home, producer.last_acked_seq)
        status = services.client.status()
        assert services.ledger.proc is not None and services.ledger.proc.poll() is None, "the ledger died"
        assert status.counters["frames_rejected"] == len(frames) + 2
        assert status.counters["rejected_oversized"] == len(bad["oversized"])
        assert status.counters["rejected_invalid_payload"] == len(bad["invalid_payload"])
        assert status.counters["rejected_unknown_type"] >= len(bad["unknown_type"])
        assert not producer.rejected
        assert services.scalar("SELECT count(*) FROM trade_updates") == good_sent
        assert services.scalar("SELECT count(*) FROM ledger.events") == good_sent
        assert "rejected frame" in services.ledger.log_text()

        refused = run_oh("query", "DROP TABLE candles_daily")
        assert refused.returncode == 2
        assert "read-only" in refused.stderr and "DROP" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert services.scalar("SELECT count(*) FROM candles_daily") == 0  # the table is still there
    finally:
        fuzzer.close()
        producer.close()
        services.stop()
