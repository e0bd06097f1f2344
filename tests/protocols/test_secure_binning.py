"""Secure WOE/IV: the encrypted per-bin counts equal the plaintext ones on the joined data."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.ml.binning import categorical_bins, label_counts, quantile_bins, woe_iv
from protocols.errors import (
    InvalidCiphertextError,
    KeyMismatchError,
    MalformedMessageError,
    PackingOverflowError,
    StaleRoundError,
    VectorLengthError,
)
from protocols.paillier.keys import key_fingerprint
from protocols.woe.secure_binning import (
    EncryptedBinCounts,
    EncryptedLabels,
    FeatureBins,
    decrypt_bin_counts,
    encrypt_labels,
    encrypted_bin_counts_from_bytes,
    encrypted_bin_counts_to_bytes,
    encrypted_labels_from_bytes,
    encrypted_labels_to_bytes,
    sum_labels_per_bin,
)

RUN = "bin-run"


@pytest.fixture(scope="module")
def joined() -> pd.DataFrame:
    """300 aligned rows: the bank's label, the center's numeric and categorical columns."""
    rng = np.random.default_rng(3)
    age = rng.normal(40, 10, 300)
    age[rng.random(300) < 0.05] = np.nan
    grade = rng.choice(["A", "B", "C", None], 300, p=[0.4, 0.3, 0.25, 0.05])
    risk = -0.05 * np.nan_to_num(age - 40) + (grade == "C") * 1.0
    y = (rng.random(300) < 1 / (1 + np.exp(-(risk - 1)))).astype(int)
    return pd.DataFrame({"age": age, "grade": grade, "y": y})


def _center_bins(frame: pd.DataFrame) -> list[FeatureBins]:
    age_ids, edges = quantile_bins(frame["age"], 5)
    grade_ids, cats = categorical_bins(frame["grade"])
    return [FeatureBins("age", age_ids, len(edges)),
            FeatureBins("grade", grade_ids, len(cats) + 1)]


def test_secure_iv_equals_plaintext_iv(joined, small_keypair) -> None:
    pub, priv = small_keypair
    labels = encrypt_labels(joined["y"].to_numpy(), public_key=pub, run_id=RUN)
    wire = encrypted_labels_to_bytes(labels)
    received = encrypted_labels_from_bytes(wire, public_key=pub, run_id=RUN, n_rows=300)
    bins = _center_bins(joined)
    counts = sum_labels_per_bin(received, bins, bank_public_key=pub, run_id=RUN)
    back = encrypted_bin_counts_from_bytes(encrypted_bin_counts_to_bytes(counts),
                                           public_key=pub, run_id=RUN)
    secure = decrypt_bin_counts(back, private_key=priv, run_id=RUN, n_rows=300)
    for feature in bins:
        bad, good = label_counts(feature.bin_ids, joined["y"].to_numpy(), feature.n_bins)
        assert secure[feature.name][0].tolist() == bad.tolist()
        assert secure[feature.name][1].tolist() == good.tolist()
        woe_secure, iv_secure = woe_iv(*secure[feature.name])
        woe_plain, iv_plain = woe_iv(bad, good)
        assert abs(iv_secure - iv_plain) <= 1e-6
        np.testing.assert_allclose(woe_secure, woe_plain, atol=1e-12)
        assert iv_plain > 0


def test_bin_sums_are_rerandomised(small_keypair) -> None:
    pub, priv = small_keypair
    y = np.array([1, 0, 1, 1])
    labels = encrypt_labels(y, public_key=pub, run_id=RUN, rng=random.Random(1))
    ids = np.array([0, 0, 1, 1])
    counts = sum_labels_per_bin(labels, [FeatureBins("f", ids, 3)], bank_public_key=pub,
                                run_id=RUN)
    nsq = mpz(pub.nsquare)
    raw = [int(mpz(labels.ciphertexts[0]) * labels.ciphertexts[1] % nsq),
           int(mpz(labels.ciphertexts[2]) * labels.ciphertexts[3] % nsq), 1]
    assert all(c != r for c, r in zip(counts.bad[0], raw, strict=True))
    bad, good = decrypt_bin_counts(counts, private_key=priv, run_id=RUN, n_rows=4)["f"]
    assert bad.tolist() == [1, 2, 0] and good.tolist() == [1, 0, 0]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=12), st.text(max_size=12))
def test_labels_bytes_round_trip(small_keypair, y, run_id) -> None:
    pub, priv = small_keypair
    msg = encrypt_labels(y, public_key=pub, run_id=run_id)
    back = encrypted_labels_from_bytes(encrypted_labels_to_bytes(msg), public_key=pub,
                                       run_id=run_id, n_rows=len(y))
    assert back == msg
    assert [priv.raw_decrypt(c) for c in back.ciphertexts] == y


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(1, 2**1000), min_size=1, max_size=4), min_size=1,
                max_size=3), st.text(max_size=8))
def test_bin_counts_bytes_round_trip(small_keypair, other_small_keypair, bins, run_id) -> None:
    pub = small_keypair[0]
    msg = EncryptedBinCounts(key_fingerprint(pub), run_id,
                             tuple(f"f{i}" for i in range(len(bins))),
                             tuple(tuple(b) for b in bins), tuple(tuple(b[::-1]) for b in bins))
    wire = encrypted_bin_counts_to_bytes(msg)
    assert encrypted_bin_counts_from_bytes(wire, public_key=pub, run_id=run_id) == msg
    with pytest.raises(KeyMismatchError):
        encrypted_bin_counts_from_bytes(wire, public_key=other_small_keypair[0], run_id=run_id)
    with pytest.raises(MalformedMessageError):
        encrypted_bin_counts_from_bytes(wire[:-3], public_key=pub, run_id=run_id)


def test_label_message_errors(small_keypair, other_small_keypair) -> None:
    pub, _ = small_keypair
    wire = encrypted_labels_to_bytes(encrypt_labels([1, 0, 1], public_key=pub, run_id=RUN))
    with pytest.raises(KeyMismatchError):
        encrypted_labels_from_bytes(wire, public_key=other_small_keypair[0], run_id=RUN,
                                    n_rows=3)
    with pytest.raises(StaleRoundError):
        encrypted_labels_from_bytes(wire, public_key=pub, run_id="old", n_rows=3)
    with pytest.raises(VectorLengthError):
        encrypted_labels_from_bytes(wire, public_key=pub, run_id=RUN, n_rows=4)
    doc = json.loads(wire)
    doc["c"][0] = format(pub.n, "x")
    with pytest.raises(InvalidCiphertextError):
        encrypted_labels_from_bytes(json.dumps(doc).encode(), public_key=pub, run_id=RUN,
                                    n_rows=3)
    for bad in (b"", b"{", b"[]", wire[:-5], json.dumps({"kind": "binning-labels"}).encode(),
                wire.replace(b'"v":1', b'"v":2'), wire.replace(b'"c":["', b'"c":["zz')):
        with pytest.raises(MalformedMessageError):
            encrypted_labels_from_bytes(bad, public_key=pub, run_id=RUN, n_rows=3)
    with pytest.raises(ValueError, match="0 and 1"):
        encrypt_labels([0, 2], public_key=pub, run_id=RUN)


def test_center_and_bank_checks(small_keypair) -> None:
    pub, priv = small_keypair
    labels = encrypt_labels([1, 0, 1, 0], public_key=pub, run_id=RUN)
    with pytest.raises(ValueError, match="fewer than 2 rows"):
        sum_labels_per_bin(labels, [FeatureBins("f", np.array([0, 0, 0, 1]), 2)],
                           bank_public_key=pub, run_id=RUN, min_bin_rows=2)
    with pytest.raises(ValueError, match="bin ids"):
        sum_labels_per_bin(labels, [FeatureBins("f", np.array([0, 1]), 2)],
                           bank_public_key=pub, run_id=RUN)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        FeatureBins("f", np.array([0, 2]), 2)
    counts = sum_labels_per_bin(labels, [FeatureBins("f", np.array([0, 1, 1, 0]), 2)],
                                bank_public_key=pub, run_id=RUN)
    with pytest.raises(PackingOverflowError, match="inconsistent"):
        decrypt_bin_counts(counts, private_key=priv, run_id=RUN, n_rows=5)
    swapped = EncryptedBinCounts(counts.key_fingerprint, RUN, counts.features, counts.rows,
                                 counts.bad)  # bad > rows in some bin
    with pytest.raises(PackingOverflowError):
        decrypt_bin_counts(swapped, private_key=priv, run_id=RUN, n_rows=4)
    with pytest.raises(StaleRoundError):
        decrypt_bin_counts(counts, private_key=priv, run_id="x", n_rows=4)
    with pytest.raises(ValueError, match="distinct"):
        EncryptedBinCounts(key_fingerprint(pub), RUN, ("a", "a"), ((1,), (1,)), ((1,), (1,)))
    with pytest.raises(ValueError, match="non-empty"):
        EncryptedLabels(key_fingerprint(pub), RUN, ())


def test_bin_sums_hide_the_banks_own_randomness(cubic_keypair, key_holder_view) -> None:
    """The bank predicts the cubic character of each returned bin sum from its own label
    randomness: with the subgroup randomiser ``hs**a`` the residual indices of 12 runs all
    lay on one line of ``Z_3**2`` (``<h>``); with a uniform ``r**n`` they span the plane."""
    public = cubic_keypair[0]
    y = np.random.default_rng(6).integers(0, 2, 30)
    ids = np.arange(30) % 3
    labels = encrypt_labels(y, public_key=public, run_id=RUN, rng=random.Random(1))
    own = [key_holder_view.cubic_index(key_holder_view.randomness(c))
           for c in labels.ciphertexts]
    predicted = [sum(own[i][k] for i in np.flatnonzero(ids == 0)) % 3 for k in (0, 1)]
    residual = []
    for trial in range(12):
        counts = sum_labels_per_bin(labels, [FeatureBins("f", ids, 3)], bank_public_key=public,
                                    run_id=RUN, rng=random.Random(100 + trial))
        seen = key_holder_view.cubic_index(key_holder_view.randomness(counts.bad[0][0]))
        residual.append(((seen[0] - predicted[0]) % 3, (seen[1] - predicted[1]) % 3))
    assert any((a[0] * b[1] - a[1] * b[0]) % 3 for a in residual for b in residual)
