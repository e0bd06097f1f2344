"""Benchmark differential privacy: federated AUC against epsilon (issue 16).

One run per epsilon (default 0.5, 1, 3, 8 and inf = the non-private run) of the horizontal
federation in Flower's simulation engine, same data, split, seed and settings (UCI default,
5 iid banks, 10 rounds, LR unless given), plain summation. For each run:

* ``auc``: the exact AUC of the final federated model on the union of the banks' test rows,
  computed here from the released model (the researcher's process; no bank does this);
* ``histogram_auc``: the AUC the run itself reports (from the summed score histograms, which
  under DP are grouped, noised and denoised: what the coordinator and the banks see);
* ``auc_cost``: the non-private run's ``auc`` minus this run's;
* ``privacy``: the largest per-bank epsilon the accountant gives, the delta, and the noise
  multipliers (DP-SGD, one-off releases, histograms) of bank 0.

``--model gbdt`` runs the boosted trees instead (:mod:`federation.ml.dp.trees`: noised bin
counts, level histograms and score histograms), with the tree settings ``--trees``,
``--depth``, ``--bins`` and ``--learning-rate`` for every epsilon, the non-private run
included; ``auc`` is then the released trees' exact AUC, ``z`` the level histograms' noise
multiplier and ``steps`` the level releases. ``--default-trees`` adds one non-private run
with the project's default tree settings (the best non-private trees, for the cost against
them).

Writes ``--json`` and a plot (``--plot``, PNG). Examples::

    .venv/bin/python scripts/bench_dp.py --json runs/bench_dp.json --plot benchmarks/dp_auc_vs_epsilon.png
    .venv/bin/python scripts/bench_dp.py --model gbdt --epsilons 1 3 8 inf --default-trees \
        --json runs/bench_dp_gbdt.json --plot benchmarks/dp_gbdt_auc_vs_epsilon.png
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from fedcredit.simulation.horizontal import fresh_run_folder, privacy_plans, run_federation
from federation.data.bank_data import bank_data
from federation.ml.training import auc_ks, make_model
from federation.run.config import RunConfig

EPSILONS = (0.5, 1.0, 3.0, 8.0, math.inf)
TREE_SETTINGS: dict[str, Any] = {"trees": 20, "depth": 1, "bins": 8, "learning_rate": 0.5}
"""``--model gbdt`` under DP: stumps (depth 1) with coarse bins and a large learning rate: each
level is a release that costs budget, and a root's sums are the largest, so the least drowned
by the noise (on UCI at epsilon 3 they beat 10 trees of depth 2, benchmarks/RESULTS.md)."""
RETRIES = 2


def one_run(cfg: RunConfig) -> dict[str, Any]:
    """Run the federation once; the exact and the reported AUC, the privacy, the time."""
    started = time.perf_counter()
    datas = [bank_data(cfg, b) for b in range(cfg.banks)]
    privacy = privacy_plans(cfg, [d.train.n_rows for d in datas])
    for attempt in range(RETRIES + 1):  # Ray's start-up can time out on a loaded box
        try:
            result = run_federation(fresh_run_folder(cfg, lambda _: None))
            break
        except RuntimeError as exc:
            if attempt == RETRIES:
                raise
            print(f"simulation runtime failed ({exc}); retrying", file=sys.stderr, flush=True)
            cfg = replace(cfg, out=f"{cfg.out}-retry{attempt + 1}", keys_dir="")
    seconds = time.perf_counter() - started
    exact = exact_metrics(cfg, result, datas)
    last = result.history[-1] if result.history else None
    row: dict[str, Any] = {
        "epsilon": cfg.dp_epsilon or "inf", "auc": exact["auc"], "ks": exact["ks"],
        "histogram_auc": last.auc if last else None, "seconds": round(seconds, 1)}
    if privacy:
        first = privacy[0]
        row["privacy"] = {"max_epsilon": max(p.epsilon for p in privacy), "delta": first.delta,
                          "noise_multiplier": first.noise_multiplier,
                          "release_noise_multiplier": first.release_noise_multiplier,
                          "histogram_noise_multiplier": first.histogram_noise_multiplier,
                          "sampling_rate": first.sampling_rate, "steps": first.steps,
                          "clip": first.clip, "accountant": first.accountant}
    return row


def exact_metrics(cfg: RunConfig, result: Any, datas: list[Any]) -> dict[str, float]:
    """AUC/KS of the released model (LR/MLP weights, or the trees) on the banks' test rows."""
    if cfg.model == "gbdt":
        return _tree_metrics(result, datas)
    if result.preprocessor is None:
        raise RuntimeError("the run released no model; the benchmark needs release-model")
    model = make_model(cfg, result.preprocessor.n_features).set_weights(result.weights)
    return auc_ks(model, result.preprocessor, [d.test for d in datas])


def _tree_metrics(result: Any, datas: list[Any]) -> dict[str, float]:
    import numpy as np

    from federation.ml.metrics import ks_statistic, roc_auc
    from federation.ml.preprocess import Preprocessor
    from federation.ml.tree_features import tree_matrix
    from federation.steps.tree_bank import tree_model_of

    if result.tree_release is None:
        raise RuntimeError("the run released no trees; the benchmark needs release-model")
    model, _ = tree_model_of(result.tree_release)
    prep = Preprocessor.from_json(result.tree_release.preprocessor_json)
    X = np.vstack([tree_matrix(d.test, prep) for d in datas])
    y = np.concatenate([d.test.y for d in datas])
    p = model.predict_proba(X)
    return {"auc": roc_auc(y, p), "ks": ks_statistic(y, p)}


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """AUC (exact and as reported from the noisy histograms) against epsilon, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    private = [r for r in rows if r["epsilon"] != "inf"]
    base = next((r for r in rows if r["epsilon"] == "inf"), None)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    eps = [r["epsilon"] for r in private]
    ax.plot(eps, [r["auc"] for r in private], "o-", label="exact AUC of the DP model")
    ax.plot(eps, [r["histogram_auc"] for r in private], "s--", alpha=0.7,
            label="AUC the run reports (noised histograms)")
    if base is not None:
        ax.axhline(base["auc"], color="grey", linestyle=":", label="non-private run")
        ax.axhspan(base["auc"] - 0.02, base["auc"], color="grey", alpha=0.12,
                   label="within 0.02 of it")
    ax.set_xscale("log")
    ax.set_xticks(eps, [f"{e:g}" for e in eps])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("epsilon per bank (delta as in the table)")
    ax.set_ylabel("AUC, union of the banks' test rows")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Parse options, run every epsilon, write JSON (and the plot)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="Write the results here.")
    parser.add_argument("--plot", type=Path, help="Write the AUC-vs-epsilon PNG here.")
    parser.add_argument("--epsilons", type=float, nargs="+", default=list(EPSILONS),
                        help="Epsilons to run (inf = the non-private run).")
    parser.add_argument("--data", default="uci")
    parser.add_argument("--banks", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--model", default="lr")
    parser.add_argument("--delta", type=float, default=1e-5, help="0 = 1 / (10 x rows).")
    parser.add_argument("--clip", type=float, default=RunConfig().dp_clip)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trees", type=int, default=TREE_SETTINGS["trees"])
    parser.add_argument("--depth", type=int, default=TREE_SETTINGS["depth"])
    parser.add_argument("--bins", type=int, default=TREE_SETTINGS["bins"])
    parser.add_argument("--learning-rate", type=float, default=TREE_SETTINGS["learning_rate"])
    parser.add_argument("--default-trees", action="store_true",
                        help="gbdt: also one non-private run with the default tree settings.")
    args = parser.parse_args(argv)
    trees = ({"trees": args.trees, "depth": args.depth, "bins": args.bins,
              "learning_rate": args.learning_rate} if args.model == "gbdt" else {})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for eps in args.epsilons:
            cfg = RunConfig(data_path=args.data, banks=args.banks, rounds=args.rounds,
                            model=args.model, seed=args.seed, out=str(Path(tmp) / f"eps-{eps}"),
                            dp_epsilon=0.0 if math.isinf(eps) else eps, dp_delta=args.delta,
                            dp_clip=args.clip, **trees)
            row = one_run(replace(cfg))
            rows.append(row)
            print(json.dumps(row), flush=True)
        default_trees = None
        if args.model == "gbdt" and args.default_trees:
            default_trees = one_run(RunConfig(data_path=args.data, banks=args.banks,
                                              model="gbdt", seed=args.seed,
                                              out=str(Path(tmp) / "default-trees")))
            print(json.dumps({"default_trees": default_trees}), flush=True)
    base = next((r["auc"] for r in rows if r["epsilon"] == "inf"), None)
    for r in rows:
        r["auc_cost"] = None if base is None else base - r["auc"]
    doc = {"command": shlex.join([Path(sys.executable).name, *sys.argv]),
           "settings": {"data": args.data, "banks": args.banks, "rounds": args.rounds,
                        "model": args.model, "partition": "iid", "delta": args.delta,
                        "clip": args.clip, "seed": args.seed, "aggregation": "plain", **trees},
           "runs": rows}
    if default_trees is not None:
        doc["default_trees"] = default_trees
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2))
    if args.plot:
        what = (f"{args.trees} trees of depth {args.depth}, {args.bins} bins, learning rate "
                f"{args.learning_rate:g}" if trees else f"{args.rounds} rounds, {args.model.upper()}")
        plot(rows, args.plot, f"{args.data}, {args.banks} iid banks, {what}, delta {args.delta:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
