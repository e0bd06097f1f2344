"""Where should a horizontal run fit its calibration map? A study, not a benchmark (issue 13).

Compares, over several seeds, two ways to fit the Platt map of a horizontal LR/MLP run:

* ``train``: on the summed histograms of the banks' training rows (what runs do today);
* ``fold``: each bank keeps a stratified fold of its training rows out of training
  (``--fold``, default 20 %) and the map is fitted on the folds' summed histograms.

For each it prints the gap ``mean calibrated PD - observed default rate`` on the union of the
banks' test rows, the Brier score and the AUC. FedAvg runs in-process (the same
``train_round`` the banks run, weighted by rows), so no Flower or Ray is needed; the map is
never fitted on test rows. Usage::

    .venv/bin/python scripts/calibration_fold_study.py german --seeds 0,1,2,3,4
    .venv/bin/python scripts/calibration_fold_study.py uci --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from federation.data.bank_data import bank_data
from federation.data.partition import train_test_split_rows
from federation.data.table import CreditTable
from federation.ml.calibration import check_calibration, fit_platt
from federation.ml.metrics import roc_auc, score_histograms
from federation.ml.models import CreditModel
from federation.ml.preprocess import Preprocessor, pooled_preprocessor
from federation.ml.training import make_model, train_round
from federation.run.config import RunConfig

TARGETS = {"german": "bad", "uci": "default_next_month"}


@dataclass(frozen=True)
class Outcome:
    """One fitting choice on one seed, measured on the test rows."""

    gap: float
    brier: float
    auc: float
    slope: float


def fedavg(cfg: RunConfig, prep: Preprocessor, trains: list[CreditTable]) -> CreditModel:
    """The federated model: every bank trains each round, weights averaged by rows."""
    weights = make_model(cfg, prep.n_features).get_weights()
    total = sum(t.n_rows for t in trains)
    for r in range(cfg.rounds):
        updates = [train_round(cfg, prep, t, weights, round_index=r, bank=b)
                   for b, t in enumerate(trains)]
        weights = [np.sum([w[i] * n / total for w, n in updates], axis=0)
                   for i in range(len(weights))]
    return make_model(cfg, prep.n_features).set_weights(weights)


def histograms(model: CreditModel, prep: Preprocessor,
               tables: list[CreditTable]) -> tuple[np.ndarray, np.ndarray]:
    """Summed per-class score histograms of ``tables`` (what the banks would seal)."""
    parts = [score_histograms(t.y, model.predict_proba(prep.transform(t))) for t in tables]
    return np.sum([p[0] for p in parts], axis=0), np.sum([p[1] for p in parts], axis=0)


def measure(model: CreditModel, prep: Preprocessor, fit_on: list[CreditTable],
            tests: list[CreditTable]) -> Outcome:
    """Fit the map on ``fit_on``'s histograms; measure it on ``tests``."""
    pd_map = fit_platt(*histograms(model, prep, fit_on))
    check = check_calibration(pd_map, *histograms(model, prep, tests))
    y = np.concatenate([t.y for t in tests])
    p = np.concatenate([model.predict_proba(prep.transform(t)) for t in tests])
    return Outcome(check.mean_pd - check.observed_rate, check.brier, roc_auc(y, p), pd_map.slope)


def study_config(data: str, seed: int, *, banks: int = 3, rounds: int = 10,
                 model: str = "lr") -> RunConfig:
    """One seeded split of ``data`` (``german`` or ``uci``) over ``banks`` banks."""
    return RunConfig(data_path=data, target=TARGETS[data], banks=banks, rounds=rounds,
                     model=model, seed=seed)


def fitted_on_train(cfg: RunConfig) -> tuple[Outcome, list[CreditTable], list[CreditTable]]:
    """The ``train`` outcome of ``cfg``'s split, with the banks' training and test tables."""
    datas = [bank_data(cfg, b) for b in range(cfg.banks)]
    trains, tests = [d.train for d in datas], [d.test for d in datas]
    prep = pooled_preprocessor(trains)
    return measure(fedavg(cfg, prep, trains), prep, trains, tests), trains, tests


def one_seed(cfg: RunConfig, fold: float) -> tuple[Outcome, Outcome]:
    """(``train``, ``fold``) outcomes of one seed."""
    on_train, trains, tests = fitted_on_train(cfg)
    fits, folds = [], []
    for b, t in enumerate(trains):
        kept, held = train_test_split_rows(np.arange(t.n_rows), t.y, test_fraction=fold,
                                           seed=cfg.seed * 31 + b + 17)
        fits.append(t.subset(kept))
        folds.append(t.subset(held))
    fold_prep = pooled_preprocessor(fits)
    return on_train, measure(fedavg(cfg, fold_prep, fits), fold_prep, folds, tests)


def train_fit_gaps(data: str, seeds: list[int], *, banks: int = 3, rounds: int = 10,
                   model: str = "lr") -> np.ndarray:
    """Signed gaps (mean calibrated PD - observed rate on the test rows) of the map fitted on
    the training rows, one per seeded split: their mean is the calibration's bias, their
    spread the sampling noise of one split's test rows."""
    return np.asarray([fitted_on_train(study_config(data, seed, banks=banks, rounds=rounds,
                                                    model=model))[0].gap for seed in seeds])


def main() -> None:
    """Print one line per seed and a summary (mean and max |gap|) per fitting choice."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data", choices=sorted(TARGETS))
    parser.add_argument("--banks", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--model", default="lr")
    parser.add_argument("--fold", type=float, default=0.2)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    gaps: dict[str, list[float]] = {"train": [], "fold": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = study_config(args.data, seed, banks=args.banks, rounds=args.rounds,
                           model=args.model)
        outcomes = dict(zip(("train", "fold"), one_seed(cfg, args.fold), strict=True))
        print(f"seed {seed}: " + " | ".join(
            f"{k}: gap {o.gap:+.4f} brier {o.brier:.4f} auc {o.auc:.4f} slope {o.slope:.3f}"
            for k, o in outcomes.items()), flush=True)
        for k, o in outcomes.items():
            gaps[k].append(o.gap)
    for k, values in gaps.items():
        signed = np.asarray(values)
        se = signed.std(ddof=1) / np.sqrt(len(signed)) if len(signed) > 1 else float("nan")
        print(f"{k}: mean |gap| {np.mean(np.abs(signed)):.4f}, max |gap| "
              f"{np.max(np.abs(signed)):.4f}; bias (mean signed gap) {signed.mean():+.4f} "
              f"+- {se:.4f} (1 SE over {len(signed)} splits), spread (SD) {signed.std(ddof=1):.4f}")


if __name__ == "__main__":
    main()
