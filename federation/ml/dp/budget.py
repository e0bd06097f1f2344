"""A bank's privacy plan: the noise of each mechanism, fixed before anything is released.

Protocol step: every bank, before the preprocessing statistics, turns the run's public
settings (``dp-epsilon``, ``dp-delta``, ``dp-clip``, rounds, local epochs, batch size) and
its own row counts into a plan; the same numbers go to ``results.json`` (``privacy``).

Composition (per bank, add-or-remove-one-borrower neighbours). A borrower's row is either in
the bank's training split or in its test split, and the two are used by different mechanisms,
so the guarantee is the larger of two paths (parallel composition), each planned to meet
(epsilon, delta):

* training rows (:class:`TrainingPrivacy`): the DP-SGD steps of every round (Poisson sampling
  at ``q = batch / rows``, per-sample clipping to ``clip``, Gaussian noise ``z * clip``)
  composed with three one-off Gaussian releases: the preprocessing statistics (the magnitude
  ladder that picks the clipping bounds, then the clipped sums:
  :mod:`federation.ml.dp.releases`) and the training rows' score histograms sealed after the
  last round for the calibration map. These get the noise that alone would cost
  :data:`STATS_SHARE` of epsilon; DP-SGD's ``z`` is the smallest that keeps the whole path
  within (epsilon, delta).
* test rows (:func:`histogram_noise`): one Gaussian release of the bank's score histograms per
  round (sensitivity 1: a row is one count).

Everything else a bank sends is post-processing of these (the FedAvg update is a function of
the DP-SGD output; AUC/KS of the noisy histograms). Not covered: the column and category
names of the schema step (see docs/security.md).

Security assumption: the plan is public (it is computed from public settings and row counts
that the run reveals anyway); the noise itself comes from a secret seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from federation.errors import ConfigError
from federation.ml.dp.accountant import (
    ACCOUNTANT,
    MAX_NOISE_MULTIPLIER,
    MAX_RELEASE_NOISE_MULTIPLIER,
    Mechanism,
    calibrate,
    epsilon_opacus,
)

SCHEMA_VERSION = 1
STATS_SHARE = 0.25
"""The share of epsilon the one-off releases of the training rows would cost alone (the rest
of the budget goes to DP-SGD)."""
STATS_RELEASES = 3
"""One-off Gaussian releases of the training rows: the magnitude ladder, the clipped
statistics, and after the last round their score histograms (the calibration map's input)."""


class UnsupportableBudgetError(ConfigError):
    """The requested epsilon cannot be met with usable noise for this bank's data and run."""


def default_delta(rows: int) -> float:
    """The default delta of a data set of ``rows`` rows: ``1 / (10 rows)``."""
    return 1.0 / (10.0 * max(rows, 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingPrivacy:
    """The plan of a bank's training rows: DP-SGD plus the statistics release.

    ``epsilon`` is the accountant's epsilon of the whole path at ``delta`` (at most the
    requested one); ``steps`` are the DP-SGD steps of the whole run (rounds x steps per
    round); ``stats_noise_multiplier`` is the noise of each one-off release (statistics,
    calibration histograms).
    """

    epsilon: float
    delta: float
    noise_multiplier: float
    clip: float
    sampling_rate: float
    steps: int
    stats_noise_multiplier: float
    accountant: str = ACCOUNTANT
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not (self.noise_multiplier > 0 and self.stats_noise_multiplier > 0 and self.clip > 0):
            raise ValueError("noise multipliers and clip must be positive")
        if not 0 < self.sampling_rate <= 1:
            raise ValueError(f"sampling_rate must be in (0, 1] (got {self.sampling_rate})")

    def mechanisms(self) -> tuple[Mechanism, ...]:
        """The mechanisms this path composes (what the accountant adds up)."""
        return training_mechanisms(self.noise_multiplier, self.stats_noise_multiplier,
                                   sampling_rate=self.sampling_rate, steps=self.steps)


def training_mechanisms(z: float, z_stats: float, *, sampling_rate: float,
                        steps: int) -> tuple[Mechanism, ...]:
    """DP-SGD's ``steps`` subsampled steps and the statistics' plain Gaussian releases."""
    return (Mechanism(z, sampling_rate, steps), Mechanism(z_stats, 1.0, STATS_RELEASES))


@lru_cache(maxsize=64)  # a bank asks every round; the plan is a pure function of its inputs
def plan_training(*, epsilon: float, delta: float, clip: float, rows: int, batch_size: int,
                  steps: int) -> TrainingPrivacy:
    """Choose the noise of a bank's training path for (epsilon, delta).

    Parameters
    ----------
    epsilon, delta : float
        The per-bank budget (``delta`` 0: :func:`default_delta` of ``rows``).
    clip : float
        Per-sample gradient norm bound.
    rows : int
        The bank's training rows (the sampling rate is ``batch_size / rows``).
    steps : int
        DP-SGD steps of the whole run.

    Raises
    ------
    UnsupportableBudgetError
        Even a noise multiplier of :data:`MAX_NOISE_MULTIPLIER` does not meet the budget.
    """
    delta = delta or default_delta(rows)
    q = min(1.0, batch_size / max(rows, 1))
    z_stats = calibrate(lambda z: (Mechanism(z, 1.0, STATS_RELEASES),),
                        epsilon=STATS_SHARE * epsilon, delta=delta,
                        most=MAX_RELEASE_NOISE_MULTIPLIER)
    z = None if z_stats is None else calibrate(
        lambda z: training_mechanisms(z, z_stats, sampling_rate=q, steps=steps),
        epsilon=epsilon, delta=delta)
    if z is None or z_stats is None:
        floor = epsilon_opacus(training_mechanisms(
            MAX_NOISE_MULTIPLIER, z_stats or MAX_RELEASE_NOISE_MULTIPLIER, sampling_rate=q,
            steps=steps), delta)
        raise UnsupportableBudgetError(
            f"setting 'dp-epsilon' is {epsilon:g}, but a bank of {rows} training rows cannot "
            f"meet it in {steps} DP-SGD steps (delta {delta:.2g}): the least epsilon with "
            f"usable noise is about {floor:.2g}; raise --dp-epsilon or use fewer --rounds or "
            "--local-epochs, or a larger --batch-size.")
    spent = epsilon_opacus(training_mechanisms(z, z_stats, sampling_rate=q, steps=steps), delta)
    return TrainingPrivacy(epsilon=spent, delta=delta, noise_multiplier=z, clip=clip,
                           sampling_rate=q, steps=steps, stats_noise_multiplier=z_stats)


@lru_cache(maxsize=64)
def histogram_noise(*, epsilon: float, delta: float, releases: int) -> float:
    """The noise multiplier of each of ``releases`` score-histogram releases of one bank's
    test rows (sensitivity 1) so that together they meet (epsilon, delta).

    Raises
    ------
    UnsupportableBudgetError
        The budget needs more noise than :data:`MAX_NOISE_MULTIPLIER`.
    """
    z = calibrate(lambda z: (Mechanism(z, 1.0, releases),), epsilon=epsilon, delta=delta,
                  most=MAX_RELEASE_NOISE_MULTIPLIER)
    if z is None:
        raise UnsupportableBudgetError(
            f"setting 'dp-epsilon' is {epsilon:g}; {releases} score-histogram releases "
            f"cannot meet it (delta {delta:.2g}); raise --dp-epsilon or use fewer --rounds.")
    return z


def check_budget(epsilon: float, delta: float, clip: float) -> None:
    """Refuse settings no plan can use (naming the setting); ``epsilon`` 0 means DP is off."""
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise ConfigError(f"setting 'dp-epsilon' must be a finite number >= 0, 0 = off "
                          f"(got {epsilon}).")
    if not 0 <= delta < 1:
        raise ConfigError(f"setting 'dp-delta' must be in [0, 1), 0 = 1 / (10 x rows) "
                          f"(got {delta}).")
    if not (math.isfinite(clip) and clip > 0):
        raise ConfigError(f"setting 'dp-clip' must be a positive number (got {clip}).")
