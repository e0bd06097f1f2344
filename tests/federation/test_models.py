"""Models: same interface for LR and MLP; they learn; FedProx pulls towards the anchor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.errors import ConfigError
from federation.ml.metrics import roc_auc
from federation.ml.models import CreditModel, build_network

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2000, 6))
Y = (RNG.random(2000) < 1 / (1 + np.exp(-(X[:, 0] - 2 * X[:, 1] - 1)))).astype(np.int8)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_models_learn_and_round_trip_weights(kind: str) -> None:
    model = CreditModel(kind, n_features=6, seed=1)
    before = roc_auc(Y, model.predict_proba(X))
    model.fit(X, Y)
    after = roc_auc(Y, model.predict_proba(X))
    assert after > 0.75 and after > before
    clone = CreditModel(kind, n_features=6, seed=99).set_weights(model.get_weights())
    assert np.allclose(clone.predict_proba(X), model.predict_proba(X))


def test_same_seed_same_model() -> None:
    a = CreditModel("mlp", n_features=6, seed=3).fit(X, Y, seed=5)
    b = CreditModel("mlp", n_features=6, seed=3).fit(X, Y, seed=5)
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True))


def test_fedprox_term_keeps_weights_near_the_anchor() -> None:
    anchor = CreditModel("lr", n_features=6, seed=0).get_weights()
    free = CreditModel("lr", n_features=6, seed=0).fit(X, Y, anchor=anchor)
    prox = CreditModel("lr", n_features=6, seed=0, mu=5.0).fit(X, Y, anchor=anchor)

    def dist(m: CreditModel) -> float:
        return float(sum(np.sum((w - a) ** 2) for w, a in zip(m.get_weights(), anchor, strict=True)))

    assert dist(prox) < 0.5 * dist(free)


def test_wrong_kind_and_wrong_shapes_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown model 'xgb'"):
        CreditModel("xgb", n_features=3)
    with pytest.raises(ConfigError, match="does not match"):
        CreditModel("lr", n_features=3).set_weights([np.zeros((1, 4)), np.zeros(1)])


def _autograd_lr_fit(model: CreditModel, x: np.ndarray, y: np.ndarray, *, round_index: int,
                     seed: int) -> list[np.ndarray]:
    """The reference: torch's own loss, autograd and ``torch.optim.SGD`` on the same batches."""
    import torch

    rng = np.random.default_rng(seed)
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    params = list(model.network_.parameters())
    opt = torch.optim.SGD(params, lr=model.learning_rate * model.lr_decay**round_index,
                          momentum=model.momentum, weight_decay=model.l2)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for batch in model._batches(xt.shape[0], rng):
        opt.zero_grad()
        loss_fn(model.network_(xt[batch]).squeeze(-1), yt[batch]).backward()
        opt.step()
    return model.get_weights()


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 300), features=st.integers(1, 120),
       batch=st.sampled_from([1, 7, 32, 128, 512]), min_steps=st.sampled_from([1, 13, 50]),
       momentum=st.sampled_from([0.0, 0.9]), l2=st.sampled_from([0.0, 1e-4, 0.3]),
       round_index=st.integers(0, 6), seed=st.integers(0, 2**31), scale=st.floats(0.01, 50.0))
def test_lr_training_is_bit_equal_to_torch_autograd_and_sgd(
        rows: int, features: int, batch: int, min_steps: int, momentum: float, l2: float,
        round_index: int, seed: int, scale: float) -> None:
    """The LR's hand-written step (no autograd, no optimiser object) gives the very bits of
    torch's autograd + SGD, so the pinned federated models stay the same."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)) * scale
    y = (rng.random(rows) < 0.3).astype(np.int8)
    settings_ = {"n_features": features, "seed": seed % 1000, "batch_size": batch,
                 "min_steps": min_steps, "momentum": momentum, "l2": l2}
    fast = CreditModel("lr", **settings_).fit(x, y, round_index=round_index, seed=seed + 1)
    reference = _autograd_lr_fit(CreditModel("lr", **settings_), x, y,
                                 round_index=round_index, seed=seed + 1)
    for got, want in zip(fast.get_weights(), reference, strict=True):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_initial_weights_follow_the_seed_as_torch_manual_seed_gives_them(
    kind: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model seeds the CPU generator only: the weights ``torch.manual_seed`` would give, and
    no (lazy) CUDA seeding with its captured stack per model (a bank builds two a request)."""
    import torch
    import torch.cuda

    cuda_seeds: list[int] = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", cuda_seeds.append)
    ours = CreditModel(kind, n_features=7, seed=11).get_weights()
    assert cuda_seeds == []
    monkeypatch.undo()
    torch.manual_seed(11)
    reference = build_network(kind, 7, 32).double()
    expected = [p.detach().numpy() for p in reference.parameters()]
    assert len(ours) == len(expected)
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_array_equal(got.ravel(), want.ravel())
    other = CreditModel(kind, n_features=7, seed=12).get_weights()
    assert not np.array_equal(other[0], ours[0])
