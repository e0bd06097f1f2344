"""Where a run's keys live on disk, and the key ceremony a simulation runs for its banks.

Layout of a keys folder (the same files ``fedcredit keys`` writes)::

    paillier.pub                 public key: the only file the coordinator reads
    bank-<k>/identity.key        bank k's X25519 identity, sealed under its passphrase
    bank-<k>/identity.pub        its public half
    bank-<k>/paillier.key        bank 0: the Paillier private key sealed under its passphrase
    bank-<k>/paillier.wrapped    banks 1..K-1: the private key wrapped for their identity
    bank-<k>/passphrase          simulation only: the bank's passphrase (mode 0600)

Ceremony (simulation): bank 0 generates the Paillier pair, every other bank creates an X25519
identity, bank 0 wraps the private key for each identity (X25519 + HKDF-SHA256 + AES-GCM).
In a deployment each bank keeps its passphrase in the environment variable
``FEDCREDIT_KEY_PASSPHRASE`` instead of the ``passphrase`` file.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from federation.errors import ConfigError
from protocols.keys import (
    generate_identity, generate_paillier_keypair, identity_public_to_bytes, key_fingerprint,
    open_identity, open_private_key, public_key_from_bytes, public_key_to_bytes, seal_identity,
    seal_private_key, unwrap_private_key, wrap_private_key,
)

PUBLIC_FILE = "paillier.pub"
PASSPHRASE_ENV = "FEDCREDIT_KEY_PASSPHRASE"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def bank_dir(keys_dir: str | Path, bank: int) -> Path:
    """Folder of bank ``bank``'s key files."""
    return Path(keys_dir) / f"bank-{bank}"


def provision_simulation_keys(keys_dir: str | Path, banks: int, *, bits: int = 2048) -> str:
    """Run the banks' key ceremony for a simulation; returns the key fingerprint."""
    keys_dir = Path(keys_dir)
    public_key, private_key = generate_paillier_keypair(bits)
    keys_dir.mkdir(parents=True, exist_ok=True)
    (keys_dir / PUBLIC_FILE).write_bytes(public_key_to_bytes(public_key))
    for bank in range(banks):
        folder = bank_dir(keys_dir, bank)
        passphrase = secrets.token_urlsafe(24)
        _write_private(folder / "passphrase", passphrase.encode())
        identity = generate_identity()
        _write_private(folder / "identity.key", seal_identity(f"bank-{bank}", identity, passphrase))
        (folder / "identity.pub").write_bytes(identity_public_to_bytes(f"bank-{bank}", identity))
        if bank == 0:
            _write_private(folder / "paillier.key", seal_private_key(private_key, passphrase))
        else:
            _write_private(folder / "paillier.wrapped",
                           wrap_private_key(private_key, identity.public_key()))
    return key_fingerprint(public_key)


def load_public_key(keys_dir: str | Path) -> PaillierPublicKey:
    """The banks' public key (what the coordinator holds)."""
    path = Path(keys_dir) / PUBLIC_FILE
    if not path.exists():
        raise ConfigError(f"{path} not found; run the key ceremony (fedcredit keys ...) and "
                          "give the coordinator the banks' paillier.pub.")
    return public_key_from_bytes(path.read_bytes())


def _passphrase(folder: Path) -> str:
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    file = folder / "passphrase"
    if file.exists():
        return file.read_text().strip()
    raise ConfigError(f"no passphrase for {folder}: set {PASSPHRASE_ENV}.")


@lru_cache(maxsize=8)
def load_bank_private_key(keys_dir: str, bank: int) -> PaillierPrivateKey:
    """Bank ``bank``'s copy of the shared private key (opened or unwrapped, then cached)."""
    folder = bank_dir(keys_dir, bank)
    passphrase = _passphrase(folder)
    public_key = load_public_key(keys_dir)
    if (folder / "paillier.key").exists():
        private_key = open_private_key((folder / "paillier.key").read_bytes(), passphrase)
    elif (folder / "paillier.wrapped").exists():
        _, identity = open_identity((folder / "identity.key").read_bytes(), passphrase)
        private_key = unwrap_private_key((folder / "paillier.wrapped").read_bytes(), identity,
                                         expected_fingerprint=key_fingerprint(public_key))
    else:
        raise ConfigError(f"{folder} holds neither paillier.key nor paillier.wrapped; finish "
                          "the key ceremony for this bank.")
    if key_fingerprint(private_key.public_key) != key_fingerprint(public_key):
        raise ConfigError(f"{folder}: private key does not match {PUBLIC_FILE}.")
    return private_key
