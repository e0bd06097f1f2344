#!/usr/bin/env python3
"""Federated histogram boosted trees (``fedcredit simulate --model gbdt``), plain vs Paillier.

In one invocation, on the same data, split, seed and tree settings:

1. the federated trees with ``aggregation="plain"`` through Flower's simulation
   (:func:`fedcredit.simulation.horizontal.simulate`): wall seconds, seconds per tree
   (``federated_seconds / trees`` and the mean of the per-tree ``history`` seconds), federated
   AUC/KS and the lossless check ``same_trees_as_centralized``;
2. the same with ``aggregation="paillier"`` (fresh 2048-bit key ceremony in ``OUT/keys``,
   included in the time): wall, per tree, AUC, the wall ratio to plain, the AUC difference
   and whether the released ``model.json`` texts are equal;
3. pooled baselines on the same split and rows (union of the banks' training rows, AUC on
   the union of their test rows): our ``HistGBDT`` (``results.centralized``), scikit-learn's
   ``HistGradientBoostingClassifier`` and XGBoost (``tree_method="hist"``);
4. the best and mean local-only AUC (each bank's own trees, ``results.local_only``);
5. each party's own work per tree (``party_work``): the same bank steps and coordinator sums
   replayed in this process for ``--party-trees`` trees with the run's keys, timing bank 0's
   steps (open, decide, histograms, seal) and the coordinator's combination separately.

Every party of the simulation runs on this one machine (its 5 banks share the cores), so the
simulation's wall times are *everything on one box*. In a deployment each bank works on its
own machine at the same time, so a tree costs one bank's work plus the coordinator's plus the
message relay: ``deployed_estimate_s_per_tree`` is the plain simulation's measured time per tree
(relay and plain work, all on this box) plus Paillier's extra party work per tree.

Example::

    python scripts/bench_gbdt.py --json runs/bench_gbdt.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fedcredit.simulation.horizontal import simulate
from federation.data.bank_data import bank_data
from federation.ml.metrics import roc_auc
from federation.ml.preprocess import pooled_preprocessor
from federation.ml.tree_features import tree_categories, tree_matrix
from federation.run.config import DEFAULT_DATA, DEFAULT_TARGET, RunConfig
from federation.run.folder import RunFolder
from federation.run.results import HorizontalResults

AUC_TARGET = 0.770
LOCAL_MARGIN = 0.01
AUC_TOLERANCE = 0.001
WALL_RATIO_TARGET = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="credit CSV (default: UCI default)")
    parser.add_argument("--target", default=DEFAULT_TARGET, help="0/1 target column")
    parser.add_argument("--banks", type=int, default=5, help="number of banks")
    parser.add_argument("--trees", type=int, default=100, help="boosting rounds")
    parser.add_argument("--depth", type=int, default=4, help="levels of splits per tree")
    parser.add_argument("--bins", type=int, default=32, help="bins per numeric feature")
    parser.add_argument("--learning-rate", type=float, default=0.1, help="shrinkage (eta)")
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument("--eval-every", type=int, default=RunConfig().eval_every,
                        help="federated test AUC after every N-th tree and for the final model "
                             "(the run's default; 1: after every tree)")
    parser.add_argument("--skip-paillier", action="store_true", help="plain run only")
    parser.add_argument("--party-trees", type=int, default=10,
                        help="trees of the in-process replay timing each party's own work")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    return parser.parse_args(argv)


def run_mode(args: argparse.Namespace, mode: str, out: Path) -> dict[str, Any]:
    cfg = RunConfig(data_path=args.data, target=args.target, banks=args.banks, model="gbdt",
                    trees=args.trees, depth=args.depth, bins=args.bins,
                    learning_rate=args.learning_rate, seed=args.seed, aggregation=mode,
                    eval_every=args.eval_every, out=str(out))

    def on_round(rec: Any) -> None:
        if rec.round % 10 == 0 or rec.round == args.trees:
            print(f"  {mode} tree {rec.round}/{args.trees}: auc {rec.auc:.4f}, "
                  f"{rec.seconds:.2f} s", flush=True)

    print(f"{mode}: simulating {args.trees} trees on {args.banks} banks", flush=True)
    res: HorizontalResults = simulate(cfg, on_round=on_round,
                                      on_phase=lambda p: print(f"  {mode}: {p}", flush=True))
    assert res.federated and res.trees and res.wall_seconds and res.federated_seconds
    history = [h.seconds for h in res.history or ()]
    return {
        "auc": res.federated.auc, "ks": res.federated.ks,
        "wall_s": res.wall_seconds, "federated_s": res.federated_seconds,
        "s_per_tree": res.federated_seconds / args.trees,
        "s_per_tree_history": float(np.mean(history)) if history else None,
        "same_trees_as_centralized": res.trees.same_trees_as_centralized,
        "max_prediction_gap": res.trees.max_prediction_gap,
        "centralized_auc": res.centralized.auc if res.centralized else None,
        "local_only": [b.auc for b in res.local_only.per_bank] if res.local_only else [],
        "model_json": RunFolder(out).tree_model.read_text(encoding="utf-8"),
    }


def party_work(args: argparse.Namespace, mode: str, keys_dir: str) -> dict[str, Any]:
    """Bank 0's and the coordinator's own seconds per tree, replaying the run's steps here."""
    from federation.ml.preprocess import local_schema, local_stats_vector, merge_schemas
    from federation.steps.secure_sum import (
        KIND_COUNTS,
        KIND_GRADIENTS,
        KIND_STATS,
        bank_summation,
        coordinator_summation,
    )
    from federation.steps.tree_bank import open_tree_context, seal_bins, tree_level

    run = f"bench-{mode}"
    cfg = RunConfig(data_path=args.data, target=args.target, banks=args.banks, model="gbdt",
                    trees=args.party_trees, depth=args.depth, bins=args.bins,
                    learning_rate=args.learning_rate, seed=args.seed, aggregation=mode,
                    eval_every=args.eval_every, keys_dir=keys_dir if mode == "paillier" else "")
    datas = [bank_data(cfg, b) for b in range(cfg.banks)]
    layout = merge_schemas([local_schema(d.train) for d in datas])
    coordinator = coordinator_summation(cfg)
    combine_s = 0.0

    def combine(sealed: list[Any], kind: str, rnd: int) -> Any:
        nonlocal combine_s
        started = time.perf_counter()
        out = coordinator.combine(sealed, kind=kind, length=None, run_id=run, round=rnd)
        combine_s += time.perf_counter() - started
        return out

    stats = combine([bank_summation(cfg, d.bank).seal(local_stats_vector(d.train, layout),
                                                      kind=KIND_STATS, run_id=run, round=0)
                     for d in datas], KIND_STATS, 0)
    bins = combine([seal_bins(cfg, d, layout, stats, run_id=run) for d in datas], KIND_COUNTS, 0)
    contexts = [open_tree_context(cfg, d.bank, layout, stats, bins, run_id=run) for d in datas]
    combine_s, bank_s, bank_cpu, values = 0.0, 0.0, 0.0, 0
    blob, level_sum, seq = None, None, 0
    while True:
        seq += 1
        replies = []
        for d, ctx in zip(datas, contexts, strict=True):
            wall, cpu = time.perf_counter(), time.process_time()
            replies.append(tree_level(cfg, d, ctx, run_id=run, seq=seq, blob=blob,
                                      level_sum=level_sum))
            if d.bank == 0:
                bank_s += time.perf_counter() - wall
                bank_cpu += time.process_time() - cpu
        blob = (replies[0].blob, seq)
        values += replies[0].sealed.length
        level_sum = combine([r.sealed for r in replies], KIND_GRADIENTS, seq)
        if not replies[0].metrics["growing"]:
            break
    trees = args.party_trees
    return {"trees": trees, "messages_per_tree": seq / trees,
            "sealed_values_per_tree": values / trees,
            "bank_s_per_tree": bank_s / trees, "bank_cpu_s_per_tree": bank_cpu / trees,
            "coordinator_s_per_tree": combine_s / trees,
            "critical_path_s_per_tree": (bank_s + combine_s) / trees}


def pooled_rows(args: argparse.Namespace) -> tuple[NDArray[np.float64], NDArray[np.int64],
                                                   NDArray[np.float64], NDArray[np.int64],
                                                   tuple[int, ...]]:
    cfg = RunConfig(data_path=args.data, target=args.target, banks=args.banks, seed=args.seed)
    datas = [bank_data(cfg, b) for b in range(args.banks)]
    prep = pooled_preprocessor([d.train for d in datas])
    X = np.vstack([tree_matrix(d.train, prep) for d in datas])
    y = np.concatenate([d.train.y for d in datas]).astype(np.int64)
    Xt = np.vstack([tree_matrix(d.test, prep) for d in datas])
    yt = np.concatenate([d.test.y for d in datas]).astype(np.int64)
    return X, y, Xt, yt, tree_categories(prep)


def library_baselines(args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
    from xgboost import XGBClassifier

    X, y, Xt, yt, cats = pooled_rows(args)
    is_cat = [c > 0 for c in cats]
    t0 = time.perf_counter()
    sk = HistGradientBoostingClassifier(
        max_iter=args.trees, learning_rate=args.learning_rate, max_depth=args.depth,
        max_leaf_nodes=None, max_bins=args.bins, l2_regularization=1.0,
        categorical_features=is_cat if any(is_cat) else None, early_stopping=False,
        random_state=args.seed).fit(X, y)
    sk_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    xgb = XGBClassifier(
        tree_method="hist", max_depth=args.depth, max_bin=args.bins,
        learning_rate=args.learning_rate, reg_lambda=1.0, min_child_weight=1.0,
        n_estimators=args.trees, n_jobs=2, random_state=args.seed,
        feature_types=["c" if c else "q" for c in is_cat], enable_categorical=True).fit(X, y)
    xgb_s = time.perf_counter() - t0
    return {"rows_train": int(len(y)), "rows_test": int(len(yt)),
            "categorical_columns": int(sum(is_cat)),
            "sklearn_auc": roc_auc(yt, sk.predict_proba(Xt)[:, 1]), "sklearn_s": sk_s,
            "xgboost_auc": roc_auc(yt, xgb.predict_proba(Xt)[:, 1]), "xgboost_s": xgb_s}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = shlex.join([sys.executable, *sys.argv])
    row: dict[str, Any] = {"command": command, "data": args.data, "banks": args.banks,
                           "trees": args.trees, "depth": args.depth, "bins": args.bins,
                           "learning_rate": args.learning_rate, "seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        plain = run_mode(args, "plain", Path(tmp) / "plain")
        enc = None if args.skip_paillier else run_mode(args, "paillier", Path(tmp) / "paillier")
        print(f"party work: replaying {args.party_trees} trees in this process", flush=True)
        work = {"plain": party_work(args, "plain", "")}
        if enc is not None:
            work["paillier"] = party_work(args, "paillier", str(Path(tmp) / "paillier" / "keys"))
    row["party_work"] = work
    local = [a for a in plain.pop("local_only") if a is not None]
    row["centralized_histgbdt_auc"] = plain.pop("centralized_auc")
    row["local_only_best_auc"] = max(local)
    row["local_only_mean_auc"] = float(np.mean(local))
    plain_model = plain.pop("model_json")
    row["plain"] = plain
    if enc is not None:
        enc_model = enc.pop("model_json")
        for key in ("local_only", "centralized_auc"):
            enc.pop(key)
        row["paillier"] = enc
        row["paillier_model_equals_plain"] = enc_model == plain_model
        row["auc_diff"] = abs(enc["auc"] - plain["auc"])
        row["wall_ratio"] = enc["wall_s"] / plain["wall_s"]
        row["federated_ratio"] = enc["federated_s"] / plain["federated_s"]
        relay = plain["s_per_tree_history"] or plain["s_per_tree"]
        extra = (work["paillier"]["critical_path_s_per_tree"]
                 - work["plain"]["critical_path_s_per_tree"])
        row["deployed_estimate_s_per_tree"] = {"plain": relay, "paillier": relay + extra}
        row["deployed_estimate_ratio"] = (relay + extra) / relay
    row.update(library_baselines(args))
    checks = {
        f"federated AUC >= {AUC_TARGET}": plain["auc"] >= AUC_TARGET,
        f"federated AUC >= best local-only + {LOCAL_MARGIN}":
            plain["auc"] >= row["local_only_best_auc"] + LOCAL_MARGIN,
    }
    if enc is not None:
        checks[f"|paillier - plain AUC| <= {AUC_TOLERANCE}"] = row["auc_diff"] <= AUC_TOLERANCE
        checks[f"paillier wall <= {WALL_RATIO_TARGET}x plain (all parties on this box)"] = (
            row["wall_ratio"] <= WALL_RATIO_TARGET)
        checks[f"paillier <= {WALL_RATIO_TARGET}x plain per tree (deployed estimate)"] = (
            row["deployed_estimate_ratio"] <= WALL_RATIO_TARGET)
    row["checks"] = checks
    print("command:", command)
    for key, value in row.items():
        if key in ("command", "checks"):
            continue
        print(f"{key:>28}: {json.dumps(value) if isinstance(value, dict) else value}")
    for name, ok in checks.items():
        print(f"  [{'met' if ok else 'MISSED'}] {name}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
