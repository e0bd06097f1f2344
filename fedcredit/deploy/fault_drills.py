"""Fault drills against a real local federation (``scripts/fault_drill.py``).

Each drill starts ``scripts/local_federation.py`` (separate OS processes, TLS, node
authentication, Paillier), injects one fault at a chosen moment and measures what the
deployment does about it:

``kill-bank``
    SIGKILL of one bank's whole process tree (runner, SuperNode, ClientApp) after round 1:
    the run must complete with the others, exit 0, the bank listed as a dropout.
``restart-bank``
    The same kill, then the bank restarted 10 s later with the same key and ``node.toml``:
    it must rejoin (``fedcredit node`` waits out the SuperLink's heartbeat window) and train
    in a later round.
``superlink-resume``
    SIGKILL of the SuperLink's process tree after round 2: the launcher must stop and print
    the resume command; ``--resume`` must complete with the model of an uninterrupted run.
``disk-full``
    The coordinator's run folder on a small tmpfs, filled after round 1 so that the round-2
    checkpoint cannot be written: the run must stop with one line, leave a consistent
    checkpoint/audit pair, and resume (after room is freed) to the uninterrupted model. Needs
    the right to mount (root); elsewhere the drill is skipped and says so (the unit tests
    inject ENOSPC instead: ``tests/server/test_checkpoint.py``).
``bad-file``
    One bank's file gets a non-numeric cell after the launcher wrote it: the run must
    complete with the other banks, and the cell's value and the bank's path must appear
    nowhere outside that bank's own folder and log.

Timings: ``detect_s`` is from the fault to the moment the system shows it noticed (a dropout
in the coordinator's checkpoint, the launcher's exit); ``recover_s`` from the fault to the
state the drill waits for (run completed, bank rejoined). ``model_equal`` compares the
released model and AUC with an uninterrupted baseline run where the drill should reproduce it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from fedcredit.deploy.errors import DeploymentError
from fedcredit.deploy.flower_commands import runtime_env
from fedcredit.deploy.launch_plan import Layout
from fedcredit.deploy.processes import descendants, load_records
from federation.run.config import REPO_ROOT
from federation.run.folder import RunFolder

LAUNCHER = REPO_ROOT / "scripts" / "local_federation.py"
POLL_S = 0.5
BANK = 1
"""The bank each drill hits (index)."""
BAD_CELL = f"twelve-{secrets.token_hex(4)}"
"""The bad cell's text; random, so that the app's own source (bundled and copied to every
node, and stored in the SuperLink's database) never holds it and a search for it finds only
what the bank sent or logged."""
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class DrillOptions:
    """The federation every drill runs (defaults: the issue's 4 banks x 4 rounds)."""

    banks: int = 4
    rounds: int = 4
    data: str = "german"
    target: str = "bad"
    timeout: float = 1500.0
    extra: tuple[str, ...] = ()

    def launch_args(self) -> list[str]:
        """The launcher's options."""
        return ["--banks", str(self.banks), "--rounds", str(self.rounds), "--data", self.data,
                "--target", self.target, "--timeout", str(self.timeout), *self.extra]


@dataclass(frozen=True, slots=True)
class DrillResult:
    """What one drill measured."""

    name: str
    passed: bool
    detect_s: float | None = None
    recover_s: float | None = None
    model_equal: bool | None = None
    note: str = ""
    schema_version: int = SCHEMA_VERSION


class Launch:
    """One launcher process, its output in ``log``."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self._handle: TextIO = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed in wait
        self.proc = subprocess.Popen([sys.executable, str(LAUNCHER), *args], cwd=REPO_ROOT,
                                     stdout=self._handle, stderr=subprocess.STDOUT)
        self.t0 = time.monotonic()

    def text(self) -> str:
        """Everything the launcher printed so far."""
        return self.log.read_text(errors="replace")

    def until(self, ready: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll ``ready``; the monotonic time it became true.

        Raises
        ------
        DeploymentError
            The launcher exited or ``timeout`` passed first (naming ``what``).
        """
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise DeploymentError(f"the launcher exited ({self.proc.returncode}) before "
                                      f"{what}; see {self.log}")
            if time.monotonic() > deadline:
                raise DeploymentError(f"no {what} within {timeout:.0f} s; see {self.log}")
            time.sleep(POLL_S)
        return time.monotonic()

    def wait(self, timeout: float) -> int:
        """Wait for the launcher to end (killed after ``timeout``); its exit status."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=60)
        finally:
            self._handle.close()


def checkpoint_doc(out: Path) -> dict[str, Any]:
    """The coordinator's checkpoint (empty before the first one, or mid-rename)."""
    try:
        doc = json.loads(Layout(out).checkpoint.read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def rounds_done(out: Path) -> int:
    """Rounds the coordinator has checkpointed."""
    return int(checkpoint_doc(out).get("rounds_done", 0))


def dropouts(out: Path) -> list[dict[str, Any]]:
    """Dropouts the coordinator recorded, from ``results.json`` once written, else from the
    checkpoint."""
    results = RunFolder(out).results
    if results.is_file():
        listed = json.loads(results.read_text(encoding="utf-8")).get("dropouts")
        if listed:
            return list(listed)
    return list(checkpoint_doc(out).get("dropouts", []))


def audit_records(out: Path) -> list[dict[str, Any]]:
    """The coordinator's audit log, record by record."""
    path = RunFolder(Layout(out).coordinator_run).audit
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def process_pid(out: Path, name: str) -> int:
    """PID the launcher recorded for process ``name`` (``bank-1``, ``superlink``)."""
    for record in load_records(Layout(out).processes):
        if record.name == name:
            return record.pid
    raise DeploymentError(f"{Layout(out).processes} names no process '{name}'.")


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything below it (a machine crash, as far as peers see)."""
    for victim in [pid, *descendants(pid)]:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def released_model(out: Path) -> tuple[dict[str, np.ndarray], float | None]:
    """The coordinator's released weights and the run's federated AUC."""
    folder = RunFolder(Layout(out).coordinator_run)
    weights: dict[str, np.ndarray] = {}
    if folder.model.is_file():
        with np.load(folder.model) as data:
            weights = {k: data[k] for k in data.files}
    auc = None
    if RunFolder(out).results.is_file():
        fed = json.loads(RunFolder(out).results.read_text(encoding="utf-8")).get("federated")
        auc = fed.get("auc") if isinstance(fed, dict) else None
    return weights, auc


def same_model(a: Path, b: Path) -> bool:
    """Whether two runs released the same weights (exactly) and the same AUC."""
    (wa, auc_a), (wb, auc_b) = released_model(a), released_model(b)
    return bool(wa) and wa.keys() == wb.keys() and \
        all(np.array_equal(wa[k], wb[k]) for k in wa) and auc_a == auc_b


def restart_bank(out: Path, index: int, log: Path) -> subprocess.Popen[bytes]:
    """Start bank ``index`` again the way a bank does (``fedcredit node`` on its node.toml)."""
    bank = Layout(out).bank(index)
    env = runtime_env(bank.flwr_home)  # as the launcher started it
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "fedcredit.deploy.node_runner",
                                 "--config", str(bank.node_toml)], env=env, cwd=REPO_ROOT,
                                stdout=handle, stderr=subprocess.STDOUT)


def trained_in_round_after(out: Path, bank: int, after: int) -> bool:
    """Whether ``bank`` trained in a round numbered above ``after`` (audit ``round`` records)."""
    return any(r.get("kind") == "round" and int(r.get("round", 0)) > after
               and bank in r.get("banks", []) for r in audit_records(out))


def leaks(out: Path, needles: Sequence[str], *, allowed: Sequence[Path]) -> list[str]:
    """Files under ``out`` (outside ``allowed``) holding any of ``needles``."""
    found = []
    for path in out.rglob("*"):
        if not path.is_file() or any(path.is_relative_to(a) for a in allowed):
            continue
        data = path.read_bytes()
        if any(n.encode() in data for n in needles):
            found.append(str(path.relative_to(out)))
    return found


def write_results(results: Sequence[DrillResult], path: Path) -> Path:
    """The drills' JSON report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"v": SCHEMA_VERSION, "drills": [
        {"name": r.name, "passed": r.passed, "detect_s": r.detect_s, "recover_s": r.recover_s,
         "model_equal": r.model_equal, "note": r.note} for r in results]}
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


def rounded(seconds: float | None) -> float | None:
    """Seconds to one decimal (None stays None)."""
    return None if seconds is None else round(seconds, 1)


def remove(path: Path) -> None:
    """Remove a drill's folder before it runs again."""
    if path.exists():
        shutil.rmtree(path)
