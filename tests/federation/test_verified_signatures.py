"""A process remembers only signatures it verified, for exactly the key, signature and
statement it verified them under."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.steps import verified_signatures
from federation.steps.verified_signatures import verify_once
from protocols.identity.signing import InvalidSignatureError, sign_update, statement_for


def _statement(bank: int = 3):
    return statement_for(run_id="run", step="secagg-survivors", round=1, bank=bank, node_id=0,
                         key_fingerprint="secagg-survivors", payload=b"list")


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = verified_signatures.verify_update

    def counted(*args: object) -> None:
        calls.append(1)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(verified_signatures, "verify_update", counted)
    return calls


def test_a_verified_signature_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    verified_signatures.forget_all()
    key = Ed25519PrivateKey.generate()
    statement = _statement()
    signature = sign_update(key, statement)
    calls = _counting(monkeypatch)
    for _ in range(3):
        verify_once(key.public_key(), signature, statement)
    assert len(calls) == 1
    # another statement, key or signature is verified afresh, and fails where it should
    with pytest.raises(InvalidSignatureError):
        verify_once(key.public_key(), signature, replace(statement, bank=4))
    with pytest.raises(InvalidSignatureError):
        verify_once(Ed25519PrivateKey.generate().public_key(), signature, statement)
    with pytest.raises(InvalidSignatureError):
        verify_once(key.public_key(), bytes(64), statement)
    assert len(calls) == 4


def test_a_failed_signature_is_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    verified_signatures.forget_all()
    key = Ed25519PrivateKey.generate()
    forged = bytearray(sign_update(key, _statement()))
    forged[0] ^= 1
    calls = _counting(monkeypatch)
    for _ in range(2):
        with pytest.raises(InvalidSignatureError):
            verify_once(key.public_key(), bytes(forged), _statement())
    assert len(calls) == 2


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    verified_signatures.forget_all()
    monkeypatch.setattr(verified_signatures, "MEMO_SIZE", 2)
    key = Ed25519PrivateKey.generate()
    statements = [_statement(bank) for bank in range(3)]
    signatures = [sign_update(key, s) for s in statements]
    for s, sig in zip(statements, signatures, strict=True):
        verify_once(key.public_key(), sig, s)
    assert len(verified_signatures._VERIFIED) == 2
    calls = _counting(monkeypatch)
    verify_once(key.public_key(), signatures[2], statements[2])  # remembered
    verify_once(key.public_key(), signatures[0], statements[0])  # forgotten: verified again
    assert len(calls) == 1
