"""Fuzz the wide fixed-point vectors (federated preprocessing statistics) on the wire."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.aggregation.wide_sum import (
    WideEncryptedVector,
    decrypt_wide,
    encrypt_wide,
    validate_wide,
    wide_from_bytes,
    wide_to_bytes,
)
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
VALUES = [3.0, -1.5, 1e9, 0.0]


@pytest.fixture(scope="module")
def wide_bytes(paillier_pair) -> bytes:
    return wide_to_bytes(encrypt_wide(VALUES, public_key=paillier_pair[0], run_id="run-1",
                                      round=0))


@settings(FUZZ, max_examples=600)
@given(data=st.data())
def test_wide_parser_and_receiver_checks_raise_only_named_errors(data, fuzz, wide_bytes,
                                                                 paillier_pair) -> None:
    blob = data.draw(st.one_of(fuzz.json_like(json.loads(wide_bytes)),
                               fuzz.bytes_like(wide_bytes)))
    public_key, private_key = paillier_pair
    # the valid input parses (a decoder refusing everything fails here)
    intact = wide_from_bytes(wide_bytes)
    validate_wide(intact, public_key=public_key, expected_length=len(VALUES), run_id="run-1",
                  round=0)
    assert np.allclose(decrypt_wide(intact, private_key=private_key), VALUES)
    try:
        vector = wide_from_bytes(blob)
        assert isinstance(vector, WideEncryptedVector)
        validate_wide(vector, public_key=public_key, expected_length=len(VALUES), run_id="run-1",
                      round=0)
        values = decrypt_wide(vector, private_key=private_key)
    except FedCreditError:
        return
    assert values.shape == (len(VALUES),) and np.isfinite(values).all()
