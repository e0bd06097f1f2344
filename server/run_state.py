"""What the coordinator of a horizontal run holds: its state (checkpointed after every round)
and the record of each evaluated round.

The state holds sealed sums, counts, the history and, at the end, what the banks released;
never a bank's own vector (:mod:`server.horizontal` combines them before anything is kept).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from federation.ml.preprocess import FeatureLayout, Preprocessor
from federation.run.config import RunConfig
from federation.steps.secure_sum import Sealed
from federation.wire.trees import TreeRelease
from server.audit import sha256_hex
from server.participation import Participation


@dataclass(frozen=True)
class RoundRecord:
    """Federated evaluation after one round."""

    round: int
    auc: float
    ks: float
    seconds: float
    banks: int
    sampled: tuple[int, ...] = ()
    trained: tuple[int, ...] = ()
    evaluated: tuple[int, ...] = ()
    """The round's banks (:class:`~server.participation.Participation`; empty in a checkpoint
    written before they were recorded)."""

    def __post_init__(self) -> None:
        for name in ("sampled", "trained", "evaluated"):  # a checkpoint gives lists back
            object.__setattr__(self, name, tuple(int(b) for b in getattr(self, name)))


@dataclass
class FederatedResult:
    """Coordinator state: sealed aggregates, history, and (at the end) the released model."""

    run_id: str = ""
    layout: FeatureLayout | None = None
    stats_sum: Sealed | None = None
    weights_sum: Sealed | None = None
    hist_sum: Sealed | None = None
    hist_round: int = 0
    """The round whose evaluation ``hist_sum`` holds (the model after that round); it trails
    ``rounds_done`` by one between rounds: round ``r``'s model is scored in the exchange that
    trains round ``r + 1``, the last one in a step of its own before finalize."""
    rounds_done: int = 0
    round_seconds: list[float] = field(default_factory=list)
    round_banks: list[int] = field(default_factory=list)
    participation: list[Participation] = field(default_factory=list)
    """Who was sampled, trained and evaluated in each round done (in order)."""
    history: list[RoundRecord] = field(default_factory=list)
    train_rows: dict[int, int] = field(default_factory=dict)
    weights_rows: int = 0
    """Reported training rows of the banks in ``weights_sum`` (checkpointed, so a resumed run's
    first update sum is checked too; 0 only from a checkpoint of an older release, and the
    banks then skip the weight-share check)."""
    dropouts: list[dict[str, Any]] = field(default_factory=list)
    preprocessor: Preprocessor | None = None
    weights: list[np.ndarray] = field(default_factory=list)
    histograms: tuple[np.ndarray, np.ndarray] | None = None
    """Summed (bad, good) test-score histograms of the last round, released by the banks."""
    training_scores: np.ndarray | None = None
    """Summed training-score counts (both classes) the banks released beside them (PSI)."""
    bins_sum: Sealed | None = None
    """Boosted trees: combined sealed fine counts and label sums."""
    level_sum: Sealed | None = None
    """Boosted trees: combined sealed histograms of the last level (and evaluation counts)."""
    tree_state: bytes | None = None
    """Boosted trees: the banks' shared state blob (sealed under their key under Paillier)."""
    tree_seq: int = 0
    """Boosted trees: the request the state blob and level sum answer."""
    tree_banks: tuple[int, ...] = ()
    """Boosted trees: the banks growing the current tree (fixed for the whole tree)."""
    tree_release: TreeRelease | None = None
    """Boosted trees: the released model (when the run allows it)."""
    trees_kept: int = 0
    """Boosted trees: the trees early stopping kept (0: every tree grown); set at finalize."""
    calibration: tuple[Any, str, int] | None = None
    """The calibration map every bank fitted (PlattMap, rows fitted on, their count); set at
    finalize (:mod:`server.calibration`)."""

    @property
    def final(self) -> RoundRecord | None:
        """The evaluation of the final model: the last round's, or the kept trees' one."""
        kept = self.evaluated(self.trees_kept) if self.trees_kept else None
        if kept is not None:
            return kept
        return self.history[-1] if self.history else None

    def evaluated(self, count: int) -> RoundRecord | None:
        """The history entry of round (tree count) ``count``, if it was evaluated."""
        return next((h for h in self.history if h.round == count), None)


def config_hash(cfg: RunConfig) -> str:
    """SHA-256 of the canonical run config."""
    return sha256_hex(json.dumps(cfg.to_user_config(), sort_keys=True).encode("utf-8"))
