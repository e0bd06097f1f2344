"""The report's stability section (issue 13): PSI of the test scores against the banks'
released training-score counts, overall and per grade, on results.json fixtures."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fedcredit.report.html import build_report
from fedcredit.report.stability import psi_verdict
from federation.ml.calibration import bin_centres
from federation.ml.credit_metrics import psi_against_reference
from federation.ml.metrics import LOGIT_RANGE, score_histograms
from federation.run.results import ScoreCounts, read_results
from federation.scorecard.scale import RiskGrades, ScorecardScale

from .test_report_sections import (
    horizontal_results,
    no_drawing,
    page_numbers,
    sample,
    vertical_results,
    write_run,
)

__all__ = ["no_drawing"]  # the fixture, used by name below


def with_training_scores(shift: float):
    results = horizontal_results()
    y, pd = sample(7000, 11, shift=shift)
    bad, good = score_histograms(y, pd)
    return replace(results, training_scores=ScoreCounts.from_counts(
        bad + good, logit_range=LOGIT_RANGE))


@pytest.mark.parametrize("shift", [-1.4, -0.6])
def test_psi_overall_and_per_grade_from_the_released_counts(shift: float,
                                                            no_drawing: None) -> None:
    results = with_training_scores(shift)
    html = build_report(results)
    _, derived = page_numbers(html)
    hist, train = results.score_histograms, results.training_scores
    assert hist is not None and train is not None
    test = np.asarray(hist.bad) + np.asarray(hist.good)
    psi = psi_against_reference(np.asarray(train.rows, dtype=float), test.astype(float))
    assert derived["psi"] == [f"{psi:.4f}"] and psi_verdict(psi) in html
    assert (psi < 0.1) == (shift == -1.4)  # same population: stable; shifted: not
    terms = [float(t) for t in derived["psi-term"]]
    assert len(terms) == 5 and all(t >= 0 for t in terms)
    assert sum(terms) == pytest.approx(float(derived["psi-grades"][0]), abs=5e-4)
    scores = ScorecardScale().points_from_log_odds(bin_centres())
    idx = RiskGrades().index(scores)
    shares = np.bincount(idx, weights=np.asarray(train.rows, dtype=float), minlength=5)
    assert derived["psi-train-share"] == [f"{s / shares.sum():.1%}" for s in shares]
    assert derived["psi-test-rows"] == [f"{int(test.sum()):,}"]


def test_the_section_survives_results_json_and_says_why_when_absent(
        tmp_path: Path, no_drawing: None) -> None:
    results = with_training_scores(-1.4)
    back = read_results(write_run(tmp_path, results) / "results.json")
    assert back.training_scores == results.training_scores
    assert json.loads(results.to_json())["training_scores"]["bins"] == 1024
    assert "psi" in page_numbers(build_report(back))[1]
    for other in (horizontal_results(), vertical_results()):
        html = build_report(other)
        assert "PSI between training and test scores: not available" in html
        assert "psi" not in page_numbers(html)[1]
