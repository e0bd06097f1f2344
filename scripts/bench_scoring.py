"""Benchmark scoring throughput (federation.scorecard.scoring): entities scored per second.

Measures, best of ``--repeat`` runs, for ``--rows`` entities (the data set's rows repeated):

  * core: probability, score, grade and ``--reasons`` reason codes from a design matrix
    (``score_rows``: vectorised numpy for LR);
  * with preprocessing: ``Preprocessor.transform`` of a parsed table, then the core;
  * end to end: ``score_file``, CSV in -> CSV out (read, schema check, parse, score, write).

The model is a run folder's (``--model DIR``) or, without one, an LR trained in this process on
``--data`` (one SGD pass over every row; throughput does not depend on the weights).

Example::

    .venv/bin/python scripts/bench_scoring.py --rows 200000 --json runs/bench_scoring.json
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

from federation.data.table import CreditTable, load_credit_csv
from federation.run.folder import RunFolder
from federation.run.results import HorizontalResults
from federation.scorecard.scale import RiskGrades, ScorecardScale
from federation.scorecard.scoring import RunModel, load_run_model, score_file, score_rows

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/uci_default_credit.csv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000,
                        help="entities to score per measurement (default 200000)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="CSV whose rows are repeated to --rows (default: UCI credit data)")
    parser.add_argument("--target", default="default_next_month", help="target column of --data")
    parser.add_argument("--model", type=Path, default=None, metavar="DIR",
                        help="run folder of `fedcredit simulate` (default: train an LR here)")
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
    table = load_credit_csv(args.data, target=args.target)
    model = load_run_model(args.model) if args.model else quick_model(table)
    big = table.subset(np.arange(args.rows) % table.n_rows)
    scale, grades = ScorecardScale(), RiskGrades()
    x = model.preprocessor.transform(big)
    core = best_rate(args.rows, args.repeat, lambda: score_rows(
        model, x, scale=scale, grades=grades, reasons=args.reasons))
    with_prep = best_rate(args.rows, args.repeat, lambda: score_rows(
        model, model.preprocessor.transform(big), scale=scale, grades=grades, reasons=args.reasons))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        if args.model is None:  # score_file reads a run folder: write the in-process model
            folder = RunFolder(run_dir)
            run_dir.mkdir()
            np.savez(folder.model, *model.weights)
            folder.preprocessor.write_text(model.preprocessor.to_json())
            HorizontalResults(model="lr", target=args.target).write(folder.results)
        data = Path(tmp) / "entities.csv"
        ids = np.arange(1, args.rows + 1)
        frame = big.numeric.join(big.categorical).assign(ID=ids)
        frame.to_csv(data, index=False)
        end_to_end = best_rate(args.rows, args.repeat, lambda: score_file(
            args.model or run_dir, data, Path(tmp) / "scores.csv", scale=scale, grades=grades,
            reasons=args.reasons))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    result = {
        "rows": args.rows, "features": model.preprocessor.n_features, "model": model.kind,
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
