"""Growth steps, and the central property: K parties' steps grow the pooled model's trees."""

from __future__ import annotations

import numpy as np
import pytest

from federation.errors import ConfigError, DataError
from federation.ml.gbdt.binning import BinEdges, bin_matrix
from federation.ml.gbdt.config import GBDTConfig
from federation.ml.gbdt.estimator import HistGBDT, fit_federated_local
from federation.ml.gbdt.gradients import subsample_mask
from federation.ml.gbdt.histograms import node_histograms
from federation.ml.gbdt.model import GBDTModel
from federation.ml.gbdt.splits import best_splits
from federation.ml.gbdt.trainer import (
    LevelRequest,
    Split,
    StepOrderError,
    apply_splits,
    choose_splits,
    finish_tree,
    leaf_values,
    level_request,
    local_histograms,
    new_tree,
)
from federation.ml.metrics import roc_auc

SMALL = GBDTConfig(trees=12, depth=4, subsample=0.8, seed=7)


def non_iid_parts(X: np.ndarray, y: np.ndarray, ids: np.ndarray, column: int, k: int = 3):
    """Unequal, skewed parties: rows sorted by one feature, cut at 20 % and 55 %."""
    order = np.argsort(X[:, column], kind="stable")
    chunks = np.split(order, [int(0.2 * len(order)), int(0.55 * len(order))][: k - 1])
    return [(X[c], y[c]) for c in chunks], [ids[c] for c in chunks], np.concatenate(chunks)


def assert_same_trees(a: GBDTModel, b: GBDTModel, X: np.ndarray) -> None:
    assert len(a.trees) == len(b.trees)
    for ta, tb in zip(a.trees, b.trees, strict=True):
        for name in ("feature", "split_bin", "threshold", "categorical", "default_left",
                     "left", "right"):
            assert np.array_equal(getattr(ta, name), getattr(tb, name)), name
    assert a.to_json() == b.to_json()  # leaf values and gains too, bit for bit
    np.testing.assert_allclose(a.predict_margin(X), b.predict_margin(X), rtol=0, atol=1e-9)


def test_federated_uci_grows_the_pooled_trees(uci_with_missing) -> None:
    data = uci_with_missing
    parts, ids, order = non_iid_parts(data.X, data.y, data.ids, column=0)
    federated = fit_federated_local(parts, SMALL, row_ids=ids)
    pooled = HistGBDT(SMALL).fit(data.X[order], data.y[order], row_ids=data.ids[order])
    assert federated.edges_ == pooled.edges_
    assert_same_trees(federated.model_, pooled.model_, data.X)
    assert sum(int((t.left >= 0).sum()) for t in pooled.model_.trees) > 12 * 7  # real trees
    assert any(t.default_left[t.left >= 0].any() for t in pooled.model_.trees)


def test_a_party_without_rows_changes_nothing(german) -> None:
    config = GBDTConfig(trees=4, depth=3)
    empty = (german.X[:0], german.y[:0])
    parts = [(german.X[:400], german.y[:400]), empty, (german.X[400:], german.y[400:])]
    federated = fit_federated_local(parts, config, n_categories=german.n_categories,
                                    eval_parts=[None, empty, (german.X[:50], german.y[:50])])
    pooled = HistGBDT(config, n_categories=german.n_categories).fit(german.X, german.y)
    assert federated.model_.to_json() == pooled.model_.to_json()


def test_pooled_row_order_does_not_matter_with_the_same_ids(uci) -> None:
    rows = np.random.default_rng(2).permutation(uci.y.size)[:6000]
    config = GBDTConfig(trees=5, depth=3, subsample=0.5)
    a = HistGBDT(config).fit(uci.X[rows], uci.y[rows], row_ids=uci.ids[rows])
    rows = rows[::-1]
    b = HistGBDT(config).fit(uci.X[rows], uci.y[rows], row_ids=uci.ids[rows])
    assert a.model_.to_json() == b.model_.to_json()


def test_federated_german_with_categories_grows_the_pooled_trees(german) -> None:
    config = GBDTConfig(trees=15, depth=3, bins=16, subsample=0.9)
    parts, ids, order = non_iid_parts(german.X, german.y, german.ids, column=1)
    federated = fit_federated_local(parts, config, n_categories=german.n_categories,
                                    row_ids=ids)
    pooled = HistGBDT(config, n_categories=german.n_categories).fit(
        german.X[order], german.y[order], row_ids=german.ids[order])
    assert_same_trees(federated.model_, pooled.model_, german.X)
    assert any(t.categorical.any() for t in pooled.model_.trees)


@pytest.mark.parametrize("metric", ["logloss", "auc"])
def test_early_stopping_stops_at_the_same_tree(uci, metric: str) -> None:
    config = GBDTConfig(trees=40, depth=4, learning_rate=0.5, early_stopping_rounds=3,
                        early_stopping_metric=metric)
    train, valid = np.arange(0, 9000), np.arange(9000, 12000)
    parts = [(uci.X[p], uci.y[p]) for p in np.array_split(train, 2)]
    evals = [(uci.X[v], uci.y[v]) for v in np.array_split(valid, 2)]
    federated = fit_federated_local(parts, config, eval_parts=evals)
    pooled = HistGBDT(config).fit(uci.X[train], uci.y[train],
                                  eval_set=(uci.X[valid], uci.y[valid]))
    assert federated.validation_loss_ == pooled.validation_loss_
    assert federated.model_.to_json() == pooled.model_.to_json()
    best = int(np.argmin(pooled.validation_loss_)) + 1
    assert len(pooled.model_.trees) == best < len(pooled.validation_loss_) < 40
    p = pooled.predict_proba(uci.X[valid])[:, 1]
    y = uci.y[valid]
    if metric == "logloss":
        mean_log_loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        assert abs(mean_log_loss - pooled.validation_loss_[best - 1]) < 1e-6  # raw == codes
    else:  # 1 - the binned AUC of the kept model: within a bin's ties of the exact AUC
        assert abs((1 - roc_auc(y, p)) - pooled.validation_loss_[best - 1]) < 2e-3


def test_training_codes_route_like_raw_thresholds(uci_with_missing) -> None:
    data = uci_with_missing
    fitted = HistGBDT(GBDTConfig(trees=6, depth=4)).fit(data.X, data.y)
    codes = bin_matrix(data.X, fitted.edges_).astype(np.int64)
    x32 = data.X.astype(np.float32)
    for tree in fitted.model_.trees:
        node = np.zeros(data.y.size, np.int64)
        for _ in range(4):
            inner = tree.left[node] >= 0
            code = codes[np.arange(node.size), np.maximum(tree.feature[node], 0)]
            go_left = np.where(code == fitted.edges_.missing_code, tree.default_left[node],
                               code <= tree.split_bin[node])
            node = np.where(inner, np.where(go_left, tree.left[node], tree.right[node]), node)
        assert np.array_equal(node, tree.leaves_of(x32))


def test_fitting_codes_with_given_edges_equals_fitting_raw_rows(uci) -> None:
    config = GBDTConfig(trees=4, depth=3)
    raw = HistGBDT(config).fit(uci.X, uci.y)
    codes = bin_matrix(uci.X, raw.edges_)
    from_codes = HistGBDT(config, edges=raw.edges_).fit(codes, uci.y)
    assert from_codes.model_.to_json() == raw.model_.to_json()


def test_the_root_then_only_the_smaller_child_is_requested() -> None:
    codes = np.array([[0, 0], [0, 0], [0, 1], [1, 0], [1, 0], [1, 0], [1, 1], [1, 1], [1, 1],
                      [1, 1], [1, 1]], np.uint8)
    g = np.array([-1, -1, -1, 1, 1, 1, -1, -1, -1, -1, -1.0])
    h = np.ones(11)
    edges = BinEdges(((1.0,), (1.0,)), (0, 0), 2)
    config = GBDTConfig(depth=2, min_child_weight=0.0)
    state = new_tree(0)
    assert level_request(state).build == (0,)
    assignment = np.zeros(11, np.int64)
    summed = local_histograms(codes, g, h, assignment, level_request(state), edges)
    state, splits = choose_splits(state, summed, edges, config)
    (split,) = splits
    assert (split.feature, split.bin, split.left, split.right) == (1, 0, 1, 2)
    assert (split.left_hess, split.right_hess) == (5.0, 6.0)
    assert level_request(state).build == (1,)  # the smaller child; node 2 = root - node 1
    assignment = apply_splits(codes, assignment, splits, edges)
    assert assignment.tolist() == [1, 1, 2, 1, 1, 1, 2, 2, 2, 2, 2]
    summed = local_histograms(codes, g, h, assignment, level_request(state), edges)
    state, splits = choose_splits(state, summed, edges, config)
    both = node_histograms(codes, g, h, assignment, [1, 2], 2)
    expected = best_splits(both, edges, l2=config.l2, min_child_weight=0.0)
    assert [(s.node, s.feature, s.bin, s.gain) for s in splits] == [
        (n, c.feature, c.bin, c.gain) for n, c in zip((1, 2), expected, strict=True) if c]
    assert state.done and [(s.node, s.left, s.right) for s in splits] == [(1, 3, 4)]
    values = leaf_values(state, config)
    assert values[3] == pytest.approx(0.2 / 3) and values[2] == pytest.approx(0.6 / 7)
    tree = finish_tree(state, values)
    assert tree.left.tolist() == [1, 3, -1, -1, -1] and tree.feature.tolist()[:2] == [1, 0]
    with pytest.raises(StepOrderError, match="complete"):
        level_request(state)


def test_equal_children_request_the_left_one() -> None:
    codes = np.array([[0], [0], [1], [1]], np.uint8)
    edges = BinEdges(((1.0,),), (0,), 2)
    state = new_tree(0)
    summed = local_histograms(codes, np.array([-1, -1, 1, 1.0]), np.ones(4),
                              np.zeros(4, np.int64), level_request(state), edges)
    state, _ = choose_splits(state, summed, edges, GBDTConfig(depth=3, min_child_weight=0.0))
    assert level_request(state).build == (1,)


def test_steps_refuse_out_of_order_input() -> None:
    edges = BinEdges(((1.0,),), (0,), 2)
    state = new_tree(3)
    with pytest.raises(StepOrderError, match="tree 3, depth 0"):
        choose_splits(state, np.zeros((2, 1, 3, 2)), edges, GBDTConfig())
    with pytest.raises(StepOrderError, match="still growing"):
        leaf_values(state, GBDTConfig())


def test_subsample_is_keyed_by_row_id() -> None:
    ids = np.arange(100_000)
    mask = subsample_mask(ids, tree=4, rate=0.3, seed=9)
    assert abs(mask.mean() - 0.3) < 0.01
    assert np.array_equal(subsample_mask(ids[::-1], tree=4, rate=0.3, seed=9), mask[::-1])
    assert not np.array_equal(subsample_mask(ids, tree=5, rate=0.3, seed=9), mask)
    assert not np.array_equal(subsample_mask(ids, tree=4, rate=0.3, seed=10), mask)
    with pytest.raises(DataError, match="non-negative integers"):
        subsample_mask(np.array([-1, 2]), tree=0, rate=0.5, seed=0)


def test_estimator_conventions(german) -> None:
    model = HistGBDT(GBDTConfig(trees=3), n_categories=german.n_categories)
    with pytest.raises(DataError, match="not fitted"):
        model.predict_proba(german.X)
    assert model.fit(german.X, german.y) is model
    proba = model.predict_proba(german.X)
    assert proba.shape == (1000, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(german.X).tolist()) <= {0, 1}
    assert model.n_features_in_ == german.X.shape[1] and model.classes_.tolist() == [0, 1]


def test_bad_fits_are_refused(german) -> None:
    with pytest.raises(ConfigError, match="--early-stopping-rounds"):
        HistGBDT(GBDTConfig(early_stopping_rounds=2)).fit(german.X, german.y)
    with pytest.raises(DataError, match="both classes"):
        HistGBDT(GBDTConfig(trees=1)).fit(german.X, np.zeros(1000))
    with pytest.raises(DataError, match="only 0 and 1"):
        HistGBDT(GBDTConfig(trees=1)).fit(german.X, np.full(1000, 2.0))
    too_few = (2,) + german.n_categories[1:]  # column 0 holds codes 0..3
    with pytest.raises(DataError, match="integer codes 0..1"):
        HistGBDT(GBDTConfig(trees=1), n_categories=too_few).fit(german.X, german.y)
    with pytest.raises(DataError, match="one label per row"):
        HistGBDT(GBDTConfig(trees=1)).fit(german.X[:10], german.y[:9])


def test_messages_of_another_release_or_shape_are_refused() -> None:
    with pytest.raises(StepOrderError, match="schema_version 2"):
        LevelRequest(0, 0, (0,), schema_version=2)
    with pytest.raises(StepOrderError, match="next two ids"):
        Split(3, 0, 0, False, True, 1.0, 0.5, 2, 3, 0.0, 1.0, 0.0, 1.0)
