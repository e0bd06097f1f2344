"""Fuzz the secure WOE/IV binning messages: encrypted labels and encrypted bin counts."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import FedCreditError
from protocols.woe.secure_binning import (
    FeatureBins,
    decrypt_bin_counts,
    encrypt_labels,
    encrypted_bin_counts_from_bytes,
    encrypted_bin_counts_to_bytes,
    encrypted_labels_from_bytes,
    encrypted_labels_to_bytes,
    sum_labels_per_bin,
)

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
LABELS = np.array([0, 1, 1, 0, 0, 1, 0, 0])


@pytest.fixture(scope="module")
def binning(paillier_pair) -> dict[str, bytes]:
    public_key = paillier_pair[0]
    labels = encrypt_labels(LABELS, public_key=public_key, run_id="run-1",
                            rng=random.Random(1))
    bins = [FeatureBins("age", np.array([0, 1, 2, 0, 1, 2, 0, 1]), 3),
            FeatureBins("region", np.array([0, 0, 0, 0, 1, 1, 1, 1]), 2)]
    counts = sum_labels_per_bin(labels, bins, bank_public_key=public_key, run_id="run-1",
                                rng=random.Random(2))
    return {"labels": encrypted_labels_to_bytes(labels),
            "counts": encrypted_bin_counts_to_bytes(counts)}


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_encrypted_labels_raise_only_named_errors(data, fuzz, binning, paillier_pair) -> None:
    valid = binning["labels"]
    blob = data.draw(st.one_of(fuzz.json_like(json.loads(valid)), fuzz.bytes_like(valid)))
    # the valid input parses (a decoder refusing everything fails here)
    assert len(encrypted_labels_from_bytes(valid, public_key=paillier_pair[0], run_id="run-1",
                                           n_rows=len(LABELS)).ciphertexts) == len(LABELS)
    try:
        labels = encrypted_labels_from_bytes(blob, public_key=paillier_pair[0], run_id="run-1",
                                             n_rows=len(LABELS))
    except FedCreditError:
        return
    assert len(labels.ciphertexts) == len(LABELS)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_encrypted_bin_counts_raise_only_named_errors(data, fuzz, binning,
                                                      paillier_pair) -> None:
    valid = binning["counts"]
    blob = data.draw(st.one_of(fuzz.json_like(json.loads(valid)), fuzz.bytes_like(valid)))
    # the valid input parses (a decoder refusing everything fails here)
    intact = decrypt_bin_counts(encrypted_bin_counts_from_bytes(
        valid, public_key=paillier_pair[0], run_id="run-1"), private_key=paillier_pair[1],
        run_id="run-1", n_rows=len(LABELS))
    assert all((bad + good).sum() == len(LABELS) for bad, good in intact.values())
    try:
        counts = encrypted_bin_counts_from_bytes(blob, public_key=paillier_pair[0],
                                                 run_id="run-1")
        opened = decrypt_bin_counts(counts, private_key=paillier_pair[1], run_id="run-1",
                                    n_rows=len(LABELS))
    except FedCreditError:
        return
    for bad, good in opened.values():
        assert (bad >= 0).all() and (good >= 0).all() and (bad + good).sum() == len(LABELS)
