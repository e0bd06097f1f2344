"""Gradient/hessian histograms per tree node: the only thing parties exchange while growing.

A histogram of node ``n`` holds, per feature ``f`` and bin code ``b`` (the last code being
the missing bin), ``G[n, f, b] = sum g_i`` and ``H[n, f, b] = sum h_i`` over the party's rows
``i`` at node ``n`` with ``codes[i, f] == b``. Histograms add up over parties: the sum of the
parties' histograms is the histogram of the pooled rows, so a federation only ever needs the
cross-party sum (plain or secure) of these arrays.

Because the gradients are quantised to multiples of ``2**-gradient_bits`` (see
:mod:`federation.ml.gbdt.gradients`), every such sum is exact in float64: the sum does not
depend on the order of rows or parties, and a sibling's histogram is *exactly*
``parent - child`` (:func:`subtract_histograms`), so only the smaller child of each split is
ever built.

Only the cells a row can occupy need to travel: :func:`compact_histograms` keeps the bin codes
the public edges allow (:meth:`~federation.ml.gbdt.binning.BinEdges.used_codes`) and
:func:`expand_histograms` puts the zeros back, so the sums and the trees are unchanged (a
feature with few distinct values, common in credit data, has few bins).

Privacy: the summed histogram of a node reveals the gradient sums of the rows in each of its
bins; a small node (few rows) reveals little-aggregated gradients. ``min_child_weight``
bounds how small a node can get, not what a bin of it reveals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from federation.errors import DataError

__all__ = ["GRAD", "HESS", "node_histograms", "subtract_histograms", "histogram_shape",
           "compact_histograms", "expand_histograms"]

GRAD, HESS = 0, 1  # the last axis of a histogram


def histogram_shape(n_nodes: int, n_features: int, n_bins: int) -> tuple[int, int, int, int]:
    """Shape of the histograms of ``n_nodes`` nodes: ``[node, feature, n_bins + 1, 2]``."""
    return (n_nodes, n_features, n_bins + 1, 2)


def compact_histograms(hist: NDArray[np.float64], used: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The cells of ``hist`` (``[node, feature, bin, 2]``) that ``used`` allows, flattened."""
    if hist.shape[1:3] != used.shape:
        raise DataError(f"histograms of shape {hist.shape} do not fit a bin mask of shape "
                        f"{used.shape}.")
    return np.ascontiguousarray(hist[:, used, :]).ravel()


def expand_histograms(values: NDArray[np.float64], n_nodes: int,
                      used: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Inverse of :func:`compact_histograms`: the full ``[node, feature, bin, 2]`` array."""
    cells = int(used.sum())
    if values.size != n_nodes * cells * 2:
        raise DataError(f"{values.size} histogram values do not fill {n_nodes} nodes of "
                        f"{cells} used bins.")
    out = np.zeros((n_nodes, *used.shape, 2), dtype=np.float64)
    out[:, used, :] = np.asarray(values, dtype=np.float64).reshape(n_nodes, cells, 2)
    return out


def node_histograms(codes: NDArray[np.uint8], g: NDArray[np.float64], h: NDArray[np.float64],
                    node_of_row: NDArray[np.int64], nodes: Sequence[int],
                    n_bins: int) -> NDArray[np.float64]:
    """Gradient and hessian sums per (node, feature, bin) of one party's rows.

    Parameters
    ----------
    codes : numpy.ndarray
        uint8 ``[row, feature]`` bin codes from :func:`~federation.ml.gbdt.binning.bin_matrix`
        (values ``0 .. n_bins``, ``n_bins`` = missing).
    g, h : numpy.ndarray
        float64 ``[row]`` gradients and hessians.
    node_of_row : numpy.ndarray
        int ``[row]``: the node each row sits at.
    nodes : sequence of int
        The nodes to build, in the order of the result's first axis; rows at other nodes
        are skipped.
    n_bins : int
        Value bins per feature.

    Returns
    -------
    numpy.ndarray
        float64 ``[len(nodes), feature, n_bins + 1, 2]`` (``[..., 0]`` gradients,
        ``[..., 1]`` hessians).
    """
    n_rows, n_features = codes.shape
    if not (g.shape == h.shape == node_of_row.shape == (n_rows,)):
        raise DataError(f"codes have {n_rows} rows but g, h and node_of_row have shapes "
                        f"{g.shape}, {h.shape}, {node_of_row.shape}; pass one value per row.")
    wanted = np.asarray(nodes, dtype=np.int64)
    out_shape = histogram_shape(wanted.size, n_features, n_bins)
    if wanted.size == 0 or n_rows == 0:
        return np.zeros(out_shape)
    size = max(int(wanted.max()), int(node_of_row.max())) + 1
    slot_of_node = np.full(size, -1, dtype=np.int64)
    slot_of_node[wanted] = np.arange(wanted.size)
    slots = slot_of_node[node_of_row]
    rows = np.flatnonzero(slots >= 0)
    n_codes = n_bins + 1
    cells = (slots[rows, None] * n_features + np.arange(n_features)) * n_codes + codes[rows]
    flat = cells.ravel()
    length = wanted.size * n_features * n_codes
    grad = np.bincount(flat, weights=np.repeat(g[rows], n_features), minlength=length)
    hess = np.bincount(flat, weights=np.repeat(h[rows], n_features), minlength=length)
    return np.stack([grad, hess], axis=-1).astype(np.float64, copy=False).reshape(out_shape)


def subtract_histograms(parent: NDArray[np.float64],
                        child: NDArray[np.float64]) -> NDArray[np.float64]:
    """The sibling's histogram ``parent - child`` (exact for quantised gradients).

    Both arguments are ``[feature, bin, 2]`` (one node) or ``[node, feature, bin, 2]``.
    """
    if parent.shape != child.shape:
        raise DataError(f"cannot subtract a histogram of shape {child.shape} from one of shape "
                        f"{parent.shape}; both must come from the same edges and level.")
    return parent - child
