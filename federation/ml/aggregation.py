"""Aggregation maths as free functions over plain arrays (FedAvg weighting, flattening).

The encrypted path computes the same weighted mean under Paillier; these functions are its
plaintext reference.
"""

from __future__ import annotations

import numpy as np

from protocols.errors import VectorLengthError


def weighted_mean(updates: list[tuple[list[np.ndarray], int]]) -> list[np.ndarray]:
    """FedAvg: mean of the parties' weight lists, weighted by their sample counts.

    Parameters
    ----------
    updates : list of (weights, n_examples)

    Returns
    -------
    list of np.ndarray
    """
    if not updates:
        raise ValueError("no updates to aggregate")
    total = float(sum(n for _, n in updates))
    if total <= 0:
        raise ValueError("sample counts sum to zero")
    shapes = [w.shape for w in updates[0][0]]
    for weights, _ in updates:
        if [w.shape for w in weights] != shapes:
            raise VectorLengthError("an update's weight shapes differ from the others'.")
    return [
        sum((np.asarray(weights[i], dtype=np.float64) * (n / total) for weights, n in updates),
            np.zeros(shapes[i], dtype=np.float64))
        for i in range(len(shapes))
    ]


def flatten(weights: list[np.ndarray]) -> np.ndarray:
    """Concatenate weight arrays into one float64 vector."""
    return np.concatenate([np.ravel(w).astype(np.float64) for w in weights]) if weights else np.zeros(0)


def unflatten(vector: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """Inverse of :func:`flatten` given arrays with the target shapes."""
    sizes = [int(np.prod(w.shape)) for w in like]
    if int(np.sum(sizes)) != vector.size:
        raise VectorLengthError(f"vector of length {vector.size} does not fit shapes totalling {sum(sizes)}.")
    parts = np.split(np.asarray(vector, dtype=np.float64), np.cumsum(sizes)[:-1])
    return [p.reshape(w.shape) for p, w in zip(parts, like, strict=True)]
