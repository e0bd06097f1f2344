"""Per-process caches of a bank node (issue 14, part 1): a simulation process hosting many
banks opens each key and cuts each bank's tables once, and a changed key file, passphrase or
run config is never answered from the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from federation.data.bank_data import bank_data
from federation.errors import ConfigError
from federation.run import key_store
from federation.run.config import RunConfig
from federation.run.key_store import (
    load_bank_private_key,
    load_public_key,
    load_signing_key,
    provision_simulation_keys,
)
from protocols.paillier.keys import generate_paillier_keypair, key_fingerprint

BANKS = 9
"""More banks than the old cache held (8): each must stay opened."""


def _public(key: object) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)  # type: ignore[attr-defined]


def test_every_banks_signing_key_is_opened_once_and_a_new_ceremony_is_reread(
    tmp_path: Path,
) -> None:
    provision_simulation_keys(tmp_path, BANKS, paillier=False)
    folder = str(tmp_path)
    first = [load_signing_key(folder, b) for b in range(BANKS)]
    assert [load_signing_key(folder, b) for b in range(BANKS)] == first  # same objects
    assert all(load_signing_key(folder, b) is first[b] for b in range(BANKS))
    provision_simulation_keys(tmp_path, BANKS, paillier=False)  # same folder, new keys
    again = load_signing_key(folder, 3)
    assert again is not None and _public(again) != _public(first[3])
    fresh = load_signing_key.__wrapped__(folder, 3)
    assert _public(fresh) == _public(again)


def test_a_wrong_passphrase_is_refused_even_after_the_key_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    provision_simulation_keys(tmp_path, 3, paillier=False)
    assert load_signing_key(str(tmp_path), 1) is not None
    monkeypatch.setenv(key_store.PASSPHRASE_ENV, "not the bank's passphrase")
    with pytest.raises(ConfigError, match="cannot open the signing key"):
        load_signing_key(str(tmp_path), 1)


def _small_ceremony(folder: Path, banks: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_store, "generate_paillier_keypair",
                        lambda bits: generate_paillier_keypair(512, allow_insecure_test_key=True))
    provision_simulation_keys(folder, banks, bits=512)


def test_private_keys_are_cached_per_bank_and_reread_after_a_new_ceremony(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _small_ceremony(tmp_path, 3, monkeypatch)
    folder = str(tmp_path)
    keys = [load_bank_private_key(folder, b, min_bits=512) for b in range(3)]
    assert len({key_fingerprint(k.public_key) for k in keys}) == 1
    assert all(load_bank_private_key(folder, b, min_bits=512) is keys[b] for b in range(3))
    _small_ceremony(tmp_path, 3, monkeypatch)  # the same folder gets another Paillier key
    renewed = load_bank_private_key(folder, 2, min_bits=512)
    assert key_fingerprint(renewed.public_key) != key_fingerprint(keys[2].public_key)
    assert key_fingerprint(renewed.public_key) == \
        key_fingerprint(load_public_key(folder, min_bits=512))


def test_a_banks_tables_are_cut_once_per_run_config_and_not_shared_across_configs() -> None:
    cfg = RunConfig(banks=BANKS, seed=3)
    first = bank_data(cfg, 5)
    assert bank_data(RunConfig(banks=BANKS, seed=3), 5) is first  # an equal config
    other = bank_data(RunConfig(banks=BANKS, seed=4), 5)
    assert other is not first
    assert other.train.n_rows + other.test.n_rows > 0
    assert sorted(other.train.y.tolist()) != sorted(first.train.y.tolist()) or \
        not other.train.numeric.equals(first.train.numeric)
    with pytest.raises(ConfigError, match="outside"):
        bank_data(cfg, BANKS)


def test_parsing_a_run_config_gives_back_the_same_config() -> None:
    cfg = RunConfig(banks=7, rounds=3, aggregation="secagg", learning_rate=0.2, seed=11,
                    release_model=False, drop_schedule="2:1")
    assert RunConfig.from_user_config(cfg.to_user_config()) == cfg
    with pytest.raises(ConfigError, match="unknown run-config setting 'nope'"):
        RunConfig.from_user_config({**cfg.to_user_config(), "nope": 1})


def test_initial_weights_are_the_seeded_models_built_once_and_handed_out_as_copies() -> None:
    from federation.ml.training import make_model
    from federation.steps.horizontal_bank import initial_weights

    cfg = RunConfig(banks=3, seed=5)
    first = initial_weights(cfg, 7)
    expected = make_model(cfg, 7).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, expected, strict=True))
    first[0][...] = 42.0  # a caller's copy is its own
    again = initial_weights(cfg, 7)
    assert all(np.array_equal(a, b) for a, b in zip(again, expected, strict=True))
    other = initial_weights(RunConfig(banks=3, seed=6), 7)
    assert not all(np.array_equal(a, b) for a, b in zip(other, expected, strict=True))
    assert [w.shape for w in initial_weights(cfg, 9)] != [w.shape for w in expected]


def test_a_banks_design_matrix_is_computed_once_and_handed_out_as_a_copy(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bank scores and trains the same rows with the same preprocessing every round: the
    transform runs once; each caller gets its own copy, and another preprocessing (or another
    table) is never answered from the cache."""
    from dataclasses import replace

    from federation.ml import training
    from federation.ml.preprocess import Preprocessor, pooled_preprocessor

    cfg = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=3)
    data = bank_data(cfg, 1)
    prep = pooled_preprocessor([data.train])
    calls = []
    real = Preprocessor.transform
    monkeypatch.setattr(Preprocessor, "transform",
                        lambda self, table: calls.append(table) or real(self, table))
    first = training.design_matrix(prep, data.train)
    np.testing.assert_array_equal(first, real(prep, data.train))
    first[:] = 99.0  # a caller's changes stay its own
    again = training.design_matrix(prep, data.train)
    np.testing.assert_array_equal(again, real(prep, data.train))
    assert len(calls) == 1
    shifted = replace(prep, means=tuple(m + 1.0 for m in prep.means))
    np.testing.assert_array_equal(training.design_matrix(shifted, data.train),
                                  real(shifted, data.train))
    training.design_matrix(prep, data.test)
    assert calls == [data.train, data.train, data.test]


def test_the_signing_registry_is_parsed_once_per_content_and_reread_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every request a bank answers reads the registry (1,000 keys at 1,000 banks): the same
    bytes are parsed once per process, each caller gets its own dict, and a new ceremony's
    registry (or a damaged one) is never answered from the cache."""
    provision_simulation_keys(tmp_path, 4, paillier=False)
    parsed = []
    real = key_store.public_key_from_hex
    monkeypatch.setattr(key_store, "public_key_from_hex",
                        lambda text: parsed.append(text) or real(text))
    first = key_store.require_signing_registry(str(tmp_path))
    first.pop(0)  # a caller's changes stay its own
    again = key_store.require_signing_registry(str(tmp_path))
    assert sorted(again) == [0, 1, 2, 3] and len(parsed) == 4
    provision_simulation_keys(tmp_path, 4, paillier=False)  # new keys, same folder
    fresh = key_store.require_signing_registry(str(tmp_path))
    assert len(parsed) == 8 and _public_raw(fresh[1]) != _public_raw(again[1])
    registry = next(tmp_path.glob("signing-registry.json"))
    registry.write_text("{not json")
    with pytest.raises(ConfigError, match="not a valid signing registry"):
        key_store.require_signing_registry(str(tmp_path))


def _public_raw(key: object) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)  # type: ignore[attr-defined]
