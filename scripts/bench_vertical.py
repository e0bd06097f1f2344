"""Benchmark the two-key vertical logistic regression (bank + credit center) on UCI default.

The bank holds LIMIT_BAL, PAY_0, PAY_2..PAY_6, BILL_AMT1..6, PAY_AMT1..6 and the label
default_next_month; the center holds SEX, EDUCATION, MARRIAGE and AGE. Rows are split 70/30
(seeded), standardised with the training means and deviations, and trained with
``protocols.vertical_lr.steps`` on two fresh Paillier key pairs (2048 bits by default).

Two measurements (``--mode``):

* ``sequential``: :func:`protocols.vertical_lr.local.train_vertical_lr_local`, both parties
  in this process. It times each party's own steps per phase, so the **critical path**
  (sum over phases of the slower party, as with one core per party) and each party's busy
  time are reported besides the one-process wall time.
* ``parallel``: the bank and the center in two processes on this box, exchanging the
  serialised messages through queues: the measured **wall time with both parties here**.

Afterwards the test rows are scored through the protected scoring path and the AUC is
compared with scikit-learn's logistic regression on the joined data, a bank-only one, and
plaintext Taylor-loss SGD on the same batch schedule (which the encrypted run must match).

Example::

    python scripts/bench_vertical.py --epochs 3 --json runs/bench_vertical.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from federation.run.config import resolve_data_path
from protocols.paillier.fast import randomizer_table_for
from protocols.paillier.keys import generate_paillier_keypair
from protocols.vertical_lr.encoding import dequantize_features, quantize_features
from protocols.vertical_lr.local import train_vertical_lr_local
from protocols.vertical_lr.messages import (
    masked_values_to_bytes,
    parse_vertical_message,
    vertical_ciphertexts_to_bytes,
)
from protocols.vertical_lr.scoring import bank_score_step, center_score_step
from protocols.vertical_lr.steps import (
    VerticalLRConfig,
    bank_gradient_step,
    bank_open_center_gradient,
    bank_residual_step,
    bank_update_step,
    center_gradient_step,
    center_open_bank_gradient,
    center_partial_step,
    center_update_step,
    initial_state,
    make_bank_party,
    make_center_party,
)

DEFAULT_DATA = "uci"
"""The embedded UCI data set (or a CSV path with its columns, with --data)."""
BANK_COLUMNS = (["LIMIT_BAL", "PAY_0"] + [f"PAY_{i}" for i in range(2, 7)]
                + [f"BILL_AMT{i}" for i in range(1, 7)] + [f"PAY_AMT{i}" for i in range(1, 7)])
CENTER_COLUMNS = ["SEX", "EDUCATION", "MARRIAGE", "AGE"]
TARGET = "default_next_month"
RUN_ID = "bench-vertical"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help="UCI default CSV (default: the embedded copy, uci)")
    parser.add_argument("--rows", type=int, default=None,
                        help="use only the first ROWS rows of the file (default: all 30,000)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=512, help="rows per batch")
    parser.add_argument("--learning-rate", type=float, default=0.5, help="SGD step size")
    parser.add_argument("--l2", type=float, default=0.0, help="L2 penalty (not on intercept)")
    parser.add_argument("--key-bits", type=int, default=2048, help="Paillier modulus size")
    parser.add_argument("--short-exponent", action="store_true",
                        help="opt-in short encryption exponents (extra assumption)")
    parser.add_argument("--mode", choices=("sequential", "parallel", "both"), default="both",
                        help="one process (per-party timings) and/or two processes (wall)")
    parser.add_argument("--seed", type=int, default=0, help="split and batch-schedule seed")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="write the results to this JSON file")
    return parser.parse_args(argv)


def load_split(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """70/30 split, standardised with training statistics (the lead's job in federation)."""
    frame = pd.read_csv(resolve_data_path(args.data), nrows=args.rows)
    order = np.random.default_rng(args.seed).permutation(len(frame))
    cut = int(0.7 * len(frame))
    out: dict[str, np.ndarray] = {}
    for side, columns in (("bank", BANK_COLUMNS), ("center", CENTER_COLUMNS)):
        x = frame[columns].to_numpy(dtype=np.float64)
        mean, std = x[order[:cut]].mean(axis=0), x[order[:cut]].std(axis=0)
        x = (x - mean) / np.where(std > 0, std, 1.0)
        out[f"{side}_train"], out[f"{side}_test"] = x[order[:cut]], x[order[cut:]]
    y = frame[TARGET].to_numpy(dtype=np.float64)
    out["y_train"], out["y_test"] = y[order[:cut]], y[order[cut:]]
    return out


def _party_loop(role: str, party: Any, epochs: int, inbox: Any, outbox: Any,
                results: Any) -> None:
    """One party's steps in order, messages as bytes through queues (parallel mode)."""
    config, state = party.config, initial_state(party)
    steps = ((bank_residual_step, bank_gradient_step, bank_open_center_gradient,
              bank_update_step) if role == "bank" else
             (center_partial_step, center_gradient_step, center_open_bank_gradient,
              center_update_step))
    busy, rows = 0.0, []
    for epoch in range(epochs):
        start, busy_before, cpu_before = time.perf_counter(), busy, time.process_time()
        for batch in range(config.n_batches):
            t0 = time.perf_counter()
            msg, secrets = steps[0](party, state, epoch=epoch, batch=batch)
            outbox.put(vertical_ciphertexts_to_bytes(msg))
            busy += time.perf_counter() - t0
            received = inbox.get()
            t0 = time.perf_counter()
            msg, secrets = steps[1](party, secrets, parse_vertical_message(received))
            outbox.put(vertical_ciphertexts_to_bytes(msg))
            busy += time.perf_counter() - t0
            received = inbox.get()
            t0 = time.perf_counter()
            opened = steps[2](party, parse_vertical_message(received), epoch=epoch, batch=batch)
            outbox.put(masked_values_to_bytes(opened))
            busy += time.perf_counter() - t0
            received = inbox.get()
            t0 = time.perf_counter()
            state = steps[3](party, state, secrets, parse_vertical_message(received))
            busy += time.perf_counter() - t0
        rows.append({"wall": time.perf_counter() - start, "busy": busy - busy_before,
                     "cpu": time.process_time() - cpu_before})
    results.put((role, np.array(state.weights), rows))


def run_parallel(data: dict[str, np.ndarray], keys: tuple, args: argparse.Namespace, *,
                 run_id: str = RUN_ID, widths: tuple[int, int] | None = None) -> dict:
    """Bank and center in two forked processes on this machine (``widths``: the bank's and
    the center's feature counts, default the UCI split's)."""
    (pk_b, sk_b), (pk_c, sk_c) = keys
    n_bank, n_center = widths or (len(BANK_COLUMNS), len(CENTER_COLUMNS))
    config = VerticalLRConfig(run_id, len(data["y_train"]), n_bank, n_center, args.batch_size,
                              args.learning_rate, args.l2, args.seed)
    bank = make_bank_party(data["bank_train"], data["y_train"], config=config,
                           private_key=sk_b, peer_public_key=pk_c,
                           short_exponent=args.short_exponent)
    center = make_center_party(data["center_train"], config=config, private_key=sk_c,
                               peer_public_key=pk_b, short_exponent=args.short_exponent)
    ctx = mp.get_context("fork")
    to_center, to_bank, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_party_loop, args=("bank", bank, args.epochs, to_bank,
                                                    to_center, results)),
             ctx.Process(target=_party_loop, args=("center", center, args.epochs, to_center,
                                                    to_bank, results))]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    out: dict[str, Any] = {}
    for _ in procs:
        role, weights, rows = results.get()
        out[role] = {"weights": weights, "epochs": rows}
    for proc in procs:
        proc.join()
    out["wall_total"] = time.perf_counter() - start
    return out


def taylor_reference(data: dict[str, np.ndarray], config: VerticalLRConfig,
                     epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Plaintext Taylor-loss SGD on the joined quantised data, same batch schedule."""
    xb = np.hstack([np.ones((config.n_rows, 1)),
                    dequantize_features(quantize_features(data["bank_train"]))])
    xc = dequantize_features(quantize_features(data["center_train"]))
    wb, wc, y = np.zeros(xb.shape[1]), np.zeros(xc.shape[1]), data["y_train"]
    for epoch in range(epochs):
        for batch in range(config.n_batches):
            rows = config.batch_rows(epoch, batch)
            d = 0.25 * (xb[rows] @ wb + xc[rows] @ wc) + 0.5 - y[rows]
            gb, gc = xb[rows].T @ d / len(rows), xc[rows].T @ d / len(rows)
            gb[1:] += config.l2 * wb[1:]
            gc += config.l2 * wc
            wb, wc = wb - config.learning_rate * gb, wc - config.learning_rate * gc
    return wb, wc


def score_protected(data: dict[str, np.ndarray], keys: tuple, wb: np.ndarray,
                    wc: np.ndarray) -> tuple[np.ndarray, float]:
    """Test-set logits through the protected scoring path, and its seconds."""
    (pk_b, sk_b), _ = keys
    start = time.perf_counter()
    msg = center_score_step(data["center_test"], wc, bank_public_key=pk_b, run_id=RUN_ID)
    wire = vertical_ciphertexts_to_bytes(msg)
    logits = bank_score_step(data["bank_test"], wb, parse_vertical_message(wire),
                             private_key=sk_b, run_id=RUN_ID)
    return logits, time.perf_counter() - start


def baselines(data: dict[str, np.ndarray]) -> dict[str, float]:
    """AUC of scikit-learn LR on the joined data and on the bank's features alone."""
    joined_tr = np.hstack([data["bank_train"], data["center_train"]])
    joined_te = np.hstack([data["bank_test"], data["center_test"]])
    out = {}
    for name, (xtr, xte) in {"sklearn_joined": (joined_tr, joined_te),
                             "sklearn_bank_only": (data["bank_train"], data["bank_test"])}.items():
        model = LogisticRegression(max_iter=2000).fit(xtr, data["y_train"])
        out[name] = float(roc_auc_score(data["y_test"], model.decision_function(xte)))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "cd /work/main && .venv/bin/python " + shlex.join([sys.argv[0], *sys.argv[1:]])
    print(f"command: {command}")
    results: dict[str, Any] = {"command": command, "load_avg_start": os.getloadavg(),
                               "cores": os.cpu_count(), "args": {k: str(v) for k, v in
                                                                  vars(args).items()}}
    data = load_split(args)
    start = time.perf_counter()
    insecure = args.key_bits < 2048
    keys = tuple(generate_paillier_keypair(args.key_bits, allow_insecure_test_key=insecure)
                 for _ in range(2))
    for public_key, _ in keys:
        randomizer_table_for(public_key, short_exponent=args.short_exponent)
    results["setup_s"] = time.perf_counter() - start
    n_train = len(data["y_train"])
    print(f"train rows {n_train}, test rows {len(data['y_test'])}, bank features "
          f"{len(BANK_COLUMNS)} (+intercept), center features {len(CENTER_COLUMNS)}, "
          f"{args.key_bits}-bit keys, batch {args.batch_size}, setup {results['setup_s']:.2f} s")
    weights = None
    if args.mode in ("sequential", "both"):
        res = train_vertical_lr_local(data["bank_train"], data["y_train"], data["center_train"],
                                      epochs=args.epochs, batch_size=args.batch_size,
                                      learning_rate=args.learning_rate, l2=args.l2,
                                      keys=keys, short_exponent=args.short_exponent,
                                      seed=args.seed, run_id=RUN_ID)
        results["sequential"] = {"epochs": list(res.epochs), "party_seconds": res.party_seconds,
                                 "party_cpu_seconds": res.party_cpu_seconds,
                                 "message_bytes_per_epoch": {k: v / args.epochs for k, v in
                                                             res.message_bytes.items()}}
        for idx, row in enumerate(res.epochs):
            print(f"[one process] epoch {idx}: bank busy {row['bank']:.2f} s "
                  f"(cpu {row['bank_cpu']:.2f}), center busy {row['center']:.2f} s "
                  f"(cpu {row['center_cpu']:.2f}), critical path {row['critical_path']:.2f} s "
                  f"(cpu {row['critical_path_cpu']:.2f}), one-process wall {row['wall']:.2f} s")
        for role, phases in res.party_cpu_seconds.items():
            print(f"  {role} cpu per epoch: " + ", ".join(f"{k} {v / args.epochs:.2f} s"
                                                          for k, v in phases.items()))
        print("  MB per epoch: " + ", ".join(f"{k} {v / args.epochs / 1e6:.3f}"
                                             for k, v in res.message_bytes.items()))
        weights = (res.bank_weights, res.center_weights)
        config = res.config
    if args.mode in ("parallel", "both"):
        par = run_parallel(data, keys, args)
        results["parallel"] = {"bank": par["bank"]["epochs"], "center": par["center"]["epochs"],
                               "wall_total": par["wall_total"]}
        for idx, (rb, rc) in enumerate(zip(par["bank"]["epochs"], par["center"]["epochs"], strict=True)):
            print(f"[two processes] epoch {idx}: wall {max(rb['wall'], rc['wall']):.2f} s "
                  f"(bank busy {rb['busy']:.2f} s, cpu {rb['cpu']:.2f}; center busy "
                  f"{rc['busy']:.2f} s, cpu {rc['cpu']:.2f})")
        if weights is not None:
            results["parallel_vs_sequential_max_weight_diff"] = float(max(
                np.abs(par["bank"]["weights"] - weights[0]).max(),
                np.abs(par["center"]["weights"] - weights[1]).max()))
        weights = (par["bank"]["weights"], par["center"]["weights"])
        config = VerticalLRConfig(RUN_ID, n_train, len(BANK_COLUMNS), len(CENTER_COLUMNS),
                                  args.batch_size, args.learning_rate, args.l2, args.seed)
    logits, score_s = score_protected(data, keys, *weights)
    ref_b, ref_c = taylor_reference(data, config, args.epochs)
    ref_logits = np.hstack([np.ones((len(data["y_test"]), 1)),
                            dequantize_features(quantize_features(data["bank_test"]))]) @ ref_b \
        + dequantize_features(quantize_features(data["center_test"])) @ ref_c
    auc = {"federated": float(roc_auc_score(data["y_test"], logits)),
           "plaintext_taylor_same_schedule": float(roc_auc_score(data["y_test"], ref_logits)),
           **baselines(data)}
    results.update(auc=auc, scoring_s=score_s, scoring_rows=len(data["y_test"]),
                   max_weight_diff_vs_plaintext=float(max(np.abs(weights[0] - ref_b).max(),
                                                          np.abs(weights[1] - ref_c).max())),
                   load_avg_end=os.getloadavg())
    print(f"AUC after {args.epochs} epochs: "
          + ", ".join(f"{k} {v:.4f}" for k, v in auc.items()))
    diff = results["max_weight_diff_vs_plaintext"]
    print(f"max |w_federated - w_plaintext_taylor| = {diff:.2e}; "
          f"protected scoring of {len(data['y_test'])} rows: {score_s:.2f} s")
    print(f"load average start {results['load_avg_start']}, end {results['load_avg_end']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=float))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
