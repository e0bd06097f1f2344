"""CRT decryption: equals phe, the process pool gives the same answer in order, and the
per-process memo answers only a ciphertext it opened under the same key."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.paillier import decrypt as decrypt_module
from protocols.paillier.decrypt import CrtDecryptionKey, decrypt_raw_many
from protocols.paillier.fast import encrypt_packed


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**511))
def test_crt_decrypt_equals_phe(small_keypair, small_table, plaintext) -> None:
    pub, priv = small_keypair
    plaintext %= pub.n
    (c,) = encrypt_packed([plaintext], pub, table=small_table)
    assert CrtDecryptionKey.from_private_key(priv).decrypt(c) == priv.raw_decrypt(c) == plaintext


def test_process_pool_matches_in_process(small_keypair, small_table) -> None:
    pub, priv = small_keypair
    plaintexts = [random.Random(i).getrandbits(500) for i in range(40)]
    cts = encrypt_packed(plaintexts, pub, table=small_table)
    assert decrypt_raw_many(cts, priv, processes=1) == plaintexts
    assert decrypt_raw_many(cts, priv, processes=2, parallel_threshold=2) == plaintexts


def test_invalid_process_count(small_keypair) -> None:
    with pytest.raises(ValueError):
        decrypt_raw_many([1], small_keypair[1], processes=0)


def test_secret_and_bulky_fields_stay_out_of_repr(small_keypair, small_table) -> None:
    _, priv = small_keypair
    text = repr(CrtDecryptionKey.from_private_key(priv))
    assert str(priv.p) not in text and "redacted" in text
    assert len(repr(small_table)) < 200


def _no_decryption(*_args: object) -> list[int]:
    raise AssertionError("decrypted a ciphertext the memo should have answered")


def test_memo_answers_repeats_only(small_keypair, other_small_keypair, small_table,
                                   monkeypatch) -> None:
    pub, priv = small_keypair
    plaintexts = [random.Random(100 + i).getrandbits(500) for i in range(6)]
    cts = encrypt_packed(plaintexts, pub, table=small_table)
    monkeypatch.setattr(decrypt_module, "_MEMO", decrypt_module._Memo(64))
    assert decrypt_raw_many(cts[:4], priv, processes=1, memo=True) == plaintexts[:4]
    with monkeypatch.context() as patched:
        patched.setattr(decrypt_module, "_decrypt", _no_decryption)
        # repeats, in another order and twice over, come from memory ...
        again = cts[3::-1] + cts[:2]
        assert decrypt_raw_many(again, priv, processes=1, memo=True) == \
            plaintexts[3::-1] + plaintexts[:2]
        # ... a new ciphertext is decrypted, never guessed
        with pytest.raises(AssertionError, match="memo should have answered"):
            decrypt_raw_many(cts[4:], priv, processes=1, memo=True)
        # ... and the same ciphertext under another key is not the remembered plaintext
        with pytest.raises(AssertionError, match="memo should have answered"):
            decrypt_raw_many(cts[:1], other_small_keypair[1], processes=1, memo=True)
    # a mixed call decrypts the new ones only, in input order
    assert decrypt_raw_many([cts[5], cts[0], cts[4]], priv, processes=1, memo=True) == \
        [plaintexts[5], plaintexts[0], plaintexts[4]]


def test_memo_keeps_only_the_latest(small_keypair, small_table, monkeypatch) -> None:
    pub, priv = small_keypair
    cts = encrypt_packed([11, 22, 33], pub, table=small_table)
    monkeypatch.setattr(decrypt_module, "_MEMO", decrypt_module._Memo(2))
    assert decrypt_raw_many(cts, priv, processes=1, memo=True) == [11, 22, 33]
    assert len(decrypt_module._MEMO.known) == 2
    with monkeypatch.context() as patched:
        patched.setattr(decrypt_module, "_decrypt", _no_decryption)
        assert decrypt_raw_many(cts[1:], priv, processes=1, memo=True) == [22, 33]
        with pytest.raises(AssertionError):  # the oldest was forgotten
            decrypt_raw_many(cts[:1], priv, processes=1, memo=True)


def test_without_memo_nothing_is_remembered(small_keypair, small_table, monkeypatch) -> None:
    pub, priv = small_keypair
    cts = encrypt_packed([5], pub, table=small_table)
    monkeypatch.setattr(decrypt_module, "_MEMO", decrypt_module._Memo(8))
    assert decrypt_raw_many(cts, priv, processes=1) == [5]
    assert not decrypt_module._MEMO.known
