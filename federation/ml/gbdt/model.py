"""A fitted boosted-tree model as plain arrays: scoring on raw values, JSON, XGBoost export.

Each :class:`Tree` is a handful of parallel arrays indexed by node id (root 0, nodes
numbered level by level). An inner node sends a row left when

* numeric feature: ``float32(x) < threshold`` (``threshold`` is a float32 cut point);
* categorical feature: ``x != threshold`` (``threshold`` is the one category going right);
* missing value (NaN): ``default_left``.

This is XGBoost's rule, so :meth:`GBDTModel.predict_margin` needs no bins and the XGBoost
export is exact up to XGBoost's float32 leaf values. :meth:`GBDTModel.to_json` /
:meth:`GBDTModel.from_json` are the one owner of the model file format (schema-versioned).

Privacy: the model reveals, per leaf, a shrunk ratio of gradient sums of its rows and, per
inner node, a cut point near a quantile of the pooled data; release it like any aggregate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from federation.errors import DataError
from federation.ml.gbdt.gradients import sigmoid
from federation.ml.gbdt.xgboost_json import model_to_xgboost_json

__all__ = ["MODEL_FORMAT", "SCHEMA_VERSION", "ModelFormatError", "Tree", "GBDTModel"]

MODEL_FORMAT = "fedcredit-gbdt"
SCHEMA_VERSION = 1
_INT_FIELDS = ("feature", "split_bin", "left", "right")
_BOOL_FIELDS = ("categorical", "default_left")
_FLOAT_FIELDS = ("threshold", "value", "gain", "hessian")


class ModelFormatError(DataError):
    """A model file is not a fedcredit GBDT model of a supported version, or is corrupt."""


@dataclass(frozen=True, eq=False)
class Tree:
    """One regression tree as parallel node arrays (``-1`` children mark a leaf).

    Attributes
    ----------
    feature, split_bin : numpy.ndarray
        int32 split feature and bin (``-1`` at leaves).
    threshold : numpy.ndarray
        float64 cut point (numeric) or category (categorical); 0 at leaves.
    categorical, default_left : numpy.ndarray
        bool: categorical split; missing values go left.
    left, right : numpy.ndarray
        int32 child ids (``-1`` at leaves).
    value : numpy.ndarray
        float64 shrunk node weight ``-lr G / (H + l2)``: the leaf value at leaves.
    gain : numpy.ndarray
        float64 gain of the split (0 at leaves).
    hessian : numpy.ndarray
        float64 hessian sum of the node's rows.
    """

    feature: NDArray[np.int32]
    split_bin: NDArray[np.int32]
    threshold: NDArray[np.float64]
    categorical: NDArray[np.bool_]
    default_left: NDArray[np.bool_]
    left: NDArray[np.int32]
    right: NDArray[np.int32]
    value: NDArray[np.float64]
    gain: NDArray[np.float64]
    hessian: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = self.feature.size
        if n == 0 or any(getattr(self, f.name).shape != (n,) for f in fields(self)):
            raise ModelFormatError("a tree needs at least one node and arrays of equal length.")
        inner = self.left >= 0
        if np.any((self.right >= 0) != inner) or np.any(self.left[inner] >= n) or np.any(
                self.right[inner] >= n) or np.any(self.left[inner] <= np.flatnonzero(inner)):
            raise ModelFormatError("a tree's child ids must point forward to nodes of the tree.")

    @property
    def n_nodes(self) -> int:
        """Number of nodes (inner and leaves)."""
        return int(self.feature.size)

    def leaves_of(self, x32: NDArray[np.float32]) -> NDArray[np.int64]:
        """The leaf each row of float32 values ends in."""
        node = np.zeros(x32.shape[0], dtype=np.int64)
        active = np.flatnonzero(self.left[node] >= 0)
        while active.size:
            at = node[active]
            x = x32[active, self.feature[at]]
            go_left = np.where(self.categorical[at], x != self.threshold[at].astype(np.float32),
                               x < self.threshold[at].astype(np.float32))
            go_left = np.where(np.isnan(x), self.default_left[at], go_left)
            node[active] = np.where(go_left, self.left[at], self.right[at])
            active = active[self.left[node[active]] >= 0]
        return node

    def to_dict(self) -> dict[str, list[Any]]:
        """The node arrays as JSON-ready lists."""
        return {f.name: getattr(self, f.name).tolist() for f in fields(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Tree:
        """Inverse of :meth:`to_dict`."""
        try:
            arrays: dict[str, Any] = {k: np.asarray(raw[k], dtype=np.int32) for k in _INT_FIELDS}
            arrays |= {k: np.asarray(raw[k], dtype=bool) for k in _BOOL_FIELDS}
            arrays |= {k: np.asarray(raw[k], dtype=np.float64) for k in _FLOAT_FIELDS}
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"a tree in the model file is malformed ({exc!s:.80}); "
                                   "re-export the model.") from exc
        return cls(**arrays)


@dataclass(frozen=True, eq=False)
class GBDTModel:
    """A fitted boosted-tree model for P(default).

    Parameters
    ----------
    base_margin : float
        Starting margin (log-odds of the training default rate).
    trees : tuple of Tree
    n_features : int
        Columns of the raw matrix it scores.
    n_categories : tuple of int
        Per feature, 0 for numeric or its number of categories.
    """

    base_margin: float
    trees: tuple[Tree, ...]
    n_features: int
    n_categories: tuple[int, ...]
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ModelFormatError(f"GBDT model schema_version {self.schema_version!r:.20} is "
                                   f"not supported (this build reads {SCHEMA_VERSION}).")
        if len(self.n_categories) != self.n_features or any(
                np.any(t.feature >= self.n_features) for t in self.trees):
            raise ModelFormatError(f"the model's trees or feature types do not match its "
                                   f"{self.n_features} features; re-export the model.")

    def _float32_rows(self, X: ArrayLike) -> NDArray[np.float32]:
        values = np.asarray(X, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.n_features:
            raise DataError(f"the model scores rows of {self.n_features} features, got shape "
                            f"{values.shape}; pass the training columns in the same order.")
        return values.astype(np.float32)

    def predict_margin(self, X: ArrayLike) -> NDArray[np.float64]:
        """Margins (log-odds of default) of raw rows; NaN is a missing value."""
        x32 = self._float32_rows(X)
        margin = np.full(x32.shape[0], self.base_margin)
        for tree in self.trees:
            margin += tree.value[tree.leaves_of(x32)]
        return margin

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """P(default) of raw rows."""
        return sigmoid(self.predict_margin(X))

    def truncated(self, n_trees: int) -> GBDTModel:
        """The model of the first ``n_trees`` trees (e.g. the best early-stopping prefix)."""
        return replace(self, trees=self.trees[:n_trees])

    def to_json(self) -> str:
        """The model file (format ``fedcredit-gbdt``, schema-versioned, exact floats)."""
        return json.dumps({"format": MODEL_FORMAT, "schema_version": self.schema_version,
                           "base_margin": self.base_margin, "n_features": self.n_features,
                           "n_categories": list(self.n_categories),
                           "trees": [t.to_dict() for t in self.trees]})

    @classmethod
    def from_json(cls, text: str | bytes) -> GBDTModel:
        """Read a model file written by :meth:`to_json`.

        Raises
        ------
        ModelFormatError
            Not JSON, another format or version, or inconsistent arrays.
        """
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise ModelFormatError("the model file is not JSON; pass a file written by "
                                   "GBDTModel.to_json.") from exc
        if not isinstance(raw, dict) or raw.get("format") != MODEL_FORMAT or raw.get(
                "schema_version") != SCHEMA_VERSION:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ModelFormatError(f"expected a '{MODEL_FORMAT}' model of schema version "
                                   f"{SCHEMA_VERSION}, got {found!r:.40}; re-export it with "
                                   "this release.")
        try:
            return cls(float(raw["base_margin"]), tuple(Tree.from_dict(t) for t in raw["trees"]),
                       int(raw["n_features"]), tuple(int(k) for k in raw["n_categories"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"the model file lacks or garbles a field ({exc!s:.80}); "
                                   "re-export the model.") from exc

    def to_xgboost_json(self) -> str:
        """The model in XGBoost's JSON format (``xgboost.Booster(model_file=...)`` loads it).

        See :func:`federation.ml.gbdt.xgboost_json.model_to_xgboost_json`.
        """
        return model_to_xgboost_json(self)
