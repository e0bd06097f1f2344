"""Noised releases travel through the Paillier summation as they are: the histogram counts
fit the count slots (a 1,024-bit test key), the opened sum denoises to the grouped counts, and
noised statistics sum exactly."""

from __future__ import annotations

import numpy as np
import pytest

from federation.ml.dp.releases import HIST_GROUP, denoise_sum, noisy_histograms
from federation.ml.metrics import HIST_BINS, score_histograms
from federation.steps.secure_sum import (
    COUNT_BITS,
    KIND_COUNTS,
    KIND_STATS,
    PaillierBankSum,
    PaillierCoordinatorSum,
)
from protocols.paillier.keys import generate_paillier_keypair


@pytest.fixture(scope="module")
def banks() -> tuple[list[PaillierBankSum], PaillierCoordinatorSum]:
    public, private = generate_paillier_keypair(1024, allow_insecure_test_key=True)
    return ([PaillierBankSum(private, max_parties=8, bank=k) for k in range(3)],
            PaillierCoordinatorSum(public, max_parties=8))


def test_noised_histograms_sum_and_denoise_under_paillier(banks) -> None:
    sides, coordinator = banks
    rng = np.random.default_rng(0)
    exact, sealed = [], []
    for side in sides:
        y = (rng.random(1500) < 0.3).astype(np.int8)
        bad, good = score_histograms(y, 1 / (1 + np.exp(-rng.normal(-1 + y, 1.0))))
        exact.append(np.concatenate([bad, good]))
        noisy = noisy_histograms(bad, good, noise_multiplier=1e-9, most=2**COUNT_BITS - 1,
                                 rng=rng)
        sealed.append(side.seal(noisy, kind=KIND_COUNTS, run_id="r", round=1))
    total = sides[0].open(coordinator.combine(sealed, kind=KIND_COUNTS, length=2 * HIST_BINS,
                                              run_id="r", round=1),
                          kind=KIND_COUNTS, run_id="r", round=1)
    est = denoise_sum(total, parties=3)
    grouped = np.sum(exact, axis=0).reshape(-1, HIST_GROUP).sum(axis=1)
    assert np.array_equal(est.reshape(-1, HIST_GROUP).sum(axis=1), grouped)


def test_noised_statistics_sum_exactly_under_paillier(banks) -> None:
    sides, coordinator = banks
    rng = np.random.default_rng(1)
    vectors = [np.array([4200.0, 4199.0, 7.1e8, 1.3e14]) + rng.normal(0, 1e6, 4)
               for _ in sides]  # noisy: fractional, may be negative
    sealed = [side.seal(v, kind=KIND_STATS, run_id="r", round=0)
              for side, v in zip(sides, vectors, strict=True)]
    total = sides[1].open(coordinator.combine(sealed, kind=KIND_STATS, length=4, run_id="r",
                                              round=0), kind=KIND_STATS, run_id="r", round=0)
    assert np.allclose(total, sum(vectors), rtol=1e-9)
