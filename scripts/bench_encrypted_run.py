#!/usr/bin/env python3
"""Plain vs Paillier-encrypted horizontal run, side by side in one invocation.

Runs ``fedcredit simulate`` twice on the same data, split, seed and settings (each in its own
process, so both pay the same start-up), once with ``--aggregation plain`` and once with
``--aggregation paillier`` (2048-bit keys, fresh key ceremony included in the time), and
prints the AUC difference and the time ratio. Times are wall times with every party on this
one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from federation.run.folder import RunFolder
from federation.run.results import HorizontalResults

DEFAULT_DATA = "uci"
"""The embedded UCI data set (``german``, or a CSV path, with --data)."""


def run(mode: str, args: argparse.Namespace, out: Path) -> HorizontalResults:
    exe = Path(sys.executable).with_name("fedcredit")
    cmd = [str(exe), "simulate", "--data", args.data, "--target", args.target,
           "--banks", str(args.banks), "--rounds", str(args.rounds), "--model", args.model,
           "--seed", str(args.seed), "--aggregation", mode, "--out", str(out / mode)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    if proc.returncode != 0:
        sys.exit(f"{mode} run failed:\n{proc.stderr[-2000:]}")
    return HorizontalResults.read(RunFolder(out / mode).results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help="credit CSV, or an embedded data set: uci, german (default: uci)")
    parser.add_argument("--target", default="default_next_month", help="target column")
    parser.add_argument("--banks", type=int, default=5, help="number of banks")
    parser.add_argument("--rounds", type=int, default=10, help="federated rounds")
    parser.add_argument("--model", default="lr", help="lr or mlp")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--json", type=Path, help="write the comparison here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = run("plain", args, Path(tmp))
        enc = run("paillier", args, Path(tmp))
    row = {
        "data": args.data, "banks": args.banks, "rounds": args.rounds, "model": args.model,
        "plain_auc": plain.federated.auc, "paillier_auc": enc.federated.auc,
        "auc_diff": enc.federated.auc - plain.federated.auc,
        "plain_wall_s": plain.wall_seconds, "paillier_wall_s": enc.wall_seconds,
        "wall_ratio": enc.wall_seconds / plain.wall_seconds,
        "plain_federated_s": plain.federated_seconds,
        "paillier_federated_s": enc.federated_seconds,
        "federated_ratio": enc.federated_seconds / plain.federated_seconds,
    }
    print("command:", shlex.join([sys.executable, *sys.argv]))
    for key, value in row.items():
        print(f"{key:>22}: {value:.4f}" if isinstance(value, float) else f"{key:>22}: {value}")
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
