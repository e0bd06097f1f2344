"""Tests of federation.data.synthetic: valid keys, partial overlap, determinism, signal on both sides."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from federation.data.synthetic import (
    BANK_FEATURES,
    CENTER_FEATURES,
    DEFAULT_MODEL,
    ID_COLUMN,
    MISSABLE_CENTER_FEATURES,
    TARGET_COLUMN,
    GroundTruthModel,
    generate_enterprise_pair,
    write_enterprise_pair,
)
from federation.data.uscc import find_invalid_codes


@pytest.fixture(scope="module")
def pair() -> tuple[pd.DataFrame, pd.DataFrame, object]:
    return generate_enterprise_pair(n_enterprises=4000, overlap=0.8, seed=0)


def test_columns(pair) -> None:
    bank, center, _ = pair
    assert list(bank.columns) == [ID_COLUMN, *BANK_FEATURES, TARGET_COLUMN]
    assert list(center.columns) == [ID_COLUMN, *CENTER_FEATURES]
    assert set(bank[TARGET_COLUMN].unique()) == {0, 1}
    for column in MISSABLE_CENTER_FEATURES:
        assert 0 < center[column].isna().mean() < 0.1
    assert not bank.isna().any().any()


def test_codes_valid_and_unique(pair) -> None:
    bank, center, _ = pair
    for table in (bank, center):
        assert table[ID_COLUMN].is_unique
        assert find_invalid_codes(table[ID_COLUMN]) == []


def test_overlap_and_order(pair) -> None:
    bank, center, truth = pair
    shared = set(bank[ID_COLUMN]) & set(center[ID_COLUMN])
    assert shared == truth.shared_codes
    assert len(shared) == 3200 == len(bank) * 0.8 == len(center) * 0.8
    shared_order_bank = [c for c in bank[ID_COLUMN] if c in shared]
    shared_order_center = [c for c in center[ID_COLUMN] if c in shared]
    assert shared_order_bank != shared_order_center


@given(n=st.integers(1, 60), overlap=st.floats(0.0, 1.0))
@settings(max_examples=25, deadline=None)
def test_overlap_fraction_as_asked(n: int, overlap: float) -> None:
    bank, center, truth = generate_enterprise_pair(n_enterprises=n, overlap=overlap, seed=1)
    assert len(bank) == len(center) == n
    shared = set(bank[ID_COLUMN]) & set(center[ID_COLUMN])
    assert len(shared) == round(overlap * n) == len(truth.shared_codes)


def test_deterministic_for_a_seed() -> None:
    first = generate_enterprise_pair(n_enterprises=300, seed=5)
    second = generate_enterprise_pair(n_enterprises=300, seed=5)
    other = generate_enterprise_pair(n_enterprises=300, seed=6)
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])
    assert first[2] == second[2]
    assert not first[0].equals(other[0])


def test_default_rate_in_range(pair) -> None:
    bank, _, truth = pair
    assert 0.10 <= bank[TARGET_COLUMN].mean() <= 0.25
    enterprises = truth.enterprises
    np.testing.assert_allclose(
        enterprises["probability"], DEFAULT_MODEL.default_probability(enterprises))


def _design(table: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """One-hot categoricals, log sizes, median-impute blanks with indicators, standardise."""
    categorical = [c for c in ("tax_grade", "industry") if c in columns]
    frame = pd.get_dummies(table[list(columns)], columns=categorical, dtype=float)
    for column in list(frame.columns):
        values = frame[column].astype(float)
        if values.isna().any():
            frame[column + "_missing"] = values.isna().astype(float)
            values = values.fillna(values.median())
        if column in ("loan_amount", "deposits", "social_insurance_headcount"):
            values = np.log1p(values)
        frame[column] = values
    matrix = frame.to_numpy(dtype=float)
    return (matrix - matrix.mean(axis=0)) / (matrix.std(axis=0) + 1e-12)


def test_joint_model_beats_bank_only_model(pair) -> None:
    bank, center, _ = pair
    joined = bank.merge(center, on=ID_COLUMN, how="inner")
    target = joined[TARGET_COLUMN].to_numpy()
    train = np.arange(len(joined)) % 2 == 0
    auc = {}
    for name, columns in (("bank", BANK_FEATURES), ("joint", BANK_FEATURES + CENTER_FEATURES)):
        features = _design(joined, columns)
        model = LogisticRegression(max_iter=1000).fit(features[train], target[train])
        auc[name] = roc_auc_score(target[~train], model.predict_proba(features[~train])[:, 1])
    assert auc["bank"] > 0.6
    assert auc["joint"] - auc["bank"] >= 0.03


def test_write_pair_round_trips_through_csv(tmp_path) -> None:
    bank_path, center_path = write_enterprise_pair(tmp_path / "data", n_enterprises=200, seed=3)
    assert (bank_path.name, center_path.name) == ("bank.csv", "center.csv")
    bank, center, _ = generate_enterprise_pair(n_enterprises=200, seed=3)
    read_bank = pd.read_csv(bank_path, dtype={ID_COLUMN: str})
    read_center = pd.read_csv(center_path, dtype={ID_COLUMN: str})
    pd.testing.assert_frame_equal(read_bank, bank, check_dtype=False)
    assert list(read_center[ID_COLUMN]) == list(center[ID_COLUMN])
    assert read_center["social_insurance_headcount"].isna().sum() == \
        center["social_insurance_headcount"].isna().sum()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"n_enterprises": 0}, "positive"), ({"overlap": 1.5}, "overlap"),
     ({"missing_rate": 1.0}, "missing_rate")],
)
def test_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        generate_enterprise_pair(**kwargs)


def test_model_validation() -> None:
    with pytest.raises(ValueError, match="schema_version"):
        GroundTruthModel(schema_version=2)
    with pytest.raises(ValueError, match="grades"):
        GroundTruthModel(tax_grade_effects=(("A", 0.0),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_MODEL.intercept = 0.0  # type: ignore[misc]
