"""One epoch of the UCI vertical LR through Flower beside the two-process protocol benchmark.

Both on the same rows and settings, in one run (issue 14, part 6):

1. ``flower``: ``fedcredit vertical``'s path (``fedcredit.simulation.vertical``): the natural
   UCI split (bank: the label and account behaviour; center: SEX, EDUCATION, MARRIAGE, AGE)
   written as two files, ECDH-PSI, secure binning, then the vertical LR through Flower's
   simulation engine (two SuperNodes, the coordinator relaying every message). Timed per
   epoch by the coordinator; the CPU seconds of every process of this run (the two Ray actors
   that run the parties, the rest of Ray, this process) are sampled at epoch boundaries.
2. ``protocol``: ``scripts/bench_vertical.py --mode parallel`` (bank and center in two forked
   processes, messages as bytes through queues) on the very rows the Flower run trained on
   (the intersection in ID order, split by the run's salt, each party's own
   standardisation), with the same run id and batch schedule, so both train the same model:
   the weights the two parties wrote into their run folders must equal the protocol's.

Prints seconds per epoch of each, their ratio (target <= 1.5), the CPU seconds and the load
average; ``--json PATH`` writes them. The box is shared: read the CPU seconds beside the walls.

Example::

    python scripts/bench_vertical_flower.py --epochs 1 --json runs/bench_vertical_flower.json
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
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vertical as protocol_bench  # noqa: E402  (the sibling script)

from fedcredit.simulation.vertical import run_vertical_federation  # noqa: E402
from federation.data.vertical_data import align, entity_ids, load_party, prepare  # noqa: E402
from federation.run.config import resolve_data_path  # noqa: E402
from federation.run.folder import VERTICAL_PART_FILE, RunFolder  # noqa: E402
from federation.run.vertical_config import VerticalConfig  # noqa: E402
from federation.run.vertical_part import read_part  # noqa: E402
from protocols.paillier.fast import key_holder_table_for  # noqa: E402
from protocols.paillier.keys import generate_paillier_keypair  # noqa: E402

ID_COL = "ID"
TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="uci", help="UCI default CSV (default: embedded)")
    parser.add_argument("--rows", type=int, default=None, help="first ROWS rows only")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=512, help="rows per batch")
    parser.add_argument("--learning-rate", type=float, default=0.5, help="SGD step size")
    parser.add_argument("--l2", type=float, default=0.0, help="L2 penalty")
    parser.add_argument("--key-bits", type=int, default=2048, help="Paillier modulus size")
    parser.add_argument("--seed", type=int, default=0, help="batch-schedule seed")
    parser.add_argument("--skip-protocol", action="store_true",
                        help="only the Flower run (no ratio)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="write the results to this JSON file")
    return parser.parse_args(argv)


def write_split(data: str, rows: int | None, folder: Path) -> tuple[Path, Path]:
    """The natural UCI vertical split as a bank file and a center file (both with the ID)."""
    frame = pd.read_csv(resolve_data_path(data), dtype=str, keep_default_na=False, nrows=rows)
    center = [ID_COL, *protocol_bench.CENTER_COLUMNS]
    bank = [c for c in frame.columns if c not in protocol_bench.CENTER_COLUMNS]
    paths = folder / "bank.csv", folder / "center.csv"
    frame[bank].to_csv(paths[0], index=False)
    frame[center].to_csv(paths[1], index=False)
    return paths


def process_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of this process and all its descendants, by pid."""
    parent: dict[int, int] = {}
    stats: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
        stats[int(entry)] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    mine, me = {}, os.getpid()
    for pid in stats:
        walk = pid
        while walk > 1 and walk != me:
            walk = parent.get(walk, 1)
        if walk == me:
            mine[pid] = stats[pid]
    return mine


def cpu_between(before: dict[int, tuple[str, float]],
                after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds spent between two samples: the two busiest Ray workers (the parties'
    actors), the rest of Ray, and this process."""
    delta = {pid: (name, cpu - before.get(pid, (name, 0.0))[1])
             for pid, (name, cpu) in after.items()}
    me = os.getpid()
    workers = sorted(((cpu, pid) for pid, (name, cpu) in delta.items()
                      if pid != me and name.startswith("ray::")), reverse=True)
    actors = [cpu for cpu, _ in workers[:2]]
    rest = sum(cpu for pid, (_, cpu) in delta.items() if pid != me) - sum(actors)
    return {"actor_busiest": actors[0] if actors else 0.0,
            "actor_second": actors[1] if len(actors) > 1 else 0.0,
            "other_ray": rest, "coordinator_process": delta.get(me, ("", 0.0))[1]}


def run_flower(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The Flower run; per epoch wall and CPU seconds, and its run id and config."""
    bank, center = write_split(args.data, args.rows, folder)
    cfg = VerticalConfig(bank_data=str(bank), center_data=str(center), id_col=ID_COL,
                         target=protocol_bench.TARGET, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.learning_rate,
                         l2=args.l2, key_bits=args.key_bits, seed=args.seed,
                         out=str(folder / "run"))
    marks: list[tuple[float, dict[int, tuple[str, float]]]] = []

    def progress(what: str, done: int, total: int) -> None:
        if what == "batch" and done % (total // args.epochs) == 0:  # training starts: 0
            marks.append((time.perf_counter(), process_cpu()))

    started = time.perf_counter()
    result = run_vertical_federation(cfg, on_progress=progress)
    wall = time.perf_counter() - started
    cpu = [cpu_between(a[1], b[1]) for a, b in zip(marks, marks[1:], strict=False)]
    return {"run_id": result.run_id, "cfg": cfg, "wall_total": wall,
            "epoch_seconds": list(result.epoch_seconds), "epoch_cpu": cpu,
            "psi_seconds": result.psi_seconds, "train_rows": result.train_rows,
            "bytes_relayed": result.bytes_relayed, "auc": result.auc}


def same_rows(cfg: VerticalConfig, run_id: str) -> dict[str, np.ndarray]:
    """The rows the Flower run trained on, as each party prepared them."""
    parts = {}
    tables = {"bank": load_party(cfg.bank_data, id_col=cfg.id_col, target=cfg.target),
              "center": load_party(cfg.center_data, id_col=cfg.id_col, target=None)}
    common = np.intersect1d(entity_ids(tables["bank"]), entity_ids(tables["center"]))
    for role, table in tables.items():
        positions = np.flatnonzero(np.isin(entity_ids(table), common))
        parts[role] = prepare(align(table, positions), role, run_salt=run_id,
                              test_fraction=cfg.test_fraction)
    y = parts["bank"].y_train
    assert y is not None
    return {"bank_train": parts["bank"].x_train, "center_train": parts["center"].x_train,
            "y_train": np.asarray(y, dtype=np.float64),
            "bank_features": np.array(len(parts["bank"].feature_names)),
            "center_features": np.array(len(parts["center"].feature_names))}


def run_protocol(args: argparse.Namespace, data: dict[str, np.ndarray],
                 run_id: str) -> dict[str, Any]:
    """``bench_vertical.py --mode parallel`` on the same rows, run id and schedule."""
    insecure = args.key_bits < 2048
    keys = tuple(generate_paillier_keypair(args.key_bits, allow_insecure_test_key=insecure)
                 for _ in range(2))
    for _, private_key in keys:
        key_holder_table_for(private_key)
    bench_args = argparse.Namespace(epochs=args.epochs, batch_size=args.batch_size,
                                    learning_rate=args.learning_rate, l2=args.l2, seed=args.seed,
                                    short_exponent=False)
    cpu_before = process_cpu()
    par = protocol_bench.run_parallel(data, keys, bench_args, run_id=run_id,
                                      widths=(int(data["bank_features"]),
                                              int(data["center_features"])))
    cpu = cpu_between(cpu_before, process_cpu())
    walls = [max(b["wall"], c["wall"]) for b, c in
             zip(par["bank"]["epochs"], par["center"]["epochs"], strict=True)]
    return {"epoch_seconds": walls, "bank": par["bank"]["epochs"],
            "center": par["center"]["epochs"], "children_cpu_total": cpu,
            "weights": {"bank": par["bank"]["weights"].tolist(),
                        "center": par["center"]["weights"].tolist()}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "cd /work/main && .venv/bin/python " + shlex.join([sys.argv[0], *sys.argv[1:]])
    print(f"command: {command}")
    out: dict[str, Any] = {"command": command, "cores": os.cpu_count(),
                           "load_avg_start": os.getloadavg(),
                           "args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="bench-vertical-flower-") as tmp:
        flower = run_flower(args, Path(tmp))
        out["load_avg_after_flower"] = os.getloadavg()
        cfg = flower.pop("cfg")
        out["flower"] = flower
        for idx, (wall, cpu) in enumerate(zip(flower["epoch_seconds"], flower["epoch_cpu"],
                                              strict=False)):
            print(f"[flower] epoch {idx}: wall {wall:.2f} s; cpu: "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items()))
        print(f"[flower] {flower['train_rows']} training rows, run id {flower['run_id']}, "
              f"held-out AUC {flower['auc']:.4f}, total wall {flower['wall_total']:.1f} s")
        if not args.skip_protocol:
            data = same_rows(cfg, flower["run_id"])
            protocol = run_protocol(args, data, flower["run_id"])
            out["protocol"] = protocol
            for idx, (b, c) in enumerate(zip(protocol["bank"], protocol["center"], strict=True)):
                print(f"[protocol, two processes] epoch {idx}: wall {max(b['wall'], c['wall']):.2f}"
                      f" s (bank cpu {b['cpu']:.1f} s, center cpu {c['cpu']:.1f} s)")
            parts = {r: read_part(RunFolder(Path(cfg.out)).party(r) / VERTICAL_PART_FILE)
                     for r in ("bank", "center")}
            out["max_weight_diff_flower_vs_protocol"] = float(max(
                np.abs(np.array(parts[r].weights) - protocol["weights"][r]).max()
                for r in parts))
            print("max |w_flower - w_protocol| (each party's written part) = "
                  f"{out['max_weight_diff_flower_vs_protocol']:.1e}")
            ratio = float(np.mean(flower["epoch_seconds"]) / np.mean(protocol["epoch_seconds"]))
            out["ratio_flower_to_protocol"] = ratio
            print(f"seconds per epoch: flower {np.mean(flower['epoch_seconds']):.2f}, protocol "
                  f"{np.mean(protocol['epoch_seconds']):.2f}; ratio {ratio:.2f} (target <= 1.5)")
    out["load_avg_end"] = os.getloadavg()
    print(f"load average start {out['load_avg_start']}, after flower "
          f"{out['load_avg_after_flower']}, end {out['load_avg_end']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1, default=float))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
