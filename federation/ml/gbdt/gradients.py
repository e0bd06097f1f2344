"""Logistic-loss gradients, the seeded row subsample and the label/loss sums of boosting.

Each party runs these on its own rows at the start of every tree; nothing here crosses the
wire except the small sums of :func:`label_sums` and :func:`validation_loss_sums`.

Maths (binary logistic loss on margin ``m``, ``p = sigmoid(m)``): ``g = p - y`` and
``h = p (1 - p)``. Both are rounded to multiples of ``q = 2**-gradient_bits``. Then
``|g| <= 1`` and every partial sum over at most ``2**(53 - gradient_bits)`` rows is an integer
multiple of ``q`` below ``2**53 q``, hence exact in float64: sums over parties, in any order,
equal the pooled sums bit for bit, which keeps every split decision identical.

Subsample: row ``i`` of tree ``t`` is kept when ``u(seed, t, row_id_i) < subsample``, where
``u`` is a SplitMix64 hash mapped to ``[0, 1)``. It depends on the row id only, so a party
draws exactly the rows a pooled run over the same ids would draw. Row ids must be
non-negative integers unique across parties (e.g. the data set's ID column, or a global row
number); a dropped row gets ``g = h = 0`` for that tree (it is still routed and scored).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from federation.errors import DataError
from federation.ml.gbdt.config import GBDTConfig

__all__ = ["sigmoid", "label_sums", "base_margin", "logistic_gradients", "subsample_mask",
           "start_tree", "validation_loss_sums", "mean_loss", "check_row_limit"]

_MASK64 = 2**64 - 1
_GOLDEN = 0x9E3779B97F4A7C15
LOSS_BITS = 20  # validation losses are summed as multiples of 2**-LOSS_BITS (exact)


def sigmoid(margin: NDArray[np.float64]) -> NDArray[np.float64]:
    """``1 / (1 + exp(-margin))``, stable for large ``|margin|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * margin))


def _labels(y: ArrayLike) -> NDArray[np.float64]:
    labels = np.asarray(y, dtype=np.float64).ravel()
    if not np.all((labels == 0) | (labels == 1)):
        raise DataError("the target must hold only 0 and 1 (1 = default); map the labels "
                        "before training.")
    return labels


def label_sums(y: ArrayLike) -> NDArray[np.float64]:
    """One party's ``[positives, rows]``; the federation sums them."""
    labels = _labels(y)
    return np.array([labels.sum(), labels.size], dtype=np.float64)


def check_row_limit(n_rows: float, config: GBDTConfig) -> None:
    """Refuse more rows than the gradient quantisation keeps exact.

    Raises
    ------
    DataError
        ``n_rows`` exceeds ``config.max_rows``.
    """
    if n_rows > config.max_rows:
        raise DataError(f"{int(n_rows)} rows exceed the {config.max_rows} for which gradient "
                        f"sums stay exact at --gradient-bits {config.gradient_bits}; lower "
                        "--gradient-bits (each bit less doubles the limit).")


def base_margin(summed: ArrayLike) -> float:
    """The starting margin ``log(P / (N - P))`` from the summed ``[positives, rows]``.

    Raises
    ------
    DataError
        The pooled labels hold only one class.
    """
    positives, rows = (float(v) for v in np.asarray(summed, dtype=np.float64))
    if not 0 < positives < rows:
        raise DataError(f"the training rows hold {positives:.0f} defaults out of {rows:.0f}; "
                        "boosting needs both classes (check the target column).")
    return float(np.log(positives) - np.log(rows - positives))


def _quantise(values: NDArray[np.float64], bits: int) -> NDArray[np.float64]:
    scale = float(2**bits)
    return np.round(values * scale) / scale


def logistic_gradients(y: ArrayLike, margins: NDArray[np.float64], *,
                       bits: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Quantised gradient ``p - y`` and hessian ``p (1 - p)`` of the logistic loss."""
    labels = _labels(y)
    if margins.shape != labels.shape:
        raise DataError(f"{labels.size} labels but {margins.size} margins; keep one margin "
                        "per training row.")
    p = sigmoid(margins)
    return _quantise(p - labels, bits), _quantise(p * (1.0 - p), bits)


def _splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = x + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _tree_key(seed: int, tree: int) -> np.uint64:
    key = np.array([(seed * _GOLDEN + tree) & _MASK64], dtype=np.uint64)
    return _splitmix64(_splitmix64(key))[0]


def subsample_mask(row_ids: ArrayLike, *, tree: int, rate: float, seed: int) -> NDArray[np.bool_]:
    """Rows kept for tree ``tree`` (``rate`` of them in expectation), keyed by row id."""
    ids = np.asarray(row_ids)
    if ids.ndim != 1 or (ids.size and (not np.issubdtype(ids.dtype, np.integer)
                                       or ids.min() < 0)):
        raise DataError("row ids must be a 1-D array of non-negative integers (e.g. the ID "
                        "column or a global row number).")
    if rate >= 1.0:
        return np.ones(ids.size, dtype=bool)
    hashed = _splitmix64(ids.astype(np.uint64) ^ _tree_key(seed, tree))
    uniform = (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return uniform < rate


def start_tree(y: ArrayLike, margins: NDArray[np.float64], *, row_ids: ArrayLike, tree: int,
               config: GBDTConfig) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A party's first step of tree ``tree``: quantised ``g, h``, zero for unsampled rows.

    Parameters
    ----------
    y : array-like
        The party's 0/1 labels.
    margins : numpy.ndarray
        The party's current margins (base margin plus all finished trees).
    row_ids : array-like
        Global ids of the party's rows (they key the subsample).
    tree : int
        Index of the tree about to be grown.
    config : GBDTConfig

    Returns
    -------
    tuple of numpy.ndarray
        ``(g, h)``, float64 per row.
    """
    g, h = logistic_gradients(y, margins, bits=config.gradient_bits)
    keep = subsample_mask(row_ids, tree=tree, rate=config.subsample, seed=config.seed)
    if keep.size != g.size:
        raise DataError(f"{keep.size} row ids for {g.size} rows; give one id per row.")
    return np.where(keep, g, 0.0), np.where(keep, h, 0.0)


def validation_loss_sums(y: ArrayLike, margins: NDArray[np.float64]) -> NDArray[np.float64]:
    """One party's ``[log-loss sum, rows]`` on its validation rows (exact to sum).

    Each row's loss ``log(1 + e^m) - y m`` is rounded to a multiple of ``2**-LOSS_BITS``
    so that the cross-party sum equals the pooled one exactly (early stopping then stops at
    the same tree in a federated and a pooled run).
    """
    labels = _labels(y)
    losses = _quantise(np.logaddexp(0.0, margins) - labels * margins, LOSS_BITS)
    return np.array([losses.sum(), labels.size], dtype=np.float64)


def mean_loss(summed: ArrayLike) -> float:
    """Mean validation log-loss from the summed ``[loss sum, rows]``."""
    total, rows = (float(v) for v in np.asarray(summed, dtype=np.float64))
    if rows <= 0:
        raise DataError("early stopping needs validation rows on at least one party.")
    return total / rows
