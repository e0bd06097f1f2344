"""Fuzz update signatures: registered keys, signatures and claims as a hostile bank sends them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.run.key_store import (
    REGISTRY_FILE,
    SIGNING_FILE,
    SIGNING_KIND,
    load_signing_key,
    load_signing_registry,
)
from protocols.errors import FedCreditError
from protocols.identity.envelopes import seal_with_passphrase
from protocols.identity.signing import (
    public_key_from_hex,
    public_key_hex,
    sign_update,
    statement_for,
    verify_update,
)

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
CLAIM = {"run_id": "run-1", "step": "train", "round": 3, "bank": 2, "node_id": 7,
         "key_fingerprint": "ab" * 32}


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_registered_key_hex_raises_only_named_errors(data, fuzz, signing_key) -> None:
    valid = public_key_hex(signing_key.public_key())
    text = data.draw(st.one_of(st.text(max_size=70), fuzz.bytes_like(valid.encode()).map(
        lambda b: b.decode("utf-8", errors="replace"))))
    # the valid input parses (a decoder refusing everything fails here)
    assert public_key_hex(public_key_from_hex(valid)) == valid
    try:
        key = public_key_from_hex(text)
    except FedCreditError:
        return
    assert public_key_hex(key) == bytes.fromhex(text).hex()


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_garbage_signatures_and_claims_fail_with_invalid_signature(data, fuzz,
                                                                   signing_key) -> None:
    payload = b"sealed payload"
    statement = statement_for(payload=payload, **CLAIM)
    signature = sign_update(signing_key, statement)
    verify_update(signing_key.public_key(), signature, statement)  # the genuine one verifies
    forged = data.draw(fuzz.bytes_like(signature, max_size=96))
    claim = {**CLAIM, **data.draw(st.fixed_dictionaries({}, optional={
        "run_id": st.text(max_size=20), "step": st.text(max_size=10),
        "round": st.integers(), "bank": st.integers(), "node_id": st.integers(),
        "key_fingerprint": st.text(max_size=64)}))}
    received = statement_for(payload=data.draw(st.sampled_from([payload, b"", b"other"])),
                             **claim)
    try:
        verify_update(signing_key.public_key(), forged, received)
    except FedCreditError:
        return
    assert forged == signature and received == statement


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_signing_registry_files_raise_only_named_errors(data, fuzz, signing_key) -> None:
    valid = {"0": public_key_hex(signing_key.public_key()), "1": "11" * 32}
    blob = data.draw(fuzz.json_like(valid))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / REGISTRY_FILE).write_text(json.dumps(valid))
        assert sorted(load_signing_registry(folder) or {}) == [0, 1]  # the valid file loads
        (Path(folder) / REGISTRY_FILE).write_bytes(blob)
        try:
            registry = load_signing_registry(folder)
        except FedCreditError:
            return
    assert registry is not None and all(isinstance(bank, int) for bank in registry)
    assert isinstance(json.loads(blob), dict)


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_signing_key_files_raise_only_named_errors(data, fuzz, signing_key) -> None:
    passphrase = "correct horse battery"
    raw = signing_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    sealed = seal_with_passphrase(raw, passphrase, kind=SIGNING_KIND, scrypt_log2_n=10)
    others = [signing_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                        BestAvailableEncryption(passphrase.encode())),
              X25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                        NoEncryption())]
    blob = data.draw(st.one_of(fuzz.bytes_like(sealed, max_size=200), st.sampled_from(others)))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "bank-0").mkdir()
        (Path(folder) / "bank-0" / SIGNING_FILE).write_bytes(blob)
        (Path(folder) / "bank-0" / "passphrase").write_text(passphrase)
        (Path(folder) / "bank-0" / SIGNING_FILE).write_bytes(sealed)
        assert load_signing_key.__wrapped__(folder, 0).private_bytes(  # the valid file loads
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()) == raw
        (Path(folder) / "bank-0" / SIGNING_FILE).write_bytes(blob)
        try:
            key = load_signing_key.__wrapped__(folder, 0)  # past the lru_cache
        except FedCreditError:
            return
    # sealed with AES-GCM: whatever opens is exactly the stored key, never a misread one
    assert key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()) == raw
