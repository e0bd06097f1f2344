"""Reason codes for boosted trees: Saabas per-feature contributions along each row's path.

Every node of a :class:`~federation.ml.gbdt.Tree` carries a value, inner nodes included: the
shrunk weight ``-lr G / (H + l2)`` of the rows that reach it (``trainer.leaf_values``), i.e.
the tree's expected output for those rows. Following Saabas (the "treeinterpreter"
decomposition), each split on a row's path from the root to its leaf moves the prediction
from the parent's value to the child's, and that change is credited to the split's feature::

    contribution[i, f] = sum over trees t, over splits (p -> c) on row i's path in t
                         with feature(p) = f, of  value_t[c] - value_t[p]

The sum telescopes per tree to ``value_t[leaf] - value_t[root]``, so for every row, exactly
(up to float rounding)::

    margin_i = bias + sum_f contribution[i, f],   bias = base_margin + sum_t value_t[root]

Contributions are in log-odds of default; a positive one raised P(default), and since
``points = offset - factor * log_odds`` it cost the row ``factor * contribution`` points. The
reasons are the ``k`` largest positive contributions, named by the feature (numeric or
categorical: the column name). Unlike the LR's reasons there is no "typical applicant": the
reference is the model's average (root) prediction. Saabas credits depend on the tree order
of the splits (a feature split near the root gets the larger share); they are exact, cheap
and additive, not Shapley values. All of it is vectorised: per inner node one whole-column
comparison, per tree the leaf of every row, and per (tree, split feature) one lookup of the
leaf's path credit in a small table. Runs on the bank's own node; nothing is sent anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from federation.errors import SchemaError
from federation.ml.gbdt import GBDTModel, Tree
from federation.scorecard.reason_codes import MIN_POINTS_LOST, ReasonCodes, readable


@dataclass(frozen=True)
class TreeContributions:
    """Margins of a batch and their Saabas decomposition.

    Attributes
    ----------
    margin : float64 array (n,)
        Log-odds of default per row (equal to ``GBDTModel.predict_margin``).
    bias : float
        ``base_margin + sum_t value_t[root]``: the margin before any split.
    contribution : float64 array (n, F)
        Per row and tree feature, the change of the margin credited to that feature.
    """

    margin: NDArray[np.float64]
    bias: float
    contribution: NDArray[np.float64]


def _float32_columns(model: GBDTModel, x: ArrayLike) -> NDArray[np.float32]:
    """Rows as float32 (the model's comparison precision), column-major for fast columns."""
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != model.n_features:
        raise SchemaError(f"the tree model scores rows of {model.n_features} features, got "
                          f"shape {values.shape}; build them with tree_matrix(table, prep).")
    return np.asfortranarray(values, dtype=np.float32)


def _goes_left(tree: Tree, node: int, column: NDArray[np.float32]) -> NDArray[np.bool_]:
    """XGBoost's rule at an inner node, for a whole column (as ``Tree.leaves_of``).

    Numeric: ``x < threshold``; categorical: ``x != threshold``; NaN: ``default_left``. A
    comparison with NaN is False, so each case is one or two comparisons, with no NaN mask.
    """
    cut = np.float32(tree.threshold[node])
    if tree.categorical[node]:
        return column != cut if tree.default_left[node] else (column < cut) | (column > cut)
    return ~(column >= cut) if tree.default_left[node] else column < cut


MAX_PACKED_NODES = 16
"""Trees with up to this many inner nodes find leaves by packed decision bits and a table."""
_GATHER = np.uint64(0x8040201008040201)  # (8 bytes of 0/1) * _GATHER >> 56: the 8 bits


def _pack_rows(bits: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Each row of a C-ordered (n, 8 * g) bool matrix (g <= 2) as one integer code."""
    words = bits.view(np.uint64)  # 8 decisions per word, one byte each
    code = np.zeros(bits.shape[0], dtype=np.int64)
    for j in range(words.shape[1]):
        code |= ((words[:, j] * _GATHER) >> np.uint64(56)).astype(np.int64) << (8 * j)
    return code


def _leaf_table(tree: Tree, inner: NDArray[np.int64], width: int) -> NDArray[np.int32]:
    """Leaf reached for every packed code of the inner nodes' decisions (``_pack_rows``)."""
    bit_of = _pack_rows(np.eye(width, dtype=bool)[: len(inner)].copy())  # code of one bit
    codes = np.arange(1 << width, dtype=np.int64)
    node = np.zeros(codes.size, dtype=np.int64)
    slot = np.full(tree.n_nodes, -1, dtype=np.int64)
    slot[inner] = np.arange(len(inner))
    while True:
        at = slot[node]
        moving = at >= 0
        if not moving.any():
            return node.astype(np.int32)
        left = (codes & bit_of[np.maximum(at, 0)]) != 0
        node = np.where(moving, np.where(left, tree.left[node], tree.right[node]), node)


def _leaves(tree: Tree, x32: NDArray[np.float32]) -> NDArray[np.int32]:
    """The leaf each row ends at, from whole-column decisions (no per-row walk).

    Up to :data:`MAX_PACKED_NODES` inner nodes, every node's decision becomes one bit of a
    row code and a table of all codes gives the leaf; larger trees choose bottom-up, one
    ``where`` per inner node (node ids grow from parent to child, so walking from the last
    inner node to the root, each node's children already hold their rows' leaves).
    """
    inner = np.flatnonzero(tree.left >= 0)
    n = x32.shape[0]
    if 0 < len(inner) <= MAX_PACKED_NODES:
        width = 8 if len(inner) <= 8 else 16
        bits = np.zeros((n, width), dtype=bool)
        for k, p in enumerate(inner):
            bits[:, k] = _goes_left(tree, int(p), x32[:, tree.feature[p]])
        return _leaf_table(tree, inner, width).take(_pack_rows(bits))
    reached: dict[int, NDArray[np.int32]] = {}
    for p in inner[::-1]:
        lc, rc = int(tree.left[p]), int(tree.right[p])
        reached[int(p)] = np.where(_goes_left(tree, int(p), x32[:, tree.feature[p]]),
                                   reached.get(lc, np.int32(lc)), reached.get(rc, np.int32(rc)))
    return np.broadcast_to(reached.get(0, np.int32(0)), (n,)).astype(np.int32)


def _path_table(tree: Tree, n_features: int) -> NDArray[np.float64]:
    """Per node, the Saabas credit per feature of the path from the root to it.

    ``table[c] = table[p]`` plus ``value[c] - value[p]`` on ``feature[p]``, for each child
    ``c`` of an inner node ``p`` (parents come first).
    """
    table = np.zeros((tree.n_nodes, n_features))
    for p in np.flatnonzero(tree.left >= 0):
        for c in (int(tree.left[p]), int(tree.right[p])):
            table[c] = table[p]
            table[c, tree.feature[p]] += tree.value[c] - tree.value[p]
    return table


def _tree_pass(tree: Tree, x32: NDArray[np.float32],
               contribution: NDArray[np.float64] | None) -> NDArray[np.float64]:
    """The leaf value of every row in ``tree``; Saabas credits added to ``contribution``.

    With ``contribution`` (column-major, in place), each feature the tree splits on gets its
    path credit of the row's leaf (:func:`_path_table`): small-table lookups, no walk.
    """
    leaf = _leaves(tree, x32)
    if contribution is not None:
        table = _path_table(tree, contribution.shape[1])
        for f in np.unique(tree.feature[tree.left >= 0]):
            contribution[:, f] += table[:, f].take(leaf)
    return tree.value.take(leaf)


def tree_margins(model: GBDTModel, x: ArrayLike) -> NDArray[np.float64]:
    """Log-odds of default of raw tree rows (``tree_matrix`` layout; NaN = missing).

    The same leaf values added in the same order as ``GBDTModel.predict_margin``, so the
    results are identical; vectorised by whole columns.
    """
    x32 = _float32_columns(model, x)
    margin = np.full(x32.shape[0], model.base_margin)
    for tree in model.trees:
        margin += _tree_pass(tree, x32, None)
    return margin


def saabas_contributions(model: GBDTModel, x: ArrayLike) -> TreeContributions:
    """Margins and Saabas per-feature contributions of raw tree rows (see the module doc).

    Parameters
    ----------
    model : GBDTModel
    x : (n, F) array
        Raw tree inputs in :func:`federation.ml.tree_features.tree_matrix` layout.

    Returns
    -------
    TreeContributions
        ``margin == bias + contribution.sum(axis=1)`` up to float rounding.

    Raises
    ------
    SchemaError
        ``x`` does not have the model's number of columns.
    """
    x32 = _float32_columns(model, x)
    n = x32.shape[0]
    margin = np.full(n, model.base_margin)
    contribution = np.zeros((n, model.n_features), order="F")
    for tree in model.trees:
        margin += _tree_pass(tree, x32, contribution)
    bias = model.base_margin + sum(float(t.value[0]) for t in model.trees)
    return TreeContributions(margin, bias, np.ascontiguousarray(contribution))


def tree_reason_codes(contributions: TreeContributions, feature_names: tuple[str, ...], *,
                      factor: float, k: int = 3) -> ReasonCodes:
    """The ``k`` features that raised each row's P(default) most (Saabas), worst first.

    Parameters
    ----------
    contributions : TreeContributions
        From :func:`saabas_contributions`.
    feature_names : tuple of str
        One name per tree column (:func:`~federation.ml.tree_features.tree_feature_names`).
    factor : float
        The scale's points per unit of log-odds (``ScorecardScale.factor``):
        ``points_lost = factor * contribution``.
    k : int
        Reasons per row (at least 1); a row has fewer when fewer features raised its risk.

    Raises
    ------
    ValueError
        ``k < 1`` or one name per column is not given.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1 (got {k}).")
    lost = factor * contributions.contribution
    if lost.shape[1] != len(feature_names):
        raise ValueError(f"{len(feature_names)} feature names for {lost.shape[1]} tree "
                         "columns; pass tree_feature_names(prep) of the model's preprocessor.")
    order = np.argsort(-lost, axis=1, kind="stable")[:, :k]
    worst = np.take_along_axis(lost, order, axis=1)
    is_reason = worst > MIN_POINTS_LOST
    columns = np.asarray(feature_names, dtype=object)
    labels = np.asarray([readable(n) for n in feature_names], dtype=object)
    pad = ((0, 0), (0, k - order.shape[1]))  # fewer columns than k: empty reasons
    return ReasonCodes(
        text=np.pad(np.where(is_reason, labels[order], ""), pad, constant_values=""),
        feature=np.pad(np.where(is_reason, columns[order], ""), pad, constant_values=""),
        points_lost=np.pad(np.where(is_reason, worst, 0.0), pad),
    )
