"""The horizontal banks' calibration metrics: fitted on the training-row part of the opened
histogram sum (the last round's), absent from the other rounds' sums."""

from __future__ import annotations

import numpy as np
import pytest

from federation.ml.calibration import fit_platt
from federation.ml.metrics import auc_ks_from_histograms, score_histograms
from federation.run.config import RunConfig
from federation.steps.horizontal_bank import calibration_metrics, histogram_metrics
from federation.steps.secure_sum import KIND_COUNTS, PlainSum

RUN = "run-calibration"


def scored(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.2, 1.3, rows)
    return score_histograms(rng.random(rows) < 1 / (1 + np.exp(-z)), 1 / (1 + np.exp(-0.4 * z)))


def summed(*parts: tuple[np.ndarray, np.ndarray]):
    plain = PlainSum()
    sealed = [plain.seal(np.concatenate(p).astype(np.float64), kind=KIND_COUNTS, run_id=RUN,
                         round=2) for p in parts]
    return plain.combine(sealed, kind=KIND_COUNTS, length=None, run_id=RUN, round=2)


def test_the_last_rounds_sum_gives_the_map_of_the_pooled_training_rows() -> None:
    cfg = RunConfig(rounds=2)
    tests, trains = [scored(800, s) for s in (1, 2)], [scored(3000, s) for s in (3, 4)]
    total = summed(*[(*t, *f) for t, f in zip(tests, trains, strict=True)])
    metrics = histogram_metrics(cfg, 0, total, run_id=RUN, round_index=2)
    pooled_fit = (trains[0][0] + trains[1][0], trains[0][1] + trains[1][1])
    expected = fit_platt(*pooled_fit)
    assert metrics["cal-slope"] == pytest.approx(expected.slope, abs=1e-12)
    assert metrics["cal-intercept"] == pytest.approx(expected.intercept, abs=1e-12)
    assert metrics["cal-rows"] == 6000
    pooled_test = (tests[0][0] + tests[1][0], tests[0][1] + tests[1][1])
    assert (metrics["auc"], metrics["ks"]) == auc_ks_from_histograms(*pooled_test)


def test_an_earlier_rounds_sum_carries_no_map() -> None:
    metrics = histogram_metrics(RunConfig(rounds=2), 0, summed(scored(800, 1)), run_id=RUN,
                                round_index=1)
    assert "auc" in metrics and not any(k.startswith("cal-") for k in metrics)


def test_too_few_fit_rows_or_noisy_counts() -> None:
    bad, good = np.zeros(1024), np.zeros(1024)
    bad[500], good[400] = 3, 50
    assert calibration_metrics(np.concatenate([bad, good])) == {}  # 3 defaults: no map
    bad[600], good[300] = 40, 200
    noisy = np.concatenate([bad, good])
    noisy[10] = -1.4  # DP noise below zero counts as none
    assert calibration_metrics(noisy)["cal-rows"] == 293


def test_the_release_adds_the_summed_training_scores_of_two_or_more_banks() -> None:
    """The finalize reply carries the test histograms and the pooled training-score counts
    (both classes together) through the wire record; a one-bank sum releases no training
    counts (that would be the bank's own distribution)."""
    from federation.steps.horizontal_bank import open_released_histograms
    from federation.wire.records import (
        released_histograms_of,
        released_training_scores_of,
        reply_content,
    )

    cfg = RunConfig(rounds=2)
    tests, trains = [scored(800, s) for s in (1, 2)], [scored(3000, s) for s in (3, 4)]
    total = summed(*[(*t, *f) for t, f in zip(tests, trains, strict=True)])
    released = open_released_histograms(cfg, 0, total, run_id=RUN, round_index=2)
    content = reply_content(bank=0, n_examples=800, released_histograms=released)
    bad, good = released_histograms_of(content) or (None, None)
    assert np.array_equal(bad, tests[0][0] + tests[1][0])
    assert np.array_equal(good, tests[0][1] + tests[1][1])
    expected = sum(b + g for b, g in trains)
    assert np.array_equal(released_training_scores_of(content), expected)
    one_bank = summed((*tests[0], *trains[0]))
    alone = open_released_histograms(cfg, 0, one_bank, run_id=RUN, round_index=2)
    assert len(alone) == 2
    assert released_training_scores_of(reply_content(bank=0, n_examples=800,
                                                     released_histograms=alone)) is None
    earlier = open_released_histograms(cfg, 0, summed(*tests), run_id=RUN, round_index=1)
    assert len(earlier) == 2
