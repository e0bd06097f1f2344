"""One party's work in a round, as plain functions (the ClientApp only wraps these).

Also the baselines that use exactly the same model and settings: centralised (one party
holding every bank's training rows) and local-only (each bank alone).
"""

from __future__ import annotations

import numpy as np
import torch

from federation.data.table import CreditTable
from federation.ml.metrics import ks_statistic, roc_auc, score_histograms
from federation.ml.models import CreditModel
from federation.ml.preprocess import Preprocessor
from federation.run.config import RunConfig


def make_model(cfg: RunConfig, n_features: int) -> CreditModel:
    """The run's model with the run's settings; initial weights depend only on ``cfg.seed``.

    torch runs single-threaded: each simulated or deployed party has one core of its own.
    """
    torch.set_num_threads(1)
    return CreditModel(
        cfg.model, n_features=n_features, learning_rate=cfg.learning_rate,
        epochs=cfg.local_epochs, batch_size=cfg.batch_size, mu=cfg.prox_mu, seed=cfg.seed,
    )


def train_round(
    cfg: RunConfig, prep: Preprocessor, table: CreditTable, weights: list[np.ndarray], *,
    round_index: int, bank: int,
) -> tuple[list[np.ndarray], int]:
    """Local training of one bank from the global ``weights``; returns new weights and n rows."""
    model = make_model(cfg, prep.n_features).set_weights(weights)
    anchor = weights if cfg.strategy == "fedprox" else None
    seed = (cfg.seed * 1_000_003 + round_index * 1009 + bank) % 2**32
    model.fit(prep.transform(table), table.y, anchor=anchor, round_index=round_index, seed=seed)
    return model.get_weights(), table.n_rows


def evaluate_histograms(
    cfg: RunConfig, prep: Preprocessor, table: CreditTable, weights: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class score histograms of one bank's test rows (the only evaluation output sent)."""
    model = make_model(cfg, prep.n_features).set_weights(weights)
    return score_histograms(table.y, model.predict_proba(prep.transform(table)))


def fit_in_one_place(
    cfg: RunConfig, prep: Preprocessor, tables: list[CreditTable]
) -> CreditModel:
    """Train on the pooled tables with the federated schedule (rounds x local settings)."""
    x = np.vstack([prep.transform(t) for t in tables])
    y = np.concatenate([t.y for t in tables])
    model = make_model(cfg, prep.n_features)
    for r in range(cfg.rounds):
        model.fit(x, y, round_index=r, seed=(cfg.seed * 1_000_003 + r * 1009 + 997) % 2**32)
    return model


def auc_ks(model: CreditModel, prep: Preprocessor, tables: list[CreditTable]) -> dict[str, float]:
    """Exact AUC and KS of ``model`` on the union of ``tables``."""
    x = np.vstack([prep.transform(t) for t in tables])
    y = np.concatenate([t.y for t in tables])
    p = model.predict_proba(x)
    return {"auc": roc_auc(y, p), "ks": ks_statistic(y, p)}
