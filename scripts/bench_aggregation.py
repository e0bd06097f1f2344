"""Benchmark packed Paillier aggregation against naive per-value ``phe`` encryption.

One run: one key pair (2048 bits by default), ``--parties`` banks, each ``--params`` size.
For every size it measures

* naive ``phe``: ``public_key.encrypt(float)`` on ``--naive-sample`` values, per parameter;
* packed encryption of every bank's update (one core, full-length exponents);
* coordinator: validation of every received vector, and the homomorphic sum;
* decryption + decoding of the sum by one bank (``--processes`` worker processes).

Critical path of a round = one bank's encryption (each bank on its own machine) +
coordinator validation and sum + one bank's decryption. ``round_all_on_one_box_s`` adds
every bank's encryption sequentially on this machine instead.

JSON output (``--json PATH``): ``{"command", "load_avg_start", "load_avg_end", "rows"}``
with one row per size; every row holds ``key_bits, parties, params,
naive_encrypt_params_per_s, packed_encrypt_params_per_s, speedup_vs_naive, validate_s,
aggregate_s, decrypt_s, decrypt_params_per_s, round_s (critical path at this size),
round_s_100k (the same, only on the 100,000-parameter row, else null),
round_all_on_one_box_s, rel_l2_error, ciphertext_bytes_per_param`` and more.

Example::

    python scripts/bench_aggregation.py --json runs/bench_aggregation.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from protocols.aggregation.packing import PackingCodec
from protocols.aggregation.secure_aggregation import decrypt_sum, encrypt_update, encrypted_sum
from protocols.aggregation.serde import encrypted_vector_to_bytes
from protocols.aggregation.validation import validate_encrypted_vector
from protocols.paillier.fast import randomizer_table_for
from protocols.paillier.keys import generate_paillier_keypair

RUN_ID = "bench"
LO, HI, SIGMA = -1.0, 1.0, 0.1


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark packed Paillier aggregation (encrypt, sum, decrypt) against "
                    "naive per-value phe encryption; prints a table, optionally writes JSON.")
    parser.add_argument("--params", type=int, nargs="+", default=[10_000, 100_000],
                        help="model sizes (number of float parameters) to benchmark")
    parser.add_argument("--parties", type=int, default=10, help="number of banks")
    parser.add_argument("--key-bits", type=int, default=2048, help="Paillier modulus size")
    parser.add_argument("--bits", type=int, default=16, help="quantisation bits per value")
    parser.add_argument("--naive-sample", type=int, default=40,
                        help="values encrypted with naive phe to time it (per size)")
    parser.add_argument("--processes", type=int, default=2, help="decryption processes")
    parser.add_argument("--short-exponent", action="store_true",
                        help="also time the opt-in short-exponent mode (extra assumption)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic updates")
    parser.add_argument("--json", type=Path, default=None, help="write results to this file")
    return parser.parse_args(argv)


def _time_naive(public_key: Any, sample: int, rng: np.random.Generator) -> float:
    values = rng.normal(0.0, SIGMA, sample).tolist()
    start = time.perf_counter()
    for value in values:
        public_key.encrypt(value)
    return sample / (time.perf_counter() - start)


def _encrypt_parties(updates: list[np.ndarray], public_key: Any, codec: PackingCodec,
                     short_exponent: bool = False) -> tuple[list[Any], list[float]]:
    vectors, seconds = [], []
    for update in updates:
        start = time.perf_counter()
        vectors.append(encrypt_update(update, public_key=public_key, codec=codec, run_id=RUN_ID,
                                      round=1, short_exponent=short_exponent))
        seconds.append(time.perf_counter() - start)
    return vectors, seconds


def _bench_size(params: int, args: argparse.Namespace, public_key: Any, private_key: Any,
                codec: PackingCodec, rng: np.random.Generator) -> dict[str, Any]:
    naive_per_s = _time_naive(public_key, args.naive_sample, rng)
    updates = [rng.normal(0.0, SIGMA, params) for _ in range(args.parties)]
    vectors, enc_seconds = _encrypt_parties(updates, public_key, codec)
    start = time.perf_counter()
    for vec in vectors:
        validate_encrypted_vector(vec, public_key=public_key, expected_length=params,
                                  run_id=RUN_ID, round=1, codec=codec)
    validate_s = time.perf_counter() - start
    start = time.perf_counter()
    total = encrypted_sum(vectors, public_key=public_key, codec=codec)
    aggregate_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = decrypt_sum(total, private_key=private_key, codec=codec,
                          n_parties=args.parties, processes=args.processes)
    decrypt_s = time.perf_counter() - start
    truth = np.sum(updates, axis=0)
    enc_one = float(np.mean(enc_seconds))
    packed_per_s = params / enc_one
    round_s = enc_one + validate_s + aggregate_s + decrypt_s
    row = {
        "key_bits": args.key_bits, "parties": args.parties, "params": params,
        "bits": codec.bits, "slots_per_ciphertext": codec.slots_per_ciphertext,
        "ciphertexts_per_party": len(vectors[0].ciphertexts),
        "naive_encrypt_params_per_s": naive_per_s,
        "packed_encrypt_params_per_s": packed_per_s,
        "speedup_vs_naive": packed_per_s / naive_per_s,
        "encrypt_one_party_s": enc_one, "validate_s": validate_s,
        "aggregate_s": aggregate_s, "decrypt_s": decrypt_s,
        "decrypt_params_per_s": params / decrypt_s, "round_s": round_s,
        "round_s_100k": round_s if params == 100_000 else None,
        "round_all_on_one_box_s": sum(enc_seconds) + validate_s + aggregate_s + decrypt_s,
        "rel_l2_error": float(np.linalg.norm(decoded - truth) / np.linalg.norm(truth)),
        "max_abs_error": float(np.max(np.abs(decoded - truth))),
        "error_bound": codec.sum_error_bound(args.parties),
        "ciphertext_bytes_per_param": len(encrypted_vector_to_bytes(vectors[0])) / params,
    }
    if args.short_exponent:
        randomizer_table_for(public_key, short_exponent=True)  # build outside the timing
        _, short_seconds = _encrypt_parties(updates[:2], public_key, codec, short_exponent=True)
        row["packed_encrypt_params_per_s_short_exponent"] = params / float(np.mean(short_seconds))
    return row


def _print_table(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(title="Packed Paillier aggregation")
    table.add_column("metric")
    for row in rows:
        table.add_column(f"{row['params']:,} params", justify="right")
    fmt = {"naive_encrypt_params_per_s": "{:,.0f}", "packed_encrypt_params_per_s": "{:,.0f}",
           "packed_encrypt_params_per_s_short_exponent": "{:,.0f}",
           "speedup_vs_naive": "{:,.0f}x", "encrypt_one_party_s": "{:.3f}",
           "validate_s": "{:.3f}", "aggregate_s": "{:.3f}", "decrypt_s": "{:.3f}",
           "decrypt_params_per_s": "{:,.0f}", "round_s": "{:.3f}",
           "round_all_on_one_box_s": "{:.3f}", "rel_l2_error": "{:.2e}",
           "max_abs_error": "{:.2e}", "error_bound": "{:.2e}",
           "ciphertext_bytes_per_param": "{:.2f}"}
    for key, pattern in fmt.items():
        if key in rows[0]:
            table.add_row(key, *(pattern.format(row[key]) for row in rows))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    console = Console(soft_wrap=True)
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    console.print(f"command: {command}")
    load_start = os.getloadavg()
    rng = np.random.default_rng(args.seed)
    public_key, private_key = generate_paillier_keypair(
        args.key_bits, allow_insecure_test_key=args.key_bits < 2048)
    codec = PackingCodec(lo=LO, hi=HI, bits=args.bits, max_parties=args.parties,
                         key_bits=args.key_bits)
    start = time.perf_counter()
    randomizer_table_for(public_key)
    table_s = time.perf_counter() - start
    rows = [_bench_size(p, args, public_key, private_key, codec, rng) for p in args.params]
    for row in rows:
        row["table_build_s"] = table_s
    _print_table(console, rows)
    result = {"command": command, "cpu_count": os.cpu_count(), "load_avg_start": load_start,
              "load_avg_end": os.getloadavg(), "codec": {"lo": LO, "hi": HI, "bits": args.bits,
                                                          "update_sigma": SIGMA},
              "rows": rows}
    console.print(f"table build {table_s:.2f} s; load average start {load_start}, "
                  f"end {result['load_avg_end']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
