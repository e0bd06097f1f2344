"""The peer stream's frame codec: a frame opens to its payload under its session key only, and
any change to its header or body is caught (hypothesis)."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.wire.peer_frames import (
    HEADER,
    MAX_BODY,
    STEP_OPEN,
    PeerFrameError,
    new_session_key,
    open_frame,
    parse_header,
    read_frame,
    seal_frame,
)

KEY = new_session_key()
frames = st.fixed_dictionaries({
    "sender": st.sampled_from(["bank", "center"]), "step": st.integers(0, 3),
    "epoch": st.integers(0, 2**32 - 1), "batch": st.integers(0, 2**32 - 1),
    "seq": st.integers(0, 2**64 - 1), "payload": st.binary(max_size=2048)})


def _open(frame: bytes, key: bytes = KEY) -> bytes:
    header = parse_header(frame[:HEADER.size])
    return open_frame(key, header, frame[HEADER.size:])


@settings(max_examples=60, deadline=None)
@given(frames)
def test_a_frame_round_trips_with_its_header(spec) -> None:
    frame = seal_frame(KEY, **spec)
    header = parse_header(frame[:HEADER.size])
    assert (header.sender, header.step, header.epoch, header.batch, header.seq) == (
        spec["sender"], spec["step"], spec["epoch"], spec["batch"], spec["seq"])
    assert _open(frame) == spec["payload"]


@settings(max_examples=60, deadline=None)
@given(frames, st.data())
def test_any_flipped_bit_is_caught(spec, data) -> None:
    frame = bytearray(seal_frame(KEY, **spec))
    at = data.draw(st.integers(0, len(frame) - 1))
    frame[at] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(PeerFrameError):
        _open(bytes(frame))


def test_another_sessions_key_does_not_open_a_frame() -> None:
    frame = seal_frame(KEY, sender="bank", step=STEP_OPEN, epoch=0, batch=1, seq=4,
                       payload=b"masked values")
    with pytest.raises(PeerFrameError, match="does not open under this epoch's session key"):
        _open(frame, new_session_key())


def test_an_oversized_body_is_refused_before_it_is_read() -> None:
    header = bytearray(seal_frame(KEY, sender="bank", step=1, epoch=0, batch=0, seq=1,
                                  payload=b"")[:HEADER.size])
    header[-4:] = (MAX_BODY + 1).to_bytes(4, "big")
    left, right = socket.socketpair()
    with left, right:
        left.sendall(bytes(header))  # no body follows: the length alone is refused
        with pytest.raises(PeerFrameError, match="outside"):
            read_frame(right)
