"""Scoring a file with a run folder's model: output, schema checks, bad input, LR and MLP."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from federation.data.table import CreditTable
from federation.errors import DataError, SchemaError
from federation.ml.metrics import roc_auc
from federation.ml.models import CreditModel
from federation.scorecard.scale import RiskGrades, ScorecardScale
from federation.scorecard.scoring import RunFolderError, load_run_model, score_file


@pytest.fixture(scope="module")
def german_frame(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "german_credit.csv", dtype=str, keep_default_na=False)


def _score(run: Path, data: Path, out: Path, **kwargs):
    return score_file(run, data, out, scale=ScorecardScale(), grades=RiskGrades(), **kwargs)


def test_scores_every_row_like_the_model(tmp_path: Path, data_dir: Path, german_run_dir: Path,
                                         german_table: CreditTable, german_lr) -> None:
    prep, model = german_lr
    summary = _score(german_run_dir, data_dir / "german_credit.csv", tmp_path / "s.csv")
    out = pd.read_csv(tmp_path / "s.csv", dtype={"id": str}, keep_default_na=False)
    assert list(out.columns) == ["id", "probability", "score", "grade", "reason_1", "reason_2",
                                 "reason_3"]
    assert list(out["id"]) == list(german_table.ids)
    expected = model.predict_proba(prep.transform(german_table))
    np.testing.assert_allclose(out["probability"], expected, atol=1e-6)
    np.testing.assert_allclose(out["score"], ScorecardScale().points(expected), atol=0.01)
    assert set(out["grade"]) <= set("ABCDE") and (out["reason_1"] != "").mean() > 0.95
    assert summary.rows == 1000 and sum(g.count for g in summary.grades) == 1000
    assert math.isclose(summary.auc, roc_auc(german_table.y, expected), abs_tol=1e-9)
    assert math.isclose(summary.brier, float(np.mean((expected - german_table.y) ** 2)), abs_tol=1e-9)
    assert summary.psi_vs_development is not None and summary.psi_vs_development < 1e-3


def test_file_without_target_or_ids_gets_row_numbers(tmp_path: Path, german_run_dir: Path,
                                                    german_frame: pd.DataFrame) -> None:
    data = tmp_path / "new.csv"
    frame = german_frame.drop(columns=["ID", "bad"]).iloc[:50]
    frame[frame.columns[::-1]].assign(extra="x").to_csv(data, sep=";", index=False)
    summary = _score(german_run_dir, data, tmp_path / "s.csv")
    out = pd.read_csv(tmp_path / "s.csv", dtype={"id": str})
    assert list(out["id"]) == [str(i) for i in range(1, 51)]
    assert summary.auc is None and summary.brier is None and all(g.bads is None for g in summary.grades)


def test_missing_columns_are_named_with_the_file(tmp_path: Path, german_run_dir: Path,
                                                 german_frame: pd.DataFrame) -> None:
    data = tmp_path / "partial.csv"
    german_frame.drop(columns=["purpose", "age_in_years"]).to_csv(data, index=False)
    with pytest.raises(SchemaError) as err:
        _score(german_run_dir, data, tmp_path / "s.csv")
    message = str(err.value)
    assert str(data) in message and "age_in_years, purpose" in message
    assert "(2 of 20)" in message and not (tmp_path / "s.csv").exists()
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(SchemaError, match="has none of the 20 feature columns"):
        _score(german_run_dir, other, tmp_path / "s.csv")


def test_non_number_in_a_numeric_column_names_the_row(tmp_path: Path, german_run_dir: Path,
                                                      german_frame: pd.DataFrame) -> None:
    data = tmp_path / "typo.csv"
    frame = german_frame.copy()
    frame.loc[6, "credit_amount"] = "12OO"
    frame.to_csv(data, index=False)
    with pytest.raises(DataError, match=r"column 'credit_amount', row 7 \(line 8\): value '12OO'"):
        _score(german_run_dir, data, tmp_path / "s.csv")


def test_missing_words_score_like_empty_cells(tmp_path: Path, german_run_dir: Path,
                                              german_frame: pd.DataFrame) -> None:
    words = german_frame.iloc[:4].copy()
    words["credit_amount"] = ["", "N/A", "nUlL", " missing "]
    words.to_csv(tmp_path / "w.csv", index=False)
    _score(german_run_dir, tmp_path / "w.csv", tmp_path / "s.csv")
    scores = pd.read_csv(tmp_path / "s.csv")
    blank = german_frame.iloc[:4].assign(credit_amount="")
    blank.to_csv(tmp_path / "b.csv", index=False)
    _score(german_run_dir, tmp_path / "b.csv", tmp_path / "t.csv")
    np.testing.assert_allclose(scores["score"], pd.read_csv(tmp_path / "t.csv")["score"])


def test_bad_run_folders(tmp_path: Path, data_dir: Path, german_run_dir: Path) -> None:
    with pytest.raises(RunFolderError, match="run folder not found"):
        load_run_model(tmp_path / "nope")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "results.json").write_text((german_run_dir / "results.json").read_text())
    (partial / "preprocessor.json").write_text((german_run_dir / "preprocessor.json").read_text())
    with pytest.raises(RunFolderError, match="model.npz not found"):
        load_run_model(partial)
    with pytest.raises(SchemaError, match="ID column 'customer'"):
        _score(german_run_dir, data_dir / "german_credit.csv", tmp_path / "s.csv",
               id_col="customer")


def test_mlp_scores_without_reason_codes(tmp_path: Path, data_dir: Path, german_table: CreditTable,
                                         german_lr, make_run_folder) -> None:
    prep, _ = german_lr
    mlp = CreditModel("mlp", n_features=prep.n_features, hidden=16, seed=1)
    mlp.fit(prep.transform(german_table), german_table.y)
    run = make_run_folder(tmp_path / "mlp", prep, mlp.get_weights(), kind="mlp")
    summary = _score(run, data_dir / "german_credit.csv", tmp_path / "s.csv", reasons=2)
    out = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    np.testing.assert_allclose(out["probability"],
                               mlp.predict_proba(prep.transform(german_table)), atol=1e-6)
    assert list(out.columns[-2:]) == ["reason_1", "reason_2"] and (out["reason_1"] == "").all()
    assert summary.psi_vs_development is None  # this folder has no score histograms


def test_infinite_value_is_rejected(tmp_path: Path, german_run_dir: Path,
                                    german_frame: pd.DataFrame) -> None:
    data = tmp_path / "inf.csv"
    german_frame.assign(age_in_years=["inf"] + ["30"] * (len(german_frame) - 1)).to_csv(
        data, index=False)
    with pytest.raises(DataError, match=r"column 'age_in_years', row 1 \(line 2\): value 'inf'"):
        _score(german_run_dir, data, tmp_path / "s.csv")
