"""One party's work in a round, as plain functions (the ClientApp only wraps these).

Also the baselines that use exactly the same model and settings: centralised (one party
holding every bank's training rows) and local-only (each bank alone).

With ``dp_epsilon > 0`` a bank's local training is DP-SGD (:mod:`federation.ml.dp.sgd`) with
the noise its plan chose (:func:`training_privacy`); the baselines stay non-private (they
run in the researcher's process, for comparison only).
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

from federation.data.table import CreditTable
from federation.ml.dp.accountant import Mechanism, epsilon_opacus
from federation.ml.dp.budget import (
    TrainingPrivacy,
    default_delta,
    histogram_noise,
    plan_training,
)
from federation.ml.dp.trees import tree_bank_privacy, tree_privacy
from federation.ml.metrics import ks_statistic, roc_auc, score_histograms
from federation.ml.models import CreditModel
from federation.ml.preprocess import Preprocessor
from federation.run.config import RunConfig
from federation.run.results import BankPrivacy

DESIGNS_KEPT = 8192
"""Design matrices :func:`design_matrix` keeps per process, least recently used dropped first
(a simulation process hosts up to 4,096 banks' tables, two each; a matrix goes with its
table, so together they hold about the float32 copy of the rows the process holds)."""
_DESIGNS: dict[int, tuple[weakref.ref[CreditTable], Preprocessor, np.ndarray]] = {}


def design_matrix(prep: Preprocessor, table: CreditTable) -> np.ndarray:
    """``prep.transform(table)``, a fresh copy of the one this process computed last for the
    same table object and an equal preprocessor (a bank opens the same preprocessing and
    scores and trains the same rows every round; the transform reads them column by column).
    Kept by the table's id, with a weak reference that proves it is still that table."""
    key = id(table)
    kept = _DESIGNS.pop(key, None)
    if kept is None or kept[0]() is not table or kept[1] != prep:
        kept = (weakref.ref(table, lambda _: _DESIGNS.pop(key, None)), prep,
                prep.transform(table))
    _DESIGNS[key] = kept  # the most recently used last
    while len(_DESIGNS) > DESIGNS_KEPT:
        del _DESIGNS[next(iter(_DESIGNS))]
    return kept[2].copy()


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
    """Local training of one bank from the global ``weights``; returns new weights and n rows.

    Under DP (``cfg.dp_epsilon > 0``) the round is DP-SGD with the bank's plan; its sample
    and noise are secret (not derived from the run's public seed).
    """
    model = make_model(cfg, prep.n_features).set_weights(weights)
    anchor = weights if cfg.strategy == "fedprox" else None
    if cfg.dp_epsilon > 0:
        from federation.ml.dp.sgd import fit_private  # Opacus only in DP runs

        fit_private(model, design_matrix(prep, table), table.y, training_privacy(cfg, table.n_rows),
                    steps=steps_per_round(cfg, table.n_rows), anchor=anchor,
                    round_index=round_index)
        return model.get_weights(), table.n_rows
    seed = (cfg.seed * 1_000_003 + round_index * 1009 + bank) % 2**32
    model.fit(design_matrix(prep, table), table.y, anchor=anchor, round_index=round_index, seed=seed)
    return model.get_weights(), table.n_rows


def steps_per_round(cfg: RunConfig, rows: int) -> int:
    """SGD steps of one bank's round: ``local_epochs`` passes of ``batch_size`` rows, at least
    the model's ``min_steps`` (as :meth:`CreditModel.fit` takes them)."""
    min_steps = make_model(cfg, 1).min_steps
    return max(cfg.local_epochs * max(1, -(-rows // cfg.batch_size)), min_steps)


def bank_privacy(cfg: RunConfig, bank: int, train_rows: int) -> BankPrivacy:
    """The ``results.json`` entry of a bank's guarantee: the larger epsilon of its training
    path and its test rows' histogram path (disjoint rows, the same delta); a tree run's from
    its own plan (:mod:`federation.ml.dp.trees`)."""
    if cfg.model == "gbdt":
        return tree_bank_privacy(cfg, bank, train_rows)
    plan = training_privacy(cfg, train_rows)
    z_hist = histogram_noise_of(cfg, train_rows)
    hist_epsilon = epsilon_opacus((Mechanism(z_hist, 1.0, cfg.rounds),), plan.delta)
    return BankPrivacy(bank=bank, epsilon=max(plan.epsilon, hist_epsilon), delta=plan.delta,
                       noise_multiplier=plan.noise_multiplier, clip=plan.clip,
                       sampling_rate=plan.sampling_rate, steps=plan.steps,
                       accountant=plan.accountant,
                       release_noise_multiplier=plan.stats_noise_multiplier,
                       histogram_noise_multiplier=z_hist)


def histogram_noise_of(cfg: RunConfig, train_rows: int) -> float:
    """The noise multiplier of each of a bank's test-score histogram releases (one per round)
    so that its test rows meet the run's (``dp_epsilon``, ``dp_delta``); the default delta is
    that of the bank's training rows, as on its training path (the smaller, stricter one)."""
    return histogram_noise(epsilon=cfg.dp_epsilon,
                           delta=cfg.dp_delta or default_delta(train_rows), releases=cfg.rounds)


def release_noise_of(cfg: RunConfig, rows: int) -> float:
    """The noise multiplier of a bank's one-off releases of its training rows (the
    preprocessing statistics among them), from the DP-SGD plan or a tree run's plan."""
    if cfg.model == "gbdt":
        return tree_privacy(cfg, rows).stats_noise_multiplier
    return training_privacy(cfg, rows).stats_noise_multiplier


def training_privacy(cfg: RunConfig, rows: int) -> TrainingPrivacy:
    """The DP plan of a bank with ``rows`` training rows for the whole run (all rounds).

    Raises
    ------
    UnsupportableBudgetError
        The run's ``dp_epsilon`` cannot be met with usable noise for this bank.
    """
    return plan_training(epsilon=cfg.dp_epsilon, delta=cfg.dp_delta, clip=cfg.dp_clip,
                         rows=rows, batch_size=cfg.batch_size,
                         steps=cfg.rounds * steps_per_round(cfg, rows))


def evaluate_histograms(
    cfg: RunConfig, prep: Preprocessor, table: CreditTable, weights: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class score histograms of one bank's test rows (the only evaluation output sent)."""
    model = make_model(cfg, prep.n_features).set_weights(weights)
    return score_histograms(table.y, model.predict_proba(design_matrix(prep, table)))


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
