"""DP-SGD for a bank's local training (Opacus): Poisson sampling, per-sample clipping, noise.

Protocol step: a bank's local training in a round of a ``dp-epsilon > 0`` run. Each of the
round's ``steps`` steps draws a Poisson sample of the bank's training rows (every row
independently with probability ``q``), computes every row's gradient (Opacus'
``GradSampleModule``), clips each to L2 norm ``clip``, adds Gaussian noise of standard
deviation ``noise_multiplier * clip`` to their sum and divides by the expected batch ``q * n``
(Opacus' ``DPOptimizer``), then takes the model's SGD step (momentum and weight decay are
post-processing of the noisy gradient). A step whose sample is empty still adds noise, as the
accountant assumes. FedProx's proximal pull towards the round's global weights does not read
the data; it is applied after each noisy step.

Security assumption: the sample and the noise are secret. By default both come from seeds
drawn with :mod:`secrets`; tests pass their own. Opacus' ``secure_mode`` (a cryptographic
sampler against floating-point attacks) is not used.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch import nn

from federation.ml.dp.budget import TrainingPrivacy
from federation.ml.models import CreditModel


def fit_private(
    model: CreditModel, x: np.ndarray, y: np.ndarray, privacy: TrainingPrivacy, *, steps: int,
    anchor: list[np.ndarray] | None = None, round_index: int = 0,
    rng: np.random.Generator | None = None, noise_seed: int | None = None,
) -> CreditModel:
    """Train ``model`` in place for one round of DP-SGD; returns it.

    Parameters
    ----------
    model : CreditModel
        Its learning rate, decay, momentum, weight decay and ``mu`` are used.
    x, y : arrays
        The bank's training rows (design matrix and 0/1 labels).
    privacy : TrainingPrivacy
        Sampling rate, clip and noise multiplier (from :func:`~federation.ml.dp.budget.plan_training`).
    steps : int
        DP-SGD steps of this round (the plan counts ``rounds x steps``).
    anchor : list of arrays, optional
        The round's global weights (FedProx, when ``model.mu > 0``).
    rng, noise_seed
        The sampling generator and the noise seed; secret by default (tests pass them).
    """
    rng = rng if rng is not None else np.random.default_rng(secrets.randbits(128))
    generator = torch.Generator().manual_seed(
        noise_seed if noise_seed is not None else secrets.randbits(63))
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
    yt = torch.as_tensor(np.asarray(y, dtype=np.float64))
    params = list(model.network_.parameters())
    lr = model.learning_rate * model.lr_decay**round_index
    optimizer = DPOptimizer(
        torch.optim.SGD(params, lr=lr, momentum=model.momentum, weight_decay=model.l2),
        noise_multiplier=privacy.noise_multiplier, max_grad_norm=privacy.clip,
        expected_batch_size=max(1, round(privacy.sampling_rate * xt.shape[0])),
        generator=generator)
    module = GradSampleModule(model.network_, loss_reduction="mean")
    anchor_t = ([torch.as_tensor(a, dtype=torch.float64) for a in anchor]
                if anchor is not None and model.mu > 0 else None)
    module.train()
    with warnings.catch_warnings():  # torch's note that the inputs need no gradient: Opacus'
        warnings.filterwarnings("ignore", message="Full backward hook", category=UserWarning)
        _steps(module, optimizer, xt, yt, privacy, steps=steps, rng=rng,
               anchor=(anchor_t, lr * model.mu))
    return model


def _steps(module: GradSampleModule, optimizer: DPOptimizer, xt: torch.Tensor, yt: torch.Tensor,
           privacy: TrainingPrivacy, *, steps: int, rng: np.random.Generator,
           anchor: tuple[list[torch.Tensor] | None, float]) -> None:
    """The round's DP-SGD steps; Opacus' hooks are removed afterwards, whatever happens."""
    params = list(module.parameters())
    loss_fn = nn.BCEWithLogitsLoss()
    try:
        for _ in range(steps):
            batch = torch.as_tensor(np.flatnonzero(rng.random(xt.shape[0]) < privacy.sampling_rate))
            optimizer.zero_grad()
            if batch.numel():
                loss_fn(module(xt[batch]).squeeze(-1), yt[batch]).backward()
            else:  # an empty sample: no gradient, but the step still adds its noise
                for p in params:
                    p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)
            optimizer.step()
            if anchor[0] is not None:
                _proximal_step(params, anchor[0], anchor[1])
    finally:
        module._close()  # remove Opacus' hooks: the network is the model's again


def _proximal_step(params: Sequence[torch.Tensor], anchor: Sequence[torch.Tensor],
                   rate: float) -> None:
    """FedProx's pull ``w <- w - rate (w - w_global)`` (reads no data)."""
    with torch.no_grad():
        for p, a in zip(params, anchor, strict=True):
            p.sub_(rate * (p - a))
