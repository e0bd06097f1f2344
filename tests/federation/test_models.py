"""Models: same interface for LR and MLP; they learn; FedProx pulls towards the anchor."""

from __future__ import annotations

import numpy as np
import pytest

from federation.errors import ConfigError
from federation.ml.metrics import roc_auc
from federation.ml.models import CreditModel

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
