"""Fuzz the vertical peer stream: the frame decoder, and a party's link reading whatever the
relay's socket delivers, raise only named errors; a changed frame never opens."""

from __future__ import annotations

import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.peer_link import PeerLink
from federation.wire.peer_frames import (
    HEADER,
    STEP_ENCRYPT,
    new_session_key,
    open_frame,
    parse_header,
    read_frame,
    seal_frame,
)
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
KEY = new_session_key()
VALID = seal_frame(KEY, sender="center", step=STEP_ENCRYPT, epoch=1, batch=2, seq=1,
                   payload=b"partial scores, encrypted under the center's key")


def _decode(blob: bytes) -> bytes:
    header = parse_header(blob[:HEADER.size])
    return open_frame(KEY, header, blob[HEADER.size:])


@settings(FUZZ, max_examples=600)
@given(data=st.data())
def test_the_frame_decoder_raises_only_named_errors(data, fuzz) -> None:
    assert _decode(VALID).startswith(b"partial scores")  # the valid frame opens
    blob = data.draw(fuzz.bytes_like(VALID))
    try:
        payload = _decode(blob)
    except FedCreditError:
        return
    assert blob == VALID and payload == _decode(VALID)  # only the unchanged frame opens


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_a_link_reading_garbage_raises_only_named_errors(data, fuzz) -> None:
    blob = data.draw(fuzz.bytes_like(VALID))
    with socket.create_server(("127.0.0.1", 0)) as server:
        link = PeerLink("bank", KEY, "127.0.0.1", server.getsockname()[1], receive_timeout_s=5)
        relay, _ = server.accept()
        with relay, link:
            read_frame(relay)  # the link's hello
            relay.sendall(blob)
            relay.shutdown(socket.SHUT_WR)
            try:
                payload = link.receive(STEP_ENCRYPT, 1, 2)
            except FedCreditError:
                return
    assert blob[:len(VALID)] == VALID and payload == _decode(VALID)
