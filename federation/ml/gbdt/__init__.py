"""Histogram gradient-boosted trees whose every step is a sum over parties (issue 11).

The lossless pure-numpy core shared by the federated path and the centralised baseline:
binning from summed fine counts (:mod:`~federation.ml.gbdt.binning`), gradient histograms
(:mod:`~federation.ml.gbdt.histograms`), the split rule (:mod:`~federation.ml.gbdt.splits`),
level-wise growth as step functions a bank runs between messages
(:mod:`~federation.ml.gbdt.trainer`), the scikit-learn-style estimator and an in-process
federation (:mod:`~federation.ml.gbdt.estimator`), and the fitted model as plain arrays with
JSON and XGBoost export (:mod:`~federation.ml.gbdt.model`), plus the plaintext codec of the
run's public state between messages (:mod:`~federation.ml.gbdt.state`) and early stopping
from summed validation vectors (:mod:`~federation.ml.gbdt.stopping`). Gradients are
quantised so that every cross-party sum is exact: a federation grows the same trees as the
pooled baseline.

May import numpy, ``federation.errors`` and the array metrics of ``federation.ml.metrics``
only (no flwr, torch, pandas or scipy); the Flower wiring lives above it.
"""

from federation.ml.gbdt.binning import (
    BinEdges,
    FineGrid,
    bin_matrix,
    column_min_max,
    edges_from_fine_counts,
    federated_edges,
    fine_counts,
    grid_from_mean_std,
    grid_from_min_max,
    pooled_edges,
)
from federation.ml.gbdt.config import GBDTConfig
from federation.ml.gbdt.estimator import HistGBDT, fit_federated_local
from federation.ml.gbdt.gradients import (
    base_margin,
    check_row_limit,
    label_sums,
    mean_loss,
    validation_loss_sums,
)
from federation.ml.gbdt.model import GBDTModel, ModelFormatError, Tree
from federation.ml.gbdt.state import BoostState, StateFormatError, state_from_bytes, state_to_bytes
from federation.ml.gbdt.trainer import (
    LevelRequest,
    Split,
    StepOrderError,
    TreeState,
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

__all__ = ["BinEdges", "FineGrid", "bin_matrix", "column_min_max", "edges_from_fine_counts",
           "fine_counts", "grid_from_mean_std", "grid_from_min_max", "pooled_edges",
           "GBDTConfig", "HistGBDT", "federated_edges", "fit_federated_local", "GBDTModel",
           "ModelFormatError", "Tree", "LevelRequest", "Split", "StepOrderError", "TreeState",
           "add_tree", "apply_splits", "choose_splits", "finish_tree", "leaf_values",
           "level_request", "local_histograms", "new_tree", "start_tree", "base_margin",
           "check_row_limit", "label_sums", "mean_loss", "validation_loss_sums",
           "BoostState", "StateFormatError", "state_from_bytes", "state_to_bytes"]
