"""The fitted model: raw-value scoring, its JSON file, and the XGBoost export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from federation.errors import DataError
from federation.ml.gbdt.config import GBDTConfig
from federation.ml.gbdt.estimator import HistGBDT
from federation.ml.gbdt.model import GBDTModel, ModelFormatError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def uci_model(uci_with_missing) -> HistGBDT:
    """20 trees on UCI with missing values and a row subsample."""
    data = uci_with_missing
    return HistGBDT(GBDTConfig(trees=20, depth=4, subsample=0.8)).fit(data.X, data.y)


@pytest.fixture(scope="module")
def german_model(german) -> HistGBDT:
    """30 trees on German credit with its 13 categorical columns as codes."""
    return HistGBDT(GBDTConfig(trees=30, depth=3), n_categories=german.n_categories).fit(
        german.X, german.y)


def test_json_round_trip_is_exact(uci_model: HistGBDT, german_model: HistGBDT, uci_with_missing,
                                  german) -> None:
    for fitted, X in ((uci_model, uci_with_missing.X), (german_model, german.X)):
        text = fitted.model_.to_json()
        back = GBDTModel.from_json(text)
        assert back.to_json() == text
        assert np.array_equal(back.predict_margin(X), fitted.decision_function(X))


def test_truncation_keeps_a_prefix(uci_model: HistGBDT, uci_with_missing) -> None:
    short = uci_model.model_.truncated(5)
    assert len(short.trees) == 5 and short.trees[4] is uci_model.model_.trees[4]


@pytest.mark.parametrize(("text", "match"), [
    ("not json", "not JSON"),
    ('{"format": "other", "schema_version": 1}', "expected a 'fedcredit-gbdt'"),
    ('{"format": "fedcredit-gbdt", "schema_version": 9}', "schema version 1"),
    ('[1, 2]', "expected"),
    ('{"format": "fedcredit-gbdt", "schema_version": 1, "base_margin": 0.0}', "lacks"),
])
def test_malformed_model_files_are_refused(text: str, match: str) -> None:
    with pytest.raises(ModelFormatError, match=match):
        GBDTModel.from_json(text)


def test_corrupt_trees_are_refused(uci_model: HistGBDT) -> None:
    raw = json.loads(uci_model.model_.to_json())
    raw["trees"][0]["left"][0] = 0  # a cycle back to the root
    with pytest.raises(ModelFormatError, match="point forward"):
        GBDTModel.from_json(json.dumps(raw))
    raw = json.loads(uci_model.model_.to_json())
    raw["trees"][1]["value"] = raw["trees"][1]["value"][:-1]
    with pytest.raises(ModelFormatError, match="equal length"):
        GBDTModel.from_json(json.dumps(raw))
    raw = json.loads(uci_model.model_.to_json())
    raw["n_features"] = 3
    with pytest.raises(ModelFormatError, match="features"):
        GBDTModel.from_json(json.dumps(raw))


def test_scoring_needs_the_training_columns(uci_model: HistGBDT) -> None:
    with pytest.raises(DataError, match="23 features"):
        uci_model.predict_proba(np.zeros((2, 5)))


def test_xgboost_json_structure(uci_model: HistGBDT, german_model: HistGBDT) -> None:
    raw = json.loads(uci_model.model_.to_xgboost_json())
    learner = raw["learner"]
    assert learner["objective"]["name"] == "binary:logistic"
    assert learner["learner_model_param"]["num_feature"] == "23"
    model = learner["gradient_booster"]["model"]
    assert model["gbtree_model_param"]["num_trees"] == "20" and len(model["trees"]) == 20
    for index, tree in enumerate(model["trees"]):
        n = int(tree["tree_param"]["num_nodes"])
        assert tree["id"] == index
        for key in ("base_weights", "default_left", "left_children", "right_children",
                    "parents", "split_conditions", "split_indices", "split_type",
                    "sum_hessian", "loss_changes"):
            assert len(tree[key]) == n, key
        assert tree["parents"][0] == 2147483647 and tree["categories"] == []
    cats = json.loads(german_model.model_.to_xgboost_json())["learner"]
    assert cats["feature_types"].count("c") == 13
    tree = next(t for t in cats["gradient_booster"]["model"]["trees"] if t["categories"])
    assert all(tree["split_type"][n] == 1 for n in tree["categories_nodes"])


def test_xgboost_loads_the_export_and_predicts_the_same(uci_model: HistGBDT, german_model,
                                                        uci_with_missing, german,
                                                        tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    path = tmp_path / "uci.json"
    path.write_text(uci_model.model_.to_xgboost_json())
    booster = xgb.Booster(model_file=str(path))
    X = uci_with_missing.X
    np.testing.assert_allclose(booster.predict(xgb.DMatrix(X)),
                               uci_model.predict_proba(X)[:, 1], rtol=0, atol=1e-6)
    booster = xgb.Booster(model_file=bytearray(german_model.model_.to_xgboost_json(), "utf-8"))
    types = ["c" if k else "q" for k in german.n_categories]
    matrix = xgb.DMatrix(german.X, feature_types=types, enable_categorical=True)
    np.testing.assert_allclose(booster.predict(matrix), german_model.predict_proba(german.X)[:, 1],
                               rtol=0, atol=1e-6)


def test_the_core_imports_no_flwr_torch_pandas_or_scipy() -> None:
    code = ("import importlib, pkgutil, sys, federation.ml.gbdt as g\n"
            "for m in pkgutil.walk_packages(g.__path__, 'federation.ml.gbdt.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(k for k in ('torch', 'flwr', 'pandas', 'scipy', 'sklearn')"
            " if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
