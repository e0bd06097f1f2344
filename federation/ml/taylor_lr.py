"""Plaintext reference of the vertical LR: the same Taylor-loss mini-batch gradient descent.

Used for the centralised (joined plaintext data) and bank-only baselines of a vertical run,
so that they differ from the federated model only by the federation itself. Same feature
quantisation, batch schedule, learning rate and L2 as :mod:`protocols.vertical_lr.steps`.
"""

from __future__ import annotations

import numpy as np

from protocols.vertical_lr.encoding import dequantize_features, quantize_features
from protocols.vertical_lr.steps import VerticalLRConfig


def fit_taylor_lr(x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int,
                  learning_rate: float, l2: float, seed: int) -> np.ndarray:
    """Weights ``[intercept, w...]`` after ``epochs`` of Taylor-gradient descent."""
    xf = dequantize_features(quantize_features(x))
    schedule = VerticalLRConfig("reference", len(y), xf.shape[1], 1, batch_size,
                                learning_rate, l2, seed)
    design = np.hstack([np.ones((xf.shape[0], 1)), xf])
    w = np.zeros(design.shape[1])
    yf = np.asarray(y, dtype=np.float64)
    for epoch in range(epochs):
        for batch in range(schedule.n_batches):
            rows = schedule.batch_rows(epoch, batch)
            d = design[rows] @ w / 4 + 0.5 - yf[rows]
            penalty = l2 * w
            penalty[0] = 0.0
            w = w - learning_rate * (design[rows].T @ d / len(rows) + penalty)
    return w


def predict_logit(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Logits of :func:`fit_taylor_lr` weights on standardised features."""
    return dequantize_features(quantize_features(x)) @ w[1:] + w[0]
