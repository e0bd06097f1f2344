"""Early stopping of boosting on held-out validation rows, from sums over parties only.

After every tree each party reduces its validation rows to a short vector of
:func:`validation_parts`; the parties' vectors are summed (sealed in a federation, added in
the pooled baseline) and :func:`validation_score` turns the sum into one number, lower is
better. :func:`stopping_point` is the rule both paths apply: stop once the best score is
``rounds`` trees old and keep the trees up to the best (the first minimum, the fewest trees).

Metrics (``early_stopping_metric``):

- ``"auc"``: per-class counts of the validation scores in the federated score histograms'
  bins (:func:`federation.ml.metrics.score_histograms`, 1,024 logit bins); the score is
  ``1 - AUC`` of the summed counts (ties inside one bin count one half). The counts are
  integers, so the pooled baseline computes the same AUC from the same bins bit for bit and
  stops at the same tree. Under Paillier the counts cost ``2 x 1,024`` sealed values a tree.
- ``"logloss"``: ``[log-loss sum, rows]`` with every row's loss rounded to a multiple of
  ``2**-LOSS_BITS`` (exact to sum, :func:`~federation.ml.gbdt.gradients.validation_loss_sums`);
  two sealed values a tree.

Security: what a party seals is a sum over its validation rows (counts per score bin, or a
loss sum); the other parties see only the total over all parties.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from federation.errors import DataError
from federation.ml.gbdt.config import STOPPING_METRICS, check_stopping_metric
from federation.ml.gbdt.gradients import mean_loss, sigmoid, validation_loss_sums
from federation.ml.metrics import HIST_BINS, auc_ks_from_histograms, score_histograms

__all__ = ["STOPPING_METRICS", "validation_length", "validation_parts",
           "validation_score", "stopping_point"]


def validation_length(metric: str) -> int:
    """Values of one party's :func:`validation_parts` under ``metric``."""
    check_stopping_metric(metric)
    return 2 * HIST_BINS if metric == "auc" else 2


def validation_parts(y: ArrayLike, margins: NDArray[np.float64], metric: str,
                     ) -> NDArray[np.float64]:
    """One party's validation vector (to be summed over parties) under ``metric``."""
    check_stopping_metric(metric)
    if metric == "logloss":
        return validation_loss_sums(y, margins)
    bad, good = score_histograms(np.asarray(y), sigmoid(np.asarray(margins, dtype=np.float64)))
    return np.concatenate([bad, good]).astype(np.float64)


def validation_score(summed: ArrayLike, metric: str) -> float:
    """The score of the summed validation vectors, lower is better (log-loss or 1 - AUC).

    Raises
    ------
    DataError
        The sum holds no validation row (or, for AUC, no row of one class).
    """
    check_stopping_metric(metric)
    values = np.asarray(summed, dtype=np.float64)
    if metric == "logloss":
        return mean_loss(values)
    counts = np.rint(values).astype(np.int64)
    auc, _ = auc_ks_from_histograms(counts[:HIST_BINS], counts[HIST_BINS:])
    if not np.isfinite(auc):
        raise DataError("early stopping on the validation AUC needs defaulted and repaid rows "
                        "among the validation rows; use --early-stopping-metric logloss.")
    return 1.0 - auc


def stopping_point(scores: Sequence[float], rounds: int) -> tuple[int, bool]:
    """``(best, stop)``: the index of the best score so far (the first minimum) and whether
    boosting stops now (the best is ``rounds`` trees old)."""
    if not scores:
        raise DataError("early stopping needs the validation score of at least one tree.")
    best = int(np.argmin(np.asarray(scores, dtype=np.float64)))
    return best, len(scores) - 1 - best >= rounds
