"""The files of a run folder, named once.

A run folder (``fedcredit simulate --out DIR``, ``fedcredit vertical --out DIR``, a deployed
coordinator's ``out``, the local launcher's ``OUT``) holds::

    results.json        what the run measured (federation.run.results owns the format)
    model.npz           the released global weights (horizontal runs)
    preprocessor.json   the shared schema and standardisation (horizontal runs)
    checkpoint.json     the coordinator's state after the last round (server.checkpoint)
    audit.jsonl         the hash-chained audit log (server.audit)
    wire.jsonl          ``--record-wire``: every message the nodes saw (federation.wire.transcript)
    report.html         ``fedcredit report``
    scorecard.json      ``fedcredit export-scorecard``
    processes.json      the local launcher: every process it started
    keys/               a simulation's key ceremony (:class:`KeyFolder`)
    parties/ROLE/       a vertical simulation: each party's own model part (vertical-part.json,
                        federation.run.vertical_part), as a deployed node keeps it

Every module that reads or writes one of these asks :class:`RunFolder` (or
:class:`KeyFolder`) for its path, so a file name is spelt in this module only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from federation.errors import RunFolderError

RESULTS_FILE = "results.json"
MODEL_FILE = "model.npz"
TREE_MODEL_FILE = "model.json"
TREE_BINS_FILE = "bins.json"
XGBOOST_MODEL_FILE = "model.xgboost.json"
PREPROCESSOR_FILE = "preprocessor.json"
CHECKPOINT_FILE = "checkpoint.json"
AUDIT_FILE = "audit.jsonl"
WIRE_FILE = "wire.jsonl"
REPORT_FILE = "report.html"
SCORECARD_FILE = "scorecard.json"
PROCESSES_FILE = "processes.json"
KEYS_DIR = "keys"
PARTIES_DIR = "parties"
VERTICAL_PART_FILE = "vertical-part.json"

PAILLIER_PUBLIC_FILE = "paillier.pub"
SIGNING_REGISTRY_FILE = "signing-registry.json"
PAILLIER_PRIVATE_FILE = "paillier.key"
PAILLIER_WRAPPED_FILE = "paillier.wrapped"
IDENTITY_PRIVATE_FILE = "identity.key"
IDENTITY_PUBLIC_FILE = "identity.pub"
SIGNING_KEY_FILE = "signing.key"
SIGNING_PUBLIC_FILE = "signing.pub"
AUDIT_HEADS_FILE = "audit-heads.jsonl"
PASSPHRASE_FILE = "passphrase"


def probe_writable(folder: Path) -> int:
    """Create ``folder`` if needed, write, fsync and remove a 4 KiB probe file there; return the
    folder's free bytes. A read-only mount, missing permissions or an exhausted quota raise
    OSError here (the caller names the folder and what to do), not at the first real write."""
    probe = folder / ".write-probe.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
        return shutil.disk_usage(folder).free
    except OSError:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write-then-rename so a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class BankKeys:
    """One bank's own key files (``keys/bank-<k>/``); only that bank ever holds them."""

    path: Path

    @property
    def identity_key(self) -> Path:
        """The bank's X25519 identity, sealed under its passphrase."""
        return self.path / IDENTITY_PRIVATE_FILE

    @property
    def identity_public(self) -> Path:
        """Its public half (sent to the bank that wraps the Paillier key)."""
        return self.path / IDENTITY_PUBLIC_FILE

    @property
    def paillier_key(self) -> Path:
        """The Paillier private key sealed under the passphrase (the generating bank)."""
        return self.path / PAILLIER_PRIVATE_FILE

    @property
    def paillier_wrapped(self) -> Path:
        """The Paillier private key wrapped for this bank's identity (the other banks)."""
        return self.path / PAILLIER_WRAPPED_FILE

    @property
    def signing_key(self) -> Path:
        """The bank's Ed25519 signing key, sealed under its passphrase."""
        return self.path / SIGNING_KEY_FILE

    @property
    def passphrase(self) -> Path:
        """Simulation only: the bank's passphrase (mode 0600)."""
        return self.path / PASSPHRASE_FILE

    @property
    def signing_public(self) -> Path:
        """The public half of the signing key (``fedcredit keys init-signing``)."""
        return self.path / SIGNING_PUBLIC_FILE

    @property
    def audit_heads(self) -> Path:
        """The audit-chain heads this bank signed, one JSON line per head
        (:mod:`federation.run.audit_heads`)."""
        return self.path / AUDIT_HEADS_FILE


@dataclass(frozen=True, slots=True)
class KeyFolder:
    """A key-ceremony folder: the public files at the top, one sub-folder per bank."""

    path: Path

    @property
    def paillier_public(self) -> Path:
        """The banks' Paillier public key: the only key file the coordinator reads."""
        return self.path / PAILLIER_PUBLIC_FILE

    @property
    def signing_registry(self) -> Path:
        """Every bank's Ed25519 public key (the coordinator checks signatures with it)."""
        return self.path / SIGNING_REGISTRY_FILE

    def bank(self, index: int) -> BankKeys:
        """Bank ``index``'s own key files."""
        return BankKeys(self.path / f"bank-{index}")


@dataclass(frozen=True, slots=True)
class RunFolder:
    """The files of one run folder (paths only: nothing is read or created here)."""

    path: Path

    @property
    def results(self) -> Path:
        """``results.json``: what the run measured."""
        return self.path / RESULTS_FILE

    @property
    def model(self) -> Path:
        """``model.npz``: the released global weights."""
        return self.path / MODEL_FILE

    @property
    def tree_model(self) -> Path:
        """``model.json``: the released boosted trees (format ``fedcredit-gbdt``)."""
        return self.path / TREE_MODEL_FILE

    @property
    def tree_bins(self) -> Path:
        """``bins.json``: the federated bin edges the trees were grown on."""
        return self.path / TREE_BINS_FILE

    @property
    def xgboost_model(self) -> Path:
        """``model.xgboost.json``: the same trees in XGBoost's JSON model format."""
        return self.path / XGBOOST_MODEL_FILE

    @property
    def preprocessor(self) -> Path:
        """``preprocessor.json``: the shared schema and standardisation."""
        return self.path / PREPROCESSOR_FILE

    def party(self, role: str) -> Path:
        """``parties/ROLE/``: a vertical simulation's folder of one party (its model part)."""
        return self.path / PARTIES_DIR / role

    @property
    def checkpoint(self) -> Path:
        """``checkpoint.json``: the coordinator's state after the last round."""
        return self.path / CHECKPOINT_FILE

    @property
    def audit(self) -> Path:
        """``audit.jsonl``: the hash-chained audit log."""
        return self.path / AUDIT_FILE

    @property
    def wire(self) -> Path:
        """``wire.jsonl``: the nodes' wire transcript (``--record-wire``)."""
        return self.path / WIRE_FILE

    @property
    def report(self) -> Path:
        """``report.html``: the default output of ``fedcredit report``."""
        return self.path / REPORT_FILE

    @property
    def scorecard(self) -> Path:
        """``scorecard.json``: the default output of ``fedcredit export-scorecard``."""
        return self.path / SCORECARD_FILE

    @property
    def processes(self) -> Path:
        """``processes.json``: every process a local launcher started (cleanup checks)."""
        return self.path / PROCESSES_FILE

    @property
    def keys(self) -> KeyFolder:
        """``keys/``: the key ceremony a simulation runs for its banks."""
        return KeyFolder(self.path / KEYS_DIR)

    def require(self, path: Path, *, hint: str = "") -> Path:
        """``path`` (one of this folder's files) if it exists.

        Raises
        ------
        RunFolderError
            The file is missing; the message names it and says how to create the folder.
        """
        if not path.is_file():
            raise RunFolderError(
                f"{self.path}: {path.name} not found{hint}; this is not a complete run folder. "
                f"Create one with `fedcredit simulate --out {self.path}`.")
        return path


def find_party_file(source: Path, role: str, name: str) -> Path | None:
    """A party's file ``name`` (a trained model part) in ``source``: the file itself, a party's
    own folder, or a simulation's run folder (``parties/ROLE/``); None when there is none."""
    if source.is_file():
        return source if source.name == name else None
    for path in (source / name, RunFolder(source).party(role) / name):
        if path.is_file():
            return path
    return None


def read_party_text(path: Path, what: str) -> str:
    """The text of a party's file; RunFolderError naming it and ``what`` it should hold."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunFolderError(f"{path}: cannot read the {what} ({exc}).") from exc
