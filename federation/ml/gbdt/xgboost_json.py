"""Export of a :class:`~federation.ml.gbdt.model.GBDTModel` to XGBoost's JSON model format.

The layout follows XGBoost's ``doc/model.schema`` as XGBoost 2.1 and 3.x write it
(``learner / gradient_booster / model / trees`` with ``split_indices``,
``split_conditions``, ``default_left``, ``left_children``, ``right_children``,
``base_weights``, ...). The maths needs no translation:

* numeric split: XGBoost sends ``x < split_condition`` left (in float32), our rule;
* categorical split (``split_type`` 1): XGBoost sends the categories listed for the node
  right, and we list the one category our split sends right;
* missing values follow ``default_left``; leaf values are already shrunk by the learning
  rate, as XGBoost stores them;
* ``base_score`` is the probability ``sigmoid(base_margin)`` (``binary:logistic``).

XGBoost keeps floats as float32, so its probabilities match ours to about 1e-7 (loaded and
compared with XGBoost 2.1.4 and 3.2.0; ``tests/federation/gbdt/test_gbdt_model.py`` checks
the installed one).
``loss_changes`` holds XGBoost's convention (twice our gain, which carries the 1/2).
A model with categorical features needs ``xgboost.DMatrix(X, feature_types=...,
enable_categorical=True)`` with ``"c"`` for those columns (the export lists the types).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from federation.ml.gbdt.gradients import sigmoid

if TYPE_CHECKING:  # model.py imports this module for its export method
    from federation.ml.gbdt.model import GBDTModel, Tree

__all__ = ["XGBOOST_VERSION", "model_to_xgboost_json", "tree_to_xgboost"]

XGBOOST_VERSION = (2, 1, 0)  # the model format written (read by XGBoost 2.1 and 3.x)
_NO_PARENT = 2147483647


def tree_to_xgboost(tree: Tree, index: int, n_features: int) -> dict[str, Any]:
    """One tree in XGBoost's layout (``index`` is its ``id``)."""
    leaf = tree.left < 0
    parents = np.full(tree.n_nodes, _NO_PARENT, dtype=np.int64)
    inner = np.flatnonzero(~leaf)
    parents[tree.left[inner]] = inner
    parents[tree.right[inner]] = inner
    condition = np.where(leaf, tree.value, np.where(tree.categorical, 0.0, tree.threshold))
    category_nodes = np.flatnonzero(~leaf & tree.categorical)
    return {
        "base_weights": tree.value.tolist(),
        "categories": [int(tree.threshold[n]) for n in category_nodes],
        "categories_nodes": category_nodes.tolist(),
        "categories_segments": list(range(category_nodes.size)),
        "categories_sizes": [1] * category_nodes.size,
        "default_left": np.where(leaf, 0, tree.default_left).astype(int).tolist(),
        "id": index,
        "left_children": tree.left.tolist(),
        "loss_changes": (2.0 * tree.gain).tolist(),
        "parents": parents.tolist(),
        "right_children": tree.right.tolist(),
        "split_conditions": condition.tolist(),
        "split_indices": np.where(leaf, 0, tree.feature).tolist(),
        "split_type": (~leaf & tree.categorical).astype(int).tolist(),
        "sum_hessian": tree.hessian.tolist(),
        "tree_param": {"num_deleted": "0", "num_feature": str(n_features),
                       "num_nodes": str(tree.n_nodes), "size_leaf_vector": "1"},
    }


def model_to_xgboost_json(model: GBDTModel) -> str:
    """The whole model as an XGBoost JSON model file (a ``binary:logistic`` gbtree).

    Returns
    -------
    str
        JSON text; write it to ``model.json`` and load it with
        ``xgboost.Booster(model_file="model.json")``.
    """
    n = len(model.trees)
    # shortest float32 text: XGBoost 2.x reads base_score as float32 and silently falls back
    # to 0.5 when the text has more digits than a float32 holds
    probability = np.float32(sigmoid(np.array([model.base_margin]))[0])
    base_score = np.format_float_positional(probability, unique=True, trim="-")
    types = ["c" if k else "q" for k in model.n_categories] if any(model.n_categories) else []
    booster = {
        "model": {
            "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": str(n)},
            "iteration_indptr": list(range(n + 1)),
            "tree_info": [0] * n,
            "trees": [tree_to_xgboost(t, i, model.n_features) for i, t in enumerate(model.trees)],
        },
        "name": "gbtree",
    }
    learner = {
        "attributes": {},
        "feature_names": [],
        "feature_types": types,
        "gradient_booster": booster,
        "learner_model_param": {"base_score": base_score, "boost_from_average": "1",
                                "num_class": "0", "num_feature": str(model.n_features),
                                "num_target": "1"},
        "objective": {"name": "binary:logistic", "reg_loss_param": {"scale_pos_weight": "1"}},
    }
    return json.dumps({"learner": learner, "version": list(XGBOOST_VERSION)})
