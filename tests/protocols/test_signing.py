"""Signed, round-bound updates: signatures, replays, other runs, duplicates."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import StaleRoundError
from protocols.identity.signing import (
    DuplicateUpdateError,
    InvalidSignatureError,
    ReplayGuard,
    encodings_by_bank,
    public_key_from_hex,
    public_key_hex,
    sign_update,
    statement_for,
    verify_update,
    with_bank,
)

KEY = Ed25519PrivateKey.generate()


def statement(payload: bytes = b"ciphertexts", **kw):
    base = dict(run_id="run-1", step="train", round=3, bank=2, node_id=7,
                key_fingerprint="ab" * 32)
    return statement_for(payload=payload, **{**base, **kw})


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 10**6), st.integers(0, 99))
def test_sign_verify_round_trip(payload: bytes, rnd: int, bank: int) -> None:
    s = statement(payload, round=rnd, bank=bank)
    verify_update(KEY.public_key(), sign_update(KEY, s), s)


@pytest.mark.parametrize("change", [
    {"payload": b"other ciphertexts"}, {"round": 4}, {"run_id": "run-2"}, {"bank": 1},
    {"step": "evaluate"}, {"key_fingerprint": "cd" * 32}, {"node_id": 8},
])
def test_any_change_breaks_the_signature(change: dict) -> None:
    signature = sign_update(KEY, statement())
    with pytest.raises(InvalidSignatureError, match="does not verify"):
        verify_update(KEY.public_key(), signature, statement(**change))


def test_other_key_and_garbage_signatures_fail() -> None:
    signature = sign_update(KEY, statement())
    with pytest.raises(InvalidSignatureError):
        verify_update(Ed25519PrivateKey.generate().public_key(), signature, statement())
    with pytest.raises(InvalidSignatureError):
        verify_update(KEY.public_key(), b"\x00" * 7, statement())


def test_replay_other_run_and_duplicate_are_refused() -> None:
    guard = ReplayGuard("run-1")
    guard.check(statement(round=3), expected_step="train", expected_round=3)
    with pytest.raises(DuplicateUpdateError, match="already sent"):
        guard.check(statement(round=3), expected_step="train", expected_round=3)
    with pytest.raises(StaleRoundError, match="replay or straggler"):
        guard.check(statement(round=2, bank=0), expected_step="train", expected_round=3)
    with pytest.raises(StaleRoundError, match="belongs to run"):
        guard.check(statement(run_id="run-0", bank=0), expected_step="train", expected_round=3)
    guard.check(statement(round=3, bank=0), expected_step="train", expected_round=3)


def test_public_key_hex_round_trip() -> None:
    text = public_key_hex(KEY.public_key())
    assert public_key_hex(public_key_from_hex(text)) == text


@given(run_id=st.text(max_size=30), step=st.text(max_size=20), rnd=st.integers(0, 2**40),
       node=st.integers(0, 2**64 - 1), fingerprint=st.text(max_size=20),
       banks=st.lists(st.integers(0, 2**20), max_size=20))
def test_encodings_by_bank_are_the_statements_own_bytes(
    run_id: str, step: str, rnd: int, node: int, fingerprint: str, banks: list[int],
) -> None:
    """The survivor-list check encodes one statement per signer from one template: byte for
    byte what each signer's statement encodes to (any difference fails every signature)."""
    statement = statement_for(run_id=run_id, step=step, round=rnd, bank=7, node_id=node,
                              key_fingerprint=fingerprint, payload=b"list")
    assert encodings_by_bank(statement, banks) == [
        replace(statement, bank=bank).to_bytes() for bank in banks]
    assert with_bank(statement, 3) == replace(statement, bank=3)
