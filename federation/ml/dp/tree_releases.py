"""Noised releases of a bank in a boosted-tree DP run, and their post-processing.

Protocol steps (:mod:`federation.steps.tree_bank`), each before the bank seals its vector:

* *bins* (:func:`noisy_counts`): the fine counts on the public grid, which under DP has
  :data:`DP_GRID_CELLS` cells per feature (fewer noisy cells, less noise in the cumulative
  counts the quantile edges come from), and the label sums ``[defaults, rows]``; Gaussian
  noise ``z_stats x sqrt(F + 2)`` on each, the public offset
  :data:`~federation.ml.dp.releases.HIST_OFFSET`, rounded (the sum is sealed as counts).
  :func:`denoise_counts` removes the offsets of the contributing banks and zeroes cells within
  :data:`CELL_Z` noise deviations of zero (post-processing; the base margin comes from the
  noisy label sums);
* *levels* (:func:`noisy_level`): each gradient and hessian cell gets
  ``N(0, (z sqrt(F (1 + 1/16)))^2)`` (:func:`federation.ml.dp.trees.level_sensitivity`),
  rounded to the run's gradient grid ``2**-gradient_bits`` (post-processing, so the sums stay
  exact and every bank takes the same decisions), after ``g`` and ``h`` were clipped to
  ``[-1, 1]`` and ``[0, 1/4]`` (:func:`clip_gradients`);
* *scores*: the test and calibration histograms are the LR run's grouped, offset releases
  (:func:`federation.ml.dp.releases.noisy_histograms`, :func:`~federation.ml.dp.releases.denoise_sum`).

The split rule under DP (:func:`private_split_config`): a child must hold a summed hessian of
at least :data:`MIN_HESSIAN_DEVIATIONS` standard deviations of the noise of a half-node sum
(or the run's ``min-child-weight`` if larger), so that no split or leaf value rests on a
hessian sum the noise could have made (leaf values ``-lr G / (H + l2)`` then stay bounded).
The noise level it uses is the public reference (:func:`~federation.ml.dp.trees.reference_noise_multiplier`),
so every bank takes the same decision. It is a utility rule; the guarantee does not depend on it.

Security assumption: the noise generator is seeded from :mod:`secrets` unless a test passes
``rng``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from federation.ml.dp.releases import HIST_OFFSET, secret_rng
from federation.ml.dp.trees import (
    GRADIENT_BOUND,
    HESSIAN_BOUND,
    counts_sensitivity,
    level_sensitivity,
)
from federation.ml.gbdt.config import GBDTConfig

DP_GRID_CELLS = 64
"""Fine cells per numeric feature under DP (1,024 without)."""
CELL_Z = 2.0
"""An opened fine count within this many noise deviations of zero is read as empty."""
MIN_HESSIAN_DEVIATIONS = 2.0
"""A child's summed hessian must exceed this many deviations of a half-node sum's noise."""


def clip_gradients(g: NDArray[np.float64], h: NDArray[np.float64],
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``g`` in ``[-1, 1]`` and ``h`` in ``[0, 1/4]``: the bounds the sensitivity assumes
    (the logistic loss stays within them; the clip makes the bound hold by construction)."""
    return (np.clip(g, -GRADIENT_BOUND, GRADIENT_BOUND), np.clip(h, 0.0, HESSIAN_BOUND))


def noisy_level(values: NDArray[np.float64], *, noise_multiplier: float, n_features: int,
                gradient_bits: int, rng: np.random.Generator | None = None,
                ) -> NDArray[np.float64]:
    """One level's compact histograms (every cell a row can occupy) with Gaussian noise of
    standard deviation ``noise_multiplier x sqrt(F (1 + 1/16))``, on the gradient grid."""
    rng = rng if rng is not None else secret_rng()
    sigma = noise_multiplier * level_sensitivity(n_features)
    noise = np.ldexp(np.rint(np.ldexp(rng.normal(0.0, sigma, values.size), gradient_bits)),
                     -gradient_bits)
    return np.asarray(values, dtype=np.float64) + noise


def noisy_counts(counts: NDArray[np.float64], *, noise_multiplier: float, n_features: int,
                 most: int, rng: np.random.Generator | None = None) -> NDArray[np.float64]:
    """The fine counts and label sums ``[cells..., defaults, rows]`` of one bank, noised
    (``noise_multiplier x sqrt(F + 2)``), offset by ``HIST_OFFSET``, rounded into
    ``[0, most]``."""
    rng = rng if rng is not None else secret_rng()
    sigma = noise_multiplier * counts_sensitivity(n_features)
    noisy = np.asarray(counts, dtype=np.float64) + rng.normal(0.0, sigma, len(counts))
    return np.clip(np.rint(noisy + HIST_OFFSET), 0, most)


def denoise_counts(opened: NDArray[np.float64], *, parties: int) -> NDArray[np.float64]:
    """Estimates of the summed fine counts and label sums from the opened noisy sum.

    The offsets are removed; the noise level is read from the fine cells themselves (the root
    mean square of the negative ones, which only noise makes negative), so every bank derives
    the same estimates; cells below :data:`CELL_Z` deviations become 0, the rest are rounded.
    The last two values (defaults, rows) are kept, at least 1 and at most ``rows - 1``
    defaults, so that the base margin stays defined.
    """
    values = np.asarray(opened, dtype=np.float64) - parties * HIST_OFFSET
    cells = values[:-2]
    negative = cells[cells < 0]
    sigma = float(np.sqrt(np.mean(negative**2))) if negative.size else 0.0
    out = np.where(cells > CELL_Z * sigma, np.rint(cells), 0.0)
    rows = max(float(np.rint(values[-1])), 2.0)
    defaults = min(max(float(np.rint(values[-2])), 1.0), rows - 1.0)
    return np.concatenate([out, [defaults, rows]])


def private_split_config(gcfg: GBDTConfig, *, noise_multiplier: float, n_features: int,
                         parties: int) -> GBDTConfig:
    """The split rule's settings under DP: ``min_child_weight`` raised to
    :data:`MIN_HESSIAN_DEVIATIONS` deviations of the noise of a sum of half a node's bins
    over ``parties`` banks (a public function of public values)."""
    cell = noise_multiplier * level_sensitivity(n_features)
    half_node = cell * math.sqrt(max(parties, 1) * (gcfg.bins + 1) / 2.0)
    floor = MIN_HESSIAN_DEVIATIONS * half_node
    return replace(gcfg, min_child_weight=max(gcfg.min_child_weight, floor))
