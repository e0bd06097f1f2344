#!/usr/bin/env python3
"""Split one credit CSV by columns into a bank file and a credit-center file (vertical setting).

Default: the natural split of the embedded UCI set (``--data uci``; its README in
``federation/data/datasets/``):
the bank holds the label and the account behaviour (LIMIT_BAL, PAY_*, BILL_AMT*, PAY_AMT*), the
center the profile (SEX, EDUCATION, MARRIAGE, AGE). Both files keep the ID column; with
``--overlap`` below 1 each side drops a different random part of the rows, and rows are
shuffled differently on each side, as real parties' files would be.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from federation.data.embedded import target_for
from federation.run.config import resolve_data_path

CENTER_COLUMNS = ["SEX", "EDUCATION", "MARRIAGE", "AGE"]
DEFAULT_DATA = "uci"
DEFAULT_TARGET = "default_next_month"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help="credit CSV, or an embedded data set: uci, german (default: uci)")
    parser.add_argument("--id-col", default="ID")
    parser.add_argument("--target", default=DEFAULT_TARGET,
                        help="target column (an embedded data set: its own)")
    parser.add_argument("--center-columns", default=",".join(CENTER_COLUMNS),
                        help="comma-separated columns for the center (the rest go to the bank)")
    parser.add_argument("--overlap", type=float, default=1.0,
                        help="share of each side's rows the other side also holds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/uci_vertical"))
    args = parser.parse_args()
    args.target = target_for(args.data, args.target, default=DEFAULT_TARGET)
    frame = pd.read_csv(resolve_data_path(args.data), dtype=str, keep_default_na=False)
    center_cols = [c for c in args.center_columns.split(",") if c]
    missing = [c for c in [args.id_col, args.target, *center_cols] if c not in frame.columns]
    if missing:
        parser.error(f"{args.data} has no column(s) {', '.join(missing)}")
    bank_cols = [c for c in frame.columns if c not in center_cols]
    rng = np.random.default_rng(args.seed)
    n = len(frame)
    keep = int(round(n * args.overlap))
    bank_rows = rng.permutation(n)[: keep + (n - keep) // 2] if args.overlap < 1 else rng.permutation(n)
    center_rows = rng.permutation(n)[: len(bank_rows)] if args.overlap < 1 else rng.permutation(n)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.iloc[bank_rows][bank_cols].to_csv(args.out / "bank.csv", index=False)
    frame.iloc[center_rows][[args.id_col, *center_cols]].to_csv(args.out / "center.csv", index=False)
    print(f"wrote {args.out / 'bank.csv'} ({len(bank_rows)} rows, {len(bank_cols)} columns) and "
          f"{args.out / 'center.csv'} ({len(center_rows)} rows, {len(center_cols) + 1} columns)")


if __name__ == "__main__":
    main()
