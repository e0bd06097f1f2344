"""State sealers of the banks: plain and Paillier, chosen by the run config; banks agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.run import key_store
from federation.run.config import RunConfig
from federation.run.key_store import load_bank_private_key, provision_simulation_keys
from federation.steps.shared_state import (
    PLAIN_STATE_VERSION,
    PaillierStateSealer,
    PlainStateSealer,
    StateSealer,
    bank_state_sealer,
    blobs_agree,
)
from protocols.aggregation import shared_state
from protocols.errors import MalformedMessageError, StateTamperedError
from protocols.paillier.keys import generate_paillier_keypair

BANKS = 3
STATE = b"level 2: splits (3, 17), (0, 4); next nodes 4..7"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A key folder with a 512-bit Paillier key (insecure, tests only) for three banks."""
    folder = tmp_path_factory.mktemp("keys")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_store, "generate_paillier_keypair",
                      lambda bits: generate_paillier_keypair(512, allow_insecure_test_key=True))
        provision_simulation_keys(folder, BANKS, bits=512)
    return str(folder)


@pytest.fixture(scope="module")
def sealers(keys_dir: str) -> list[StateSealer]:
    cfg = RunConfig(banks=BANKS, aggregation="paillier", keys_dir=keys_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_store, "LOAD_MIN_KEY_BITS", 512)  # the loaders refuse < 2048 bits
        return [bank_state_sealer(cfg, bank) for bank in range(BANKS)]


def test_paillier_runs_get_aes_siv_sealers_that_agree(sealers: list[StateSealer]) -> None:
    assert all(isinstance(s, PaillierStateSealer) and isinstance(s, StateSealer)
               for s in sealers)
    blobs = [s.seal(STATE, run_id="run-7", seq=4) for s in sealers]
    assert blobs_agree(blobs) and STATE not in blobs[0]
    for sealer in sealers:
        for blob in blobs:
            assert sealer.open(blob, run_id="run-7", seq=4) == STATE


def test_a_bank_with_another_state_is_caught_by_the_coordinator(sealers) -> None:
    blobs = [s.seal(STATE, run_id="r", seq=1) for s in sealers[:2]]
    blobs.append(sealers[2].seal(STATE + b"!", run_id="r", seq=1))
    assert not blobs_agree(blobs)
    assert not blobs_agree([])


def test_paillier_blobs_of_another_run_step_or_key_are_refused(sealers) -> None:
    blob = sealers[0].seal(STATE, run_id="r", seq=2)
    for run_id, seq in (("other", 2), ("r", 3), ("r", 1)):
        with pytest.raises(StateTamperedError):
            sealers[1].open(blob, run_id=run_id, seq=seq)
    stranger = PaillierStateSealer(generate_paillier_keypair(512, allow_insecure_test_key=True)[1])
    with pytest.raises(StateTamperedError):
        stranger.open(blob, run_id="r", seq=2)
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(StateTamperedError):
        sealers[1].open(bytes(tampered), run_id="r", seq=2)


def test_the_secret_does_not_depend_on_the_order_of_the_primes(keys_dir: str) -> None:
    private = load_bank_private_key(keys_dir, 0, min_bits=512)

    class Swapped:
        p, q = private.q, private.p

    a = PaillierStateSealer(private).seal(STATE, run_id="r", seq=0)
    assert PaillierStateSealer(Swapped()).seal(STATE, run_id="r", seq=0) == a
    assert "redacted" in repr(PaillierStateSealer(private))


def test_plain_runs_get_a_readable_sealer() -> None:
    sealer = bank_state_sealer(RunConfig(banks=BANKS), 1)
    assert isinstance(sealer, PlainStateSealer) and isinstance(sealer, StateSealer)
    blob = sealer.seal(STATE, run_id="r", seq=0)
    assert blob == bytes([PLAIN_STATE_VERSION]) + STATE
    assert blobs_agree([blob, PlainStateSealer().seal(STATE, run_id="r", seq=0)])
    assert sealer.open(blob, run_id="r", seq=0) == STATE
    assert sealer.open(sealer.seal(b"", run_id="r", seq=0), run_id="r", seq=0) == b""


def test_plain_sealer_checks_the_version_and_size(sealers, monkeypatch) -> None:
    plain = PlainStateSealer()
    paillier_blob = sealers[0].seal(STATE, run_id="r", seq=0)
    for blob in (b"", bytes([0]) + STATE, paillier_blob):
        with pytest.raises(StateTamperedError, match="version"):
            plain.open(blob, run_id="r", seq=0)
    with pytest.raises(StateTamperedError):
        sealers[0].open(plain.seal(STATE, run_id="r", seq=0), run_id="r", seq=0)
    monkeypatch.setattr("federation.steps.shared_state.MAX_STATE_BYTES", 10)
    monkeypatch.setattr(shared_state, "MAX_STATE_BYTES", 10)
    with pytest.raises(MalformedMessageError, match="cap"):
        plain.seal(bytes(11), run_id="r", seq=0)
    with pytest.raises(MalformedMessageError, match="cap"):
        plain.open(bytes([PLAIN_STATE_VERSION]) + bytes(11), run_id="r", seq=0)
    with pytest.raises(MalformedMessageError, match="cap"):
        sealers[0].seal(bytes(11), run_id="r", seq=0)


def test_a_missing_bank_key_is_a_config_error(tmp_path: Path) -> None:
    from federation.errors import ConfigError

    cfg = RunConfig(banks=BANKS, aggregation="paillier", keys_dir=str(tmp_path))
    with pytest.raises(ConfigError):
        bank_state_sealer(cfg, 0)
