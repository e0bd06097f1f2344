"""Fuzz the SecAgg+ message decoder and the bank's steps that read decoded messages."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import FedCreditError
from protocols.secagg.client import MaskingClient
from protocols.secagg.config import MaskingConfig
from protocols.secagg.messages import (
    KeyAdvert,
    MaskedInput,
    SealedShares,
    UnmaskReply,
    UnmaskRequest,
    message_from_bytes,
    message_to_bytes,
)

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
CONFIG = MaskingConfig(n_parties=6, degree=4, threshold=2, modulus=2**32, length=8,
                       run_id="fuzz", round=1)


@pytest.fixture(scope="module")
def secagg_run() -> dict:
    """Valid encodings of every message kind from one honest round."""
    source = random.Random(1)
    clients = [MaskingClient(CONFIG, u, random_bytes=source.randbytes) for u in range(6)]
    adverts = {c.party: c.advertise() for c in clients}
    sealed: dict[int, list[SealedShares]] = {u: [] for u in range(6)}
    for c in clients:
        for message in c.share_keys([adverts[v] for v in sorted(c.neighbours)]):
            sealed[message.recipient].append(message)
    masked = clients[0].masked_input(np.arange(8, dtype=np.uint64), sealed[0])
    peers = tuple(sorted(clients[0].neighbours))
    request = UnmaskRequest(recipient=0, tag=CONFIG.tag, survivors=peers, dropped=())
    reply = clients[0].unmask(request)
    blobs = [message_to_bytes(m) for m in (adverts[0], sealed[1][0], masked, request, reply)]
    return {"blobs": blobs, "adverts": adverts}


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_secagg_decoder_raises_only_named_errors(data, fuzz, secagg_run) -> None:
    # the valid input parses (a decoder refusing everything fails here)
    assert [message_to_bytes(message_from_bytes(b)) for b in secagg_run["blobs"]] \
        == secagg_run["blobs"]
    blob = data.draw(fuzz.bytes_like(data.draw(st.sampled_from(secagg_run["blobs"]))))
    try:
        message = message_from_bytes(blob)
    except FedCreditError:
        return
    again = message_from_bytes(message_to_bytes(message))
    assert type(again) is type(message)


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_bank_steps_on_fuzzed_messages_raise_only_named_errors(data, fuzz, secagg_run) -> None:
    # the valid input parses (a decoder refusing everything fails here)
    assert isinstance(message_from_bytes(secagg_run["blobs"][0]), KeyAdvert)
    blob = data.draw(fuzz.bytes_like(data.draw(st.sampled_from(secagg_run["blobs"]))))
    try:
        message = message_from_bytes(blob)
    except FedCreditError:
        return
    client = MaskingClient(CONFIG, 1, random_bytes=random.Random(2).randbytes)
    neighbours = [secagg_run["adverts"][v] for v in sorted(client.neighbours)]
    try:
        if isinstance(message, KeyAdvert):
            client.share_keys([message, *neighbours])
        elif isinstance(message, SealedShares):
            client.share_keys(neighbours)
            client.mask(np.zeros(8, dtype=np.uint64), [message])
        elif isinstance(message, UnmaskRequest):
            client.unmask(message)
        else:
            assert isinstance(message, MaskedInput | UnmaskReply)
    except FedCreditError:
        pass
