"""Scoring applies the run's calibration map: probabilities, points, grades, the exported
scorecard and the histogram grade table are of the calibrated PD; PSI still compares raw scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from federation.data.table import CreditTable
from federation.ml.calibration import PlattMap
from federation.ml.metrics import score_histograms
from federation.scorecard.scale import (
    RiskGrades,
    ScorecardScale,
    grade_table,
    grade_table_from_histograms,
)
from federation.scorecard.scoring import load_run_model, score_file

MAP = PlattMap(slope=2.0, intercept=-0.5)


@pytest.fixture()
def calibrated_run(tmp_path: Path, german_run_dir: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(german_run_dir, run)
    doc = json.loads((run / "results.json").read_text())
    doc["calibration"] = {"method": "platt", "fitted_on": "training rows", "rows": 10,
                          "mean_pd": 0.3, "observed_rate": 0.3, "brier": 0.2,
                          "uncalibrated_mean_pd": 0.3, "map": MAP.as_dict(), "bins": []}
    (run / "results.json").write_text(json.dumps(doc))
    return run


def test_scoring_applies_the_map_to_probability_points_and_grades(
        tmp_path: Path, data_dir: Path, calibrated_run: Path, german_table: CreditTable,
        german_lr) -> None:
    prep, model = german_lr
    scale, grades = ScorecardScale(), RiskGrades()
    summary = score_file(calibrated_run, data_dir / "german_credit.csv", tmp_path / "s.csv",
                         scale=scale, grades=grades)
    out = pd.read_csv(tmp_path / "s.csv", dtype={"id": str}, keep_default_na=False)
    raw = model.predict_proba(prep.transform(german_table))
    calibrated = MAP.pd_of_probability(raw)
    np.testing.assert_allclose(out["probability"], calibrated, atol=1e-6)
    np.testing.assert_allclose(out["score"], scale.points(calibrated), atol=0.01)
    assert list(out["grade"]) == list(grades.assign(scale.points(calibrated)))
    assert summary.psi_vs_development is not None and summary.psi_vs_development < 1e-3
    card = load_run_model(calibrated_run).scorecard(scale, grades)
    logit = np.log(calibrated) - np.log1p(-calibrated)
    np.testing.assert_allclose(card.log_odds(prep.transform(german_table)), logit, atol=1e-6)


def test_a_run_folder_without_calibration_scores_raw(german_run_dir: Path) -> None:
    assert load_run_model(german_run_dir).calibration is None


def test_histogram_grade_table_grades_the_calibrated_pd(german_table: CreditTable,
                                                       german_lr) -> None:
    prep, model = german_lr
    raw = model.predict_proba(prep.transform(german_table))
    scale, grades = ScorecardScale(), RiskGrades()
    binned = grade_table_from_histograms(grades, scale, *score_histograms(german_table.y, raw),
                                         calibration=MAP)
    rows = grade_table(grades, scale.points(MAP.pd_of_probability(raw)), german_table.y)
    for b, r in zip(binned, rows, strict=True):
        assert abs(b.count - r.count) <= 3  # a bin straddling a cut-off counts on one side
    raw_table = grade_table_from_histograms(grades, scale, *score_histograms(german_table.y, raw))
    assert [g.count for g in binned] != [g.count for g in raw_table]
