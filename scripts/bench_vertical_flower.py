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

``--deploy`` runs Flower's DEPLOYMENT instead of 1.: ``scripts/local_federation.py --mode
vertical`` on the same two files (a SuperLink, the Fleet gateway and two SuperNodes as real
processes on loopback, TLS and node authentication, ``flwr run``), timed per epoch by the
deployed coordinator; the CPU seconds of its processes (SuperNodes, their ClientApp runners,
SuperLink, ServerApp, ...) are sampled every 0.5 s over the whole launch. The protocol
benchmark then runs on the deployed run's rows and run id, and the parties' written weights
must equal the protocol's. ``--also-simulation`` adds the simulation run (its own run id: its
epoch is timed beside the same protocol epoch, its weights not compared).

Prints seconds per epoch of each, their ratio (target <= 1.5), the CPU seconds and the load
average; ``--json PATH`` writes them. The box is shared: read the CPU seconds beside the walls.

Examples::

    python scripts/bench_vertical_flower.py --epochs 1 --json runs/bench_vertical_flower.json
    python scripts/bench_vertical_flower.py --deploy --epochs 1 --json runs/bench_vertical_deploy.json
    python scripts/bench_vertical_flower.py --deploy --transport stream --json runs/stream.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
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
from federation.run.results import RESULTS_FILE, VerticalResults, read_results  # noqa: E402
from federation.run.vertical_config import TRANSPORTS, VerticalConfig  # noqa: E402
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
    parser.add_argument("--deploy", action="store_true",
                        help="run Flower's deployment (SuperLink + two SuperNodes as processes) "
                             "instead of its simulation")
    parser.add_argument("--also-simulation", action="store_true",
                        help="with --deploy: time the simulation's epoch too")
    parser.add_argument("--transport", choices=TRANSPORTS, default="messages",
                        help="how the LR's per-batch messages travel (vertical-transport): "
                             "messages (3 relayed Flower messages per batch) or stream (one "
                             "Flower message per party and epoch, the batches through the "
                             "coordinator's relay)")
    parser.add_argument("--link-state", choices=("file", "memory"), default=None,
                        help="--deploy: the SuperLink's state (default: the launcher's for a "
                             "vertical launch, in memory)")
    parser.add_argument("--timeout", type=float, default=7200.0,
                        help="--deploy: give the deployed launch this many seconds")
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


def bench_config(args: argparse.Namespace, bank: Path, center: Path, out: Path) -> VerticalConfig:
    """The vertical settings every path of this benchmark uses."""
    return VerticalConfig(bank_data=str(bank), center_data=str(center), id_col=ID_COL,
                          target=protocol_bench.TARGET, epochs=args.epochs,
                          batch_size=args.batch_size, learning_rate=args.learning_rate,
                          l2=args.l2, key_bits=args.key_bits, seed=args.seed, out=str(out),
                          transport=args.transport)


def run_flower(args: argparse.Namespace, folder: Path, split: tuple[Path, Path]) -> dict[str, Any]:
    """The Flower simulation run; per epoch wall and CPU seconds, and its run id and config."""
    cfg = bench_config(args, *split, folder / "run")
    marks: list[tuple[float, dict[int, tuple[str, float]]]] = []

    def progress(what: str, done: int, total: int) -> None:
        if what == "batch" and done % (total // args.epochs) == 0:  # training starts: 0
            marks.append((time.perf_counter(), process_cpu()))

    started = time.perf_counter()
    result = run_vertical_federation(cfg, on_progress=progress)
    wall = time.perf_counter() - started
    cpu = [cpu_between(a[1], b[1]) for a, b in zip(marks, marks[1:], strict=False)]
    folder_of = RunFolder(Path(cfg.out))
    return {"run_id": result.run_id, "cfg": cfg, "wall_total": wall,
            "epoch_seconds": list(result.epoch_seconds), "epoch_cpu": cpu,
            "psi_seconds": result.psi_seconds, "train_rows": result.train_rows,
            "bytes_relayed": result.bytes_relayed, "auc": result.auc,
            "parts": {r: folder_of.party(r) / VERTICAL_PART_FILE for r in ("bank", "center")}}


def process_role(pid: int) -> str:
    """What a process of a deployed launch is, from its command line."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    for needle, role in (("clientapp_runner", "clientapp_runner"),
                         ("flwr-clientapp", "clientapp_per_message"),
                         ("flower-superlink", "superlink"), ("supernode", "supernode"),
                         ("superexec", "superexec"), ("fleet_gateway", "gateway"),
                         ("serverapp", "serverapp"), ("node_runner", "node_runner"),
                         ("local_federation", "launcher")):
        if needle in cmd:
            return role
    return "other"


def run_deployed(args: argparse.Namespace, folder: Path,
                 split: tuple[Path, Path]) -> dict[str, Any]:
    """``scripts/local_federation.py --mode vertical`` on the split; per epoch wall (the
    deployed coordinator's), CPU seconds by process role over the whole launch."""
    cfg = bench_config(args, *split, folder / "deploy")
    script = Path(__file__).resolve().parent / "local_federation.py"
    cmd = [sys.executable, str(script), "--mode", "vertical", "--out", cfg.out,
           "--bank-data", cfg.bank_data, "--center-data", cfg.center_data, "--id-col", ID_COL,
           "--target", cfg.target, "--epochs", str(args.epochs), "--batch-size",
           str(args.batch_size), "--seed", str(args.seed), "--timeout", str(args.timeout),
           "--set", f"learning-rate={args.learning_rate}", "--set", f"l2={args.l2}",
           "--set", f"key-bits={args.key_bits}", "--set", f"transport={args.transport}"]
    if args.link_state:
        cmd += ["--link-state", args.link_state]
    seen: dict[int, tuple[str, float]] = {}
    started = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as launcher:
        tail: list[str] = []

        def sample() -> None:
            while launcher.poll() is None:
                for pid, (_, cpu) in process_cpu().items():
                    if pid != os.getpid():
                        role = seen[pid][0] if pid in seen else process_role(pid)
                        seen[pid] = (role, cpu)
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for line in launcher.stdout or ():
            tail = (tail + [line])[-40:]
            if "fedcredit" in line and ("epoch" in line or "federation ready" in line):
                print(f"[deploy] {line.rstrip()}", flush=True)
        status = launcher.wait()
        sampler.join(timeout=5)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit("the deployed launch failed:\n" + "".join(tail))
    results = read_results(Path(cfg.out) / RESULTS_FILE)
    assert isinstance(results, VerticalResults)
    cpu: dict[str, float] = {}
    for role, seconds in seen.values():
        cpu[role] = cpu.get(role, 0.0) + seconds
    nodes = Path(cfg.out) / "nodes"
    parts = {r: next((nodes / r).rglob(VERTICAL_PART_FILE)) for r in ("bank", "center")}
    return {"run_id": results.run_id, "cfg": cfg, "wall_total": wall,
            "epoch_seconds": list(results.epoch_seconds), "cpu_whole_launch": cpu,
            "train_rows": results.train_rows, "auc": results.federated.auc,
            "training_started_seconds": results.training_started_seconds, "parts": parts}


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


def report_flower(label: str, flower: dict[str, Any]) -> None:
    """Print one Flower run's epochs."""
    for idx, wall in enumerate(flower["epoch_seconds"]):
        cpu = flower["epoch_cpu"][idx] if idx < len(flower.get("epoch_cpu", [])) else {}
        print(f"[{label}] epoch {idx}: wall {wall:.2f} s"
              + ("; cpu: " + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items()) if cpu else ""))
    if "cpu_whole_launch" in flower:
        print(f"[{label}] CPU s over the whole launch: " + ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(flower["cpu_whole_launch"].items())))
    print(f"[{label}] {flower['train_rows']} training rows, run id {flower['run_id']}, "
          f"held-out AUC {flower['auc']:.4f}, total wall {flower['wall_total']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "cd /work/main && .venv/bin/python " + shlex.join([sys.argv[0], *sys.argv[1:]])
    print(f"command: {command}")
    out: dict[str, Any] = {"command": command, "cores": os.cpu_count(),
                           "load_avg_start": os.getloadavg(),
                           "args": {k: str(v) for k, v in vars(args).items()}}
    label = "deployed" if args.deploy else "flower"
    with tempfile.TemporaryDirectory(prefix="bench-vertical-flower-") as tmp:
        split = write_split(args.data, args.rows, Path(tmp))
        if args.deploy and args.also_simulation:
            simulation = run_flower(args, Path(tmp) / "simulation", split)
            simulation.pop("cfg"), simulation.pop("parts")
            out["simulation"] = simulation
            report_flower("simulation", simulation)
        flower = (run_deployed if args.deploy else run_flower)(args, Path(tmp), split)
        out["load_avg_after_flower"] = os.getloadavg()
        cfg, part_files = flower.pop("cfg"), flower.pop("parts")
        out[label] = flower
        report_flower(label, flower)
        if not args.skip_protocol:
            data = same_rows(cfg, flower["run_id"])
            protocol = run_protocol(args, data, flower["run_id"])
            out["protocol"] = protocol
            for idx, (b, c) in enumerate(zip(protocol["bank"], protocol["center"], strict=True)):
                print(f"[protocol, two processes] epoch {idx}: wall {max(b['wall'], c['wall']):.2f}"
                      f" s (bank cpu {b['cpu']:.1f} s, center cpu {c['cpu']:.1f} s)")
            parts = {r: read_part(path) for r, path in part_files.items()}
            diff = float(max(np.abs(np.array(parts[r].weights) - protocol["weights"][r]).max()
                             for r in parts))
            out[f"max_weight_diff_{label}_vs_protocol"] = diff
            print(f"max |w_{label} - w_protocol| (each party's written part) = {diff:.1e}")
            per_epoch = float(np.mean(protocol["epoch_seconds"]))
            ratio = float(np.mean(flower["epoch_seconds"]) / per_epoch)
            out[f"ratio_{label}_to_protocol"] = ratio
            print(f"seconds per epoch: {label} {np.mean(flower['epoch_seconds']):.2f}, protocol "
                  f"{per_epoch:.2f}; ratio {ratio:.2f} (target <= 1.5)")
            if "simulation" in out:
                sim = float(np.mean(out["simulation"]["epoch_seconds"]))
                out["ratio_simulation_to_protocol"] = sim / per_epoch
                print(f"simulation {sim:.2f} s per epoch (its own run id and split): ratio "
                      f"{sim / per_epoch:.2f}")
    out["load_avg_end"] = os.getloadavg()
    print(f"load average start {out['load_avg_start']}, after {label} "
          f"{out['load_avg_after_flower']}, end {out['load_avg_end']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1, default=float))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
