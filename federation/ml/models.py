"""Credit-risk models in torch with one scikit-learn-like interface.

``CreditModel(kind="lr" | "mlp", ...)``: settings in ``__init__``, ``fit`` returns self,
``predict_proba`` gives P(bad). Parameters move between parties as a list of numpy arrays
(:meth:`CreditModel.get_weights` / :meth:`CreditModel.set_weights`). ``fit`` accepts an
``anchor`` (the global weights of the round) and adds FedProx's proximal term mu/2 * ||w - w_g||^2.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from federation.errors import ConfigError
from federation.run.config import MODEL_KINDS


def build_network(kind: str, n_features: int, hidden: int) -> nn.Module:
    """The torch module behind a model kind: logistic regression or a two-layer MLP."""
    if kind == "lr":
        return nn.Linear(n_features, 1)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden // 2), nn.ReLU(),
            nn.Linear(hidden // 2, 1),
        )
    raise ConfigError(f"unknown model '{kind}'; choose one of {', '.join(MODEL_KINDS)}.")


class CreditModel:
    """A binary default-risk classifier trained with mini-batch SGD (momentum).

    Parameters
    ----------
    kind : {"lr", "mlp"}
    n_features : int
        Width of the design matrix.
    hidden : int
        Width of the MLP's first hidden layer.
    learning_rate, momentum : float
        SGD settings.
    epochs : int
        Passes over the data per ``fit`` call (local epochs in a federated round).
    batch_size : int
    min_steps : int
        Lower bound on SGD steps per ``fit`` call, so that small banks still train
        (epochs are repeated until it is reached).
    lr_decay : float
        Learning rate of round r is ``learning_rate * lr_decay**r``.
    l2 : float
        Weight decay.
    mu : float
        FedProx proximal weight (0 = FedAvg).
    seed : int
        Seed for initial weights and batch order.
    """

    def __init__(
        self,
        kind: str = "lr",
        *,
        n_features: int,
        hidden: int = 32,
        learning_rate: float = 0.05,
        momentum: float = 0.9,
        epochs: int = 1,
        batch_size: int = 128,
        min_steps: int = 50,
        lr_decay: float = 0.9,
        l2: float = 1e-4,
        mu: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.kind = kind
        self.n_features = n_features
        self.hidden = hidden
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.epochs = epochs
        self.batch_size = batch_size
        self.min_steps = min_steps
        self.lr_decay = lr_decay
        self.l2 = l2
        self.mu = mu
        self.seed = seed
        # the CPU generator only: ``torch.manual_seed`` also seeds CUDA, lazily in a process
        # without it, capturing the call's stack every time (two models a bank's request);
        # the CPU weights are the same
        torch.default_generator.manual_seed(int(seed))
        self.network_ = build_network(kind, n_features, hidden).double()

    def get_weights(self) -> list[np.ndarray]:
        """Current parameters as float64 numpy arrays (the order of ``network.parameters()``)."""
        return [p.detach().cpu().numpy().copy() for p in self.network_.parameters()]

    def set_weights(self, weights: list[np.ndarray]) -> CreditModel:
        """Load parameters; shapes must match the network."""
        params = list(self.network_.parameters())
        if len(weights) != len(params):
            raise ConfigError(f"expected {len(params)} weight arrays, got {len(weights)}.")
        with torch.no_grad():
            for p, w in zip(params, weights, strict=True):
                if tuple(p.shape) != tuple(np.shape(w)):
                    raise ConfigError(f"weight shape {np.shape(w)} does not match {tuple(p.shape)}.")
                p.copy_(torch.as_tensor(np.asarray(w), dtype=p.dtype))
        return self

    def fit(
        self, x: np.ndarray, y: np.ndarray, *, anchor: list[np.ndarray] | None = None,
        round_index: int = 0, seed: int | None = None,
    ) -> CreditModel:
        """Train on (x, y) for one round: ``epochs`` passes, at least ``min_steps`` steps.

        ``anchor`` (the round's global weights) adds the FedProx term when ``mu > 0``.
        """
        rng = np.random.default_rng(self.seed if seed is None else seed)
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
        yt = torch.as_tensor(np.asarray(y, dtype=np.float64))
        params = list(self.network_.parameters())
        lr = self.learning_rate * self.lr_decay**round_index
        if self.kind == "lr" and not (anchor is not None and self.mu > 0):
            self._fit_linear(params, xt, yt, self._batches(xt.shape[0], rng), lr)
            return self
        opt = torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.l2)
        anchor_t = [torch.as_tensor(a, dtype=torch.float64) for a in anchor] if anchor else None
        loss_fn = nn.BCEWithLogitsLoss()
        self.network_.train()
        for batch in self._batches(xt.shape[0], rng):
            opt.zero_grad()
            loss = loss_fn(self.network_(xt[batch]).squeeze(-1), yt[batch])
            if anchor_t is not None and self.mu > 0:
                prox = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor_t, strict=True))
                loss = loss + 0.5 * self.mu * prox
            loss.backward()
            opt.step()
        return self

    def _fit_linear(self, params: list[nn.Parameter], xt: torch.Tensor, yt: torch.Tensor,
                    batches: list[torch.Tensor], lr: float) -> None:
        """The logistic regression's SGD without autograd and ``torch.optim``: the same tensor
        operations, in the same order, as ``BCEWithLogitsLoss(mean)`` backward through
        ``nn.Linear`` and ``SGD(momentum, weight_decay)`` take (so the same bits, pinned by
        ``tests/federation/test_models.py``), without their per-step overhead (a 50-step round
        on a few hundred rows took ~23 ms through autograd, ~5 ms here)."""
        weight, bias = params  # nn.Linear's (weight, bias)
        buffers: list[torch.Tensor] | None = None
        with torch.no_grad():
            for batch in batches:
                xb = xt[batch]
                logits = torch.addmm(bias, xb, weight.t())
                residual = (logits.squeeze(-1).sigmoid() - yt[batch]).div_(logits.shape[0])
                column = residual.unsqueeze(-1)
                grads = [column.t().mm(xb), column.sum(0)]
                if self.l2 != 0:
                    grads = [g.add(p, alpha=self.l2) for g, p in zip(grads, (weight, bias),
                                                                     strict=True)]
                if self.momentum != 0:
                    if buffers is None:
                        buffers = [g.clone() for g in grads]
                    else:
                        for buf, g in zip(buffers, grads, strict=True):
                            buf.mul_(self.momentum).add_(g, alpha=1)
                    grads = buffers
                weight.add_(grads[0], alpha=-lr)
                bias.add_(grads[1], alpha=-lr)

    def _batches(self, n_rows: int, rng: np.random.Generator) -> list[torch.Tensor]:
        """Index batches for one round: whole shuffled epochs until both bounds are met."""
        per_epoch = max(1, -(-n_rows // self.batch_size))
        steps = max(self.epochs * per_epoch, self.min_steps)
        batches: list[torch.Tensor] = []
        while len(batches) < steps:
            order = torch.as_tensor(rng.permutation(n_rows))
            batches.extend(order[i : i + self.batch_size] for i in range(0, n_rows, self.batch_size))
        return batches[:steps]

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Log-odds of default per row."""
        self.network_.eval()
        with torch.no_grad():
            out = self.network_(torch.as_tensor(np.asarray(x, dtype=np.float64)))
        return out.squeeze(-1).numpy()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(bad) per row (a 1-D array, unlike scikit-learn's two columns)."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(x)))
