"""Fuzz the vertical logistic regression's wire messages and its run config."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import FedCreditError
from protocols.paillier.keys import key_fingerprint
from protocols.vertical_lr.config import (
    VerticalLRConfig,
    vertical_config_from_bytes,
    vertical_config_to_bytes,
)
from protocols.vertical_lr.messages import (
    KIND_BANK_RESIDUALS,
    KIND_CENTER_GRADIENT_OPENED,
    MaskedGradientValues,
    VerticalCiphertexts,
    masked_values_from_bytes,
    masked_values_to_bytes,
    parse_vertical_message,
    vertical_ciphertexts_from_bytes,
    vertical_ciphertexts_to_bytes,
)

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
STEP = {"run_id": "run-1", "epoch": 2, "batch": 5, "length": 6}


@pytest.fixture(scope="module")
def messages(paillier_pair) -> dict[str, bytes]:
    public_key = paillier_pair[0]
    fingerprint = key_fingerprint(public_key)
    cts = VerticalCiphertexts(
        kind=KIND_BANK_RESIDUALS, key_fingerprint=fingerprint, run_id="run-1", epoch=2, batch=5,
        length=6, ciphertexts=tuple(public_key.raw_encrypt(v, r_value=7) for v in range(6)))
    opened = MaskedGradientValues(
        kind=KIND_CENTER_GRADIENT_OPENED, key_fingerprint=fingerprint, run_id="run-1", epoch=2,
        batch=5, values=tuple(int(public_key.n) - 1 - v for v in range(6)))
    return {"ciphertexts": vertical_ciphertexts_to_bytes(cts),
            "opened": masked_values_to_bytes(opened)}


@settings(FUZZ, max_examples=350)
@given(data=st.data())
def test_vertical_message_parser_raises_only_named_errors(data, fuzz, messages) -> None:
    blob = data.draw(fuzz.bytes_like(messages[data.draw(st.sampled_from(sorted(messages)))]))
    # the valid input parses (a decoder refusing everything fails here)
    assert isinstance(parse_vertical_message(messages["ciphertexts"]), VerticalCiphertexts)
    assert isinstance(parse_vertical_message(messages["opened"]), MaskedGradientValues)
    try:
        message = parse_vertical_message(blob)
    except FedCreditError:
        return
    assert isinstance(message, (VerticalCiphertexts, MaskedGradientValues))


@settings(FUZZ, max_examples=350)
@given(data=st.data())
def test_received_vertical_messages_raise_only_named_errors(data, fuzz, messages,
                                                           paillier_pair) -> None:
    expected = data.draw(st.sampled_from(sorted(messages)))
    blob = data.draw(fuzz.bytes_like(messages[data.draw(st.sampled_from(sorted(messages)))]))
    # the valid input parses (a decoder refusing everything fails here)
    assert vertical_ciphertexts_from_bytes(messages["ciphertexts"], public_key=paillier_pair[0],
                                           kind=KIND_BANK_RESIDUALS, **STEP).length == 6
    assert masked_values_from_bytes(messages["opened"], public_key=paillier_pair[0],
                                    kind=KIND_CENTER_GRADIENT_OPENED, **STEP).length == 6
    try:
        if expected == "ciphertexts":
            message = vertical_ciphertexts_from_bytes(blob, public_key=paillier_pair[0],
                                                      kind=KIND_BANK_RESIDUALS, **STEP)
        else:
            message = masked_values_from_bytes(blob, public_key=paillier_pair[0],
                                               kind=KIND_CENTER_GRADIENT_OPENED, **STEP)
    except FedCreditError:
        return
    assert (message.run_id, message.epoch, message.batch, message.length) == tuple(STEP.values())


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_vertical_lr_config_raises_only_named_errors(data, fuzz) -> None:
    valid = vertical_config_to_bytes(VerticalLRConfig(
        run_id="run-1", n_rows=5000, n_bank_features=4, n_center_features=6, batch_size=256,
        learning_rate=0.1, l2=1e-3, schedule_seed=7))
    blob = data.draw(st.one_of(fuzz.json_like(json.loads(valid)), fuzz.bytes_like(valid)))
    # the valid input parses (a decoder refusing everything fails here)
    assert vertical_config_to_bytes(vertical_config_from_bytes(valid)) == valid
    try:
        config = vertical_config_from_bytes(blob)
    except FedCreditError:
        return
    assert vertical_config_from_bytes(vertical_config_to_bytes(config)) == config
