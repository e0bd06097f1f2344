"""Noised releases of a bank's aggregates: score histograms and preprocessing statistics.

Protocol steps: in a ``dp-epsilon > 0`` run a bank adds calibrated Gaussian noise to its
score histograms (every round's evaluation) and to its preprocessing statistics before it
seals them (:mod:`federation.steps.horizontal_bank`); the banks post-process the opened sums.
The noise multipliers come from the bank's plan (:mod:`federation.ml.dp.budget`).

*Score histograms* (test rows every round; after the last round also the training rows', for
the calibration map): a row is one count, so the L2 sensitivity is 1. Under DP the
1,024 logit bins per class are released in groups of :data:`HIST_GROUP` (the group's count sits
in its middle bin, every other bin is a structural zero that carries no data and no noise):
fewer noisy numbers, a more accurate AUC. Each group count gets ``N(0, z^2)`` plus the public
offset :data:`HIST_OFFSET` and is rounded, so the sealed counts stay non-negative integers
(the summation packs them unsigned). The banks remove the offsets of the ``parties`` that
contributed and zero the groups outside the span the data clearly occupies
(:func:`denoise_sum`; post-processing: it costs no privacy and keeps the AUC from drowning in
the noise of empty groups). The released histograms in ``results.json`` are these denoised sums.

*Preprocessing statistics* (training rows): counts, sums and sums of squares have unbounded
sensitivity unless the values are clipped, and no public range is known. So two releases:

1. a *magnitude ladder* per numeric column (how many values have ``|x|`` in
   ``[2^((k-1)/4), 2^(k/4))``; a row is one count per column, L2 sensitivity ``sqrt(p)``),
   noised and used only inside the bank to pick the clipping bound ``B_j = 2^(k/4)`` of the
   highest clearly populated step;
2. the statistics vector of :func:`federation.ml.preprocess.local_stats_vector` over values
   clipped to ``[-B_j, B_j]``; entry ``i`` has its own sensitivity ``s_i`` (1 for counts,
   ``B_j`` for sums, ``B_j^2`` for sums of squares) and a row touches at most
   ``m = 1 + 3p + c`` entries, so the vector divided by ``s`` has L2 sensitivity ``sqrt(m)`` and
   entry ``i`` gets ``N(0, (z sqrt(m) s_i)^2)``.

Security assumption: the noise generator is seeded from :mod:`secrets` unless a test passes
``rng``; the bounds ``B_j`` never leave the bank (they shape the noise, an adaptive
composition the accountant counts as two releases).
"""

from __future__ import annotations

import secrets
from dataclasses import replace

import numpy as np

from federation.data.table import CreditTable
from federation.ml.metrics import HIST_BINS
from federation.ml.preprocess import FeatureLayout, local_stats_vector

HIST_GROUP = 16
"""Fine logit bins per released bin under DP (1,024 / 16 = 64 released bins per class)."""
HIST_OFFSET = 1 << 12
"""Public offset of every released group count (keeps noisy counts non-negative)."""
DENOISE_Z = 3.0
"""Summed group counts (both classes) within this many noise deviations of zero are read as
empty when they lie outside the span of the clearly occupied groups."""
LADDER_PER_OCTAVE = 4
"""Magnitude steps per doubling: step ``k >= 1`` holds ``|x|`` in ``[2^((k-1)/4), 2^(k/4))``, so
a bound is at most 19 % above the largest value of its step."""
LADDER_STEPS = 48 * LADDER_PER_OCTAVE
"""Steps ``[0, 1), [1, 2^0.25), ... , [2^47.75, inf)``."""
LADDER_Z = 5.0
"""A ladder step counts as populated when its noisy count exceeds this many noise deviations
(so that among 192 steps x p columns hardly any empty step passes by noise alone)."""


def secret_rng() -> np.random.Generator:
    """A generator seeded from the operating system's secret randomness."""
    return np.random.default_rng(secrets.randbits(128))


def group_centres() -> np.ndarray:
    """The fine-bin indices that carry the released group counts (one per group)."""
    return np.arange(HIST_BINS // HIST_GROUP) * HIST_GROUP + HIST_GROUP // 2


def noisy_histograms(bad: np.ndarray, good: np.ndarray, *, noise_multiplier: float,
                     most: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """The sealed vector ``[bad..., good...]`` (2 x 1,024 integers) of one bank under DP.

    Parameters
    ----------
    bad, good : int arrays of length :data:`~federation.ml.metrics.HIST_BINS`
        The bank's exact per-class score histograms.
    noise_multiplier : float
        Standard deviation of the noise of each group count (sensitivity 1).
    most : int
        The largest value a sealed count may hold (the summation's slot limit).
    """
    rng = rng if rng is not None else secret_rng()
    out = np.zeros(2 * HIST_BINS, dtype=np.int64)
    centres = group_centres()
    for half, counts in enumerate((bad, good)):
        grouped = np.asarray(counts, dtype=np.float64).reshape(-1, HIST_GROUP).sum(axis=1)
        noisy = grouped + rng.normal(0.0, noise_multiplier, grouped.size) + HIST_OFFSET
        out[half * HIST_BINS + centres] = np.clip(np.rint(noisy), 0, most).astype(np.int64)
    return out


def denoise_sum(opened: np.ndarray, *, parties: int) -> np.ndarray:
    """Estimates of the counts from the opened sum of ``parties`` banks' noisy histograms.

    ``opened`` holds one or more parts of ``[bad..., good...]`` (2 x 1,024 values each: the
    test rows' histograms, then after the last round the training rows'). In each part the
    offsets are removed and the *support* is found: the span from the first to the last group
    whose two classes together exceed :data:`DENOISE_Z` deviations of their noise. Groups
    outside it and bins that are not group centres become 0; inside it the noisy counts stay
    as they are (unbiased), negatives raised to 0. The noise level is read from the sum itself
    (the root mean square of the negative group counts, which only noise makes negative), so
    every bank derives the same estimates without knowing the others' noise.
    """
    opened = np.asarray(opened, dtype=np.float64)
    width = 2 * HIST_BINS
    if opened.size % width:
        raise ValueError(f"holds {opened.size} counts, not parts of {width}")
    centres = group_centres()
    out = np.zeros(opened.size, dtype=np.int64)
    for at in range(0, opened.size, width):
        values = np.stack([opened[at + half * HIST_BINS + centres] for half in range(2)])
        values -= parties * HIST_OFFSET
        negative = values[values < 0]
        sigma = float(np.sqrt(np.mean(negative**2))) if negative.size else 0.0
        support = np.flatnonzero(values.sum(axis=0) > DENOISE_Z * np.sqrt(2.0) * sigma)
        if not support.size:
            continue
        inside = np.zeros(centres.size, dtype=bool)
        inside[support.min():support.max() + 1] = True
        for half in range(2):
            kept = np.where(inside, np.maximum(np.rint(values[half]), 0), 0)
            out[at + half * HIST_BINS + centres] = kept.astype(np.int64)
    return out


def consistent_stats(layout: FeatureLayout, total: np.ndarray) -> np.ndarray:
    """The opened noisy statistics with the row count and each column's count at least 1
    (post-processing, so that means and shares stay defined)."""
    total = np.array(total, dtype=np.float64)
    total[0] = max(total[0], 1.0)
    for j in range(len(layout.numeric)):
        total[1 + 3 * j] = max(total[1 + 3 * j], 1.0)
    return total


def magnitude_steps(x: np.ndarray) -> np.ndarray:
    """The ladder step of each present value: 0 for ``|x| < 1``, else
    ``floor(4 log2|x|) + 1``."""
    a = np.abs(x)
    steps = np.zeros(a.shape, dtype=np.int64)
    big = a >= 1
    steps[big] = np.floor(LADDER_PER_OCTAVE * np.log2(a[big])).astype(np.int64) + 1
    return np.minimum(steps, LADDER_STEPS - 1)


def clipping_bounds(table: CreditTable, layout: FeatureLayout, *, noise_multiplier: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Release 1 (kept in the bank): each numeric column's bound ``B_j = 2^(k/4)``, the top of
    the highest ladder step ``k`` whose noisy count exceeds :data:`LADDER_Z` noise deviations
    (1 if none). Values above it are clipped: the bias a private bound costs."""
    p = len(layout.numeric)
    sigma = noise_multiplier * np.sqrt(max(p, 1))
    bounds = np.ones(p)
    for j, col in enumerate(layout.numeric):
        x = table.numeric[col].to_numpy(dtype=np.float64)
        counts = np.bincount(magnitude_steps(x[~np.isnan(x)]), minlength=LADDER_STEPS)
        noisy = counts + rng.normal(0.0, sigma, LADDER_STEPS)
        populated = np.flatnonzero(noisy > LADDER_Z * sigma)
        bounds[j] = 2.0 ** (populated.max() / LADDER_PER_OCTAVE) if populated.size else 1.0
    return bounds


def noisy_stats_vector(table: CreditTable, layout: FeatureLayout, *, noise_multiplier: float,
                       rng: np.random.Generator | None = None) -> np.ndarray:
    """Release 2: the statistics vector of values clipped to the bank's bounds, noised.

    Same layout as :func:`~federation.ml.preprocess.local_stats_vector` (so the sums open and
    combine as in a non-private run).
    """
    rng = rng if rng is not None else secret_rng()
    bounds = clipping_bounds(table, layout, noise_multiplier=noise_multiplier, rng=rng)
    numeric = table.numeric.copy()
    for col, bound in zip(layout.numeric, bounds, strict=True):
        numeric[col] = numeric[col].clip(-bound, bound)
    vector = local_stats_vector(replace(table, numeric=numeric), layout)
    scale = np.ones_like(vector)
    for j, bound in enumerate(bounds):
        scale[2 + 3 * j], scale[3 + 3 * j] = bound, bound**2
    touched = 1 + 3 * len(layout.numeric) + len(layout.categorical)
    noise = rng.normal(0.0, 1.0, vector.size) * noise_multiplier * np.sqrt(touched) * scale
    return vector + noise
