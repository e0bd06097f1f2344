"""The split rule: the best split of each node from its (summed) histogram, deterministically.

For a node with gradient/hessian sums ``G, H`` and a candidate split into ``(G_L, H_L)`` and
``(G_R, H_R)`` the gain is XGBoost's

    gain = 1/2 [ G_L^2 / (H_L + l2) + G_R^2 / (H_R + l2) - G^2 / (H + l2) ]

and a candidate is allowed when both children have hessian sums ``>= min_child_weight``.
Candidates per feature:

* numeric: "bins ``<= b`` go left" for every cut ``b`` (that is ``x < cuts[b]``);
* categorical: "category ``c`` goes right, every other category left";

each tried with missing values sent left and right. The chosen split has the highest gain
(which must be > 0), ties going to the lowest feature, then the lowest bin, then missing
left. The histograms hold exact sums (quantised gradients), so every party computing this
from the same summed histograms gets the same split, bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from federation.ml.gbdt.binning import BinEdges
from federation.ml.gbdt.histograms import GRAD, HESS

__all__ = ["SplitCandidate", "node_weight", "best_splits"]


class SplitCandidate(NamedTuple):
    """The best split of one node, before the trainer gives its children ids."""

    feature: int
    bin: int
    default_left: bool
    gain: float
    left_grad: float
    left_hess: float
    right_grad: float
    right_hess: float


def node_weight(grad: float, hess: float, *, l2: float) -> float:
    """The optimal (unshrunk) leaf weight ``-G / (H + l2)`` (0 for an empty node)."""
    return -grad / (hess + l2) if hess + l2 > 0 else 0.0


def _left_sums(values: NDArray[np.float64], categorical: NDArray[np.bool_],
               n_bins: int) -> NDArray[np.float64]:
    """Non-missing sums going left per split position ``b``: ``[node, feature, bin]``."""
    present = values[..., :n_bins]
    numeric_left = np.cumsum(present, axis=-1)
    category_left = present.sum(axis=-1, keepdims=True) - present
    return np.where(categorical[None, :, None], category_left, numeric_left)


def _score(g: NDArray[np.float64], h: NDArray[np.float64], l2: float) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(h + l2 > 0, g * g / (h + l2), 0.0)


def _gains(hists: NDArray[np.float64], edges: BinEdges, *, l2: float,
           min_child_weight: float) -> tuple[NDArray[np.float64], ...]:
    """Gains ``[node, feature, bin, direction]`` (direction 0 = missing left) and sums."""
    n_bins = edges.n_bins
    categorical = np.asarray(edges.n_categories) > 0
    g, h = hists[..., GRAD], hists[..., HESS]
    total_g, total_h = g.sum(axis=-1), h.sum(axis=-1)  # [node, feature], equal over features
    gl = _left_sums(g, categorical, n_bins)[..., None] + np.stack(
        [g[..., n_bins], np.zeros_like(total_g)], axis=-1)[:, :, None, :]
    hl = _left_sums(h, categorical, n_bins)[..., None] + np.stack(
        [h[..., n_bins], np.zeros_like(total_h)], axis=-1)[:, :, None, :]
    gr, hr = total_g[:, :, None, None] - gl, total_h[:, :, None, None] - hl
    positions = np.array([edges.split_bins(f) for f in range(edges.n_features)])
    allowed = (np.arange(n_bins)[None, :] < positions[:, None])[None, :, :, None]
    allowed = allowed & (hl >= min_child_weight) & (hr >= min_child_weight)
    parent = _score(total_g, total_h, l2)[:, :, None, None]
    gain = 0.5 * (_score(gl, hl, l2) + _score(gr, hr, l2) - parent)
    return np.where(allowed, gain, -np.inf), gl, hl, gr, hr


def best_splits(hists: NDArray[np.float64], edges: BinEdges, *, l2: float,
                min_child_weight: float) -> list[SplitCandidate | None]:
    """The best split of every node, or ``None`` where no split has positive gain.

    Parameters
    ----------
    hists : numpy.ndarray
        Summed histograms ``[node, feature, n_bins + 1, 2]``.
    edges : BinEdges
        The edges the codes were binned with (which bins are split positions).
    l2, min_child_weight : float
        The config's penalties.

    Returns
    -------
    list
        One :class:`SplitCandidate` or ``None`` per node, in the order of ``hists``.
    """
    gain, gl, hl, gr, hr = _gains(hists, edges, l2=l2, min_child_weight=min_child_weight)
    n_nodes = hists.shape[0]
    flat = gain.reshape(n_nodes, -1)
    best = np.argmax(flat, axis=1)  # first maximum: lowest feature, bin, then missing left
    out: list[SplitCandidate | None] = []
    for node, index in enumerate(best):
        if not flat[node, index] > 0:
            out.append(None)
            continue
        f, b, d = np.unravel_index(index, gain.shape[1:])
        at = (node, f, b, d)
        out.append(SplitCandidate(int(f), int(b), bool(d == 0), float(gain[at]),
                                  float(gl[at]), float(hl[at]), float(gr[at]), float(hr[at])))
    return out
