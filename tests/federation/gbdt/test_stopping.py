"""Early-stopping scores: summed over parties they equal the pooled score; the stop rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.errors import ConfigError, DataError
from federation.ml.gbdt.gradients import mean_loss, validation_loss_sums
from federation.ml.gbdt.stopping import (
    stopping_point,
    validation_length,
    validation_parts,
    validation_score,
)
from federation.ml.metrics import auc_ks_from_histograms, roc_auc, score_histograms


def _rows(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    margins = rng.normal(0.8 * (2 * y - 1), 1.0)
    return y, margins


@pytest.mark.parametrize("metric", ["auc", "logloss"])
def test_parties_sums_give_the_pooled_score_exactly(metric: str) -> None:
    y, margins = _rows(1, 3000)
    cuts = np.split(np.arange(y.size), [400, 1900])
    summed = np.sum([validation_parts(y[c], margins[c], metric) for c in cuts], axis=0)
    pooled = validation_parts(y, margins, metric)
    assert summed.size == pooled.size == validation_length(metric)
    assert validation_score(summed, metric) == validation_score(pooled, metric)


def test_auc_score_is_one_minus_the_binned_auc_close_to_the_exact_one() -> None:
    y, margins = _rows(2, 2000)
    score = validation_score(validation_parts(y, margins, "auc"), "auc")
    bad, good = score_histograms(y, 1 / (1 + np.exp(-margins)))
    assert score == 1 - auc_ks_from_histograms(bad, good)[0]
    assert abs(score - (1 - roc_auc(y, margins))) < 1e-3
    loss = validation_score(validation_parts(y, margins, "logloss"), "logloss")
    assert loss == mean_loss(validation_loss_sums(y, margins))


def test_a_validation_set_of_one_class_cannot_give_an_auc() -> None:
    with pytest.raises(DataError, match="early-stopping-metric logloss"):
        validation_score(validation_parts(np.zeros(5, dtype=int), np.zeros(5), "auc"), "auc")
    with pytest.raises(ConfigError, match="'--early-stopping-metric'"):
        validation_parts(np.zeros(5, dtype=int), np.zeros(5), "gini")


def test_stop_rule_keeps_the_first_best_and_waits_rounds_trees() -> None:
    assert stopping_point([0.5], 2) == (0, False)
    assert stopping_point([0.5, 0.4, 0.4], 2) == (1, False)  # a tie is no improvement
    assert stopping_point([0.5, 0.4, 0.4, 0.41], 2) == (1, True)
    with pytest.raises(DataError):
        stopping_point([], 2)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30), st.integers(1, 5))
def test_stop_rule_matches_the_incremental_rule(scores: list[float], rounds: int) -> None:
    best, stop = 0, False
    for t, s in enumerate(scores):  # the loop a trainer writes by hand
        if s < scores[best]:
            best = t
        stop = t - best >= rounds
        if stop:
            break
    seen = scores[:t + 1]
    assert stopping_point(seen, rounds) == (best, stop)
