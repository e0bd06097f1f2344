"""A bank's privacy plan in a boosted-tree run (``--model gbdt --dp-epsilon E``).

Protocol step: before the preprocessing statistics, every bank turns the run's public settings
(``dp-epsilon``, ``dp-delta``, ``trees``, ``depth``, ``eval-every``) and its own row count into
the noise of each of its releases; the same numbers go to ``results.json`` (``privacy``).

What a bank releases in a tree run, each a Gaussian mechanism on a query whose L2 sensitivity
(add or remove one borrower's row) is stated, noise ``z x sensitivity``:

* training rows, one-off (:data:`TREE_STATS_RELEASES` at ``z_stats``): the magnitude ladder
  and the clipped preprocessing statistics (as in an LR run,
  :mod:`federation.ml.dp.releases`), the fine counts of the bin edges with the label sums
  ``[defaults, rows]`` (a row is one count per feature and adds ``y <= 1`` and 1 to the label
  sums: sensitivity ``sqrt(F + 2)``), and after the last tree the training rows' score
  histograms (the calibration map's input, sensitivity 1);
* training rows, per level (``trees x depth`` releases at ``z``): the gradient and hessian
  histograms of the level's nodes. Derivation of the sensitivity: with logistic loss
  ``g = p - y`` lies in ``[-1, 1]`` and ``h = p (1 - p)`` in ``[0, 1/4]`` (the bank clips them
  to these bounds all the same); at one level a row sits in exactly one node, and in each of
  the ``F`` features' histograms of that node in exactly one bin, so the row changes ``F``
  gradient cells by at most 1 and ``F`` hessian cells by at most 1/4: L2 sensitivity
  ``sqrt(F (1 + 1/16))`` (:func:`level_sensitivity`). Nodes the level does not build (the
  larger sibling, ``parent - child``) are post-processing. Which node a row sits in depends
  on earlier noisy releases only (adaptive composition, which RDP allows);
* test rows (parallel path: a borrower is in the training or the test split): the test-score
  histograms of every evaluation (``evaluations`` releases, sensitivity 1).

Everything else is post-processing of these: bin edges and base margin from the noisy counts,
split decisions, leaf values ``-lr G / (H + l2)`` from the noisy node sums (no extra release),
the model, AUC/KS. Early stopping (its validation vector per tree) is not covered and is
refused under DP (:mod:`federation.run.config`).

Accounting: the training path composes ``trees x depth`` level releases with the one-off
releases, the test path its evaluations, by the same RDP accountant as DP-SGD
(:mod:`federation.ml.dp.accountant`); the one-off releases get the noise that alone would cost
:data:`~federation.ml.dp.budget.STATS_SHARE` of epsilon, the levels the least noise that keeps
the whole path within (epsilon, delta); the guarantee is the larger path.

Security assumption: the plan is public (settings and row counts the run reveals anyway); the
noise is drawn from a secret seed at the bank, before sealing, so the guarantee holds whatever
the aggregation (plain, Paillier or masked) and whoever sees the opened sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from federation.ml.dp.accountant import (
    ACCOUNTANT,
    MAX_RELEASE_NOISE_MULTIPLIER,
    Mechanism,
    calibrate,
    epsilon_opacus,
)
from federation.ml.dp.budget import STATS_SHARE, UnsupportableBudgetError, default_delta
from federation.run.results import BankPrivacy

if TYPE_CHECKING:
    from federation.run.config import RunConfig

SCHEMA_VERSION = 1
GRADIENT_BOUND = 1.0
"""``|g| = |p - y| <= 1`` for the logistic loss."""
HESSIAN_BOUND = 0.25
"""``h = p (1 - p) <= 1/4``."""
TREE_STATS_RELEASES = 4
"""One-off releases of the training rows: magnitude ladder, clipped statistics, fine counts
with label sums, and the calibration histograms after the last tree."""
MAX_LEVEL_NOISE_MULTIPLIER = 100.0
"""Above this the level histograms are noise (a cell's noise over 100 x sqrt(F) gradient
units): the plan refuses rather than grow random trees."""
REFERENCE_DELTA = 1e-5
"""The delta of the public split rule's noise estimate when ``dp-delta`` is 0 (the banks'
default deltas differ with their rows; the rule must be the same at every bank)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TreePrivacy:
    """A bank's plan in a boosted-tree DP run.

    ``epsilon`` is the accountant's epsilon at ``delta`` (the larger of the training and the
    test path); ``noise_multiplier`` is each level release's (``level_releases`` of them),
    ``stats_noise_multiplier`` each one-off release's, ``histogram_noise_multiplier`` each
    test-score histogram release's (``evaluations`` of them).
    """

    epsilon: float
    delta: float
    noise_multiplier: float
    level_releases: int
    stats_noise_multiplier: float
    histogram_noise_multiplier: float
    evaluations: int
    accountant: str = ACCOUNTANT
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not (self.noise_multiplier > 0 and self.stats_noise_multiplier > 0
                and self.histogram_noise_multiplier > 0):
            raise ValueError("noise multipliers must be positive")
        if self.level_releases < 1 or self.evaluations < 1:
            raise ValueError("a tree run has at least one level release and one evaluation")

    def training_mechanisms(self) -> tuple[Mechanism, ...]:
        """What the training path composes."""
        return tree_training_mechanisms(self.noise_multiplier, self.stats_noise_multiplier,
                                        level_releases=self.level_releases)

    def test_mechanisms(self) -> tuple[Mechanism, ...]:
        """What the test path composes."""
        return (Mechanism(self.histogram_noise_multiplier, 1.0, self.evaluations),)


def level_sensitivity(n_features: int) -> float:
    """L2 sensitivity of one level's gradient/hessian histograms: ``sqrt(F (1 + 1/16))``."""
    return math.sqrt(n_features * (GRADIENT_BOUND**2 + HESSIAN_BOUND**2))


def counts_sensitivity(n_features: int) -> float:
    """L2 sensitivity of the fine counts with the label sums: ``sqrt(F + 2)``."""
    return math.sqrt(n_features + 2)


def evaluations(trees: int, eval_every: int) -> int:
    """Test-score histogram releases of a run: after every ``eval_every``-th tree that is not
    the last, and once for the final model."""
    return len(range(eval_every, trees, eval_every)) + 1


def tree_training_mechanisms(z: float, z_stats: float, *,
                             level_releases: int) -> tuple[Mechanism, ...]:
    """The level releases and the one-off releases of a bank's training rows."""
    return (Mechanism(z, 1.0, level_releases), Mechanism(z_stats, 1.0, TREE_STATS_RELEASES))


@lru_cache(maxsize=64)
def plan_trees(*, epsilon: float, delta: float, rows: int, trees: int, depth: int,
               eval_every: int) -> TreePrivacy:
    """Choose the noise of a bank's releases in a tree run for (epsilon, delta).

    Parameters
    ----------
    epsilon, delta : float
        The per-bank budget (``delta`` 0: :func:`~federation.ml.dp.budget.default_delta` of
        ``rows``).
    rows : int
        The bank's training rows (only for the default delta).
    trees, depth, eval_every : int
        The run's settings: ``trees x depth`` level releases, :func:`evaluations` tests.

    Raises
    ------
    UnsupportableBudgetError
        The levels would need a noise multiplier above :data:`MAX_LEVEL_NOISE_MULTIPLIER`.
    """
    delta = delta or default_delta(rows)
    levels, tests = trees * depth, evaluations(trees, eval_every)
    z_stats = calibrate(lambda z: (Mechanism(z, 1.0, TREE_STATS_RELEASES),),
                        epsilon=STATS_SHARE * epsilon, delta=delta,
                        most=MAX_RELEASE_NOISE_MULTIPLIER)
    z = None if z_stats is None else calibrate(
        lambda z: tree_training_mechanisms(z, z_stats, level_releases=levels),
        epsilon=epsilon, delta=delta, most=MAX_LEVEL_NOISE_MULTIPLIER)
    z_hist = calibrate(lambda z: (Mechanism(z, 1.0, tests),), epsilon=epsilon, delta=delta,
                       most=MAX_RELEASE_NOISE_MULTIPLIER)
    if z is None or z_stats is None or z_hist is None:
        floor = epsilon_opacus(tree_training_mechanisms(
            MAX_LEVEL_NOISE_MULTIPLIER, z_stats or MAX_RELEASE_NOISE_MULTIPLIER,
            level_releases=levels), delta)
        raise UnsupportableBudgetError(
            f"setting 'dp-epsilon' is {epsilon:g}, but {trees} trees of depth {depth} release "
            f"{levels} noised histogram levels (delta {delta:.2g}): the least epsilon with "
            f"usable noise is about {floor:.2g}; raise --dp-epsilon or use fewer --trees or a "
            "smaller --depth.")
    spent = max(epsilon_opacus(tree_training_mechanisms(z, z_stats, level_releases=levels),
                               delta),
                epsilon_opacus((Mechanism(z_hist, 1.0, tests),), delta))
    return TreePrivacy(epsilon=spent, delta=delta, noise_multiplier=z, level_releases=levels,
                       stats_noise_multiplier=z_stats, histogram_noise_multiplier=z_hist,
                       evaluations=tests)


def tree_privacy(cfg: RunConfig, rows: int) -> TreePrivacy:
    """The plan of a bank with ``rows`` training rows in the tree run ``cfg``."""
    return plan_trees(epsilon=cfg.dp_epsilon, delta=cfg.dp_delta, rows=rows, trees=cfg.trees,
                      depth=cfg.depth, eval_every=cfg.eval_every)


def reference_noise_multiplier(cfg: RunConfig) -> float:
    """The level noise multiplier at ``dp-delta`` (or :data:`REFERENCE_DELTA`): the same at
    every bank, for the public split rule (:mod:`federation.ml.dp.tree_releases`)."""
    return plan_trees(epsilon=cfg.dp_epsilon, delta=cfg.dp_delta or REFERENCE_DELTA, rows=1,
                      trees=cfg.trees, depth=cfg.depth, eval_every=cfg.eval_every
                      ).noise_multiplier


def tree_bank_privacy(cfg: RunConfig, bank: int, train_rows: int) -> BankPrivacy:
    """The ``results.json`` entry of a bank in a tree run: ``noise_multiplier`` and ``steps``
    are the level releases', ``clip`` the gradient bound, ``sampling_rate`` 1 (every row)."""
    plan = tree_privacy(cfg, train_rows)
    return BankPrivacy(bank=bank, epsilon=plan.epsilon, delta=plan.delta,
                       noise_multiplier=plan.noise_multiplier, clip=GRADIENT_BOUND,
                       sampling_rate=1.0, steps=plan.level_releases, accountant=plan.accountant,
                       release_noise_multiplier=plan.stats_noise_multiplier,
                       histogram_noise_multiplier=plan.histogram_noise_multiplier)
