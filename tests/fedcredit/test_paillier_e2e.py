"""Encrypted aggregation end to end: the coordinator holds no private key and sees only
ciphertexts; the encrypted run reaches the plaintext run's AUC."""

from __future__ import annotations

import dataclasses
import gc
import shutil
from pathlib import Path

import numpy as np
import pytest
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from fedcredit.audit_wire.scan import audit_wire
from federation.run.config import RunConfig
from federation.run.folder import KeyFolder, RunFolder
from federation.run.key_store import load_bank_private_key, provision_simulation_keys
from federation.steps.secure_sum import (
    PaillierCoordinatorSum,
    bank_summation,
    coordinator_summation,
)
from federation.wire.records import KEY_SEALED
from federation.wire.transcript import line_from_json, line_to_json, read_transcript

from .test_simulate_e2e import record_run


@pytest.fixture(scope="module")
def keys_2048(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    provision_simulation_keys(folder, 3, bits=2048)
    return folder


def _reachable(root: object, limit: int = 20_000) -> list[object]:
    """Every object reachable from ``root`` (attributes, containers), breadth first."""
    seen, queue, out = {id(root)}, [root], []
    while queue and len(out) < limit:
        obj = queue.pop(0)
        out.append(obj)
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, type):
                seen.add(id(ref))
                queue.append(ref)
    return out


def test_coordinator_side_needs_and_holds_only_the_public_key(keys_2048: Path,
                                                              tmp_path: Path) -> None:
    """The coordinator builds its combiner from a folder holding the public files only (in a
    simulation the ceremony folder also holds bank-0's sealed private key and passphrase,
    which the coordinator must never need), and nothing reachable from it is a private key."""
    ceremony = KeyFolder(keys_2048)
    assert ceremony.bank(0).paillier_key.exists()  # the secret is there to be found...
    coordinator = KeyFolder(tmp_path / "coordinator-keys")
    coordinator.path.mkdir()
    for public in (ceremony.paillier_public, ceremony.signing_registry):
        shutil.copy(public, coordinator.path / public.name)
    combiner = coordinator_summation(RunConfig(aggregation="paillier",
                                               keys_dir=str(coordinator.path), banks=3))
    assert isinstance(combiner, PaillierCoordinatorSum)
    reachable = _reachable(combiner)
    assert any(isinstance(o, PaillierPublicKey) for o in reachable)
    assert not any(isinstance(o, PaillierPrivateKey) for o in reachable)  # ...but not here
    bank_side = _reachable(bank_summation(RunConfig(aggregation="paillier",
                                                    keys_dir=str(keys_2048), banks=3), 0))
    assert any(isinstance(o, PaillierPrivateKey) for o in bank_side)  # the check can fail


def secret_forms(private: PaillierPrivateKey) -> list[bytes]:
    """The private key's primes as a leak could write them: hex, decimal, raw bytes."""
    forms = []
    for prime in (int(private.p), int(private.q)):
        size = (prime.bit_length() + 7) // 8
        forms += [format(prime, "x").encode(), format(prime, "X").encode(),
                  str(prime).encode(), prime.to_bytes(size, "big"), prime.to_bytes(size, "little")]
    return forms


def payloads_holding(path: Path, forms: list[bytes]) -> list[str]:
    """Transcript values that contain any of ``forms``."""
    return [f"line {n} {line.type} {v.record}/{v.key}" for n, line in read_transcript(path)
            for v in line.values if any(form in v.raw for form in forms)]


@pytest.mark.slow
def test_encrypted_run_matches_plain_run_and_leaks_no_key(
    tmp_path: Path, data_dir: Path, keys_2048: Path
) -> None:
    base = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=3,
                     rounds=3, out=str(tmp_path / "plain"))
    plain, _ = record_run(base)
    enc_cfg = dataclasses.replace(base, aggregation="paillier", keys_dir=str(keys_2048),
                                  out=str(tmp_path / "encrypted"))
    from fedcredit.simulation.horizontal import run_federation

    encrypted = run_federation(enc_cfg, record_wire=RunFolder(Path(enc_cfg.out)).wire)
    assert abs(encrypted.history[-1].auc - plain.history[-1].auc) < 0.002
    for a, b in zip(encrypted.weights, plain.weights, strict=True):  # quantisation error only
        assert np.max(np.abs(a - b)) < 1e-3

    wire = RunFolder(Path(enc_cfg.out)).wire
    report = audit_wire(Path(enc_cfg.out), data_dir / "german_credit.csv", target="bad")
    assert report.clean, [f.describe() for f in report.findings]
    schemes = [v.raw for _, line in read_transcript(wire) for v in line.values
               if v.record == KEY_SEALED and v.key == "scheme"]
    assert len(schemes) > 10 and set(schemes) == {b"paillier-2048"}
    forms = secret_forms(load_bank_private_key(str(keys_2048), 0))
    assert payloads_holding(wire, forms) == []
    # the search finds a prime where one is planted (hex inside text, raw bytes in a blob)
    planted = tmp_path / "planted.jsonl"
    text = wire.read_text().splitlines()[0]
    line = line_from_json(text)
    leak = dataclasses.replace(line.values[0], raw=b"x=" + forms[0] + b";")
    planted.write_text(line_to_json(dataclasses.replace(line, values=(leak,))) + "\n")
    assert len(payloads_holding(planted, forms)) == 1
