"""The bank's tree steps driven in-process by a minimal coordinator (plain sums).

Every exchanged vector goes through the run's summation scheme exactly as in a Flower run, so
the trees must equal the pooled trainer's with the federation's bins; the steps refuse a state
from the future, a tampered state, a level sum from another set of banks and an early finalize.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fedcredit.simulation.trees import same_trees
from federation.data.bank_data import bank_data
from federation.ml.gbdt import HistGBDT
from federation.ml.gbdt.state import StateFormatError
from federation.ml.preprocess import local_schema, local_stats_vector, merge_schemas
from federation.ml.tree_features import tree_categories, tree_matrix, tree_row_ids
from federation.run.config import RunConfig
from federation.steps.secure_sum import KIND_COUNTS, KIND_GRADIENTS, KIND_STATS, PlainSum
from federation.steps.tree_bank import (
    TreeStepError,
    open_tree_context,
    seal_bins,
    tree_finalize,
    tree_level,
    tree_model_of,
)

RUN = "run-trees"


def _with_gaps(source: Path, target: Path) -> Path:
    """german_credit.csv with about 15 % of three columns blanked (numeric and text)."""
    import pandas as pd

    frame = pd.read_csv(source)
    rng = np.random.default_rng(3)
    for col in ("credit_amount", "age_in_years", "purpose"):
        frame.loc[rng.random(len(frame)) < 0.15, col] = None
    frame.to_csv(target, index=False)
    return target


@pytest.fixture(scope="module", params=["as-is", "with-gaps"])
def federation(request: pytest.FixtureRequest, data_dir: Path,
               tmp_path_factory: pytest.TempPathFactory):
    path = data_dir / "german_credit.csv"
    if request.param == "with-gaps":
        path = _with_gaps(path, tmp_path_factory.mktemp("gaps") / "german_gaps.csv")
    cfg = RunConfig(data_path=str(path), target="bad", banks=3,
                    model="gbdt", trees=3, depth=3, bins=16, learning_rate=0.3)
    datas = [bank_data(cfg, b) for b in range(cfg.banks)]
    return cfg, datas, _contexts(cfg, datas)


def _grow(cfg, datas, contexts, banks=None):
    """The coordinator's loop: level requests until no tree grows; returns the last answers."""
    plain, blob, level_sum, seq = PlainSum(), None, None, 0
    banks = banks or [range(len(datas))]
    while True:
        seq += 1
        which = banks[min(seq - 1, len(banks) - 1)]
        replies = [tree_level(cfg, datas[b], contexts[b], run_id=RUN, seq=seq, blob=blob,
                              level_sum=level_sum) for b in which]
        assert len({r.blob for r in replies}) == 1  # every bank computed the same state
        blob = (replies[0].blob, seq)
        level_sum = plain.combine([r.sealed for r in replies], kind=KIND_GRADIENTS, length=None,
                                  run_id=RUN, round=seq)
        if not replies[0].metrics["growing"]:
            return blob, level_sum, seq


def test_in_process_federation_grows_the_pooled_trees(federation) -> None:
    cfg, datas, contexts = federation
    blob, level_sum, seq = _grow(cfg, datas, contexts)
    metrics, release, histograms = tree_finalize(cfg, datas[0], contexts[0], run_id=RUN,
                                                 seq=seq + 1, blob=blob, level_sum=level_sum)
    assert release is not None and histograms is not None
    assert 0.5 < metrics["auc"] <= 1 and metrics["eval-round"] == cfg.trees
    model, edges = tree_model_of(release)
    prep = contexts[0].prep
    X = np.vstack([tree_matrix(d.train, prep) for d in datas])
    y = np.concatenate([d.train.y for d in datas])
    ids = np.concatenate([tree_row_ids(d.train, d.bank) for d in datas])
    pooled = HistGBDT(cfg.gbdt_config(), edges=edges, n_categories=tree_categories(prep)).fit(
        X, y, row_ids=ids).model_
    assert same_trees(model, pooled)
    if "gaps" in cfg.data_path:  # the trees learned where missing values go
        assert any(np.isnan(X).any(axis=0))
        assert any(t.default_left[t.left >= 0].any() for t in model.trees)
    assert sum(int(h.sum()) for h in histograms) == sum(d.test.n_rows for d in datas)
    _assert_calibration_fitted_on(metrics, model, X, y)  # no early stopping: training rows


def test_a_state_from_the_same_or_a_later_request_is_refused(federation) -> None:
    cfg, datas, contexts = federation
    first = tree_level(cfg, datas[0], contexts[0], run_id=RUN, seq=1, blob=None, level_sum=None)
    with pytest.raises(TreeStepError, match="earlier request"):
        tree_level(cfg, datas[0], contexts[0], run_id=RUN, seq=1, blob=(first.blob, 1),
                   level_sum=first.sealed)


def test_a_tampered_state_is_refused(federation) -> None:
    cfg, datas, contexts = federation
    first = tree_level(cfg, datas[0], contexts[0], run_id=RUN, seq=1, blob=None, level_sum=None)
    tampered = first.blob.replace(b'"seq":', b'"seq": ', 1)
    with pytest.raises(StateFormatError):
        tree_level(cfg, datas[0], contexts[0], run_id=RUN, seq=2, blob=(tampered, 1),
                   level_sum=first.sealed)


def test_a_level_sum_of_another_set_of_banks_is_refused(federation) -> None:
    cfg, datas, contexts = federation
    plain = PlainSum()
    one = [tree_level(cfg, d, c, run_id=RUN, seq=1, blob=None, level_sum=None)
           for d, c in zip(datas, contexts, strict=True)]
    root = plain.combine([r.sealed for r in one], kind=KIND_GRADIENTS, length=None, run_id=RUN,
                         round=1)
    two = [tree_level(cfg, d, c, run_id=RUN, seq=2, blob=(one[0].blob, 1), level_sum=root)
           for d, c in zip(datas, contexts, strict=True)]
    assert two[0].metrics["parties"] == 3
    fewer = plain.combine([r.sealed for r in two[:2]], kind=KIND_GRADIENTS, length=None,
                          run_id=RUN, round=2)
    with pytest.raises(TreeStepError, match="fixed"):
        tree_level(cfg, datas[0], contexts[0], run_id=RUN, seq=3, blob=(two[0].blob, 2),
                   level_sum=fewer)


def test_finalize_before_the_last_tree_is_refused(federation) -> None:
    cfg, datas, contexts = federation
    first = tree_level(cfg, datas[0], contexts[0], run_id=RUN, seq=1, blob=None, level_sum=None)
    with pytest.raises(TreeStepError, match="finalize came after 0 of 3 trees"):
        tree_finalize(cfg, datas[0], contexts[0], run_id=RUN, seq=2, blob=(first.blob, 1),
                      level_sum=first.sealed)


def test_a_bank_sitting_out_a_tree_still_follows_the_model(federation) -> None:
    cfg, datas, contexts = federation
    one_tree = replace(cfg, trees=1)
    blob, level_sum, seq = _grow(one_tree, datas, contexts, banks=[[0, 1], [0, 1], [0, 1]])
    # bank 2 took no part but opens the same sums into the same model as the others
    outs = [tree_finalize(one_tree, d, c, run_id=RUN, seq=seq + 1, blob=blob,
                          level_sum=level_sum) for d, c in zip(datas, contexts, strict=True)]
    assert len({o[1].model_json for o in outs}) == 1


def _contexts(cfg: RunConfig, datas):
    layout = merge_schemas([local_schema(d.train) for d in datas])
    plain = PlainSum()
    stats = plain.combine([plain.seal(local_stats_vector(d.train, layout), kind=KIND_STATS,
                                      run_id=RUN, round=0) for d in datas],
                          kind=KIND_STATS, length=None, run_id=RUN, round=0)
    bins = plain.combine([seal_bins(cfg, d, layout, stats, run_id=RUN) for d in datas],
                         kind=KIND_COUNTS, length=None, run_id=RUN, round=0)
    return [open_tree_context(cfg, d.bank, layout, stats, bins, run_id=RUN) for d in datas]


@pytest.mark.parametrize("metric", ["auc", "logloss"])
def test_early_stopping_stops_where_the_pooled_trainer_stops(data_dir: Path, metric: str) -> None:
    from federation.ml.tree_features import validation_rows

    cfg = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=3,
                    model="gbdt", trees=40, depth=4, bins=16, learning_rate=0.5,
                    early_stopping_rounds=3, early_stopping_metric=metric)
    datas = [bank_data(cfg, b) for b in range(cfg.banks)]
    contexts = _contexts(cfg, datas)
    blob, level_sum, seq = _grow(cfg, datas, contexts)
    metrics, release, _ = tree_finalize(cfg, datas[0], contexts[0], run_id=RUN, seq=seq + 1,
                                        blob=blob, level_sum=level_sum)
    assert release is not None and metrics["eval-round"] < cfg.trees
    model, edges = tree_model_of(release)
    assert len(model.trees) == metrics["eval-round"]  # the final AUC scores the kept trees
    prep = contexts[0].prep
    X = np.vstack([tree_matrix(d.train, prep) for d in datas])
    y = np.concatenate([d.train.y for d in datas])
    ids = np.concatenate([tree_row_ids(d.train, d.bank) for d in datas])
    held = validation_rows(ids, cfg.seed)
    assert 0.05 < held.mean() < 0.15
    pooled = HistGBDT(cfg.gbdt_config(), edges=edges, n_categories=tree_categories(prep))
    pooled.fit(X[~held], y[~held], row_ids=ids[~held], eval_set=(X[held], y[held]))
    assert same_trees(model, pooled.model_)
    assert len(pooled.validation_loss_) > len(model.trees)  # it grew past the best and cut back
    _assert_calibration_fitted_on(metrics, model, X[held], y[held])  # the kept trees' map


def _assert_calibration_fitted_on(metrics, model, X, y) -> None:
    """Every bank reports the Platt map of the released model's scores on these pooled rows."""
    from federation.ml.calibration import fit_platt
    from federation.ml.metrics import score_histograms

    expected = fit_platt(*score_histograms(y, 1 / (1 + np.exp(-model.predict_margin(X)))))
    assert metrics["cal-rows"] == len(y)
    assert metrics["cal-slope"] == pytest.approx(expected.slope, abs=1e-9)
    assert metrics["cal-intercept"] == pytest.approx(expected.intercept, abs=1e-9)


def test_early_stopping_is_refused_where_it_cannot_work() -> None:
    from federation.errors import ConfigError

    with pytest.raises(ConfigError, match="early-stopping-rounds"):
        RunConfig(model="lr", early_stopping_rounds=3)
    with pytest.raises(ConfigError, match="gradient-bits >= 20"):
        RunConfig(model="gbdt", early_stopping_rounds=3, early_stopping_metric="logloss",
                  gradient_bits=16)
    RunConfig(model="gbdt", early_stopping_rounds=3, gradient_bits=16)  # AUC: integer counts
    with pytest.raises(ConfigError, match="'--early-stopping-metric'"):
        RunConfig(model="gbdt", early_stopping_rounds=3, early_stopping_metric="gini")
    with pytest.raises(ConfigError, match="early-stopping-rounds"):
        RunConfig(model="gbdt", early_stopping_rounds=-1)
