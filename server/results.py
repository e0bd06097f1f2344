"""Run folder output of the coordinator: its part of results.json, the global model and its
preprocessing (the format of results.json is :mod:`federation.run.results`)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from federation.ml.metrics import LOGIT_RANGE
from federation.run.config import RunConfig
from federation.run.folder import RunFolder, atomic_write_text
from federation.run.identity import run_identity
from federation.run.results import (
    BankPrivacy,
    HorizontalResults,
    Metrics,
    RoundEntry,
    ScoreCounts,
    ScoreHistograms,
    TreeSummary,
)
from federation.steps.tree_bank import tree_model_of
from server.calibration import calibration_section
from server.run_state import FederatedResult


def coordinator_results(cfg: RunConfig, result: FederatedResult) -> HorizontalResults:
    """What the coordinator knows: the run's settings, the final-round federated AUC/KS, the
    per-round history and the summed score histograms (no baselines: it holds no data)."""
    last = result.final
    return HorizontalResults(
        dataset=cfg.data_path, banks=cfg.banks, rounds=cfg.rounds_planned, model=cfg.model,
        aggregation=cfg.aggregation, partition=cfg.partition, seed=cfg.seed,
        federated=Metrics(auc=last.auc if last else None, ks=last.ks if last else None),
        history=tuple(RoundEntry(round=h.round, auc=h.auc, ks=h.ks, seconds=h.seconds,
                                 banks=h.banks, sampled=h.sampled or None,
                                 trained=h.trained or None, evaluated=h.evaluated or None)
                      for h in result.history),
        score_histograms=histogram_section(result.histograms),
        training_scores=training_scores_section(result.training_scores),
        calibration=calibration_section(result.calibration, result.histograms),
        dropouts=tuple(result.dropouts), privacy=privacy_section(cfg, result),
        trees=tree_summary(cfg, result), config=cfg.to_user_config())


def training_scores_section(counts: Any) -> ScoreCounts | None:
    """The summed training-score counts the banks released (None without)."""
    if counts is None:
        return None
    return ScoreCounts.from_counts(counts, logit_range=LOGIT_RANGE)


def privacy_section(cfg: RunConfig, result: FederatedResult) -> tuple[BankPrivacy, ...] | None:
    """Each bank's DP guarantee under ``dp-epsilon`` (None without): the plan every bank
    computes from the run settings and its reported training rows (the accountant is public;
    row counts are reported in the clear, which DP does not cover)."""
    if cfg.dp_epsilon <= 0 or not result.train_rows:
        return None
    from federation.ml.training import bank_privacy  # the accountant; torch loads only here

    return tuple(bank_privacy(cfg, bank, rows) for bank, rows in sorted(result.train_rows.items()))


def tree_summary(cfg: RunConfig, result: FederatedResult) -> TreeSummary | None:
    """The boosted-tree section: settings, model files and the split gain per feature."""
    if cfg.model != "gbdt":
        return None
    folder, release = RunFolder(Path(cfg.out)), result.tree_release
    gain, kept = None, (result.trees_kept or None)
    if release is not None:
        model, _ = tree_model_of(release)
        kept = len(model.trees)
        totals = np.zeros(model.n_features)
        for tree in model.trees:
            inner = tree.left >= 0
            np.add.at(totals, tree.feature[inner], tree.gain[inner])
        gain = {name: float(v) for name, v in zip(release.features, totals, strict=True)}
    return TreeSummary(trees=cfg.trees, depth=cfg.depth, bins=cfg.bins,
                       learning_rate=cfg.learning_rate,
                       early_stopping_rounds=cfg.early_stopping_rounds,
                       early_stopping_metric=(cfg.early_stopping_metric
                                              if cfg.early_stopping_rounds else None),
                       trees_kept=kept,
                       model_file=str(folder.tree_model) if release else None,
                       xgboost_file=str(folder.xgboost_model) if release else None, gain=gain)


def histogram_section(histograms: tuple[Any, Any] | None) -> ScoreHistograms | None:
    """Summed per-class test-score histograms (logit bins), as results.json stores them."""
    if histograms is None:
        return None
    bad, good = histograms
    return ScoreHistograms.from_counts(bad, good, logit_range=LOGIT_RANGE)


def save_model(out: Path, result: FederatedResult) -> None:
    """Global weights (``model.npz``) and the shared preprocessing (``preprocessor.json``);
    for boosted trees the trees (``model.json``, ``model.xgboost.json``) and ``bins.json``."""
    folder = RunFolder(out)
    out.mkdir(parents=True, exist_ok=True)
    if result.tree_release is not None:
        model, _ = tree_model_of(result.tree_release)
        atomic_write_text(folder.tree_model, result.tree_release.model_json)
        atomic_write_text(folder.tree_bins, result.tree_release.edges_json)
        atomic_write_text(folder.xgboost_model, model.to_xgboost_json())
        atomic_write_text(folder.preprocessor, result.tree_release.preprocessor_json)
        return
    tmp = folder.model.with_suffix(".tmp.npz")
    np.savez(tmp, *result.weights)
    os.replace(tmp, folder.model)
    if result.preprocessor is not None:
        atomic_write_text(folder.preprocessor, result.preprocessor.to_json())


def write_federated_only(cfg: RunConfig, result: FederatedResult, *,
                         started: datetime | None = None) -> Path:
    """What a deployment coordinator can write: no baselines (it holds no data), and the run
    identity it knows (release, times, run id; never a bank's data hash) when given when its
    part of the run ``started``."""
    out = Path(cfg.out)
    save_model(out, result)
    results = coordinator_results(cfg, result)
    if started is not None:
        results = replace(results, identity=run_identity(run_id=result.run_id, started=started))
    return results.write(RunFolder(out).results)
