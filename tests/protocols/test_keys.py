"""Key ceremony: generation policy, fingerprints, serde, sealing and wrapping."""

from __future__ import annotations

import base64
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import KeyCeremonyError, KeyMismatchError
from protocols.identity.envelopes import open_with_passphrase, seal_with_passphrase
from protocols.paillier.keys import (
    check_key_pair,
    generate_identity,
    generate_paillier_keypair,
    identity_public_from_bytes,
    identity_public_to_bytes,
    key_fingerprint,
    open_identity,
    open_private_key,
    private_key_from_bytes,
    private_key_to_bytes,
    public_key_from_bytes,
    public_key_to_bytes,
    seal_identity,
    seal_private_key,
    unwrap_private_key,
    wrap_private_key,
)

FAST = 10  # scrypt log2(N) for tests; production default is 15
PASS = "correct horse battery"


def _rand(seed: int):
    rng = random.Random(seed)
    return lambda k: rng.randbytes(k)


def _tamper(blob: bytes, field: str) -> bytes:
    doc = json.loads(blob)
    if field == "ciphertext":
        raw = bytearray(base64.b64decode(doc["ciphertext"]))
        raw[0] ^= 1
        doc["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    elif field == "context":
        doc["context"]["fingerprint"] = "0" * 64
    else:
        doc[field] = "00" * (len(doc[field]) // 2)
    return json.dumps(doc).encode()


def test_small_keys_need_explicit_opt_in() -> None:
    with pytest.raises(KeyCeremonyError, match="insecure"):
        generate_paillier_keypair(1024)
    pub, _ = generate_paillier_keypair(512, allow_insecure_test_key=True)
    assert pub.n.bit_length() == 512


def test_fingerprint_is_sha256_of_modulus(small_keypair) -> None:
    import hashlib
    pub, _ = small_keypair
    assert key_fingerprint(pub) == hashlib.sha256(pub.n.to_bytes(64, "big")).hexdigest()


def test_key_serde_round_trips(small_keypair, other_small_keypair) -> None:
    pub, priv = small_keypair
    assert public_key_from_bytes(public_key_to_bytes(pub)) == pub
    assert private_key_from_bytes(private_key_to_bytes(priv)) == priv
    check_key_pair(pub, priv)
    with pytest.raises(KeyMismatchError):
        check_key_pair(other_small_keypair[0], priv)
    doc = json.loads(private_key_to_bytes(priv))
    doc["p"] = format(priv.p + 2, "x")
    with pytest.raises(KeyCeremonyError, match="inconsistent"):
        private_key_from_bytes(json.dumps(doc).encode())
    doc = json.loads(public_key_to_bytes(pub))
    doc["n"] = format(pub.n + 2, "x")
    with pytest.raises(KeyCeremonyError, match="fingerprint"):
        public_key_from_bytes(json.dumps(doc).encode())
    for junk in (b"", b"\xff", b"[]", b'{"kind": "paillier-public-key"}'):
        with pytest.raises(KeyCeremonyError):
            public_key_from_bytes(junk)


def test_the_same_private_key_bytes_are_parsed_once_per_process(
    small_keypair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every simulated bank opens its own envelope of the shared key: the same bytes are
    checked (primality, CRT constants) once; an inconsistent key is refused every time."""
    from protocols.paillier import keys as keys_module

    _, priv = small_keypair
    data = private_key_to_bytes(priv) + b" "  # bytes no other test parsed (JSON allows it)
    checks: list[int] = []
    real = keys_module.gmpy2.is_prime
    monkeypatch.setattr(keys_module.gmpy2, "is_prime", lambda v: checks.append(1) or real(v))
    first = private_key_from_bytes(data)
    assert first == priv and len(checks) == 2
    assert private_key_from_bytes(bytearray(data)) is first and len(checks) == 2
    doc = json.loads(data)
    doc["p"] = format(priv.p + 2, "x")
    for _ in range(2):
        with pytest.raises(KeyCeremonyError, match="inconsistent"):
            private_key_from_bytes(json.dumps(doc).encode())


@settings(max_examples=10, deadline=None)
@given(payload=st.binary(max_size=200), passphrase=st.text(min_size=8, max_size=30),
       seed=st.integers(0, 2**32))
def test_passphrase_seal_round_trip(payload, passphrase, seed) -> None:
    blob = seal_with_passphrase(payload, passphrase, kind="test", random_bytes=_rand(seed),
                                scrypt_log2_n=FAST)
    assert open_with_passphrase(blob, passphrase, kind="test") == payload


def test_sealed_private_key_failures(small_keypair) -> None:
    _, priv = small_keypair
    blob = seal_private_key(priv, PASS, scrypt_log2_n=FAST)
    assert open_private_key(blob, PASS) == priv
    with pytest.raises(KeyCeremonyError, match="wrong passphrase or the file was modified"):
        open_private_key(blob, PASS + "!")
    for field in ("ciphertext", "nonce"):
        with pytest.raises(KeyCeremonyError, match="wrong passphrase or the file was modified"):
            open_private_key(_tamper(blob, field), PASS)
    doc = json.loads(blob)
    doc["kdf"]["log2_n"] = 11
    with pytest.raises(KeyCeremonyError):
        open_private_key(json.dumps(doc).encode(), PASS)
    with pytest.raises(KeyCeremonyError, match="expected a"):
        open_identity(blob, PASS)
    with pytest.raises(KeyCeremonyError, match="unreadable"):
        open_private_key(blob[:-10], PASS)
    with pytest.raises(KeyCeremonyError, match="shorter"):
        seal_private_key(priv, "short")


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_wrap_unwrap_round_trip(small_keypair, seed) -> None:
    _, priv = small_keypair
    identity = generate_identity(random_bytes=_rand(seed))
    blob = wrap_private_key(priv, identity.public_key(), random_bytes=_rand(seed + 1))
    fingerprint = key_fingerprint(priv.public_key)
    assert unwrap_private_key(blob, identity, expected_fingerprint=fingerprint) == priv


def test_wrap_failures(small_keypair, other_small_keypair) -> None:
    _, priv = small_keypair
    identity, stranger = generate_identity(), generate_identity()
    blob = wrap_private_key(priv, identity.public_key())
    with pytest.raises(KeyCeremonyError, match="another bank"):
        unwrap_private_key(blob, stranger)
    for field in ("ciphertext", "context", "ephemeral"):
        with pytest.raises(KeyCeremonyError):
            unwrap_private_key(_tamper(blob, field), identity)
    with pytest.raises(KeyCeremonyError, match="expected"):
        unwrap_private_key(blob, identity,
                           expected_fingerprint=key_fingerprint(other_small_keypair[0]))
    with pytest.raises(KeyCeremonyError):
        unwrap_private_key(b"not json", identity)


def test_identity_round_trip() -> None:
    identity = generate_identity(random_bytes=_rand(3))
    public = identity_public_from_bytes(identity_public_to_bytes("bank-a", identity))
    assert public.name == "bank-a"
    sealed = seal_identity("bank-a", identity, PASS, scrypt_log2_n=FAST)
    name, opened = open_identity(sealed, PASS)
    assert name == "bank-a"
    assert public.public_key_hex == opened.public_key().public_bytes_raw().hex()
    with pytest.raises(KeyCeremonyError):
        identity_public_from_bytes(b'{"kind": "x25519-identity-public", "name": "a"}')
    with pytest.raises(ValueError):
        identity_public_to_bytes("no spaces allowed", identity)
