"""Vertical LR against a deviating peer: what each attack recovered, and what now stops it.

1. The center returns the bank's own residual ciphertexts, packed, as its "masked gradient":
   the bank's opening check refuses plaintexts beyond the step's slots. What fits inside
   the slots cannot be told from a masked sum (documented limit, tested too).
2. The first batch from zero weights: the center's exact gradient is a knapsack over the
   labels; 32 rows and 4 center features are solved exactly, and such batches are refused.
3. The mask's subgroup randomiser let a character of the key holder's own randomness survive;
   the masked gradient now carries a uniform ``r**n``.
"""

from __future__ import annotations

import math
import random

import gmpy2
import numpy as np
import pytest

from protocols.errors import PlaintextShapeError
from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.keys import key_fingerprint
from protocols.paillier.matvec import add_plaintexts, pack_ciphertexts
from protocols.vertical_lr.config import (
    KNAPSACK_SLACK_BITS,
    knapsack_label_bits,
    min_batch_rows,
)
from protocols.vertical_lr.encoding import (
    SLOT_BITS,
    VALUE_FRAC_BITS,
    check_masked_slots,
    gradient_slot_layout,
    quantize_features,
    unpack_slots,
)
from protocols.vertical_lr.messages import (
    KIND_BANK_MASKED_GRADIENT,
    KIND_CENTER_MASKED_GRADIENT,
    VerticalCiphertexts,
)
from protocols.vertical_lr.steps import (
    VerticalLRConfig,
    bank_open_center_gradient,
    bank_residual_step,
    center_gradient_step,
    center_open_bank_gradient,
    center_partial_step,
    initial_state,
    make_bank_party,
    make_center_party,
)

RUN = "run-dev"
ROWS, BATCH = 96, 48


def _parties(bank_keys, center_keys):
    rng = np.random.default_rng(21)
    xb, xc = rng.normal(size=(ROWS, 3)), rng.normal(size=(ROWS, 2))
    y = (rng.random(ROWS) < 0.4).astype(float)
    config = VerticalLRConfig(RUN, ROWS, 3, 2, batch_size=BATCH, learning_rate=0.3)
    bank = make_bank_party(xb, y, config=config, private_key=bank_keys[1],
                           peer_public_key=center_keys[0])
    center = make_center_party(xc, config=config, private_key=center_keys[1],
                               peer_public_key=bank_keys[0])
    return bank, center


@pytest.fixture(scope="module")
def parties(small_keypair, other_small_keypair):
    """A bank (key 1) and a center (key 2) on 96 rows, 3 + 2 features, batches of 48."""
    return _parties(small_keypair, other_small_keypair)


def _pack_as_64_bit_slots(cts: list[int], public) -> int:
    """The deviating peer's trick: ``[[sum_k (v_k + 2**63) 2**(64 k)]]`` from ``[[v_k]]``."""
    offset = sum((1 << (SLOT_BITS - 1)) << (SLOT_BITS * k) for k in range(len(cts)))
    return add_plaintexts(pack_ciphertexts(cts, SLOT_BITS, len(cts), public), [offset],
                          public)[0]


def _labels_read_from(values: list[int], count: int, n: int) -> np.ndarray:
    """Zero weights: ``d = 0.5 - y``, so ``y = 1`` exactly where the residual is negative."""
    return (unpack_slots(values[:1], count, n) < 0).astype(float)


# ------------------------------------------------------------------ 1. chosen ciphertexts
def test_bank_refuses_its_own_residuals_packed_as_the_center_gradient(parties) -> None:
    bank, _ = parties
    public, n = bank.public_key, int(bank.public_key.n)
    residuals, secrets = bank_residual_step(bank, initial_state(bank), epoch=0, batch=0)
    per = (n.bit_length() - 1) // SLOT_BITS  # 7 at 512 bits, 31 at 2048 bits
    evil = _pack_as_64_bit_slots(list(residuals.ciphertexts[:per]), public)
    msg = VerticalCiphertexts(KIND_CENTER_MASKED_GRADIENT, key_fingerprint(public), RUN, 0, 0,
                              2, (evil,))
    # what the bank used to decrypt and return: the labels of `per` rows
    opened = decrypt_raw_many([evil], bank.private_key, processes=1)
    np.testing.assert_array_equal(_labels_read_from(opened, per, n),
                                  bank.labels[secrets.rows[:per]])
    with pytest.raises(PlaintextShapeError, match="beyond its 2 masked slots"):
        bank_open_center_gradient(bank, msg, epoch=0, batch=0)


def test_center_refuses_extra_slots_from_the_bank(parties) -> None:
    _, center = parties
    public = center.public_key
    partials, _ = center_partial_step(center, initial_state(center), epoch=0, batch=0)
    evil = _pack_as_64_bit_slots(list(partials.ciphertexts[:7]), public)
    msg = VerticalCiphertexts(KIND_BANK_MASKED_GRADIENT, key_fingerprint(public), RUN, 0, 0,
                              4, (evil, evil))  # 4 sums, 2 per 512-bit plaintext
    with pytest.raises(PlaintextShapeError):
        center_open_bank_gradient(center, msg, epoch=0, batch=0)


def test_opening_check_accepts_exactly_the_honest_slots() -> None:
    layout = gradient_slot_layout(BATCH, 2**511)
    full = (1 << (layout.slot_bits * 2)) - 1
    check_masked_slots([full], 2, layout)
    with pytest.raises(PlaintextShapeError):
        check_masked_slots([full + 1], 2, layout)  # one bit into a third slot
    with pytest.raises(PlaintextShapeError):
        check_masked_slots([1, 1], 2, layout)  # an extra plaintext


def test_deviating_center_still_reads_residuals_within_its_slots(parties) -> None:
    """Documented limit (docs/security.md): inside the allowed slot bits a chosen value
    cannot be told from ``S + 2**b + r``, so a deviating center still reads about
    ``k * slot_bits / 64`` residuals per batch. Closing it needs proofs of correct
    computation or secret-shared gradients."""
    bank, _ = parties
    public, n = bank.public_key, int(bank.public_key.n)
    layout = gradient_slot_layout(BATCH, n)
    fits = 2 * layout.slot_bits // SLOT_BITS
    residuals, secrets = bank_residual_step(bank, initial_state(bank), epoch=0, batch=0)
    evil = _pack_as_64_bit_slots(list(residuals.ciphertexts[:fits]), public)
    msg = VerticalCiphertexts(KIND_CENTER_MASKED_GRADIENT, key_fingerprint(public), RUN, 0, 0,
                              2, (evil,))
    opened = bank_open_center_gradient(bank, msg, epoch=0, batch=0)
    np.testing.assert_array_equal(_labels_read_from(list(opened.values), fits, n),
                                  bank.labels[secrets.rows[:fits]])


# ------------------------------------------------------------------ 2. label knapsack
def _knapsack_solutions(xq: np.ndarray, target: np.ndarray) -> tuple[int, list[np.ndarray]]:
    """Meet in the middle: all ``y in {0,1}^m`` with ``xq^T y = target`` (count, first few)."""
    m = xq.shape[0]
    half = m // 2
    base = 2 * int(np.abs(xq).sum()) + 1

    def table(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bits = ((np.arange(1 << len(block))[:, None] >> np.arange(len(block))) & 1)
        return bits, bits @ block

    def key(sums: np.ndarray) -> np.ndarray:
        return ((sums + base // 2) * base ** np.arange(xq.shape[1])).sum(axis=1)

    bits_a, sums_a = table(xq[:half])
    bits_b, sums_b = table(xq[half:])
    keys_a, keys_b = key(sums_a), key(target - sums_b)
    uniq_b, counts_b = np.unique(keys_b, return_counts=True)
    pos = np.searchsorted(uniq_b, keys_a).clip(0, len(uniq_b) - 1)
    hit = uniq_b[pos] == keys_a
    count = int(counts_b[pos[hit]].sum())
    found = []
    for ia in np.flatnonzero(hit)[:3]:
        for ib in np.flatnonzero(keys_b == keys_a[ia])[:3]:
            found.append(np.concatenate([bits_a[ia], bits_b[ib]]))
    return count, found


def _first_batch_sums(xq: np.ndarray, y: np.ndarray) -> np.ndarray:
    """What the center unmasks in the first batch (zero weights), back to ``xq^T y``."""
    d = np.rint((0.5 - y) * 2**VALUE_FRAC_BITS).astype(np.int64)
    s_c = 4 * (xq.T.astype(object) @ d.astype(object))  # exact, as in the protocol
    half = 4 * (xq.T.astype(object) @ np.full(len(y), 1 << (VALUE_FRAC_BITS - 1), dtype=object))
    return np.array([(h - s) // (4 << VALUE_FRAC_BITS) for h, s in zip(half, s_c, strict=True)],
                    dtype=np.int64)


def test_first_batch_knapsack_of_32_rows_gave_the_labels_and_is_refused() -> None:
    rng = np.random.default_rng(11)
    xq = quantize_features(rng.normal(size=(32, 4)))  # 4 center features, as in the UCI split
    y = (rng.random(32) < 0.4).astype(np.int64)
    count, found = _knapsack_solutions(xq, _first_batch_sums(xq, y))
    assert count == 1 and np.array_equal(found[0], y)  # every label of the batch
    config = VerticalLRConfig(RUN, 1000, 3, 4, batch_size=32, learning_rate=0.1)
    with pytest.raises(ValueError, match="knapsack"):
        config.check_label_knapsack()
    assert min_batch_rows(3, 4) == 83


def test_bank_refuses_to_encrypt_residuals_for_too_small_batches(small_keypair,
                                                                  other_small_keypair) -> None:
    rng = np.random.default_rng(13)
    config = VerticalLRConfig(RUN, 64, 3, 4, batch_size=32, learning_rate=0.1)
    bank = make_bank_party(rng.normal(size=(64, 3)), rng.integers(0, 2, 64), config=config,
                           private_key=small_keypair[1], peer_public_key=other_small_keypair[0])
    with pytest.raises(ValueError, match="at least 83 rows"):
        bank_residual_step(bank, initial_state(bank), epoch=0, batch=0)


def test_at_the_bound_the_knapsack_is_underdetermined() -> None:
    """One center feature: 32 rows pass; the exact sum fits millions of labelings."""
    rng = np.random.default_rng(12)
    xq = quantize_features(rng.normal(size=(32, 1)))
    y = (rng.random(32) < 0.4).astype(np.int64)
    VerticalLRConfig(RUN, 1000, 3, 1, batch_size=32, learning_rate=0.1).check_label_knapsack()
    count, _ = _knapsack_solutions(xq, _first_batch_sums(xq, y))
    assert count >= 2**KNAPSACK_SLACK_BITS


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8, 12, 20, 40])
def test_accepted_batches_leave_the_slack_in_labelings(k) -> None:
    for m in (min_batch_rows(0, k), min_batch_rows(0, k) + 1000):
        assert (1280 * m + 1) ** k * 2**KNAPSACK_SLACK_BITS <= 2**m  # exact integers
        assert m - knapsack_label_bits(m, k) >= KNAPSACK_SLACK_BITS
    m = min_batch_rows(0, k)
    if m > 32:
        assert (m - 1) - k * math.log2(1280 * (m - 1) + 1) < KNAPSACK_SLACK_BITS


# ------------------------------------------------------------------ 3. randomness character
def test_masked_gradient_hides_the_key_holders_randomness(cubic_keypair, other_small_keypair,
                                                          key_holder_view) -> None:
    """The bank (key 1 with p = q = 1 mod 3) predicts the cubic character of the returned
    randomness from its own residual randomness and the center's features: with the subgroup
    randomiser ``hs**a`` the 12 residual indices all lay on one line of ``Z_3**2``
    (``<h>``); with a uniform ``r**n`` they span the plane."""
    bank, center = _parties(cubic_keypair, other_small_keypair)
    residuals, _ = bank_residual_step(bank, initial_state(bank), epoch=0, batch=0,
                                      rng=random.Random(1))
    _, secrets = center_partial_step(center, initial_state(center), epoch=0, batch=0)
    own = [key_holder_view.cubic_index(key_holder_view.randomness(c))
           for c in residuals.ciphertexts]
    layout = gradient_slot_layout(BATCH, int(bank.public_key.n))
    xq = center.features[secrets.rows].astype(object)
    exponents = 4 * sum(xq[:, j] << (layout.slot_bits * j) for j in range(2))  # slots 0, 1
    predicted = [sum(int(e) * i[k] for e, i in zip(exponents, own, strict=True)) % 3
                 for k in (0, 1)]
    residual = []
    for trial in range(12):
        masked, _ = center_gradient_step(center, secrets, residuals, rng=random.Random(trial))
        seen = key_holder_view.cubic_index(key_holder_view.randomness(masked.ciphertexts[0]))
        residual.append(((seen[0] - predicted[0]) % 3, (seen[1] - predicted[1]) % 3))
    spans_plane = any((a[0] * b[1] - a[1] * b[0]) % 3 for a in residual for b in residual)
    assert spans_plane
    assert gmpy2.gcd(masked.ciphertexts[0], bank.public_key.n) == 1
