"""Level-wise tree growth as step functions, with the cross-party sum as the only exchange.

One tree, as a federation runs it (*party* = each bank on its own rows, *public* = any
party or the coordinator, on sums only; all public steps are pure functions of the public
state and the sums, so every party computing them gets the same result):

1. party: ``g, h = start_tree(y, margins, row_ids=..., tree=t, config=...)`` and
   ``assignment = zeros(rows)`` (every row at the root, node 0);
   public: ``state = new_tree(t)``.
2. while not ``state.done``:

   a. public: ``request = level_request(state)`` (the nodes whose histograms are built at
      this level: the root, then only the smaller child of each split, by summed hessian,
      ties to the left; the sibling is ``parent - child``);
   b. party: ``local_histograms(codes, g, h, assignment, request, edges)``; the caller sums
      these arrays over parties;
   c. public: ``state, splits = choose_splits(state, summed, edges, config)``;
   d. party: ``assignment = apply_splits(codes, assignment, splits, edges)``.
3. public: ``values = leaf_values(state, config)``; ``tree = finish_tree(state, values)``;
   party: ``margins = add_tree(margins, assignment, values)``.

Threat model: honest-but-curious parties and coordinator. Raw rows, labels, margins,
gradients and row assignments never leave a party; what does is each party's histogram of
the requested nodes (to be summed, securely if the run asks for it) and what the sums
reveal (see :mod:`federation.ml.gbdt.histograms`): the splits and leaf values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from federation.errors import DataError
from federation.ml.gbdt.binning import BinEdges
from federation.ml.gbdt.config import GBDTConfig
from federation.ml.gbdt.gradients import start_tree
from federation.ml.gbdt.histograms import (
    GRAD,
    HESS,
    histogram_shape,
    node_histograms,
    subtract_histograms,
)
from federation.ml.gbdt.model import Tree
from federation.ml.gbdt.splits import SplitCandidate, best_splits, node_weight

__all__ = ["SCHEMA_VERSION", "StepOrderError", "Split", "LevelRequest", "TreeState",
           "start_tree", "new_tree", "level_request", "local_histograms", "choose_splits",
           "apply_splits", "goes_left", "leaf_values", "finish_tree", "add_tree"]

SCHEMA_VERSION = 1


class StepOrderError(DataError):
    """A growth step got the wrong input: a finished tree, or sums of another request."""


def _check_version(kind: str, version: int) -> None:
    if version != SCHEMA_VERSION:
        raise StepOrderError(f"{kind} schema_version {version!r:.20} is not supported (this "
                             f"build reads {SCHEMA_VERSION}); upgrade every node to one release.")


@dataclass(frozen=True, slots=True)
class Split:
    """A decided split, as every party applies it (a message of the protocol).

    ``node`` sends a row to ``left`` when its code ``<= bin`` (numeric; that is
    ``x < threshold``) or when its category is not ``bin`` (categorical); missing values go
    left iff ``default_left``. The four sums are those of the children (public: they follow
    from the summed histogram).
    """

    node: int
    feature: int
    bin: int
    categorical: bool
    default_left: bool
    threshold: float
    gain: float
    left: int
    right: int
    left_grad: float
    left_hess: float
    right_grad: float
    right_hess: float
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_version("split", self.schema_version)
        if not (0 <= self.node < self.left and self.right == self.left + 1):
            raise StepOrderError(f"split of node {self.node} has children {self.left}, "
                                 f"{self.right}; children get the next two ids.")


@dataclass(frozen=True, slots=True)
class LevelRequest:
    """What each party histograms at one level: the ``build`` nodes, in this order."""

    tree: int
    depth: int
    build: tuple[int, ...]
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_version("level request", self.schema_version)


@dataclass(frozen=True, eq=False)
class TreeState:
    """The public state of one tree in growth (the same on every party).

    ``open`` are the nodes of level ``depth`` awaiting a decision; of those, ``build`` are
    histogrammed by the parties and each ``(node, parent, sibling)`` of ``derive`` is
    ``parent - sibling``, with the parents' summed histograms kept in ``parent_hists``.
    ``grad``/``hess`` are the summed gradient and hessian of every node so far (by id).
    """

    tree: int
    depth: int
    open: tuple[int, ...]
    build: tuple[int, ...]
    derive: tuple[tuple[int, int, int], ...]
    grad: tuple[float, ...]
    hess: tuple[float, ...]
    splits: tuple[Split, ...] = ()
    parent_hists: Mapping[int, NDArray[np.float64]] = field(default_factory=dict)
    done: bool = False

    @property
    def n_nodes(self) -> int:
        """Nodes created so far (ids ``0 .. n_nodes - 1``)."""
        return len(self.grad)


def new_tree(tree: int) -> TreeState:
    """The public state of tree ``tree`` before its first level: the root, to be built."""
    return TreeState(tree, 0, (0,), (0,), (), (0.0,), (0.0,))


def level_request(state: TreeState) -> LevelRequest:
    """The nodes each party histograms at the current level (public, from sums only)."""
    if state.done:
        raise StepOrderError(f"tree {state.tree} is complete; compute its leaf values and "
                             "start the next tree.")
    return LevelRequest(state.tree, state.depth, state.build)


def local_histograms(codes: NDArray[np.uint8], g: NDArray[np.float64], h: NDArray[np.float64],
                     assignment: NDArray[np.int64], request: LevelRequest,
                     edges: BinEdges) -> NDArray[np.float64]:
    """A party's histograms of the requested nodes: the array to be summed over parties.

    Returns
    -------
    numpy.ndarray
        float64 ``[len(request.build), feature, n_bins + 1, 2]``.
    """
    return node_histograms(codes, g, h, assignment, request.build, edges.n_bins)


def _level_histograms(state: TreeState, summed: NDArray[np.float64],
                      edges: BinEdges) -> dict[int, NDArray[np.float64]]:
    expected = histogram_shape(len(state.build), edges.n_features, edges.n_bins)
    if summed.shape != expected:
        raise StepOrderError(f"summed histograms have shape {summed.shape} but tree "
                             f"{state.tree}, depth {state.depth} asked for {expected}; sum the "
                             "parties' replies to this level's request only.")
    hists = {node: summed[i] for i, node in enumerate(state.build)}
    for node, parent, sibling in state.derive:
        hists[node] = subtract_histograms(state.parent_hists[parent], hists[sibling])
    return hists


def _split_of(node: int, cand: SplitCandidate, edges: BinEdges, left: int) -> Split:
    categorical = edges.n_categories[cand.feature] > 0
    threshold = float(cand.bin) if categorical else edges.cuts[cand.feature][cand.bin]
    return Split(node, cand.feature, cand.bin, categorical, cand.default_left, threshold,
                 cand.gain, left, left + 1, cand.left_grad, cand.left_hess, cand.right_grad,
                 cand.right_hess)


def choose_splits(state: TreeState, summed: NDArray[np.float64], edges: BinEdges,
                  config: GBDTConfig) -> tuple[TreeState, tuple[Split, ...]]:
    """Decide the splits of the current level from the summed histograms (public step).

    Parameters
    ----------
    state : TreeState
    summed : numpy.ndarray
        Sum over parties of :func:`local_histograms` for :func:`level_request` ``(state)``.
    edges : BinEdges
    config : GBDTConfig

    Returns
    -------
    tuple
        The next state and the splits every party applies with :func:`apply_splits`
        (children get ids in the order of their parents, left before right).

    Raises
    ------
    StepOrderError
        The tree is complete, or ``summed`` does not answer this level's request.
    """
    level_request(state)
    hists = _level_histograms(state, summed, edges)
    grad, hess = list(state.grad), list(state.hess)
    if state.depth == 0:
        grad[0], hess[0] = (float(v) for v in hists[0][0].sum(axis=0)[[GRAD, HESS]])
    candidates = best_splits(np.stack([hists[n] for n in state.open]), edges, l2=config.l2,
                             min_child_weight=config.min_child_weight)
    splits: list[Split] = []
    for node, cand in zip(state.open, candidates, strict=True):
        if cand is not None:
            splits.append(_split_of(node, cand, edges, len(grad)))
            grad += [cand.left_grad, cand.right_grad]
            hess += [cand.left_hess, cand.right_hess]
    done = not splits or state.depth + 1 >= config.depth
    build = [] if done else [s.left if s.left_hess <= s.right_hess else s.right for s in splits]
    derive = [] if done else [(s.right, s.node, s.left) if b == s.left else
                              (s.left, s.node, s.right) for s, b in zip(splits, build, strict=True)]
    opened = tuple(n for s in splits for n in (s.left, s.right))
    nxt = TreeState(state.tree, state.depth + 1, () if done else opened, tuple(build),
                    tuple(derive), tuple(grad), tuple(hess), state.splits + tuple(splits),
                    {} if done else {s.node: hists[s.node] for s in splits}, done)
    return nxt, tuple(splits)


def goes_left(code: NDArray[np.int64], bin_: ArrayLike, categorical: ArrayLike,
              default_left: ArrayLike, missing_code: int) -> NDArray[np.bool_]:
    """The routing rule on bin codes (element-wise): a numeric split sends codes ``<= bin``
    left, a categorical one every category but ``bin``; the missing code follows
    ``default_left``. (:func:`protocols.secureboost.steps.center_partition` applies the same
    rule on the center's side, which cannot import this layer.)"""
    split_bin = np.asarray(bin_, dtype=np.int64)
    left = np.where(categorical, code != split_bin, code <= split_bin)
    return np.asarray(np.where(code == missing_code, default_left, left), dtype=np.bool_)


def apply_splits(codes: NDArray[np.uint8], assignment: NDArray[np.int64],
                 splits: Sequence[Split], edges: BinEdges) -> NDArray[np.int64]:
    """Move a party's rows from split nodes to their children (a new assignment array)."""
    if not splits:
        return assignment
    size = max(int(assignment.max(initial=0)), max(s.node for s in splits)) + 1
    which = np.full(size, -1, dtype=np.int64)
    which[[s.node for s in splits]] = np.arange(len(splits))
    table = {name: np.array([getattr(s, name) for s in splits])
             for name in ("feature", "bin", "categorical", "default_left", "left", "right")}
    rows = np.flatnonzero(which[assignment] >= 0)
    k = which[assignment[rows]]
    code = codes[rows, table["feature"][k]].astype(np.int64)
    go_left = goes_left(code, table["bin"][k], table["categorical"][k], table["default_left"][k],
                        edges.missing_code)
    moved = assignment.copy()
    moved[rows] = np.where(go_left, table["left"][k], table["right"][k])
    return moved


def leaf_values(state: TreeState, config: GBDTConfig) -> NDArray[np.float64]:
    """Shrunk weight ``-lr G / (H + l2)`` of every node (rows end at leaves; public step)."""
    if not state.done:
        raise StepOrderError(f"tree {state.tree} is still growing (depth {state.depth}); "
                             "finish its levels before computing leaf values.")
    return np.array([config.learning_rate * node_weight(g, h, l2=config.l2)
                     for g, h in zip(state.grad, state.hess, strict=True)], dtype=np.float64)


def finish_tree(state: TreeState, values: NDArray[np.float64]) -> Tree:
    """The finished tree as model arrays (public step)."""
    n, splits = state.n_nodes, state.splits
    at = np.array([s.node for s in splits], dtype=np.int64)

    def column(name: str, fill: float, dtype: type) -> NDArray[Any]:
        out: NDArray[Any] = np.full(n, fill, dtype=dtype)
        out[at] = [getattr(s, name) for s in splits]
        return out

    return Tree(feature=column("feature", -1, np.int32), split_bin=column("bin", -1, np.int32),
                threshold=column("threshold", 0.0, np.float64),
                categorical=column("categorical", False, np.bool_),
                default_left=column("default_left", False, np.bool_),
                left=column("left", -1, np.int32), right=column("right", -1, np.int32),
                value=np.asarray(values, dtype=np.float64).copy(),
                gain=column("gain", 0.0, np.float64),
                hessian=np.asarray(state.hess, dtype=np.float64))


def add_tree(margins: NDArray[np.float64], assignment: NDArray[np.int64],
             values: NDArray[np.float64]) -> NDArray[np.float64]:
    """A party's margins after the tree: each row adds the value of its leaf."""
    return margins + values[assignment]
