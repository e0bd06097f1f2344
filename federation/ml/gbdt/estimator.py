"""The scikit-learn-style estimator and the in-process federation, both over the same steps.

:class:`HistGBDT` is the centralised baseline: its ``fit`` runs the step functions of
:mod:`federation.ml.gbdt.trainer` for a federation of *one* party, where the cross-party
sum is the identity. :func:`fit_federated_local` runs the very same loop for ``K`` parties
in one process, the sum being ``np.sum`` over the parties' arrays. Since every exchanged
sum is exact (quantised gradients, integer counts), a federation over a partition of some
rows grows the same trees as :class:`HistGBDT` on the pooled rows with the same row ids.

What crosses between "parties" in :func:`fit_federated_local` is exactly what a Flower run
exchanges: per-column min/max (element-wise combination), fine counts, label sums,
per-level histograms and validation sums (score-bin counts or loss sums; summed); splits
and leaf values go back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from federation.errors import ConfigError, DataError
from federation.ml.gbdt.binning import (
    DEFAULT_CELLS,
    BinEdges,
    Sum,
    as_matrix,
    bin_matrix,
    federated_edges,
    plain_sum,
)
from federation.ml.gbdt.config import GBDTConfig
from federation.ml.gbdt.gradients import (
    base_margin,
    check_row_limit,
    label_sums,
    sigmoid,
)
from federation.ml.gbdt.model import GBDTModel, Tree
from federation.ml.gbdt.stopping import stopping_point, validation_parts, validation_score
from federation.ml.gbdt.trainer import (
    add_tree,
    apply_splits,
    choose_splits,
    finish_tree,
    leaf_values,
    level_request,
    local_histograms,
    new_tree,
    start_tree,
)

__all__ = ["HistGBDT", "fit_federated_local"]

EvalSet = tuple[ArrayLike, ArrayLike]


@dataclass
class _Party:
    """One party's private state: never leaves it in a real federation."""

    codes: NDArray[np.uint8]
    y: NDArray[np.float64]
    row_ids: NDArray[np.int64]
    eval_codes: NDArray[np.uint8] | None = None
    eval_y: NDArray[np.float64] | None = None
    margins: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    eval_margins: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


def _codes(X: ArrayLike, edges: BinEdges) -> NDArray[np.uint8]:
    """Bin codes of ``X``: uint8 input is taken as codes already, anything else as raw."""
    if isinstance(X, np.ndarray) and X.dtype == np.uint8:
        if X.ndim != 2 or X.shape[1] != edges.n_features or (X.size and X.max() > edges.n_bins):
            raise DataError(f"uint8 input is read as bin codes: it needs {edges.n_features} "
                            f"columns of codes 0..{edges.n_bins}; cast raw data to float.")
        return X
    return bin_matrix(X, edges)


def _make_parties(parts: Sequence[tuple[ArrayLike, ArrayLike]], edges: BinEdges,
                  row_ids: Sequence[ArrayLike] | None,
                  eval_parts: Sequence[EvalSet | None] | None) -> list[_Party]:
    """Each party's private state; row ids default to positions in the concatenation."""
    offsets = np.cumsum([0] + [len(np.asarray(y)) for _, y in parts])
    parties = []
    for k, (X, y) in enumerate(parts):
        ids = np.arange(offsets[k], offsets[k + 1]) if row_ids is None else row_ids[k]
        party = _Party(_codes(X, edges), np.asarray(y, dtype=np.float64).ravel(),
                       np.asarray(ids))
        if party.codes.shape[0] != party.y.size:
            raise DataError(f"party {k} has {party.codes.shape[0]} rows but "
                            f"{party.y.size} labels; give one label per row.")
        evaluation = eval_parts[k] if eval_parts else None
        if evaluation is not None:
            party.eval_codes = _codes(evaluation[0], edges)
            party.eval_y = np.asarray(evaluation[1], dtype=np.float64).ravel()
        parties.append(party)
    return parties


def _grow(parties: list[_Party], tree: int, edges: BinEdges, config: GBDTConfig,
          combine: Sum) -> Tree:
    """One tree by the protocol's steps (see :mod:`federation.ml.gbdt.trainer`)."""
    grads = [start_tree(p.y, p.margins, row_ids=p.row_ids, tree=tree, config=config)
             for p in parties]
    assign = [np.zeros(p.y.size, dtype=np.int64) for p in parties]
    eval_assign = [np.zeros(0 if p.eval_y is None else p.eval_y.size, dtype=np.int64)
                   for p in parties]
    state = new_tree(tree)
    while not state.done:
        request = level_request(state)
        summed = combine([local_histograms(p.codes, g, h, a, request, edges)
                          for p, (g, h), a in zip(parties, grads, assign, strict=True)])
        state, splits = choose_splits(state, summed, edges, config)
        assign = [apply_splits(p.codes, a, splits, edges)
                  for p, a in zip(parties, assign, strict=True)]
        eval_assign = [a if p.eval_codes is None else apply_splits(p.eval_codes, a, splits, edges)
                       for p, a in zip(parties, eval_assign, strict=True)]
    values = leaf_values(state, config)
    for p, a, ea in zip(parties, assign, eval_assign, strict=True):
        p.margins = add_tree(p.margins, a, values)
        p.eval_margins = add_tree(p.eval_margins, ea, values)
    return finish_tree(state, values)


def _boost(parties: list[_Party], edges: BinEdges, config: GBDTConfig,
           combine: Sum) -> tuple[GBDTModel, list[float]]:
    """All trees, with early stopping on the summed validation score when asked for."""
    labels = combine([label_sums(p.y) for p in parties])
    check_row_limit(float(labels[1]), config)
    start = base_margin(labels)
    for p in parties:
        p.margins = np.full(p.y.size, start)
        p.eval_margins = np.full(0 if p.eval_y is None else p.eval_y.size, start)
    stopping = config.early_stopping_rounds > 0
    metric = config.early_stopping_metric
    trees: list[Tree] = []
    scores: list[float] = []
    best = 0
    for t in range(config.trees):
        trees.append(_grow(parties, t, edges, config, combine))
        if not stopping:
            continue
        scores.append(validation_score(combine([validation_parts(p.eval_y, p.eval_margins, metric)
                                                for p in parties if p.eval_y is not None]), metric))
        best, stop = stopping_point(scores, config.early_stopping_rounds)
        if stop:
            break
    kept = best + 1 if stopping else len(trees)
    return GBDTModel(start, tuple(trees[:kept]), edges.n_features, edges.n_categories), scores


class HistGBDT:
    """Histogram gradient-boosted trees for P(default), the centralised baseline.

    Parameters
    ----------
    config : GBDTConfig, optional
        Boosting settings (defaults of :class:`GBDTConfig`).
    edges : BinEdges, optional
        Bin edges to use; by default ``fit`` derives them from the rows exactly as a
        federation does (min/max grid, fine counts, quantiles).
    n_categories : sequence of int
        Per feature 0 (numeric) or the number of categories of its integer codes.
    cells : int
        Fine-grid cells per numeric feature when deriving edges.

    Attributes
    ----------
    edges_ : BinEdges
    model_ : GBDTModel
        The fitted trees as plain arrays (scoring, JSON, XGBoost export).
    validation_loss_ : list of float
        The validation score after each tree (early stopping only; lower is better): the
        mean log-loss, or ``1 - AUC`` with ``early_stopping_metric = "auc"``.
    n_features_in_ : int
    classes_ : numpy.ndarray
        ``[0, 1]``.
    """

    def __init__(self, config: GBDTConfig | None = None, *, edges: BinEdges | None = None,
                 n_categories: Sequence[int] = (), cells: int = DEFAULT_CELLS) -> None:
        self.config = config
        self.edges = edges
        self.n_categories = tuple(n_categories)
        self.cells = cells

    def fit(self, X: ArrayLike, y: ArrayLike, *, row_ids: ArrayLike | None = None,
            eval_set: EvalSet | None = None) -> HistGBDT:
        """Grow the trees on one party's rows (the federation of one).

        Parameters
        ----------
        X : array-like
            Raw rows ``[row, feature]`` (NaN = missing; categorical columns as integer
            codes), or uint8 bin codes when ``edges`` was given.
        y : array-like
            0/1 labels (1 = default).
        row_ids : array-like, optional
            Non-negative integer ids keying the row subsample (default ``0 .. n-1``).
        eval_set : tuple, optional
            ``(X_val, y_val)`` for early stopping.

        Returns
        -------
        HistGBDT
            ``self``.
        """
        return self._fit_parties([(X, y)], None if row_ids is None else [row_ids],
                                 None if eval_set is None else [eval_set])

    def _fit_parties(self, parts: Sequence[tuple[ArrayLike, ArrayLike]],
                     row_ids: Sequence[ArrayLike] | None,
                     eval_parts: Sequence[EvalSet | None] | None,
                     combine: Sum = plain_sum) -> HistGBDT:
        config = self.config if self.config is not None else GBDTConfig()
        if not parts:
            raise DataError("a federation needs at least one party with rows.")
        if config.early_stopping_rounds and not any(eval_parts or ()):
            raise ConfigError("setting '--early-stopping-rounds' is "
                              f"{config.early_stopping_rounds} but no validation rows were "
                              "given; pass eval_set (eval_parts) or set it to 0.")
        edges = self.edges if self.edges is not None else federated_edges(
            [as_matrix(X) for X, _ in parts], config.bins, n_categories=self.n_categories,
            cells=self.cells, combine=combine)
        if edges.n_bins != config.bins:
            raise ConfigError(f"the edges have {edges.n_bins} bins but '--bins' is "
                              f"{config.bins}; derive the edges with the run's settings.")
        parties = _make_parties(parts, edges, row_ids, eval_parts)
        self.model_, self.validation_loss_ = _boost(parties, edges, config, combine)
        self.edges_ = edges
        self.n_features_in_ = edges.n_features
        self.classes_ = np.array([0, 1])
        return self

    def _model(self) -> GBDTModel:
        if not hasattr(self, "model_"):
            raise DataError("this HistGBDT is not fitted yet; call fit first.")
        return self.model_

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """Margins (log-odds of default) of raw rows."""
        return self._model().predict_margin(X)

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """``[P(no default), P(default)]`` per raw row."""
        p = sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """0/1 at the 0.5 threshold."""
        return (self.decision_function(X) > 0).astype(np.int64)


def fit_federated_local(parts: Sequence[tuple[ArrayLike, ArrayLike]],
                        config: GBDTConfig | None = None, *, edges: BinEdges | None = None,
                        n_categories: Sequence[int] = (), cells: int = DEFAULT_CELLS,
                        row_ids: Sequence[ArrayLike] | None = None,
                        eval_parts: Sequence[EvalSet | None] | None = None) -> HistGBDT:
    """Run ``K`` parties' steps in one process, the cross-party sum being ``np.sum``.

    Parameters
    ----------
    parts : sequence of (X, y)
        Each party's raw rows and labels.
    config, edges, n_categories, cells
        As for :class:`HistGBDT`.
    row_ids : sequence of array-like, optional
        Each party's global row ids (default: positions in the concatenation of ``parts``,
        which is what :meth:`HistGBDT.fit` uses on the pooled rows).
    eval_parts : sequence, optional
        Each party's ``(X_val, y_val)`` or ``None``, for early stopping.

    Returns
    -------
    HistGBDT
        Fitted, with the same trees as :meth:`HistGBDT.fit` on the pooled rows.
    """
    estimator = HistGBDT(config, edges=edges, n_categories=n_categories, cells=cells)
    return estimator._fit_parties(parts, row_ids, eval_parts)
