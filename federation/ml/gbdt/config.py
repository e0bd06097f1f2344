"""Settings of a histogram gradient-boosted tree model: one frozen, validated dataclass.

Every party of a federated run must hold the *same* :class:`GBDTConfig` (it fixes the
gradient quantisation, the subsample key and the split rules, so that all parties take the
same decision from the same sums). Invalid values raise :class:`ConfigError` naming the
setting as the command line spells it (``--depth``), in one line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from federation.errors import ConfigError

__all__ = ["SCHEMA_VERSION", "MAX_BINS", "MAX_DEPTH", "STOPPING_METRICS", "GBDTConfig",
           "check_stopping_metric"]

SCHEMA_VERSION = 1
MAX_BINS = 255  # uint8 bin codes: 255 value bins at most, the next code marks missing values
MAX_DEPTH = 12  # a level of 2**12 nodes already means histograms of tens of MB per party
STOPPING_METRICS = ("auc", "logloss")  # see federation.ml.gbdt.stopping


def _integer(name: str, value: object, low: int, high: int | None, why: str) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (
        high is None or value <= high)
    if not ok:
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(f"setting '--{name}' must be an integer {span} (got {value!r:.40}); "
                          f"{why}.")


def _real(name: str, value: object, low: float, high: float, *, open_low: bool,
          why: str) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value) and (value > low if open_low else value >= low) and value <= high
    if not ok:
        span = f"{'(' if open_low else '['}{low}, {high}]"
        raise ConfigError(f"setting '--{name}' must be a number in {span} (got {value!r:.40}); "
                          f"{why}.")


def check_stopping_metric(metric: object) -> None:
    """Refuse an early-stopping metric other than :data:`STOPPING_METRICS`, naming the setting."""
    if metric not in STOPPING_METRICS:
        raise ConfigError(f"setting '--early-stopping-metric' is {metric!r:.20}; choose one of "
                          f"{', '.join(STOPPING_METRICS)}.")


@dataclass(frozen=True, slots=True)
class GBDTConfig:
    """Settings of a boosted-tree model for binary default risk (logistic loss).

    Parameters
    ----------
    trees : int
        Boosting rounds (one tree each).
    depth : int
        Levels of splits per tree (``depth=4``: at most 16 leaves), as XGBoost's ``max_depth``.
    bins : int
        Value bins per numeric feature (at most 255: the bin codes are uint8 and code
        ``bins`` marks missing values). A categorical feature has one bin per category.
    learning_rate : float
        Shrinkage of every leaf value (XGBoost's ``eta``).
    l2 : float
        L2 penalty on leaf values (XGBoost's ``lambda``).
    min_child_weight : float
        Least hessian sum of a child for a split to be allowed.
    subsample : float
        Fraction of rows each tree sees, drawn by a keyed hash of the row id, the tree index
        and ``seed`` (so every party draws its own rows and a pooled run draws the same).
    seed : int
        Key of the row subsample.
    early_stopping_rounds : int
        Stop once the validation score has not improved for this many trees and keep the best
        prefix (0 = train all ``trees``; a positive value needs validation rows).
    early_stopping_metric : {"auc", "logloss"}
        The validation score early stopping watches: the AUC of the summed validation score
        histograms or the exact log-loss (:mod:`federation.ml.gbdt.stopping`).
    gradient_bits : int
        Gradients and hessians are rounded to multiples of ``2**-gradient_bits`` so that every
        sum of them is exact in float64, whatever the order of summation (what makes a
        federated sum equal to the pooled one). Allows ``2**(53 - gradient_bits)`` rows.
    schema_version : int
        Version of these settings; a node of another release refuses them.
    """

    trees: int = 100
    depth: int = 4
    bins: int = 32
    learning_rate: float = 0.1
    l2: float = 1.0
    min_child_weight: float = 1.0
    subsample: float = 1.0
    seed: int = 0
    early_stopping_rounds: int = 0
    early_stopping_metric: str = "auc"
    gradient_bits: int = 20
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _integer("trees", self.trees, 1, None, "a model needs at least one tree")
        _integer("depth", self.depth, 1, MAX_DEPTH, "a tree needs at least one level of splits")
        _integer("bins", self.bins, 2, MAX_BINS,
                 "a split needs two bins and uint8 codes keep one code for missing values")
        _real("learning-rate", self.learning_rate, 0.0, 1.0, open_low=True,
              why="it scales every leaf value")
        _real("l2", self.l2, 0.0, math.inf, open_low=False, why="it is a penalty weight")
        _real("min-child-weight", self.min_child_weight, 0.0, math.inf, open_low=False,
              why="it is a least hessian sum")
        _real("subsample", self.subsample, 0.0, 1.0, open_low=True,
              why="it is the fraction of rows each tree sees")
        _integer("seed", self.seed, 0, 2**64 - 1, "it keys the row subsample")
        _integer("early-stopping-rounds", self.early_stopping_rounds, 0, None,
                 "0 turns early stopping off")
        check_stopping_metric(self.early_stopping_metric)
        _integer("gradient-bits", self.gradient_bits, 8, 30,
                 "fewer bits lose precision, more need packed slots over 48 bits")
        if self.l2 == 0 and self.min_child_weight == 0:
            raise ConfigError("settings '--l2' and '--min-child-weight' are both 0, so an empty "
                              "child would divide by zero; make one of them positive.")
        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError(f"GBDT config schema_version {self.schema_version!r:.20} is not "
                              f"supported (this build reads {SCHEMA_VERSION}); upgrade every "
                              "node to the same release.")

    @property
    def max_rows(self) -> int:
        """Most rows (all parties together) whose gradient sums stay exact in float64."""
        return 2 ** (53 - self.gradient_bits)
