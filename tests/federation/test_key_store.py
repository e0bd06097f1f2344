"""Key files at rest (issue 12, part 8): 0600 on every write, scrypt N = 2**17 for new
envelopes (older ones still open), and no Paillier key below the minimum size on load."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from fedcredit.cli.keys import _write
from federation.run import key_store
from federation.run.folder import KeyFolder
from federation.run.key_store import load_public_key, provision_simulation_keys, write_private
from protocols.errors import KeyCeremonyError
from protocols.identity.envelopes import open_with_passphrase, seal_with_passphrase
from protocols.paillier.keys import generate_paillier_keypair, public_key_to_bytes

PASS = "correct horse battery"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_written_over_an_existing_0644_file_ends_0600(tmp_path: Path) -> None:
    for write in (write_private, lambda p, d: _write([(p, d, True)], force=True)):
        path = tmp_path / "secret.key"
        path.write_bytes(b"old")
        path.chmod(0o644)
        write(path, b"new secret")
        assert _mode(path) == 0o600 and path.read_bytes() == b"new secret"
        path.unlink()


def test_the_simulation_ceremony_forces_0600_on_every_private_file(tmp_path: Path) -> None:
    keys = KeyFolder(tmp_path)
    keys.bank(0).path.mkdir(parents=True)
    keys.bank(0).passphrase.write_text("left over from an earlier run")
    keys.bank(0).passphrase.chmod(0o644)
    provision_simulation_keys(tmp_path, 2, paillier=False)
    for bank in range(2):
        files = keys.bank(bank)
        assert _mode(files.passphrase) == 0o600 and _mode(files.signing_key) == 0o600


def test_new_envelopes_use_scrypt_2_17_and_old_2_15_ones_still_open() -> None:
    new = seal_with_passphrase(b"key", PASS, kind="k")
    assert json.loads(new)["kdf"]["log2_n"] == 17
    old = seal_with_passphrase(b"key", PASS, kind="k", scrypt_log2_n=15)
    assert open_with_passphrase(old, PASS, kind="k") == b"key"


def test_a_short_public_key_is_refused_on_load_naming_its_role_not_its_path(
    tmp_path: Path,
) -> None:
    public, _ = generate_paillier_keypair(512, allow_insecure_test_key=True)
    KeyFolder(tmp_path).paillier_public.write_bytes(public_key_to_bytes(public))
    with pytest.raises(KeyCeremonyError) as refused:
        load_public_key(tmp_path)
    message = str(refused.value)
    assert "paillier.pub" in message and "512 bits" in message and "2048" in message
    assert str(tmp_path) not in message
    assert load_public_key(tmp_path, min_bits=512).n == public.n  # tests lower it explicitly
    with pytest.raises(KeyCeremonyError, match="3072"):
        load_public_key(tmp_path, min_bits=3072)


def test_the_default_minimum_is_2048() -> None:
    assert key_store.LOAD_MIN_KEY_BITS == 2048
