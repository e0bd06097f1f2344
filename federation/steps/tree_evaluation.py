"""What a bank seals after a tree level's histograms, and how it reads the opened sums.

The vector a bank seals with a boosting state (:mod:`federation.steps.tree_bank`) ends with
evaluation parts whose presence every bank derives from the same public state: the test-score
histograms (every ``eval_every``-th tree and the final model), the validation vector (early
stopping, every tree) and the calibration fit rows' histograms (final model only). Here: those
lengths, the early-stopping rule over the opened validation scores, the metrics read from the
opened sums (denoised first under DP), and the margins of a bank's rows under the finished
trees (cached per run, bank and row part, reused only for a bit-identical prefix of trees).

Security: as :mod:`federation.steps.tree_bank`: only sums of every bank's values are opened;
the margins and the cache stay in the bank's process. Imports ``federation`` only.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from federation.ml.dp.releases import denoise_sum
from federation.ml.gbdt.state import BoostState
from federation.ml.gbdt.stopping import stopping_point, validation_length, validation_score
from federation.ml.metrics import HIST_BINS, auc_ks_from_histograms
from federation.run.config import RunConfig
from federation.steps.horizontal_bank import calibration_metrics
from federation.wire.records import METRIC_AUC, METRIC_EVAL_ROUND, METRIC_KS
from federation.wire.trees import METRIC_VALID_LOSS

EVAL_LENGTH = 2 * HIST_BINS
"""Values of the test-score histograms (bads, then goods) in an evaluation vector."""


def hist_length(state: BoostState) -> int:
    """Values of the compact histograms (used bins only) sealed with ``state``."""
    growing = state.growing
    if growing is None:
        return 0
    return len(growing.build) * int(state.edges.used_codes().sum()) * 2


def evaluation_parts(cfg: RunConfig, state: BoostState) -> tuple[bool, bool]:
    """What the vector sealed with ``state`` carries after its histograms: (test-score
    histograms, validation vector). The first after every ``eval_every``-th tree and for the
    final model, the second (early stopping only) after every tree."""
    growing = state.growing
    valid = bool(cfg.early_stopping_rounds)
    if growing is None:
        return True, valid
    if growing.depth != 0 or not state.trees:
        return False, False
    return len(state.trees) % cfg.eval_every == 0, valid


def eval_length(cfg: RunConfig, state: BoostState) -> int:
    test, valid = evaluation_parts(cfg, state)
    return ((EVAL_LENGTH if test else 0) + (valid_length(cfg) if valid else 0)
            + (EVAL_LENGTH if calibration_part(state) else 0))


def calibration_part(state: BoostState) -> bool:
    """Whether the vector sealed with ``state`` ends with the per-class score histograms of
    the rows the calibration map is fitted on (the validation rows with early stopping, else
    the training rows): with the final model's evaluation only."""
    return state.growing is None


def valid_length(cfg: RunConfig) -> int:
    """Values of a bank's validation vector (early stopping) after its score histograms."""
    return validation_length(cfg.early_stopping_metric)


def awaits_stop(cfg: RunConfig, state: BoostState) -> bool:
    """Every tree is grown but early stopping has yet to cut back to the best prefix."""
    return bool(cfg.early_stopping_rounds) and state.growing is None and not state.stopped


def stop_rule(cfg: RunConfig, state: BoostState, score: float | None) -> BoostState:
    """Record the validation score of the finished trees; cut back as the pooled trainer does."""
    if score is None or len(state.validation) != len(state.trees) - 1:
        return state
    scores = (*state.validation, score)
    best, stop = stopping_point(scores, cfg.early_stopping_rounds)
    if not stop and state.growing is not None:
        return replace(state, validation=scores)
    return replace(state, trees=state.trees[:best + 1], growing=None, parties=0,
                   validation=scores[:best + 1], stopped=True)


_MARGIN_CACHE: dict[tuple[str, int, str], tuple[tuple[str, ...], NDArray[np.float64]]] = {}


def _tree_digest(tree: Any) -> str:
    parts = (tree.feature, tree.split_bin, tree.threshold, tree.default_left, tree.value)
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in parts)).hexdigest()


def tree_margins(state: BoostState, X: NDArray[np.float64], *, run_id: str, bank: int,
             part: str) -> NDArray[np.float64]:
    """Margins of the rows under the finished trees, adding only the trees not yet counted
    (a cached prefix is reused only when its trees are the state's first trees, bit for bit)."""
    key = (run_id, bank, part)
    digests = tuple(_tree_digest(t) for t in state.trees)
    cached = _MARGIN_CACHE.get(key)
    if cached is not None and cached[1].shape == (X.shape[0],) and \
            digests[:len(cached[0])] == cached[0]:
        done, margins = len(cached[0]), cached[1].copy()
    else:
        done, margins = 0, np.full(X.shape[0], state.base_margin)
    x32 = X.astype(np.float32)
    for tree in state.trees[done:]:
        margins += tree.value[tree.leaves_of(x32)]
    if len(_MARGIN_CACHE) > 16:
        _MARGIN_CACHE.clear()
    _MARGIN_CACHE[key] = (digests, margins.copy())
    return margins


def evaluation_metrics(cfg: RunConfig, state: BoostState, opened: NDArray[np.float64],
                ) -> dict[str, float]:
    """The federated test AUC/KS and validation score in the opened evaluation values."""
    test, valid = evaluation_parts(cfg, state)
    metrics: dict[str, float] = {}
    if test:
        bad, good = opened[:HIST_BINS], opened[HIST_BINS:EVAL_LENGTH]
        auc, ks = auc_ks_from_histograms(np.rint(bad).astype(np.int64),
                                         np.rint(good).astype(np.int64))
        metrics |= {METRIC_AUC: auc, METRIC_KS: ks, METRIC_EVAL_ROUND: len(state.trees)}
    if valid:
        at = EVAL_LENGTH if test else 0
        metrics[METRIC_VALID_LOSS] = validation_score(opened[at:at + valid_length(cfg)],
                                                      cfg.early_stopping_metric)
    if calibration_part(state):
        metrics |= calibration_metrics(opened[-EVAL_LENGTH:])
    return metrics


def denoised_scores(cfg: RunConfig, state: BoostState, scores: NDArray[np.float64], *,
                     parties: int) -> NDArray[np.float64]:
    """Under DP: the test and calibration histograms in the opened scores, offsets removed and
    denoised (:func:`~federation.ml.dp.releases.denoise_sum`); the same at every bank."""
    test, _ = evaluation_parts(cfg, state)
    out = np.array(scores, dtype=np.float64)
    if test:
        out[:EVAL_LENGTH] = denoise_sum(out[:EVAL_LENGTH], parties=parties)
    if calibration_part(state):
        out[-EVAL_LENGTH:] = denoise_sum(out[-EVAL_LENGTH:], parties=parties)
    return out
