"""The run folder's files are named once (federation/run/folder.py) and used by every writer."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from federation.errors import RunFolderError
from federation.run.config import RunConfig
from federation.run.folder import KeyFolder, RunFolder, atomic_write_text
from federation.run.key_store import provision_simulation_keys
from server.audit import AuditLog
from server.checkpoint import save_checkpoint
from server.results import save_model
from server.run_state import FederatedResult

REPO = Path(__file__).resolve().parents[2]
FILE_NAMES = {
    "results.json", "model.npz", "preprocessor.json", "checkpoint.json", "audit.jsonl",
    "report.html", "scorecard.json", "processes.json", "paillier.pub", "signing-registry.json",
    "paillier.key", "paillier.wrapped", "identity.key", "identity.pub", "signing.key",
    "passphrase"}


def test_every_file_keeps_its_name(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in (
        folder.results, folder.model, folder.preprocessor, folder.checkpoint, folder.audit,
        folder.report, folder.scorecard, folder.processes, folder.keys.path)} == {
        "results.json", "model.npz", "preprocessor.json", "checkpoint.json", "audit.jsonl",
        "report.html", "scorecard.json", "processes.json", "keys"}
    keys, bank = folder.keys, folder.keys.bank(3)
    assert keys.paillier_public == tmp_path / "keys" / "paillier.pub"
    assert keys.signing_registry == tmp_path / "keys" / "signing-registry.json"
    assert {p.relative_to(tmp_path / "keys").as_posix() for p in (
        bank.identity_key, bank.identity_public, bank.paillier_key, bank.paillier_wrapped,
        bank.signing_key, bank.passphrase)} == {
        "bank-3/identity.key", "bank-3/identity.pub", "bank-3/paillier.key",
        "bank-3/paillier.wrapped", "bank-3/signing.key", "bank-3/passphrase"}


def test_the_key_ceremony_writes_the_files_the_folder_names(tmp_path: Path) -> None:
    keys = KeyFolder(tmp_path / "keys")
    provision_simulation_keys(keys.path, 2)
    named = {keys.paillier_public, keys.signing_registry, keys.bank(0).paillier_key,
             *(p for k in (0, 1) for p in (keys.bank(k).identity_key, keys.bank(k).identity_public,
                                           keys.bank(k).signing_key, keys.bank(k).passphrase,
                                           keys.bank(k).signing_public)),
             keys.bank(1).paillier_wrapped}
    assert {p for p in keys.path.rglob("*") if p.is_file()} == named


def test_the_coordinator_writes_where_the_folder_says(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    save_model(folder.path, FederatedResult(weights=[np.zeros(3), np.ones(1)]))
    assert folder.model.is_file() and not folder.preprocessor.exists()  # no preprocessor yet
    assert AuditLog(folder.path).path == folder.audit
    assert save_checkpoint(folder.path, RunConfig(), FederatedResult(), "0" * 64) == folder.checkpoint
    assert sorted(p.name for p in folder.path.iterdir()) == ["checkpoint.json", "model.npz"]


def test_a_missing_file_is_named_with_how_to_make_the_folder(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    with pytest.raises(RunFolderError, match="model.npz not found; .*fedcredit simulate --out"):
        folder.require(folder.model)
    folder.results.write_text("{}")
    assert folder.require(folder.results) == folder.results


def test_atomic_writes_leave_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "results.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and [p.name for p in path.parent.iterdir()] == [path.name]


def _string_constants(tree: ast.AST) -> list[tuple[int, str]]:
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_no_other_module_spells_a_run_folder_file_name() -> None:
    owner = REPO / "federation" / "run" / "folder.py"
    found = []
    for package in ("protocols", "federation", "clients", "server", "fedcredit", "scripts"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path == owner:
                continue
            for line, text in _string_constants(ast.parse(path.read_text(encoding="utf-8"))):
                if text in FILE_NAMES:
                    found.append(f"{path.relative_to(REPO)}:{line} {text!r}")
    assert found == [], "name the file through federation.run.folder instead"
