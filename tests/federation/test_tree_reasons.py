"""Saabas reason codes of boosted trees (federation.scorecard.tree_reasons), on german_credit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federation.data.table import load_credit_csv
from federation.errors import SchemaError
from federation.ml.gbdt import GBDTConfig, GBDTModel, HistGBDT
from federation.ml.preprocess import Preprocessor, pooled_preprocessor
from federation.ml.tree_features import tree_categories, tree_feature_names, tree_matrix
from federation.scorecard.scale import ScorecardScale
from federation.scorecard.tree_reasons import (
    _float32_columns,
    _leaves,
    saabas_contributions,
    tree_margins,
    tree_reason_codes,
)


@pytest.fixture(scope="module")
def fitted(data_dir: Path) -> tuple[Preprocessor, GBDTModel, np.ndarray]:
    table = load_credit_csv(data_dir / "german_credit.csv", target="bad")
    prep = pooled_preprocessor([table])
    x = tree_matrix(table, prep)
    model = HistGBDT(GBDTConfig(trees=8, depth=3, bins=16),
                     n_categories=tree_categories(prep)).fit(x, table.y).model_
    x = x.copy()
    x[::7, 0] = np.nan  # missing values take the default direction
    x[::5, -1] = np.nan
    return prep, model, x


def test_inner_nodes_carry_values(fitted) -> None:
    _, model, _ = fitted
    assert all(np.any(t.value[t.left >= 0] != 0) for t in model.trees)


def test_margins_equal_predict_margin(fitted) -> None:
    _, model, x = fitted
    np.testing.assert_array_equal(tree_margins(model, x), model.predict_margin(x))
    np.testing.assert_array_equal(saabas_contributions(model, x).margin, model.predict_margin(x))


def test_contributions_add_up_to_the_margin(fitted) -> None:
    _, model, x = fitted
    parts = saabas_contributions(model, x)
    bias = model.base_margin + sum(float(t.value[0]) for t in model.trees)
    assert parts.bias == pytest.approx(bias, abs=1e-12)
    np.testing.assert_allclose(parts.bias + parts.contribution.sum(axis=1),
                               model.predict_margin(x), rtol=0, atol=1e-9)


def test_contributions_follow_each_rows_path(fitted) -> None:
    """Row by row, the path walk of Tree.leaves_of gives the same per-feature credits."""
    _, model, x = fitted
    parts = saabas_contributions(model, x[:40])
    x32 = x[:40].astype(np.float32)
    for i in range(40):
        expected = np.zeros(model.n_features)
        for tree in model.trees:
            leaf = int(tree.leaves_of(x32[i : i + 1])[0])
            node = 0
            while node != leaf:
                nxt = next(c for c in (int(tree.left[node]), int(tree.right[node]))
                           if _under(tree, c, leaf))
                expected[tree.feature[node]] += tree.value[nxt] - tree.value[node]
                node = nxt
        np.testing.assert_allclose(parts.contribution[i], expected, atol=1e-12)
    # only features the trees split on get credit
    used = {int(f) for t in model.trees for f in t.feature[t.left >= 0]}
    unused = [f for f in range(model.n_features) if f not in used]
    assert not np.any(parts.contribution[:, unused])


def _under(tree, node: int, leaf: int) -> bool:
    if node == leaf:
        return True
    if tree.left[node] < 0:
        return False
    return _under(tree, int(tree.left[node]), leaf) or _under(tree, int(tree.right[node]), leaf)


def test_reasons_are_the_largest_risk_contributions(fitted) -> None:
    prep, model, x = fitted
    parts = saabas_contributions(model, x)
    names = tree_feature_names(prep)
    scale = ScorecardScale()
    codes = tree_reason_codes(parts, names, factor=scale.factor, k=3)
    assert codes.text.shape == (x.shape[0], 3)
    lost = scale.factor * parts.contribution
    for i in range(x.shape[0]):
        top = np.sort(lost[i])[::-1][:3]
        np.testing.assert_allclose(codes.points_lost[i], np.where(top > 1e-6, top, 0.0))
        for j in range(3):
            if codes.feature[i, j]:
                f = names.index(codes.feature[i, j])
                assert lost[i, f] == pytest.approx(codes.points_lost[i, j])
                assert codes.text[i, j] == names[f].replace("_", " ")
            else:
                assert codes.text[i, j] == "" and codes.points_lost[i, j] == 0
    # categorical features are named by the column, e.g. "status of existing checking account"
    assert "status of existing checking account" in set(codes.text.ravel())


def test_bad_inputs(fitted) -> None:
    prep, model, x = fitted
    with pytest.raises(SchemaError, match="tree_matrix"):
        saabas_contributions(model, x[:, :-1])
    parts = saabas_contributions(model, x[:5])
    with pytest.raises(ValueError, match="at least 1"):
        tree_reason_codes(parts, tree_feature_names(prep), factor=1.0, k=0)
    with pytest.raises(ValueError, match="tree_feature_names"):
        tree_reason_codes(parts, ("a",), factor=1.0)


@pytest.mark.parametrize("depth", [1, 4, 6])
def test_every_tree_size_scores_like_predict_margin(data_dir: Path, depth: int) -> None:
    """Packed decision bits (up to 8 and 16 inner nodes) and the bottom-up fallback (more)."""
    table = load_credit_csv(data_dir / "german_credit.csv", target="bad")
    prep = pooled_preprocessor([table])
    x = tree_matrix(table, prep)
    x[::3, 1] = np.nan
    model = HistGBDT(GBDTConfig(trees=3, depth=depth, bins=16),
                     n_categories=tree_categories(prep)).fit(x, table.y).model_
    inner = [int((t.left >= 0).sum()) for t in model.trees]
    assert max(inner) > 16 if depth == 6 else max(inner) <= 2 ** depth - 1
    parts = saabas_contributions(model, x)
    np.testing.assert_array_equal(tree_margins(model, x), model.predict_margin(x))
    np.testing.assert_array_equal(parts.margin, model.predict_margin(x))
    np.testing.assert_allclose(parts.bias + parts.contribution.sum(axis=1), parts.margin,
                               rtol=0, atol=1e-9)
    for tree in model.trees:
        np.testing.assert_array_equal(_leaves(tree, _float32_columns(model, x)),
                                      tree.leaves_of(x.astype(np.float32)))
