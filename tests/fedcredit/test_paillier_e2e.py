"""Encrypted aggregation end to end: the coordinator holds no private key and sees only
ciphertexts; the encrypted run reaches the plaintext run's AUC."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gmpy2
import numpy as np
import pytest
from flwr.app import ConfigRecord

from federation.run.config import RunConfig
from federation.run.key_store import load_bank_private_key, provision_simulation_keys
from federation.steps.secure_sum import PaillierCoordinatorSum, coordinator_summation
from federation.wire.records import sealed_from_record

from .test_simulate_e2e import record_run


@pytest.fixture(scope="module")
def keys_2048(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    provision_simulation_keys(folder, 3, bits=2048)
    return folder


def test_coordinator_side_has_public_key_only(keys_2048: Path) -> None:
    cfg = RunConfig(aggregation="paillier", keys_dir=str(keys_2048), banks=3)
    combiner = coordinator_summation(cfg)
    assert isinstance(combiner, PaillierCoordinatorSum)
    assert not hasattr(combiner, "private_key")
    assert not any(n.startswith("paillier.key") for n in (p.name for p in keys_2048.iterdir()))


@pytest.mark.slow
def test_encrypted_run_matches_plain_run_and_leaks_no_key(
    tmp_path: Path, data_dir: Path, keys_2048: Path
) -> None:
    base = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=3,
                     rounds=3, out=str(tmp_path))
    plain, _ = record_run(base)
    enc_cfg = dataclasses.replace(base, aggregation="paillier", keys_dir=str(keys_2048))
    encrypted, seen = record_run(enc_cfg)
    assert abs(encrypted.history[-1].auc - plain.history[-1].auc) < 0.002
    for a, b in zip(encrypted.weights, plain.weights, strict=True):  # quantisation error only
        assert np.max(np.abs(a - b)) < 1e-3

    private = load_bank_private_key(str(keys_2048), 0)
    secrets_hex = [format(int(private.p), "x"), format(int(private.q), "x")]
    secrets_dec = [str(int(private.p)), str(int(private.q))]
    n = int(private.public_key.n)
    sealed_seen = 0
    for _direction, msg in seen:
        if not msg.has_content():
            continue
        for key, rec in msg.content.items():
            if not isinstance(rec, ConfigRecord):
                continue
            blob = b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in rec.values())
            assert not any(s.encode() in blob for s in secrets_hex + secrets_dec), key
            if "payload" in rec:
                sealed = sealed_from_record(rec)
                assert sealed.scheme == "paillier-2048"
                sealed_seen += 1
    assert sealed_seen > 10
    assert gmpy2.is_prime(int(private.p)) and int(private.p) * int(private.q) == n
