"""DP-SGD (Opacus) in a bank's round: it learns, it clips, it adds noise even to empty
samples, it leaves the network as it found it, and a DP run's round uses the bank's plan."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from federation.ml.dp.budget import TrainingPrivacy
from federation.ml.dp.sgd import fit_private
from federation.ml.models import CreditModel

torch.set_num_threads(1)  # as every party runs (make_model); the box's cores are shared


def privacy(*, z: float, q: float, clip: float = 1.0) -> TrainingPrivacy:
    return TrainingPrivacy(epsilon=1.0, delta=1e-5, noise_multiplier=z, clip=clip,
                           sampling_rate=q, steps=100, stats_noise_multiplier=10.0)


def toy(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.normal(0, 0.5, n) > 0).astype(np.int8)
    return x, y


def auc(model: CreditModel, x: np.ndarray, y: np.ndarray) -> float:
    from federation.ml.metrics import roc_auc

    return roc_auc(y, model.predict_proba(x))


def test_it_learns_with_moderate_noise() -> None:
    x, y = toy()
    model = CreditModel("lr", n_features=4, seed=0, learning_rate=0.1)
    before = auc(model, x, y)
    fit_private(model, x, y, privacy(z=1.0, q=0.1), steps=60, rng=np.random.default_rng(1),
                noise_seed=2)
    assert auc(model, x, y) > max(before, 0.85)
    assert not model.network_._forward_hooks  # Opacus' hooks are gone
    assert not hasattr(next(model.network_.parameters()), "grad_sample")


def test_seeded_runs_repeat_and_the_noise_depends_on_the_seed() -> None:
    x, y = toy()

    def run(noise_seed: int) -> np.ndarray:
        model = CreditModel("mlp", n_features=4, seed=0)
        fit_private(model, x, y, privacy(z=1.0, q=0.05), steps=5,
                    rng=np.random.default_rng(3), noise_seed=noise_seed)
        return np.concatenate([w.ravel() for w in model.get_weights()])

    assert np.array_equal(run(7), run(7))
    assert not np.allclose(run(7), run(8))


def test_each_step_moves_at_most_lr_times_clip_plus_noise() -> None:
    x, y = toy()
    x = x * 1000  # huge per-sample gradients: clipping must bound them
    model = CreditModel("lr", n_features=4, seed=0, learning_rate=0.1, momentum=0.0, l2=0.0)
    start = np.concatenate([w.ravel() for w in model.get_weights()])
    fit_private(model, x, y, privacy(z=1e-9, q=0.05, clip=0.5), steps=1,
                rng=np.random.default_rng(4), noise_seed=5)
    step = np.concatenate([w.ravel() for w in model.get_weights()]) - start
    assert 0 < np.linalg.norm(step) <= 0.1 * 0.5 * 1.5  # lr * clip (sum over ~q n / expected)


def test_an_empty_sample_still_adds_noise() -> None:
    x, y = toy(50)
    model = CreditModel("lr", n_features=4, seed=0, momentum=0.0, l2=0.0)
    start = np.concatenate([w.ravel() for w in model.get_weights()])
    fit_private(model, x, y, privacy(z=1.0, q=1e-9), steps=3, rng=np.random.default_rng(6),
                noise_seed=7)
    assert not np.allclose(np.concatenate([w.ravel() for w in model.get_weights()]), start)


def test_fedprox_pulls_towards_the_anchor() -> None:
    x, y = toy()
    anchor = [np.zeros((1, 4)), np.zeros(1)]

    def distance(mu: float) -> float:
        model = CreditModel("lr", n_features=4, seed=0, mu=mu, learning_rate=0.1)
        fit_private(model, x, y, privacy(z=0.5, q=0.1), steps=30, anchor=anchor,
                    rng=np.random.default_rng(8), noise_seed=9)
        return float(np.linalg.norm(np.concatenate([w.ravel() for w in model.get_weights()])))

    assert distance(5.0) < distance(0.0)


def test_a_dp_run_trains_with_the_banks_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    from federation.data.bank_data import bank_data
    from federation.ml import training
    from federation.ml.preprocess import pooled_preprocessor
    from federation.run.config import RunConfig

    cfg = RunConfig(data_path="german", banks=2, rounds=2, dp_epsilon=2.0)
    data = bank_data(cfg, 0)
    prep = pooled_preprocessor([data.train])
    seen: dict[str, object] = {}

    def spy(model: CreditModel, x: np.ndarray, y: np.ndarray, plan: TrainingPrivacy, *,
            steps: int, **kw: object) -> CreditModel:
        seen.update(plan=plan, steps=steps, rows=x.shape[0])
        return model

    monkeypatch.setattr("federation.ml.dp.sgd.fit_private", spy)
    weights = training.make_model(cfg, prep.n_features).get_weights()
    training.train_round(cfg, prep, data.train, weights, round_index=0, bank=0)
    plan = seen["plan"]
    assert isinstance(plan, TrainingPrivacy) and seen["rows"] == data.train.n_rows
    assert seen["steps"] == training.steps_per_round(cfg, data.train.n_rows)
    assert plan.steps == cfg.rounds * seen["steps"] and plan.epsilon <= 2.0
    assert plan.sampling_rate == pytest.approx(cfg.batch_size / data.train.n_rows)
    entry = training.bank_privacy(cfg, 0, data.train.n_rows)
    assert entry.epsilon <= 2.0 and entry.noise_multiplier == plan.noise_multiplier
    assert replace(cfg, dp_epsilon=0.0).dp_epsilon == 0.0
