"""Baselines of a boosted-tree simulation: the pooled model and each bank's own trees.

Centralised = the same pure-numpy trainer on every bank's training rows pooled in one place,
with the federation's own bin edges and settings: it must grow the very same trees (the
lossless check in ``results.json``). Local-only = each bank's trees on its own rows and its own
bins. With early stopping every model fits on the rows the banks fit on and stops on the
validation rows they hold out (:func:`~federation.ml.tree_features.validation_rows`), by the
same rule. All AUC/KS are on the union of the banks' test splits, computed here in the
researcher's process (never over the wire).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from federation.data.bank_data import BankData, bank_data
from federation.ml.gbdt import BinEdges, GBDTModel, HistGBDT
from federation.ml.metrics import ks_statistic, roc_auc
from federation.ml.preprocess import Preprocessor, pooled_preprocessor
from federation.ml.training import auc_ks, fit_in_one_place
from federation.ml.tree_features import (
    tree_categories,
    tree_matrix,
    tree_row_ids,
    validation_rows,
)
from federation.run.config import RunConfig
from federation.run.results import BankBaseline, LocalOnly, Metrics, TreeSummary
from federation.steps.tree_bank import tree_model_of
from server.run_state import FederatedResult


@dataclass(frozen=True, eq=False)
class _Pooled:
    X: NDArray[np.float64]
    y: NDArray[np.int64]
    ids: NDArray[np.int64]


def _rows(d: BankData, prep: Preprocessor, part: str) -> _Pooled:
    table = getattr(d, part)
    return _Pooled(tree_matrix(table, prep), table.y.astype(np.int64),
                   tree_row_ids(table, d.bank))


def _concat(parts: list[_Pooled]) -> _Pooled:
    return _Pooled(np.vstack([p.X for p in parts]), np.concatenate([p.y for p in parts]),
                   np.concatenate([p.ids for p in parts]))


def _pool(datas: list[BankData], prep: Preprocessor, part: str) -> _Pooled:
    return _concat([_rows(d, prep, part) for d in datas])


def _split(rows: _Pooled, cfg: RunConfig) -> tuple[_Pooled, tuple[NDArray[np.float64],
                                                                  NDArray[np.int64]] | None]:
    """Fit rows and the early-stopping eval set, as every bank splits its training rows."""
    if not cfg.early_stopping_rounds:
        return rows, None
    held = validation_rows(rows.ids, cfg.seed)
    return _Pooled(rows.X[~held], rows.y[~held], rows.ids[~held]), (rows.X[held], rows.y[held])


def _metrics(model: GBDTModel, X: NDArray[np.float64], y: NDArray[np.int64]) -> Metrics:
    p = model.predict_proba(X)
    return Metrics(auc=roc_auc(y, p), ks=ks_statistic(y, p))


def same_trees(a: GBDTModel, b: GBDTModel) -> bool:
    """Whether two models have the same trees node for node (splits, thresholds, values)."""
    if a.base_margin != b.base_margin or len(a.trees) != len(b.trees):
        return False
    names = ("feature", "split_bin", "threshold", "categorical", "default_left", "left",
             "right", "value")
    return all(np.array_equal(getattr(s, n), getattr(t, n)) for s, t in zip(a.trees, b.trees,
                                                                          strict=True)
               for n in names)


def lr_reference(cfg: RunConfig, datas: list[BankData]) -> Metrics:
    """The project's logistic regression fitted on the pooled training rows with the LR
    defaults (the centralised LR that federated LR reaches), on the union of the test rows."""
    lr_cfg = replace(cfg, model="lr", learning_rate=RunConfig.learning_rate,
                     early_stopping_rounds=0)
    trains = [d.train for d in datas]
    prep = pooled_preprocessor(trains)
    return Metrics(**auc_ks(fit_in_one_place(lr_cfg, prep, trains), prep,
                            [d.test for d in datas]))


def tree_baselines(cfg: RunConfig, result: FederatedResult,
                   summary: TreeSummary | None) -> tuple[Metrics, LocalOnly, TreeSummary | None]:
    """Centralised and local-only trees on the same split; the lossless check.

    The centralised model uses the federation's bin edges when the banks released the model
    (the lossless comparison); otherwise, and under DP (``dp_epsilon > 0``: the federation's
    edges and category vocabulary come from noised counts), edges from the pooled rows. The
    federated model is scored on rows built with the preprocessing it was trained with.
    """
    datas = [bank_data(cfg, b) for b in range(cfg.banks)]
    prep = pooled_preprocessor([d.train for d in datas])
    gcfg = cfg.gbdt_config()
    cats = tree_categories(prep)
    train, test = _pool(datas, prep, "train"), _pool(datas, prep, "test")
    fed: GBDTModel | None = None
    edges: BinEdges | None = None
    fed_prep = prep
    if result.tree_release is not None:
        fed, edges = tree_model_of(result.tree_release)
        fed_prep = Preprocessor.from_json(result.tree_release.preprocessor_json)
        if cfg.dp_epsilon > 0:
            edges = None
    fed_test = _pool(datas, fed_prep, "test").X
    fit, eval_set = _split(train, cfg)
    central = HistGBDT(gcfg, edges=edges, n_categories=cats).fit(
        fit.X, fit.y, row_ids=fit.ids, eval_set=eval_set).model_
    per_bank = []
    for d in datas:
        own_fit, own_eval = _split(_rows(d, prep, "train"), cfg)
        own = HistGBDT(gcfg, n_categories=cats).fit(own_fit.X, own_fit.y, row_ids=own_fit.ids,
                                                    eval_set=own_eval).model_
        union = _metrics(own, test.X, test.y)
        own_X, own_y = tree_matrix(d.test, prep), d.test.y.astype(np.int64)
        fed_X = tree_matrix(d.test, fed_prep)
        per_bank.append(BankBaseline(
            bank=d.bank, train_rows=d.train.n_rows, test_rows=d.test.n_rows,
            bad_rate=float(d.train.y.mean()), auc=union.auc, ks=union.ks,
            own_test_auc=_metrics(own, own_X, own_y).auc,
            federated_own_test_auc=_metrics(fed, fed_X, own_y).auc if fed else None,
            centralized_own_test_auc=_metrics(central, own_X, own_y).auc))
    local = LocalOnly(mean_auc=float(np.nanmean([b.auc for b in per_bank])),
                      per_bank=tuple(per_bank))
    if summary is not None and fed is not None:
        gap = float(np.max(np.abs(fed.predict_margin(fed_test) - central.predict_margin(test.X))))
        summary = replace(summary, same_trees_as_centralized=same_trees(fed, central),
                          max_prediction_gap=gap)
    if summary is not None:
        summary = replace(summary, lr_reference=lr_reference(cfg, datas))
    return _metrics(central, test.X, test.y), local, summary
