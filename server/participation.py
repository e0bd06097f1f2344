"""Partial participation: which banks the coordinator asks to train in a round (``fraction-fit``).

Step: at the start of round ``r`` the coordinator draws ``S`` =
:attr:`~federation.run.config.RunConfig.sampled_banks` distinct banks out of ``0..K-1``
without replacement, from a generator seeded by ``(run seed, r)``; only they get the train
request, and that round's evaluation asks the ones that trained (the last round asks every
bank, so the reported AUC/KS is on the union of the banks' test rows, as the baselines are).
Preprocessing and finalize keep every bank. ``F = 1`` draws nothing: every bank, every round,
exactly as a run without the setting.

Security assumption: the sample is public and reproducible by anyone who knows the run config
(the seed is a run setting, not a secret), so it hides nothing and needs no trust; a bank's
sealed update is as protected as in a full round (the sum of at least ``min-contributors``
banks, which :func:`~federation.run.config.sampled_count` never undercuts). Sampling gives no
differential-privacy amplification here: the DP accountant still assumes every round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from federation.run.config import RunConfig


@dataclass(frozen=True, slots=True)
class Participation:
    """Banks of one round: sampled, whose update was admitted, whose histograms were admitted."""

    sampled: tuple[int, ...]
    trained: tuple[int, ...]
    evaluated: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("sampled", "trained", "evaluated"):  # JSON gives lists back
            object.__setattr__(self, name, tuple(sorted(int(b) for b in getattr(self, name))))
        if not set(self.trained) <= set(self.sampled):
            raise ValueError("a round's trained banks must be among its sampled banks.")


def sample_banks(cfg: RunConfig, round_number: int) -> tuple[int, ...]:
    """The banks (indices ``0..K-1``, sorted) asked to train in ``round_number`` (1-based).

    Parameters
    ----------
    cfg : RunConfig
        The run: ``banks``, ``fraction_fit``, ``min_banks`` and ``seed`` decide the sample.
    round_number : int
        The round, from 1; each round draws afresh.

    Returns
    -------
    tuple of int
        ``cfg.sampled_banks`` distinct banks; every bank when ``fraction_fit`` is 1.

    Raises
    ------
    ValueError
        ``round_number`` is below 1.
    """
    if round_number < 1:
        raise ValueError(f"rounds are numbered from 1 (got {round_number}).")
    if cfg.sampled_banks >= cfg.banks:
        return tuple(range(cfg.banks))
    rng = np.random.default_rng([cfg.seed & (2**64 - 1), round_number])  # seeds are >= 0
    chosen = rng.choice(cfg.banks, size=cfg.sampled_banks, replace=False)
    return tuple(sorted(int(b) for b in chosen))
