"""Scorecard scaling (hand-computed), grades, the LR points scorecard, its JSON and reason codes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.data.table import CreditTable
from federation.errors import ConfigError, SchemaError
from federation.ml.metrics import score_histograms
from federation.ml.models import CreditModel
from federation.ml.preprocess import Preprocessor
from federation.scorecard.linear import LinearScorecard, UnsupportedModelError
from federation.scorecard.reason_codes import contributions, reason_codes
from federation.scorecard.scale import (
    RiskGrades,
    ScorecardScale,
    grade_table,
    grade_table_from_histograms,
)

# ---------------------------------------------------------------- scaling, by hand
# factor = PDO / ln 2 = 20 / 0.693147... = 28.853900817779268
# offset = 600 - factor * ln 50 = 600 - 28.8539008 * 3.9120230 = 487.1228762045055
# points = offset - factor * ln(p_bad / p_good); good:bad odds 50 -> 600, 100 -> 620, 25 -> 580


def test_default_scale_hand_computed() -> None:
    scale = ScorecardScale()
    assert math.isclose(scale.factor, 28.85390081777927, rel_tol=1e-14)
    assert math.isclose(scale.offset, 487.1228762045055, rel_tol=1e-14)
    assert math.isclose(float(scale.points(1 / 51)), 600.0, abs_tol=1e-9)  # 50:1 good:bad
    assert math.isclose(float(scale.points(1 / 101)), 620.0, abs_tol=1e-9)  # odds doubled
    assert math.isclose(float(scale.points(1 / 26)), 580.0, abs_tol=1e-9)  # odds halved
    assert math.isclose(float(scale.points(0.5)), 487.1228762045055, abs_tol=1e-9)
    # the sign convention: more risk, fewer points; ln(bad odds) = logit(p_bad)
    assert math.isclose(float(scale.points_from_log_odds(math.log(1 / 50))), 600.0, abs_tol=1e-9)


def test_custom_scale_hand_computed() -> None:
    # 500 points at 1:1, PDO 50: factor = 72.1347520444, offset = 500 - factor * ln 1 = 500.
    # p_bad 0.2 -> good:bad 4 = 2^2 -> 500 + 2 * 50 = 600; p_bad 0.8 -> 1/4 -> 400;
    # p_bad 1/9 -> 8 = 2^3 -> 650.
    scale = ScorecardScale(base_score=500, base_odds=1, pdo=50)
    assert math.isclose(scale.offset, 500.0)
    np.testing.assert_allclose(scale.points([0.2, 0.8, 1 / 9]), [600.0, 400.0, 650.0], atol=1e-9)
    np.testing.assert_allclose(scale.probability([600.0, 400.0, 650.0]), [0.2, 0.8, 1 / 9])


@settings(max_examples=100, deadline=None)
@given(st.floats(1e-9, 1 - 1e-9), st.floats(300, 900), st.floats(0.5, 200), st.floats(5, 100))
def test_points_and_probability_round_trip(p: float, base: float, odds: float, pdo: float) -> None:
    scale = ScorecardScale(base, odds, pdo)
    assert math.isclose(float(scale.probability(scale.points(p))), p, rel_tol=1e-6)
    assert float(scale.points(p / 2)) > float(scale.points(p))  # less risk, more points


@pytest.mark.parametrize("kwargs", [{"base_odds": 0}, {"pdo": -20}, {"base_score": math.nan}])
def test_bad_scale_is_a_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        ScorecardScale(**kwargs)


# ---------------------------------------------------------------- grades


def test_grades_at_the_cut_offs() -> None:
    grades = RiskGrades()
    scores = np.array([700, 560, 559.99, 540, 520, 500, 499.99, 100])
    assert list(grades.assign(scores)) == ["A", "A", "B", "B", "C", "D", "E", "E"]
    assert RiskGrades.parse("650, 600") == RiskGrades((650.0, 600.0), ("A", "B", "C"))
    assert grades.bands()[0] == ("A", 560.0, math.inf) and grades.bands()[-1][1] == -math.inf


@pytest.mark.parametrize("make", [
    lambda: RiskGrades((500.0, 600.0)),
    lambda: RiskGrades((600.0, 600.0), ("A", "B", "C")),
    lambda: RiskGrades((600.0,), ("A", "B", "C")),
    lambda: RiskGrades.parse("600,abc"),
])
def test_bad_grades_are_config_errors(make) -> None:
    with pytest.raises(ConfigError):
        make()


def test_default_rate_per_grade_by_hand() -> None:
    grades = RiskGrades((600.0, 500.0), ("A", "B", "C"))
    scores = np.array([650, 620, 610, 550, 520, 450, 400, 300])
    y = np.array([0, 0, 1, 0, 1, 1, 1, 0])
    a, b, c = grade_table(grades, scores, y)
    assert (a.count, a.bads, b.count, b.bads, c.count, c.bads) == (3, 1, 2, 1, 3, 2)
    assert math.isclose(a.default_rate, 1 / 3) and math.isclose(c.share, 3 / 8)
    unlabelled = grade_table(grades, scores)
    assert unlabelled[0].bads is None and math.isnan(unlabelled[0].default_rate)
    empty = grade_table(RiskGrades((900.0,), ("A", "B")), scores, y)[0]
    assert empty.count == 0 and math.isnan(empty.default_rate)


def test_grade_table_from_histograms_matches_row_level() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(20_000) < 0.25
    p = 1 / (1 + np.exp(-(rng.normal(-1.6, 1.1, y.size) + 1.2 * y)))
    scale, grades = ScorecardScale(), RiskGrades()
    exact = grade_table(grades, scale.points(p), y)
    binned = grade_table_from_histograms(grades, scale, *score_histograms(y, p))
    for e, b in zip(exact, binned, strict=True):
        assert abs(e.share - b.share) < 0.005 and abs(e.default_rate - b.default_rate) < 0.01


# ---------------------------------------------------------------- the LR as points


def test_scorecard_points_equal_the_scaled_model(german_table: CreditTable, german_lr) -> None:
    prep, model = german_lr
    scale = ScorecardScale()
    card = LinearScorecard.from_lr(prep, model.get_weights(), scale=scale, grades=RiskGrades())
    x = prep.transform(german_table)
    np.testing.assert_allclose(card.points(x), scale.points(model.predict_proba(x)), atol=1e-8)
    assert card.feature_names == prep.feature_names
    assert card.preprocessor() == prep
    assert math.isclose(card.base_points, scale.offset - scale.factor * card.intercept)


def test_scorecard_json_round_trip(german_lr) -> None:
    prep, model = german_lr
    card = LinearScorecard.from_lr(prep, model.get_weights(), scale=ScorecardScale(550, 20, 40),
                                   grades=RiskGrades.parse("600,550"), target="bad", id_column="ID")
    text = card.to_json()
    assert LinearScorecard.from_json(text) == card
    raw = json.loads(text)
    assert raw["numeric"][0].keys() >= {"feature", "mean", "std", "coefficient", "points_per_unit"}
    assert raw["categorical"][0]["bins"][0].keys() == {"category", "coefficient", "points"}
    with pytest.raises(SchemaError):
        LinearScorecard.from_json(json.dumps({**raw, "schema_version": 99}))


def test_only_lr_becomes_a_scorecard(german_lr) -> None:
    prep, _ = german_lr
    mlp = CreditModel("mlp", n_features=prep.n_features)
    with pytest.raises(UnsupportedModelError, match="--model lr"):
        LinearScorecard.from_lr(prep, mlp.get_weights(), scale=ScorecardScale(), grades=RiskGrades())


def test_exported_json_scores_with_the_standard_library_only(
    tmp_path: Path, data_dir: Path, german_table: CreditTable, german_lr
) -> None:
    """A bank without fedcredit (or numpy): the JSON's recipe in `python -I -S` matches the model."""
    prep, model = german_lr
    scale, grades = ScorecardScale(), RiskGrades()
    card = LinearScorecard.from_lr(prep, model.get_weights(), scale=scale, grades=grades)
    card_path = tmp_path / "scorecard.json"
    card_path.write_text(card.to_json())
    driver = (
        "import csv, json, sys\n"
        "card = json.load(open(sys.argv[1], encoding='utf-8'))\n"
        "ns = {}\nexec(card['python_recipe'], ns)\n"
        "with open(sys.argv[2], newline='', encoding='utf-8') as f:\n"
        "    rows = [ns['score_row'](card, r) for r in csv.DictReader(f)]\n"
        "try:\n    import numpy\n    has_numpy = True\nexcept ImportError:\n    has_numpy = False\n"
        "print(json.dumps({'has_numpy': has_numpy, 'rows': rows}))\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", driver, str(card_path),
                           str(data_dir / "german_credit.csv")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["has_numpy"] is False  # really nothing but the standard library
    points = np.array([r[0] for r in out["rows"]])
    p_bad = np.array([r[1] for r in out["rows"]])
    expected = model.predict_proba(prep.transform(german_table))
    np.testing.assert_allclose(p_bad, expected, atol=1e-7)
    np.testing.assert_allclose(points, scale.points(expected), atol=1e-4)
    clear = np.min(np.abs(points[:, None] - np.array(grades.cutoffs)[None, :]), axis=1) > 1e-3
    graded = [r[2] for r, ok in zip(out["rows"], clear, strict=True) if ok]
    assert graded == list(grades.assign(points[clear]))


# ---------------------------------------------------------------- reason codes


def _hand_card() -> tuple[LinearScorecard, Preprocessor]:
    prep = Preprocessor(("income", "debt_ratio"), (10.0, 5.0), (2.0, 1.0),
                        (("region", ("north", "south", "east")),), 100)
    weights = [np.array([[-0.5, 0.8, 0.0, 0.4, -0.2]]), np.array([-1.0])]
    return LinearScorecard.from_lr(prep, weights, scale=ScorecardScale(), grades=RiskGrades()), prep


def _hand_rows(prep: Preprocessor) -> np.ndarray:
    table = CreditTable(
        "hand", "bad", np.zeros(3, np.int8),
        pd.DataFrame({"income": [6.0, 14.0, 10.0], "debt_ratio": [7.0, 5.0, 6.0]}),
        pd.DataFrame({"region": ["south", "east", None]}, dtype=object),
    )
    return prep.transform(table)


def test_reason_codes_by_hand() -> None:
    # factor F = 28.8539. Row 1: income z=-2 costs 0.5F*2 = F; debt z=+2 costs 0.8F*2 = 1.6F;
    # south costs 0.4F against the modal north. Row 2 gains everywhere. Row 3: only debt (0.8F).
    card, prep = _hand_card()
    f = card.scale.factor
    codes = reason_codes(card, _hand_rows(prep), k=3)
    assert list(codes.text[0]) == ["debt ratio above average", "income below average",
                                   "region: south"]
    np.testing.assert_allclose(codes.points_lost[0], [1.6 * f, f, 0.4 * f])
    assert list(codes.feature[0]) == ["debt_ratio", "income", "region"]
    assert list(codes.text[1]) == ["", "", ""]
    assert list(codes.text[2]) == ["debt ratio above average", "", ""]
    assert codes.text.shape == (3, 3)
    assert reason_codes(card, _hand_rows(prep), k=5).text.shape == (3, 5)  # padded
    with pytest.raises(ValueError):
        reason_codes(card, _hand_rows(prep), k=0)


def test_contributions_add_up_to_the_score_gap(german_table: CreditTable, german_lr) -> None:
    prep, model = german_lr
    card = LinearScorecard.from_lr(prep, model.get_weights(), scale=ScorecardScale(),
                                   grades=RiskGrades())
    x = prep.transform(german_table)
    lost, _, _ = contributions(card, x)
    reference = np.zeros(prep.n_features)  # mean numerics, modal category of each column
    pos = len(prep.numeric)
    for _, vocab in prep.categorical:
        reference[pos] = 1.0
        pos += len(vocab)
    np.testing.assert_allclose(lost.sum(axis=1), card.points(x) - card.points(reference[None, :]),
                               atol=1e-8)
    codes = reason_codes(card, x, k=3)
    assert np.all(np.diff(codes.points_lost, axis=1) <= 1e-12)  # worst first
    assert (codes.text[:, 0] != "").mean() > 0.95
