"""Benchmark vertical SecureBoost (bank + credit center) on the UCI default data.

Split as in ``bench_vertical.py``: the bank holds LIMIT_BAL, PAY_0, PAY_2..PAY_6, BILL_AMT1..6,
PAY_AMT1..6 (19 features) and the label; the center holds SEX, EDUCATION, MARRIAGE and AGE
(4). Rows are split 70/30 (seeded): 21,000 training rows. One fresh Paillier key of the bank
(2048 bits, full-length exponents). Both parties run in this process, each party's own work
timed (:class:`federation.steps.secureboost.SecureBoostTimings`): the protocol alternates
between them, so their sum is the critical path of a deployment (relay latency excluded).

Measured side by side in one run:

* ``encrypt_floor_s``: encrypting every training row's ``(g, h)`` once (what a tree cannot
  go below); ``seconds_per_tree`` and their ratio (target <= 1.5);
* ``row_features_per_core_s``: training rows x features / (seconds per tree) on one core,
  beside FATE's published Hetero-SecureBoost figure (about 7.9k at 1024-bit keys);
* AUC on the test rows: federated (scored through the center's lookup), the GBDT on the
  joined plaintext rows with the same bins (must be identical: same trees), and bank-only.

Example::

    python scripts/bench_secureboost.py --trees 3 --json runs/bench_secureboost.json
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from federation.ml.gbdt import BinEdges, GBDTConfig, HistGBDT, pooled_edges
from federation.ml.metrics import roc_auc
from federation.steps.secureboost import SecureBoostTimings, train_secureboost_local
from protocols.paillier.fast import encrypt_packed, randomizer_table_for
from protocols.paillier.keys import generate_paillier_keypair

CENTER = ["SEX", "EDUCATION", "MARRIAGE", "AGE"]
TARGET = "default_next_month"
FATE_ROW_FEATURES_PER_CORE_S = 7_900


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/uci_default_credit.csv")
    parser.add_argument("--trees", type=int, default=3)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--bins", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    command = "python scripts/bench_secureboost.py " + shlex.join(argv or sys.argv[1:])

    frame = pd.read_csv(args.data)
    bank_cols = [c for c in frame.columns if c not in (*CENTER, TARGET, "ID")]
    rng = np.random.default_rng(args.seed)
    train = rng.random(len(frame)) < 0.7
    y = frame[TARGET].to_numpy(np.int64)
    bank, center = frame[bank_cols].to_numpy(float), frame[CENTER].to_numpy(float)
    config = GBDTConfig(trees=args.trees, depth=args.depth, bins=args.bins,
                        learning_rate=args.learning_rate)
    print(f"keys: {args.key_bits}-bit Paillier (bank's own)", flush=True)
    public, private = generate_paillier_keypair(args.key_bits)

    table = randomizer_table_for(public)
    rows = int(train.sum())
    plain = [random.Random(1).getrandbits(90) for _ in range(rows)]
    started = time.perf_counter()
    encrypt_packed(plain, public, table=table)
    floor = time.perf_counter() - started
    print(f"encrypt floor: {floor:.2f} s for {rows} rows", flush=True)

    timings = SecureBoostTimings()
    started = time.perf_counter()
    trees = train_secureboost_local(bank[train], y[train], center[train], config,
                                    private_key=private, bank_test=bank[~train],
                                    center_test=center[~train], y_test=y[~train],
                                    timings=timings)
    wall = time.perf_counter() - started
    per_tree = float(np.mean(timings.per_tree))
    federated_auc = roc_auc(y[~train], trees.test_margins())

    joined_edges = BinEdges(pooled_edges(bank[train], args.bins).cuts
                            + pooled_edges(center[train], args.bins).cuts,
                            (0,) * (bank.shape[1] + center.shape[1]), args.bins)
    joined = HistGBDT(config, edges=joined_edges).fit(np.hstack([bank, center])[train], y[train])
    joined_auc = roc_auc(y[~train], joined.decision_function(np.hstack([bank, center])[~train]))
    bank_only = HistGBDT(config).fit(bank[train], y[train])
    bank_auc = roc_auc(y[~train], bank_only.decision_function(bank[~train]))
    same = all(np.array_equal(a.feature, b.feature) and np.array_equal(a.value, b.value)
               for a, b in zip(trees.bank.trees, joined.model_.trees, strict=True))
    features = bank.shape[1] + center.shape[1]
    result: dict[str, object] = {
        "command": command, "train_rows": rows, "bank_features": bank.shape[1],
        "center_features": center.shape[1], "trees": args.trees, "depth": args.depth,
        "bins": args.bins, "key_bits": args.key_bits,
        "encrypt_floor_s": floor, "seconds_per_tree": per_tree,
        "per_tree_over_floor": per_tree / floor,
        "bank_encrypt_s_per_tree": timings.bank_encrypt / args.trees,
        "bank_other_s_per_tree": timings.bank_other / args.trees,
        "center_s_per_tree": timings.center / args.trees,
        "critical_path_s_per_tree": timings.critical_path / args.trees,
        "wall_s": wall,
        "row_features_per_core_s": rows * features / per_tree,
        "fate_row_features_per_core_s": FATE_ROW_FEATURES_PER_CORE_S,
        "federated_auc": federated_auc, "joined_plaintext_auc": joined_auc,
        "bank_only_auc": bank_auc, "same_trees_as_joined": same,
    }
    for key, value in result.items():
        print(f"{key:>30}: {value:.4f}" if isinstance(value, float) else f"{key:>30}: {value}")
    print(f"target seconds_per_tree <= 1.5 x encrypt floor: "
          f"{'met' if per_tree <= 1.5 * floor else 'missed'} ({per_tree / floor:.2f}x)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
