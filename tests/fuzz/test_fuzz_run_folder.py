"""Fuzz the files a run folder hands to scoring and reporting (results, model, preprocessor),
and the exported JSON scorecard."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedcredit.report.html import load_results
from federation.ml.preprocess import Preprocessor
from federation.run.folder import MODEL_FILE, PREPROCESSOR_FILE, RESULTS_FILE
from federation.run.results import HorizontalResults, VerticalResults
from federation.scorecard.linear import LinearScorecard
from federation.scorecard.scale import RiskGrades, ScorecardScale
from federation.scorecard.scoring import RunModel, load_run_model
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
PREP = Preprocessor(("age", "income"), (40.0, 5e3), (12.0, 2e3),
                    (("region", ("north", "south")),), 1000)
WEIGHTS = [np.array([[0.5, -0.25, 0.1, -0.1]]), np.array([0.2])]
RESULTS = {"model": "lr", "target": "bad", "config": {"model": "lr", "target": "bad",
                                                      "id-col": "ID"}}


def _npz(weights: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, *weights)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_run_folder")


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_damaged_run_folders_raise_only_named_errors(data, fuzz, run_dir) -> None:
    files = {RESULTS_FILE: json.dumps(RESULTS).encode(), MODEL_FILE: _npz(WEIGHTS),
             PREPROCESSOR_FILE: PREP.to_json().encode()}
    # the valid input parses (a decoder refusing everything fails here)
    for name, blob in files.items():
        (run_dir / name).write_bytes(blob)
    assert [w.tolist() for w in load_run_model(run_dir).weights] == [w.tolist() for w in WEIGHTS]
    damaged = data.draw(st.sampled_from(sorted(files)))
    if damaged == MODEL_FILE:
        files[damaged] = data.draw(st.one_of(
            fuzz.bytes_like(files[damaged], max_size=400),
            st.lists(st.sampled_from([np.zeros(3), np.array(["a"]), np.array([1 + 2j]),
                                      np.zeros((0, 2)), np.array([np.nan])]),
                     max_size=3).map(_npz)))
    else:
        files[damaged] = data.draw(fuzz.json_like(json.loads(files[damaged])))
    for name, blob in files.items():
        (run_dir / name).write_bytes(blob)
    try:
        model = load_run_model(run_dir)
    except FedCreditError:
        return
    assert isinstance(model, RunModel)
    assert all(w.dtype == np.float64 for w in model.weights)
    assert isinstance(model.kind, str) and isinstance(model.target, str)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_damaged_results_files_raise_only_named_errors(data, fuzz, run_dir) -> None:
    # the valid input parses (a decoder refusing everything fails here)
    (run_dir / RESULTS_FILE).write_text(json.dumps(RESULTS))
    assert isinstance(load_results(run_dir), HorizontalResults)
    (run_dir / RESULTS_FILE).write_bytes(data.draw(fuzz.json_like(RESULTS)))
    try:
        results = load_results(run_dir)
    except FedCreditError:
        return
    assert isinstance(results, (HorizontalResults, VerticalResults))
    assert type(type(results).from_dict(json.loads(results.to_json()))) is type(results)


@settings(FUZZ, max_examples=350)
@given(data=st.data())
def test_damaged_scorecard_exports_raise_only_named_errors(data, fuzz) -> None:
    card = LinearScorecard.from_lr(PREP, WEIGHTS, scale=ScorecardScale(), grades=RiskGrades(),
                                   target="bad", id_column="ID")
    text = data.draw(fuzz.json_text(card.to_dict()))
    # the valid input parses (a decoder refusing everything fails here)
    assert LinearScorecard.from_json(card.to_json()) == card
    try:
        loaded = LinearScorecard.from_json(text)
    except FedCreditError:
        return
    assert LinearScorecard.from_json(loaded.to_json()) == loaded
    assert np.isfinite(loaded.points(np.zeros((1, len(loaded.feature_names))))).all()
