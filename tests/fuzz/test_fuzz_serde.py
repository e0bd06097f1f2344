"""Fuzz the encrypted-aggregation wire format: encrypted vectors and codec parameters."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.aggregation.encrypted_vector import EncryptedVector
from protocols.aggregation.packing import PackingCodec
from protocols.aggregation.secure_aggregation import encrypt_update
from protocols.aggregation.serde import (
    codec_from_bytes,
    codec_to_bytes,
    encrypted_vector_from_bytes,
    encrypted_vector_from_bytes_unchecked,
    encrypted_vector_to_bytes,
)
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
CODEC = PackingCodec(lo=-2.0, hi=2.0, bits=12, max_parties=5, key_bits=512)
LENGTH = 70


@pytest.fixture(scope="module")
def vector_bytes(paillier_pair) -> bytes:
    vector = encrypt_update(np.linspace(-2, 2, LENGTH), public_key=paillier_pair[0], codec=CODEC,
                            run_id="run-1", round=7, rng=random.Random(0))
    return encrypted_vector_to_bytes(vector)


@settings(FUZZ, max_examples=800)
@given(data=st.data())
def test_unchecked_vector_parser_raises_only_named_errors(data, fuzz, vector_bytes) -> None:
    blob = data.draw(fuzz.bytes_like(vector_bytes))
    # the valid input parses (a decoder refusing everything fails here)
    assert encrypted_vector_to_bytes(encrypted_vector_from_bytes_unchecked(vector_bytes)) \
        == vector_bytes
    try:
        vector = encrypted_vector_from_bytes_unchecked(blob)
    except FedCreditError:
        return
    assert isinstance(vector, EncryptedVector)
    assert encrypted_vector_from_bytes_unchecked(encrypted_vector_to_bytes(vector)) == vector


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_checked_vector_parser_raises_only_named_errors(data, fuzz, vector_bytes,
                                                       paillier_pair) -> None:
    blob = data.draw(fuzz.bytes_like(vector_bytes))
    # the valid input parses (a decoder refusing everything fails here)
    assert encrypted_vector_from_bytes(vector_bytes, public_key=paillier_pair[0],
                                       expected_length=LENGTH, run_id="run-1", round=7,
                                       codec=CODEC).length == LENGTH
    try:
        vector = encrypted_vector_from_bytes(blob, public_key=paillier_pair[0],
                                             expected_length=LENGTH, run_id="run-1", round=7,
                                             codec=data.draw(st.sampled_from([CODEC, None])))
    except FedCreditError:
        return
    assert vector.length == LENGTH and vector.run_id == "run-1" and vector.round == 7


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_codec_parser_raises_only_named_errors(data, fuzz) -> None:
    valid = codec_to_bytes(CODEC)
    blob = data.draw(st.one_of(fuzz.json_like(json.loads(valid)), fuzz.bytes_like(valid)))
    # the valid input parses (a decoder refusing everything fails here)
    assert codec_from_bytes(valid) == CODEC
    try:
        codec = codec_from_bytes(blob)
    except FedCreditError:
        return
    assert isinstance(codec, PackingCodec)
    assert codec_from_bytes(codec_to_bytes(codec)) == codec

