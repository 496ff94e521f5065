"""On shutdown the ledger answers every query it holds (services/ledger/control.py, `answer_until_stopped`): a query
whose interruption takes longer than the 5 s the pool's threads used to be given (a loaded box) is still answered,
and so is the query waiting behind it (`interrupted`), each as its thread sends it. A real QueryPool with one thread,
its real inproc reply socket, and a real socket pair standing for the clients."""

from __future__ import annotations

import threading
import time
import uuid

import duckdb
import zmq

from bus.codec import decode_control_reply
from bus.query_limits import QueryLimits
from contracts.control import ErrorReply
from services.ledger.control import answer_until_stopped
from services.ledger.queries import CallJob, QueryJob, QueryPool

SLOW = 6.0  # seconds the running job takes to notice the shutdown: more than the old 5 s join


def test_a_slow_query_and_the_one_waiting_behind_it_are_both_answered_on_shutdown() -> None:
    ctx = zmq.Context.instance()
    endpoint = f"inproc://pool-shutdown-{uuid.uuid4().hex}"
    replies = ctx.socket(zmq.PULL)
    replies.bind(endpoint)
    clients_in, clients_out = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)  # the ROUTER's place: frames out to clients
    port = clients_in.bind_to_random_port("tcp://127.0.0.1")
    clients_out.connect(f"tcp://127.0.0.1:{port}")
    database = duckdb.connect()
    pool = QueryPool(database.cursor, QueryLimits(threads=1, queue=1), ctx, endpoint, lambda _: None)
    started = threading.Event()

    def slow() -> list[bytes]:  # work that does not see the interrupt for a while (a loaded box)
        started.set()
        time.sleep(SLOW)
        return [b"slow done"]

    pool.start()
    try:
        assert pool.submit(CallJob([b"first"], slow))
        assert started.wait(10)
        assert pool.submit(QueryJob([b"second"], "SELECT 1", None, 30.0, time.monotonic() + 30.0))
        pool.stop()
        answer_until_stopped(pool, replies, clients_out, time.monotonic() + 30.0)
        assert not pool.running()
        got = [clients_in.recv_multipart() for _ in range(2) if clients_in.poll(5000)]
    finally:
        pool.stop()
        for sock in (replies, clients_in, clients_out):
            sock.close(linger=0)
        database.close()
    assert [frames[0] for frames in got] == [b"first", b"second"], got
    assert got[0][1:] == [b"slow done"]
    answer = decode_control_reply(got[1][1])
    assert isinstance(answer, ErrorReply) and answer.kind == "interrupted" and "shutting down" in answer.message
