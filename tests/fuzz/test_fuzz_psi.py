"""Fuzz ECDH-PSI messages: the parser and every protocol step that receives a message."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import FedCreditError
from protocols.psi.ecdh import (
    initiator_finish,
    initiator_start,
    new_psi_session,
    responder_finish,
    responder_reply,
)
from protocols.psi.messages import PsiMessage, psi_message_from_bytes, psi_message_to_bytes

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
INITIATOR_IDS = ["91350100M000100Y43", "b", "c", "d"]
RESPONDER_IDS = ["c", "d", "e"]


def _rng(seed: int):
    source = random.Random(seed)
    return lambda n: source.randbytes(n)


@pytest.fixture(scope="module")
def psi_run() -> dict:
    """One honest run: both parties' states and the three messages as bytes."""
    session = new_psi_session(_rng(1))
    state_a, first = initiator_start(INITIATOR_IDS, session, rng=_rng(2), workers=1)
    state_b, reply = responder_reply(RESPONDER_IDS, first, rng=_rng(3), workers=1)
    _, final = initiator_finish(state_a, reply, workers=1)
    return {"session": session, "state_a": state_a, "state_b": state_b,
            "first": psi_message_to_bytes(first), "reply": psi_message_to_bytes(reply),
            "final": psi_message_to_bytes(final)}


@settings(FUZZ, max_examples=500)
@given(data=st.data())
def test_psi_parser_raises_only_named_errors(data, fuzz, psi_run) -> None:
    valid = psi_run[data.draw(st.sampled_from(["first", "reply", "final"]))]
    # the valid input parses (a decoder refusing everything fails here)
    assert psi_message_to_bytes(psi_message_from_bytes(valid)) == valid
    blob = data.draw(fuzz.bytes_like(valid))
    try:
        message = psi_message_from_bytes(blob)
    except FedCreditError:
        return
    assert isinstance(message, PsiMessage)
    assert psi_message_from_bytes(psi_message_to_bytes(message)) == message


@settings(FUZZ, max_examples=500)
@given(data=st.data())
def test_psi_steps_raise_only_named_errors_on_received_messages(data, fuzz, psi_run) -> None:
    step = data.draw(st.sampled_from(["responder_reply", "initiator_finish", "responder_finish"]))
    valid = psi_run[data.draw(st.sampled_from(["first", "reply", "final"]))]
    # the honest messages are taken (a step refusing everything fails here)
    result, _ = initiator_finish(psi_run["state_a"], psi_message_from_bytes(psi_run["reply"]),
                                 workers=1)
    assert set(result.ids) == set(INITIATOR_IDS) & set(RESPONDER_IDS)
    try:
        message = psi_message_from_bytes(data.draw(fuzz.bytes_like(valid)))
        if step == "responder_reply":
            session = data.draw(st.sampled_from([None, psi_run["session"]]))
            _, out = responder_reply(RESPONDER_IDS, message, session=session, rng=_rng(4),
                                     workers=1)
            assert out.stage == "responder-reply"
        elif step == "initiator_finish":
            result, _ = initiator_finish(psi_run["state_a"], message, workers=1)
            assert set(result.indices) <= set(range(len(INITIATOR_IDS)))
        else:
            result = responder_finish(psi_run["state_b"], message)
            assert set(result.indices) <= set(range(len(RESPONDER_IDS)))
    except FedCreditError:
        return
