"""The center's binary answer (round trip, every malformed frame one error) and the bank's
keep-alive HTTP pool (reuse, a connection the server closed, refused and timed-out servers)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedcredit.service.http_pool import HttpPool, HttpUnavailable
from fedcredit.service.partial_wire import CenterAnswer, answer_from_bytes, answer_to_bytes
from fedcredit.service.testbed import free_port
from protocols.errors import MalformedMessageError


def _answer(rng: np.random.Generator, n: int, k: int, m: int, labels: int) -> CenterAnswer:
    return CenterAnswer("sme-default/v3", "ab" * 32, tuple(f"reason {i} é" for i in range(labels)),
                        rng.random(n) < 0.7, rng.normal(size=n),
                        rng.integers(-1, labels, (n, k)) if labels else np.full((n, k), -1),
                        rng.uniform(0, 50, (n, k)),
                        rng.random((m, n)) < 0.5 if m else np.zeros((0, 0), bool))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(0, 4), m=st.integers(0, 9), labels=st.integers(0, 5),
       seed=st.integers(0, 2**32 - 1))
def test_the_answer_round_trips(n: int, k: int, m: int, labels: int, seed: int) -> None:
    answer = _answer(np.random.default_rng(seed), n, k, m, labels)
    back = answer_from_bytes(answer_to_bytes(answer), n)
    assert (back.model_version, back.model_id, back.labels) == (
        answer.model_version, answer.model_id, answer.labels)
    for name in ("found", "partial_logit", "reason_label", "reason_points"):
        np.testing.assert_array_equal(getattr(back, name), getattr(answer, name))
    assert back.splits == m
    if m:
        np.testing.assert_array_equal(back.branches, answer.branches)
        np.testing.assert_array_equal(back.row(n - 1).branches, answer.branches[:, -1:])


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 10_000), flip=st.integers(0, 10_000), seed=st.integers(0, 99))
def test_a_damaged_answer_is_one_named_error(cut: int, flip: int, seed: int) -> None:
    blob = answer_to_bytes(_answer(np.random.default_rng(seed), 7, 3, 4, 3))
    damaged = bytearray(blob[:cut % (len(blob) + 1)])
    if damaged:
        damaged[flip % len(damaged)] ^= 0xFF
    try:
        back = answer_from_bytes(bytes(damaged), 7)
    except MalformedMessageError:
        return
    # a flipped value byte may still be a well-formed frame: then it has the right shape
    assert back.reason_label.shape == (7, 3) and back.branches.shape == (4, 7)


def test_an_answer_for_another_number_of_rows_is_refused() -> None:
    blob = answer_to_bytes(_answer(np.random.default_rng(0), 5, 3, 0, 2))
    with pytest.raises(MalformedMessageError, match="5 rows"):
        answer_from_bytes(blob, 6)
    with pytest.raises(MalformedMessageError, match="trailing"):
        answer_from_bytes(blob + b"\0", 5)


async def _server(close_after: int, delay_s: float = 0.0) -> tuple[asyncio.Server, list[int]]:
    """An HTTP/1.1 server answering each request with its connection's number and request
    count; it closes a connection after ``close_after`` answers (a keep-alive timeout)."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        me = len(connections)
        while connections[me - 1] < close_after:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            body = await reader.readexactly(length)
            connections[me - 1] += 1
            await asyncio.sleep(delay_s)
            answer = f"{me}:{connections[me - 1]}:".encode() + body
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: " + str(len(answer)).encode()
                         + b"\r\n\r\n" + answer)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), connections


def test_the_pool_reuses_a_connection_and_survives_its_close() -> None:
    async def run() -> list[bytes]:
        server, _ = await _server(close_after=2)
        port = server.sockets[0].getsockname()[1]
        pool = HttpPool(f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer k"})
        bodies = []
        for i in range(4):
            reply = await pool.post("/x", f"q{i}".encode(), timeout_s=5)
            assert reply.status == 200
            bodies.append(reply.body)
            await asyncio.sleep(0.05)  # the server closes after its second answer
        await pool.close()
        server.close()
        return bodies

    # connection 1 answers twice, then the server closes it; the pool opens connection 2
    assert asyncio.run(run()) == [b"1:1:q0", b"1:2:q1", b"2:1:q2", b"2:2:q3"]


def test_the_pool_reports_a_refused_and_a_slow_server() -> None:
    async def run() -> None:
        pool = HttpPool(f"http://127.0.0.1:{free_port()}", headers={})
        with pytest.raises(HttpUnavailable, match="ConnectionRefused"):
            await pool.post("/x", b"{}", timeout_s=5)
        server, _ = await _server(close_after=9, delay_s=1.0)
        slow = HttpPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", headers={})
        with pytest.raises(HttpUnavailable, match="timed out"):
            await slow.post("/x", b"{}", timeout_s=0.2)
        server.close()

    asyncio.run(run())
