"""Benchmark scoring throughput (federation.scorecard.scoring): entities scored per second.

Measures, best of ``--repeat`` runs, for ``--rows`` entities (the data set's rows repeated):

  * core: probability, score, grade and ``--reasons`` reason codes from the model's input
    matrix (``score_rows``: vectorised numpy for LR; for trees one pass per tree level, with
    Saabas reason codes);
  * with preprocessing: ``RunModel.inputs`` of a parsed table (``Preprocessor.transform``, or
    ``tree_matrix`` for trees), then the core;
  * end to end: ``score_file``, CSV in -> CSV out (read, schema check, parse, score, write).

The model is a run folder's (``--model DIR``, LR, MLP or a ``--model gbdt`` run) or, without
one, a model trained in this process on ``--data``: an LR (``--kind lr``, one SGD pass over
every row) or boosted trees (``--kind gbdt``, ``--trees`` trees of ``--depth`` levels grown on
the pooled rows); throughput depends on the tree count and depth, not on the fitted values.

Examples::

    .venv/bin/python scripts/bench_scoring.py --rows 200000 --json runs/bench_scoring.json
    .venv/bin/python scripts/bench_scoring.py --kind gbdt --trees 100 --depth 4
    .venv/bin/python scripts/bench_scoring.py --model runs/gbdt   # a `simulate --model gbdt` run
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from federation.data.embedded import target_for
from federation.data.table import CreditTable, load_credit_csv
from federation.run.folder import RunFolder
from federation.run.results import HorizontalResults
from federation.scorecard.scale import RiskGrades, ScorecardScale
from federation.scorecard.scoring import RunModel, load_run_model, score_file, score_rows

DEFAULT_DATA = "uci"
"""The embedded UCI data set (``german``, or a CSV path, with --data)."""
DEFAULT_TARGET = "default_next_month"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000,
                        help="entities to score per measurement (default 200000)")
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help="CSV whose rows are repeated to --rows (default: UCI credit data)")
    parser.add_argument("--target", default=DEFAULT_TARGET,
                        help="target column of --data (an embedded data set: its own)")
    parser.add_argument("--model", type=Path, default=None, metavar="DIR",
                        help="run folder of `fedcredit simulate` (default: train an LR here)")
    parser.add_argument("--kind", choices=("lr", "gbdt"), default="lr",
                        help="model trained here without --model (default lr)")
    parser.add_argument("--trees", type=int, default=100, help="--kind gbdt: trees (default 100)")
    parser.add_argument("--depth", type=int, default=4, help="--kind gbdt: depth (default 4)")
    parser.add_argument("--reasons", type=int, default=3, help="reason codes per row (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement, best kept")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the results as JSON to PATH")
    return parser.parse_args(argv)


def quick_model(table: CreditTable) -> RunModel:
    """An LR trained on ``table`` in this process (only its speed matters here)."""
    from federation.ml.models import CreditModel
    from federation.ml.preprocess import pooled_preprocessor

    prep = pooled_preprocessor([table])
    model = CreditModel("lr", n_features=prep.n_features, min_steps=1)
    model.fit(prep.transform(table), table.y)
    return RunModel(Path("(in-process)"), "lr", prep, tuple(model.get_weights()), table.target)


def quick_trees(table: CreditTable, trees: int, depth: int) -> RunModel:
    """Boosted trees grown on ``table`` in this process (centralised; only speed matters)."""
    from federation.ml.gbdt import GBDTConfig, HistGBDT
    from federation.ml.preprocess import pooled_preprocessor
    from federation.ml.tree_features import tree_categories, tree_matrix

    prep = pooled_preprocessor([table])
    fitted = HistGBDT(GBDTConfig(trees=trees, depth=depth),
                      n_categories=tree_categories(prep)).fit(tree_matrix(table, prep), table.y)
    return RunModel(Path("(in-process)"), "gbdt", prep, (), table.target,
                    tree_model=fitted.model_)


def write_run_folder(run_dir: Path, model: RunModel, target: str) -> None:
    """The in-process model as a run folder (``score_file`` reads one)."""
    folder = RunFolder(run_dir)
    run_dir.mkdir()
    if model.tree_model is not None:
        folder.tree_model.write_text(model.tree_model.to_json())
    else:
        np.savez(folder.model, *model.weights)
    folder.preprocessor.write_text(model.preprocessor.to_json())
    HorizontalResults(model=model.kind, target=target).write(folder.results)


def tree_depth(model: RunModel) -> int | None:
    """Deepest split level over the model's trees (None for LR/MLP)."""
    if model.tree_model is None:
        return None
    deepest = 0
    for tree in model.tree_model.trees:
        level = np.zeros(tree.n_nodes, dtype=np.int64)
        for node in np.flatnonzero(tree.left >= 0):  # parents come before their children
            level[[tree.left[node], tree.right[node]]] = level[node] + 1
        deepest = max(deepest, int(level.max()))
    return deepest


def best_rate(rows: int, repeat: int, job) -> float:
    """Rows per second of the fastest of ``repeat`` runs of ``job()``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        job()
        best = min(best, time.perf_counter() - started)
    return rows / best


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    print("$", shlex.join([".venv/bin/python", "scripts/bench_scoring.py", *(argv or sys.argv[1:])]))
    args.target = target_for(args.data, args.target, default=DEFAULT_TARGET)
    table = load_credit_csv(args.data, target=args.target)
    if args.model:
        model = load_run_model(args.model)
    elif args.kind == "gbdt":
        model = quick_trees(table, args.trees, args.depth)
    else:
        model = quick_model(table)
    big = table.subset(np.arange(args.rows) % table.n_rows)
    scale, grades = ScorecardScale(), RiskGrades()
    x = model.inputs(big)
    core = best_rate(args.rows, args.repeat, lambda: score_rows(
        model, x, scale=scale, grades=grades, reasons=args.reasons))
    with_prep = best_rate(args.rows, args.repeat, lambda: score_rows(
        model, model.inputs(big), scale=scale, grades=grades, reasons=args.reasons))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        if args.model is None:  # score_file reads a run folder: write the in-process model
            write_run_folder(run_dir, model, args.target)
        data = Path(tmp) / "entities.csv"
        ids = np.arange(1, args.rows + 1)
        frame = big.numeric.join(big.categorical).assign(ID=ids)
        frame.to_csv(data, index=False)
        end_to_end = best_rate(args.rows, args.repeat, lambda: score_file(
            args.model or run_dir, data, Path(tmp) / "scores.csv", scale=scale, grades=grades,
            reasons=args.reasons))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    result = {
        "rows": args.rows, "model": model.kind,
        "features": (model.tree_model.n_features if model.tree_model is not None
                     else model.preprocessor.n_features),
        "trees": len(model.tree_model.trees) if model.tree_model is not None else None,
        "depth": tree_depth(model),
        "reasons": args.reasons, "core_rows_per_s": core, "with_preprocessing_rows_per_s": with_prep,
        "end_to_end_csv_rows_per_s": end_to_end, "cpus": os.cpu_count(),
        "load_average_1m": load[0], "python": sys.version.split()[0],
    }
    for key in ("core_rows_per_s", "with_preprocessing_rows_per_s", "end_to_end_csv_rows_per_s"):
        print(f"{key:32s} {result[key]:>14,.0f}")
    print(f"({args.rows:,} rows, {result['features']} features, {args.reasons} reasons, "
          f"{result['cpus']} CPUs, load average {load[0]:.2f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
