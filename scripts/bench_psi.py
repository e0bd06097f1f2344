"""Benchmark ECDH-PSI (protocols.psi.ecdh): per-core rates and an n x n run of both parties.

Measures
  * IDs per second on one core for the blind step (hash + first X25519 blinding of a party's
    own IDs) and the double-blind step (second blinding of the peer's points);
  * wall time of a full two-party run on ``--n`` x ``--n`` IDs, both parties on this machine
    one after the other, each using ``--workers`` processes, every message through bytes serde;
  * the CPU time (this process and its workers) of that run: on a busy machine, CPU seconds
    divided by the workers estimate the wall time the run would take on idle cores;
  * the time for 1,000,000 x 1,000,000, measured with ``--full`` or else projected linearly
    from the n x n run (the protocol is linear in the set sizes) and clearly labelled so.

Example::

    .venv/bin/python scripts/bench_psi.py --n 100000 --workers 2 --json runs/bench_psi.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
from pathlib import Path

from protocols.psi.blinding import blind_points, default_workers, hash_ids_to_points
from protocols.psi.ecdh import (
    initiator_finish,
    initiator_start,
    new_psi_session,
    psi_message_from_bytes,
    psi_message_to_bytes,
    responder_finish,
    responder_reply,
)

FULL_N = 1_000_000
TARGET_SECONDS = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000,
                        help="IDs per party for the measured run (default 100000)")
    parser.add_argument("--full", action="store_true",
                        help=f"measure {FULL_N:,} x {FULL_N:,} instead of --n (about a minute "
                             "on 2 cores, ~1 GiB of memory)")
    parser.add_argument("--overlap", type=float, default=0.8,
                        help="fraction of each party's IDs in the intersection (default 0.8)")
    parser.add_argument("--workers", type=int, default=min(2, default_workers()),
                        help="processes per blinding step (default: 2, or fewer cores)")
    parser.add_argument("--sample", type=int, default=20_000,
                        help="IDs for the single-core rate measurement (default 20000)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the results as JSON to PATH")
    return parser.parse_args(argv)


def make_ids(n: int, overlap: float) -> tuple[list[str], list[str]]:
    """Two lists of n 18-character IDs sharing round(overlap * n)."""
    shared = round(overlap * n)
    a = [f"{i:018d}" for i in range(n)]
    b = [f"{i:018d}" for i in range(n - shared, 2 * n - shared)]
    return a, b


def measure_single_core(sample: int) -> dict[str, float]:
    """IDs per second on one core for the blind and double-blind steps."""
    ids = [f"{i:018d}".encode() for i in range(sample)]
    session, scalar_a, scalar_b = new_psi_session(), os.urandom(32), os.urandom(32)
    start = time.perf_counter()
    points = hash_ids_to_points(ids, session_id=session.session_id, salt=session.salt)
    blinded = blind_points(scalar_a, points, workers=1)
    blind_s = time.perf_counter() - start
    start = time.perf_counter()
    blind_points(scalar_b, blinded, workers=1)
    double_s = time.perf_counter() - start
    return {"blind_ids_per_s_per_core": sample / blind_s,
            "double_blind_ids_per_s_per_core": sample / double_s}


def _wire(message):  # type: ignore[no-untyped-def]
    return psi_message_from_bytes(psi_message_to_bytes(message))


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_protocol(a: list[str], b: list[str], workers: int) -> dict[str, float]:
    """Wall time of each step of one two-party session, run locally, and its CPU time."""
    times: dict[str, float] = {}
    cpu_start = _cpu_seconds()
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[name] = now - clock
        clock = now

    session = new_psi_session()
    state_a, first = initiator_start(a, session, workers=workers)
    lap("1_initiator_hash_blind_s")
    state_b, reply = responder_reply(b, _wire(first), workers=workers)
    lap("2_responder_double_blind_and_blind_s")
    result_a, final = initiator_finish(state_a, _wire(reply), workers=workers)
    lap("3_initiator_double_blind_and_match_s")
    result_b = responder_finish(state_b, _wire(final))
    lap("4_responder_match_s")
    times["total_s"] = sum(times.values())
    times["cpu_core_s"] = _cpu_seconds() - cpu_start
    times["intersection_size"] = float(result_a.size)
    if set(result_a.ids) != set(result_b.ids):
        raise SystemExit("PSI results of the two parties differ: benchmark invalid")
    return times


def report(results: dict) -> None:  # type: ignore[type-arg]
    print(f"cores available: {results['cores']}, workers: {results['workers']}, "
          f"load average before/after: {results['load_before']} / {results['load_after']}")
    for key in ("blind_ids_per_s_per_core", "double_blind_ids_per_s_per_core"):
        print(f"{key:40s} {results['single_core'][key]:12,.0f}")
    n = results["n"]
    print(f"measured {n:,} x {n:,} on {results['workers']} workers:")
    for key, value in results["run"].items():
        print(f"  {key:40s} {value:12,.2f}")
    label = "MEASURED" if results["full_measured"] else "PROJECTED (linear from measured run)"
    print(f"{FULL_N:,} x {FULL_N:,}: {results['full_seconds']:.1f} s wall [{label}]; "
          f"{results['full_seconds_idle']:.1f} s on idle cores (CPU s / workers); "
          f"ideal from per-core rates: {results['full_seconds_from_rates']:.1f} s; "
          f"target <= {TARGET_SECONDS:.0f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(shlex.quote(part) for part in [sys.executable, *sys.argv])
    print(f"command: {command}")
    n = FULL_N if args.full else args.n
    load_before = [round(x, 2) for x in os.getloadavg()]
    single = measure_single_core(args.sample)
    a, b = make_ids(n, args.overlap)
    run = run_protocol(a, b, args.workers)
    per_id = (2 / single["blind_ids_per_s_per_core"]
              + 2 / single["double_blind_ids_per_s_per_core"])
    results = {
        "command": command, "n": n, "overlap": args.overlap, "workers": args.workers,
        "cores": default_workers(), "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "single_core": single, "run": run, "full_measured": args.full,
        "full_seconds": run["total_s"] * FULL_N / n,
        "full_seconds_idle": run["cpu_core_s"] / args.workers * FULL_N / n,
        "full_seconds_from_rates": FULL_N * per_id / args.workers,
        "target_seconds": TARGET_SECONDS,
    }
    report(results)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
