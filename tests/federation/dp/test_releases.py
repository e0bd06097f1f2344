"""Noised releases: histogram groups, offsets and denoising; private clipping bounds and the
noised statistics in the non-private layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from federation.data.table import CreditTable
from federation.ml.dp.releases import (
    HIST_GROUP,
    HIST_OFFSET,
    LADDER_PER_OCTAVE,
    clipping_bounds,
    consistent_stats,
    denoise_sum,
    group_centres,
    magnitude_steps,
    noisy_histograms,
    noisy_stats_vector,
)
from federation.ml.metrics import HIST_BINS, auc_ks_from_histograms, score_histograms
from federation.ml.preprocess import local_schema, local_stats_vector, merge_schemas


def scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.25).astype(np.int8)
    logit = rng.normal(-1.5 + 1.2 * y, 1.0)
    return score_histograms(y, 1 / (1 + np.exp(-logit)))


def test_group_counts_sit_at_the_centres_with_the_offset_and_nothing_else() -> None:
    bad, good = scores(np.random.default_rng(0), 3000)
    sealed = noisy_histograms(bad, good, noise_multiplier=1e-9, most=2**20 - 1,
                              rng=np.random.default_rng(1))
    assert sealed.shape == (2 * HIST_BINS,) and sealed.dtype == np.int64 and sealed.min() >= 0
    centres = group_centres()
    assert centres.size == HIST_BINS // HIST_GROUP
    mask = np.zeros(HIST_BINS, dtype=bool)
    mask[centres] = True
    for half, counts in enumerate((bad, good)):
        part = sealed[half * HIST_BINS:(half + 1) * HIST_BINS]
        assert not part[~mask].any()  # structural zeros carry nothing
        grouped = counts.reshape(-1, HIST_GROUP).sum(axis=1)
        assert np.array_equal(part[mask] - HIST_OFFSET, grouped)


def test_denoised_sum_of_banks_is_close_and_the_auc_follows() -> None:
    rng = np.random.default_rng(2)
    banks = [scores(rng, 1800) for _ in range(5)]
    total = np.sum([noisy_histograms(b, g, noise_multiplier=5.0, most=2**20 - 1, rng=rng)
                    for b, g in banks], axis=0)
    est = denoise_sum(total, parties=5)
    assert est.min() >= 0
    bad = np.sum([b for b, _ in banks], axis=0)
    good = np.sum([g for _, g in banks], axis=0)
    exact_auc = auc_ks_from_histograms(bad, good)[0]
    noisy_auc = auc_ks_from_histograms(est[:HIST_BINS], est[HIST_BINS:])[0]
    assert abs(noisy_auc - exact_auc) < 0.02
    assert abs(est.sum() - (bad.sum() + good.sum())) < 0.02 * (bad.sum() + good.sum())
    # the tails far from the data are zeroed, not left as noise
    assert not est[:HIST_BINS][:HIST_GROUP * 4].any()


def test_denoise_handles_two_parts_and_refuses_other_lengths() -> None:
    bad, good = scores(np.random.default_rng(3), 2000)
    one = noisy_histograms(bad, good, noise_multiplier=1e-9, most=2**20 - 1)
    est = denoise_sum(np.concatenate([one, one]), parties=1)
    assert np.array_equal(est[:2 * HIST_BINS], est[2 * HIST_BINS:])
    with pytest.raises(ValueError, match="parts of"):
        denoise_sum(np.zeros(HIST_BINS), parties=1)


def test_counts_are_clamped_into_the_slot() -> None:
    bad = np.zeros(HIST_BINS, dtype=np.int64)
    bad[0] = 10**7
    sealed = noisy_histograms(bad, bad, noise_multiplier=1.0, most=2**20 - 1)
    assert sealed.max() == 2**20 - 1


def table(values: dict[str, list[float]], cats: dict[str, list[str | None]]) -> CreditTable:
    n = len(next(iter(values.values())))
    return CreditTable(source="t.csv", target="bad", y=np.zeros(n, dtype=np.int8),
                       numeric=pd.DataFrame(values, dtype=np.float64),
                       categorical=pd.DataFrame(cats, dtype=object))


def test_magnitude_steps_and_bounds_cover_the_top_populated_step() -> None:
    assert list(magnitude_steps(np.array([0.5, -0.9, 1.0, 2.0, -2.0, 3.0]))) == [
        0, 0, 1, 1 + LADDER_PER_OCTAVE, 1 + LADDER_PER_OCTAVE, 7]
    rng = np.random.default_rng(4)
    t = table({"amount": list(rng.uniform(900, 1000, 5000)), "age": list(rng.integers(20, 70, 5000))},
              {})
    layout = merge_schemas([local_schema(t)])
    bounds = clipping_bounds(t, layout, noise_multiplier=1.0, rng=rng)
    assert 1000 <= bounds[0] <= 1000 * 2 ** (1 / LADDER_PER_OCTAVE) * 1.01
    assert 50 <= bounds[1] <= 70 * 1.2  # the top steps with many values (a few may be cut)


def test_noised_stats_keep_the_layout_and_are_close_with_little_noise() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    t = table({"amount": list(rng.uniform(900, 1000, n)), "age": list(rng.integers(20, 60, n))},
              {"region": list(rng.choice(np.array(["north", "south", None], dtype=object), n))})
    layout = merge_schemas([local_schema(t)])
    exact = local_stats_vector(t, layout)
    noisy = noisy_stats_vector(t, layout, noise_multiplier=1e-6, rng=rng)
    assert noisy.shape == exact.shape == (layout.stats_length,)
    assert np.allclose(noisy, exact, rtol=1e-3)
    very = noisy_stats_vector(t, layout, noise_multiplier=5.0, rng=rng)
    assert not np.allclose(very, exact, rtol=1e-3)  # the noise is there
    assert abs(very[0] - n) < 0.05 * n


def test_consistent_stats_keeps_counts_positive() -> None:
    t = table({"a": [1.0, 2.0]}, {})
    layout = merge_schemas([local_schema(t)])
    fixed = consistent_stats(layout, np.array([-3.0, -1.0, 5.0, 7.0]))
    assert fixed[0] == 1.0 and fixed[1] == 1.0 and fixed[2] == 5.0
