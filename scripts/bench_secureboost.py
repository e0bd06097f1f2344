"""Benchmark vertical SecureBoost (bank + credit center) on the UCI default data.

Split as in ``bench_vertical.py``: the bank holds LIMIT_BAL, PAY_0, PAY_2..PAY_6, BILL_AMT1..6,
PAY_AMT1..6 (19 features) and the label; the center holds SEX, EDUCATION, MARRIAGE and AGE
(4; ``--center-columns`` names others). Rows are split 70/30 (seeded): 21,000 training rows.
One fresh Paillier key of the bank (2048 bits, full-length exponents).

Two processes (the default): the bank and the center each run in their own OS process
(``multiprocessing``, "spawn" context, one ``Pipe`` each). This process splits the CSV by
columns before starting them and hands each party only its own arrays (the bank: its
features and the labels; the center: its features, nothing else); it then acts as the relay:
it calls the party steps of :mod:`federation.steps.vertical_trees` in the coordinator's order
(that of :mod:`federation.steps.secureboost` and ``server/vertical.py``) and only forwards the
bytes, lists and strings each step returns. The bank generates its key in its own process and
sends the center its public modulus only. Each party times its own work per step inside its
process (``time.perf_counter``; CPU: ``time.process_time`` plus its exited child processes');
the relay times every tree (wall clock) and its own CPU. ``--one-process`` runs both parties
in this process through :func:`federation.steps.secureboost.train_secureboost_local` instead
(the earlier benchmark).

Measured side by side in one run:

* ``encrypt_floor_s``: encrypting every training row's ``(g, h)`` once, in the bank's
  process, with the table its gradients use (the key holder's CRT table,
  :func:`protocols.paillier.fast.key_holder_table_for`): what a tree cannot go below;
  ``seconds_per_tree`` (wall clock per tree, both parties in their own process, relay and
  pipes included) and their ratio (target <= 1.5);
* ``critical_path_s_per_tree``: both parties' own work per tree (they alternate, so it adds
  up), split into the bank's encryption, the bank's other work and the center's work;
* ``row_features_per_core_s``: training rows x features / core-seconds per tree, beside
  FATE's published Hetero-SecureBoost figure (about 7.9k at 1024-bit keys). Cores are counted
  by busy time, not by processes alive: the parties alternate (one waits on its pipe while the
  other works), so each party counts one core for as long as it is inside a step (its wall
  time there, or its CPU time there if that is larger, i.e. if a step used more than one
  thread), and the relay counts its CPU time. ``cores_used`` = core-seconds / wall seconds per
  tree (about 1);
* AUC on the test rows: federated (the bank scoring through the center's answers), the GBDT
  on the joined plaintext rows with the same bins (must be identical: same trees), and
  bank-only; and how many splits the center's columns won.

The plaintext baselines are computed by this harness (which read the whole CSV), not by a party.

``--plaintext-only`` trains only the two plaintext GBDTs (seconds, no keys): how tree
settings were searched for ones where the center's columns add to the bank's.

Example::

    python scripts/bench_secureboost.py --trees 3 --json runs/bench_secureboost.json
    python scripts/bench_secureboost.py --trees 10 --depth 5 --plaintext-only
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import pickle
import random
import resource
import shlex
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from federation.ml.gbdt import BinEdges, GBDTConfig, HistGBDT, Tree, pooled_edges
from federation.ml.metrics import roc_auc
from federation.run.config import resolve_data_path
from federation.steps import vertical_trees as vt
from federation.steps.secureboost import SecureBoostTimings, train_secureboost_local
from protocols.paillier.fast import encrypt_packed, key_holder_table_for
from protocols.paillier.keys import generate_paillier_keypair

CENTER = ("SEX", "EDUCATION", "MARRIAGE", "AGE")
TARGET = "default_next_month"
FATE_ROW_FEATURES_PER_CORE_S = 7_900
#: The bank's steps whose time counts as encryption; every other bank step is "other".
BANK_ENCRYPT_STEPS = frozenset({"gradients"})


# ---------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class PartyData:
    """One party's own columns of the aligned training and test rows (labels: bank only)."""

    x_train: NDArray[np.float64]
    x_test: NDArray[np.float64]
    y_train: NDArray[np.int64] | None = None
    y_test: NDArray[np.int64] | None = None

    def labels(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The training and test labels (only the bank's data has them)."""
        if self.y_train is None or self.y_test is None:
            raise ValueError("this party holds no labels.")
        return self.y_train, self.y_test


@dataclass(frozen=True, eq=False)
class VerticalSplit:
    """The CSV cut by columns (bank | center) and by rows (70/30 seeded)."""

    bank: PartyData
    center: PartyData
    bank_columns: tuple[str, ...]
    center_columns: tuple[str, ...]

    @property
    def n_features(self) -> int:
        """Both parties' features together."""
        return len(self.bank_columns) + len(self.center_columns)


def load_split(path: str | Path, center_columns: Sequence[str], seed: int) -> VerticalSplit:
    """Read the CSV; the center gets ``center_columns``, the bank every other feature and the
    label; rows go to training with probability 0.7 (seeded)."""
    frame = pd.read_csv(resolve_data_path(path))
    missing = [c for c in center_columns if c not in frame.columns]
    if missing:
        raise SystemExit(f"center columns not in {path}: {missing}")
    bank_cols = tuple(c for c in frame.columns if c not in (*center_columns, TARGET, "ID"))
    train = np.random.default_rng(seed).random(len(frame)) < 0.7
    y = frame[TARGET].to_numpy(np.int64)
    bank = frame[list(bank_cols)].to_numpy(float)
    center = frame[list(center_columns)].to_numpy(float)
    return VerticalSplit(PartyData(bank[train], bank[~train], y[train], y[~train]),
                         PartyData(center[train], center[~train]), bank_cols,
                         tuple(center_columns))


def encrypt_floor(private: PaillierPrivateKey, rows: int) -> float:
    """Seconds to encrypt ``rows`` packed 90-bit plaintexts once, with the table the bank's
    gradients use (the key holder's CRT table; built first, untimed, as a run reuses it)."""
    table = key_holder_table_for(private)
    plain = [random.Random(1).getrandbits(90) for _ in range(rows)]
    started = time.perf_counter()
    encrypt_packed(plain, private.public_key, table=table)
    return time.perf_counter() - started


def cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its children that have exited."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


# ---------------------------------------------------------------- party processes

#: What a party sends back for every step: (ok, output or traceback, wall s, CPU s).
Reply = tuple[bool, Any, float, float]


def serve(conn: Connection, handlers: Mapping[str, Callable[..., Any]]) -> None:
    """A party's loop: run each ``(step, args)`` the relay sends, timed in this process,
    until it sends ``None``. A failing step answers its traceback (the loop goes on)."""
    while (message := conn.recv()) is not None:
        step, args = message
        wall, cpu = time.perf_counter(), cpu_seconds()
        try:
            out, ok = handlers[step](*args), True
        except Exception:  # reported to the relay, which raises it
            out, ok = traceback.format_exc(), False
        reply: Reply = (ok, out, time.perf_counter() - wall, cpu_seconds() - cpu)
        conn.send(reply)


class BankParty:
    """The bank's process: its key, its columns and labels, its state of the trees."""

    def __init__(self, data: PartyData, config: GBDTConfig) -> None:
        self.data, self.config = data, config
        self.private: PaillierPrivateKey | None = None
        self.trees: vt.BankTrees | None = None

    def handlers(self) -> dict[str, Callable[..., Any]]:
        """The steps the relay may ask of the bank."""
        return {"keygen": self.keygen, "floor": self.floor, "start": self.start,
                "gradients": self.gradients, "fields": self.fields, "decide": self.decide,
                "apply": self.apply, "score": self.score}

    def keygen(self, bits: int, insecure: bool) -> int:
        """Generate the bank's key pair; only the public modulus leaves the process."""
        public, self.private = generate_paillier_keypair(bits, allow_insecure_test_key=insecure)
        return int(public.n)

    def floor(self) -> float:
        """The encryption floor, measured here (see :func:`encrypt_floor`)."""
        return encrypt_floor(self._key(), len(self.data.x_train))

    def start(self, center_positions: list[int]) -> None:
        """Bin the bank's columns; the center's are seen as their number of split positions."""
        y, y_test = self.data.labels()
        self.trees = vt.bank_start(self.data.x_train, self.data.x_test, y, y_test, self.config,
                                   self._key(), center_positions)

    def gradients(self) -> bytes:
        """Start a tree: every row's ``(g, h)`` encrypted."""
        return vt.bank_gradients(self._state())

    def fields(self) -> tuple[bytes, list[int]]:
        """The row partition and the nodes to build at this level."""
        return vt.level_fields(self._state())

    def decide(self, packed: bytes, count: int) -> str:
        """Open the center's sums and decide the level (the center's splits as JSON)."""
        return vt.bank_decide(self._state(), packed, count)

    def apply(self, ids: list[int], left_bits: bytes) -> bool:
        """Apply the center's splits; whether the tree is complete."""
        return vt.bank_apply(self._state(), ids, left_bits)

    def score(self, branches: bytes) -> tuple[float, list[Tree]]:
        """Test AUC through the center's answers, and the trees (for the harness to compare)."""
        state = self._state()
        _, y_test = self.data.labels()
        return roc_auc(y_test, vt.bank_margins(state, branches)), state.trees

    def _key(self) -> PaillierPrivateKey:
        if self.private is None:
            raise RuntimeError("keygen must come first.")
        return self.private

    def _state(self) -> vt.BankTrees:
        if self.trees is None:
            raise RuntimeError("start must come first.")
        return self.trees


class CenterParty:
    """The credit center's process: its columns only, and the bank's public modulus."""

    def __init__(self, data: PartyData, config: GBDTConfig) -> None:
        self.data, self.config = data, config
        self.trees: vt.CenterTrees | None = None

    def handlers(self) -> dict[str, Callable[..., Any]]:
        """The steps the relay may ask of the center."""
        return {"start": self.start, "level": self.level, "apply": self.apply,
                "branches": self.branches}

    def start(self, modulus: int) -> list[int]:
        """Bin the center's columns under the bank's public key; their split positions."""
        self.trees, positions = vt.center_start(
            self.data.x_train, self.data.x_test, self.config.bins, PaillierPublicKey(modulus),
            gradient_bits=self.config.gradient_bits)
        return positions

    def level(self, ciphertexts: bytes | None, assignment: bytes,
              build: list[int]) -> tuple[bytes, int]:
        """Encrypted, packed ``(G, H)`` sums of the requested nodes."""
        return vt.center_level(self._state(), ciphertexts=ciphertexts, assignment=assignment,
                               build=build)

    def apply(self, splits_json: str) -> tuple[list[int], bytes]:
        """Record the center's splits the bank chose; the rows going left."""
        return vt.center_apply(self._state(), splits_json)

    def branches(self) -> bytes:
        """Each of the center's splits' branch for every test row."""
        return vt.center_branches(self._state())

    def _state(self) -> vt.CenterTrees:
        if self.trees is None:
            raise RuntimeError("start must come first.")
        return self.trees


def bank_process(conn: Connection, data: PartyData, config: GBDTConfig) -> None:
    """Entry point of the bank's process."""
    serve(conn, BankParty(data, config).handlers())


def center_process(conn: Connection, data: PartyData, config: GBDTConfig) -> None:
    """Entry point of the center's process."""
    serve(conn, CenterParty(data, config).handlers())


# ---------------------------------------------------------------- relay


class PartyError(RuntimeError):
    """A party's step raised (its traceback is the message)."""


@dataclass
class StepTimes:
    """A party's own seconds per step name (wall and CPU, inside its process)."""

    wall: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)

    def add(self, step: str, wall: float, cpu: float) -> None:
        """Count one step."""
        self.wall[step] += wall
        self.cpu[step] += cpu
        self.calls[step] += 1

    def total(self, steps: Callable[[str], bool] = lambda _: True) -> tuple[float, float]:
        """Wall and CPU seconds of the steps selected by ``steps``."""
        return (sum(v for k, v in self.wall.items() if steps(k)),
                sum(v for k, v in self.cpu.items() if steps(k)))

    def core_seconds(self) -> float:
        """One core per step while it ran, more if it used more CPU than wall time."""
        return sum(max(self.wall[k], self.cpu[k]) for k in self.wall)


class PartyLink:
    """The relay's end of one party's pipe: forwards a step, returns what the party answered,
    and adds up the party's own time and the bytes through the pipe."""

    def __init__(self, name: str, conn: Connection) -> None:
        self.name, self.conn = name, conn
        self.times = StepTimes()
        self.bytes = 0

    def call(self, step: str, *args: Any) -> Any:
        """Run ``step`` in the party's process."""
        payload = pickle.dumps((step, args), protocol=pickle.HIGHEST_PROTOCOL)
        self.conn.send_bytes(payload)
        answer = self.conn.recv_bytes()
        self.bytes += len(payload) + len(answer)
        ok, out, wall, cpu = pickle.loads(answer)
        if not ok:
            raise PartyError(f"the {self.name}'s step {step!r} failed:\n{out}")
        self.times.add(step, wall, cpu)
        return out

    def take(self) -> tuple[StepTimes, int]:
        """The times and bytes so far, and start counting afresh."""
        out = self.times, self.bytes
        self.times, self.bytes = StepTimes(), 0
        return out


@contextmanager
def party_processes(split: VerticalSplit,
                    config: GBDTConfig) -> Iterator[tuple[PartyLink, PartyLink]]:
    """Start the bank's and the center's processes (spawn), each with only its own data."""
    ctx = mp.get_context("spawn")
    links, procs = [], []
    for name, target, data in (("bank", bank_process, split.bank),
                               ("center", center_process, split.center)):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=target, args=(theirs, data, config), name=name, daemon=True)
        proc.start()
        theirs.close()
        links.append(PartyLink(name, ours))
        procs.append(proc)
    try:
        yield links[0], links[1]
    finally:
        for link, proc in zip(links, procs, strict=True):
            try:
                link.conn.send(None)
            except OSError:
                pass
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
            link.conn.close()


@dataclass
class RunTimes:
    """What a training run measured (seconds summed over its trees unless named per tree)."""

    floor: float
    per_tree: list[float]
    bank_encrypt: tuple[float, float | None]  # (wall, CPU; None: not measured)
    bank_other: tuple[float, float | None]
    center: tuple[float, float | None]
    core_seconds: float
    relay_cpu: float = 0.0
    relay_bytes: int = 0


@dataclass
class Trained:
    """A training run's outcome: the bank's trees, the federated test AUC and the times."""

    trees: list[Tree]
    federated_auc: float
    times: RunTimes


def relay_tree(bank: PartyLink, center: PartyLink) -> None:
    """One tree, in the coordinator's order; only the parties' outputs are forwarded."""
    cts: bytes | None = bank.call("gradients")
    done = False
    while not done:
        assignment, build = bank.call("fields")
        packed, count = center.call("level", cts, assignment, build)
        cts = None
        splits = bank.call("decide", packed, count)
        ids, bits = center.call("apply", splits)
        done = bank.call("apply", ids, bits)


def train_two_processes(split: VerticalSplit, config: GBDTConfig, *, key_bits: int,
                        insecure_key: bool = False) -> Trained:
    """Key, floor, setup, ``config.trees`` trees and scoring with each party in its process."""
    with party_processes(split, config) as (bank, center):
        print(f"keys: {key_bits}-bit Paillier (bank's own, in the bank's process)", flush=True)
        modulus = bank.call("keygen", key_bits, insecure_key)
        floor = bank.call("floor")
        print(f"encrypt floor: {floor:.2f} s for {len(split.bank.x_train)} rows", flush=True)
        bank.call("start", center.call("start", modulus))
        bank.take(), center.take()
        per_tree, cpu = [], time.process_time()
        for t in range(config.trees):
            started = time.perf_counter()
            relay_tree(bank, center)
            per_tree.append(time.perf_counter() - started)
            print(f"tree {t + 1}/{config.trees}: {per_tree[-1]:.2f} s", flush=True)
        relay_cpu = time.process_time() - cpu
        (b_times, b_bytes), (c_times, c_bytes) = bank.take(), center.take()
        auc, trees = bank.call("score", center.call("branches"))
    times = RunTimes(floor, per_tree, b_times.total(lambda s: s in BANK_ENCRYPT_STEPS),
                     b_times.total(lambda s: s not in BANK_ENCRYPT_STEPS), c_times.total(),
                     b_times.core_seconds() + c_times.core_seconds() + relay_cpu, relay_cpu,
                     b_bytes + c_bytes)
    return Trained(trees, auc, times)


def train_one_process(split: VerticalSplit, config: GBDTConfig, *, key_bits: int,
                      insecure_key: bool = False) -> Trained:
    """Both parties in this process (:func:`train_secureboost_local`), as before."""
    print(f"keys: {key_bits}-bit Paillier (bank's own)", flush=True)
    _, private = generate_paillier_keypair(key_bits, allow_insecure_test_key=insecure_key)
    floor = encrypt_floor(private, len(split.bank.x_train))
    print(f"encrypt floor: {floor:.2f} s for {len(split.bank.x_train)} rows", flush=True)
    t = SecureBoostTimings()
    y, y_test = split.bank.labels()
    model = train_secureboost_local(split.bank.x_train, y, split.center.x_train, config,
                                    private_key=private, bank_test=split.bank.x_test,
                                    center_test=split.center.x_test, y_test=y_test, timings=t)
    times = RunTimes(floor, t.per_tree, (t.bank_encrypt, None), (t.bank_other, None),
                     (t.center, None), sum(t.per_tree))
    return Trained(model.bank.trees, roc_auc(y_test, model.test_margins()), times)


# ---------------------------------------------------------------- report


def plaintext_aucs(split: VerticalSplit, config: GBDTConfig) -> tuple[HistGBDT, float, float]:
    """The joined-plaintext GBDT (same bins as the federation) and its and bank-only's AUC."""
    bank, center = split.bank, split.center
    y, y_test = bank.labels()
    edges = BinEdges(pooled_edges(bank.x_train, config.bins).cuts
                     + pooled_edges(center.x_train, config.bins).cuts,
                     (0,) * split.n_features, config.bins)
    joined = HistGBDT(config, edges=edges).fit(np.hstack([bank.x_train, center.x_train]), y)
    joined_auc = roc_auc(y_test, joined.decision_function(np.hstack([bank.x_test,
                                                                     center.x_test])))
    bank_only = HistGBDT(config).fit(bank.x_train, y)
    return joined, joined_auc, roc_auc(y_test, bank_only.decision_function(bank.x_test))


def same_trees(a: Sequence[Tree], b: Sequence[Tree]) -> bool:
    """Same number of trees, each with the same split features and node values."""
    return len(a) == len(b) and all(
        np.array_equal(s.feature, t.feature) and np.array_equal(s.value, t.value)
        for s, t in zip(a, b, strict=True))


def center_split_counts(trees: Sequence[Tree], split: VerticalSplit) -> dict[str, int]:
    """How many inner nodes split on each of the center's columns."""
    fb = len(split.bank_columns)
    counts = dict.fromkeys(split.center_columns, 0)
    for tree in trees:
        for feature in tree.feature[(tree.left >= 0) & (tree.feature >= fb)]:
            counts[split.center_columns[int(feature) - fb]] += 1
    return counts


def _per(total: float | None, trees: int) -> float | None:
    return None if total is None else total / trees


def report(run: Trained, split: VerticalSplit, config: GBDTConfig,
           args: argparse.Namespace) -> dict[str, object]:
    """Every number of the benchmark, keyed as in the JSON file."""
    t, trees, rows = run.times, config.trees, len(split.bank.x_train)
    per_tree = float(np.mean(t.per_tree))
    critical = (t.bank_encrypt[0] + t.bank_other[0] + t.center[0]) / trees
    core_s = t.core_seconds / trees
    joined, joined_auc, bank_auc = plaintext_aucs(split, config)
    by_column = center_split_counts(run.trees, split)
    return {
        "mode": "one-process" if args.one_process else "two-process",
        "train_rows": rows, "test_rows": len(split.bank.x_test),
        "bank_features": len(split.bank_columns), "center_features": len(split.center_columns),
        "center_columns": list(split.center_columns), "trees": trees, "depth": config.depth,
        "bins": config.bins, "learning_rate": config.learning_rate, "key_bits": args.key_bits,
        "encrypt_floor_s": t.floor, "seconds_per_tree": per_tree,
        "seconds_each_tree": t.per_tree, "per_tree_over_floor": per_tree / t.floor,
        "critical_path_s_per_tree": critical,
        "relay_and_pipes_s_per_tree": per_tree - critical,
        "bank_encrypt_s_per_tree": t.bank_encrypt[0] / trees,
        "bank_other_s_per_tree": t.bank_other[0] / trees,
        "center_s_per_tree": t.center[0] / trees,
        "bank_encrypt_cpu_s_per_tree": _per(t.bank_encrypt[1], trees),
        "bank_other_cpu_s_per_tree": _per(t.bank_other[1], trees),
        "center_cpu_s_per_tree": _per(t.center[1], trees),
        "relay_cpu_s_per_tree": t.relay_cpu / trees,
        "relay_bytes_per_tree": t.relay_bytes / trees,
        "core_s_per_tree": core_s, "cores_used": core_s / per_tree,
        "wall_s": float(sum(t.per_tree)),
        "row_features_per_core_s": rows * split.n_features / core_s,
        "fate_row_features_per_core_s": FATE_ROW_FEATURES_PER_CORE_S,
        "federated_auc": run.federated_auc, "joined_plaintext_auc": joined_auc,
        "bank_only_auc": bank_auc, "federated_minus_bank_only": run.federated_auc - bank_auc,
        "same_trees_as_joined": same_trees(run.trees, joined.model_.trees),
        "center_splits": sum(by_column.values()), "center_splits_by_column": by_column,
    }


def plaintext_report(split: VerticalSplit, config: GBDTConfig) -> dict[str, object]:
    """``--plaintext-only``: joined vs bank-only GBDT, no keys (seconds; to pick settings)."""
    joined, joined_auc, bank_auc = plaintext_aucs(split, config)
    by_column = center_split_counts(joined.model_.trees, split)
    return {"mode": "plaintext-only", "trees": config.trees, "depth": config.depth,
            "bins": config.bins, "learning_rate": config.learning_rate,
            "joined_plaintext_auc": joined_auc, "bank_only_auc": bank_auc,
            "joined_minus_bank_only": joined_auc - bank_auc,
            "center_splits": sum(by_column.values()), "center_splits_by_column": by_column}


def print_report(result: Mapping[str, object], ratio: float | None) -> None:
    """One line per number, then the speed target (``ratio``: seconds per tree / floor)."""
    for key, value in result.items():
        shown = f"{value:.4f}" if isinstance(value, float) else (
            "[" + ", ".join(f"{v:.2f}" for v in value) + "]"
            if isinstance(value, list) and value and isinstance(value[0], float) else value)
        print(f"{key:>30}: {shown}")
    if ratio is not None:
            print(f"target seconds_per_tree <= 1.5 x encrypt floor: "
              f"{'met' if ratio <= 1.5 else 'missed'} ({ratio:.2f}x)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default="uci",
                        help="UCI default CSV (default: the embedded copy, uci)")
    parser.add_argument("--trees", type=int, default=3)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--bins", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--insecure-test-key", action="store_true",
                        help="allow --key-bits below 2048 (tests only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--center-columns", default=",".join(CENTER),
                        help="the center's columns, comma-separated (default: %(default)s)")
    parser.add_argument("--one-process", action="store_true",
                        help="both parties in this process (the earlier benchmark)")
    parser.add_argument("--plaintext-only", action="store_true",
                        help="only the joined and bank-only plaintext GBDTs (no keys)")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark; print and return its numbers (and write them to ``--json``)."""
    args = parse_args(argv)
    command = "python scripts/bench_secureboost.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    split = load_split(args.data, [c for c in args.center_columns.split(",") if c], args.seed)
    config = GBDTConfig(trees=args.trees, depth=args.depth, bins=args.bins,
                        learning_rate=args.learning_rate)
    result: dict[str, object] = {"command": command}
    ratio = None
    if args.plaintext_only:
        result.update(plaintext_report(split, config))
    else:
        train = train_one_process if args.one_process else train_two_processes
        run = train(split, config, key_bits=args.key_bits, insecure_key=args.insecure_test_key)
        result.update(report(run, split, config, args))
        ratio = float(np.mean(run.times.per_tree)) / run.times.floor
    print_report(result, ratio)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
