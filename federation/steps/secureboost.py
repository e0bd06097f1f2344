"""Vertical SecureBoost with both parties in one process (tests, benchmarks).

Drives the very steps a Flower run sends between the bank and the credit center
(:mod:`federation.steps.vertical_trees`), in the coordinator's order, and times each party's
own work: the protocol alternates between them, so the sum of both is the critical path of a
deployment (relay latency excluded). Threat model and what each side learns:
:mod:`protocols.secureboost.steps` and ``docs/security.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from phe.paillier import PaillierPrivateKey

from federation.ml.gbdt import GBDTConfig
from federation.steps import vertical_trees as vt

__all__ = ["SecureBoostTimings", "LocalSecureBoost", "train_secureboost_local"]

T = TypeVar("T")


@dataclass
class SecureBoostTimings:
    """Seconds of each party's own work, summed over the run."""

    bank_encrypt: float = 0.0
    bank_other: float = 0.0
    center: float = 0.0
    per_tree: list[float] = field(default_factory=list)

    @property
    def critical_path(self) -> float:
        """Both parties' work in sequence (the protocol alternates between them)."""
        return self.bank_encrypt + self.bank_other + self.center


@dataclass(frozen=True, eq=False)
class LocalSecureBoost:
    """Both parties' states after training (each would stay on its own node)."""

    bank: vt.BankTrees
    center: vt.CenterTrees

    def test_margins(self) -> NDArray[np.float64]:
        """Margins of the test rows, scored as a federation scores them."""
        return vt.bank_margins(self.bank, vt.center_branches(self.center))


def train_secureboost_local(bank_X: NDArray[np.float64], y: NDArray[np.int64],
                            center_X: NDArray[np.float64], config: GBDTConfig, *,
                            private_key: PaillierPrivateKey,
                            bank_test: NDArray[np.float64] | None = None,
                            center_test: NDArray[np.float64] | None = None,
                            y_test: NDArray[np.int64] | None = None,
                            bank_categories: tuple[int, ...] = (),
                            center_categories: tuple[int, ...] = (),
                            timings: SecureBoostTimings | None = None) -> LocalSecureBoost:
    """Grow ``config.trees`` trees on aligned rows split by columns between bank and center."""
    t = timings if timings is not None else SecureBoostTimings()

    def timed(slot: str, step: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        out = step(*args, **kwargs)
        setattr(t, slot, getattr(t, slot) + time.perf_counter() - started)
        return out

    b_test = bank_X[:0] if bank_test is None else bank_test
    c_test = center_X[:0] if center_test is None else center_test
    labels_test = np.zeros(len(b_test), np.int64) if y_test is None else y_test
    center, positions = timed("center", vt.center_start, center_X, c_test, config.bins,
                              private_key.public_key, gradient_bits=config.gradient_bits,
                              n_categories=center_categories)
    flags = tuple(k > 0 for k in center_categories) if center_categories else ()
    bank = timed("bank_other", vt.bank_start, bank_X, b_test, y, labels_test, config,
                 private_key, positions, n_categories=bank_categories, center_categorical=flags)
    for _ in range(config.trees):
        tree_started = time.perf_counter()
        cts: bytes | None = timed("bank_encrypt", vt.bank_gradients, bank)
        done = False
        while not done:
            assignment, build = vt.level_fields(bank)
            packed, count = timed("center", vt.center_level, center, ciphertexts=cts,
                                  assignment=assignment, build=build)
            cts = None
            splits = timed("bank_other", vt.bank_decide, bank, packed, count)
            ids, bits = timed("center", vt.center_apply, center, splits)
            done = timed("bank_other", vt.bank_apply, bank, ids, bits)
        t.per_tree.append(time.perf_counter() - tree_started)
    return LocalSecureBoost(bank, center)
