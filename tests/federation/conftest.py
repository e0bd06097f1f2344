"""Fixtures for the scorecard and scoring tests: an LR trained on german_credit.csv, in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from federation.data.table import CreditTable, load_credit_csv
from federation.ml.metrics import LOGIT_RANGE, score_histograms
from federation.ml.models import CreditModel
from federation.ml.preprocess import Preprocessor, pooled_preprocessor


@pytest.fixture(scope="session")
def german_table(data_dir: Path) -> CreditTable:
    """All 1,000 rows of the German credit data (target ``bad``, IDs in ``ID``)."""
    return load_credit_csv(data_dir / "german_credit.csv", target="bad")


@pytest.fixture(scope="session")
def german_lr(german_table: CreditTable) -> tuple[Preprocessor, CreditModel]:
    """A logistic regression trained for three rounds on the pooled rows."""
    prep = pooled_preprocessor([german_table])
    model = CreditModel("lr", n_features=prep.n_features, seed=0)
    x = prep.transform(german_table)
    for r in range(3):
        model.fit(x, german_table.y, round_index=r)
    return prep, model


def write_run_folder(out: Path, prep: Preprocessor, weights: list[np.ndarray], *, kind: str,
                     hist_from: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """The files ``fedcredit simulate`` leaves that scoring reads (model, schema, settings)."""
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "model.npz", *weights)
    (out / "preprocessor.json").write_text(prep.to_json())
    results: dict = {"model": kind, "target": "bad",
                     "config": {"model": kind, "target": "bad", "id-col": ""}}
    if hist_from is not None:
        bad, good = score_histograms(*hist_from)
        results["score_histograms"] = {"scale": "logit", "range": [-LOGIT_RANGE, LOGIT_RANGE],
                                       "bins": len(bad), "bad": bad.tolist(), "good": good.tolist()}
    (out / "results.json").write_text(json.dumps(results))
    return out


@pytest.fixture(scope="session")
def make_run_folder():
    """:func:`write_run_folder`, for tests that need a run folder of their own."""
    return write_run_folder


@pytest.fixture(scope="session")
def german_run_dir(tmp_path_factory: pytest.TempPathFactory, german_table: CreditTable,
                   german_lr: tuple[Preprocessor, CreditModel]) -> Path:
    """A run folder holding the in-process LR (score histograms of all rows included)."""
    prep, model = german_lr
    p = model.predict_proba(prep.transform(german_table))
    return write_run_folder(tmp_path_factory.mktemp("german_run"), prep, model.get_weights(),
                            kind="lr", hist_from=(german_table.y, p))
