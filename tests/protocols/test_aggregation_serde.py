"""Wire format of encrypted vectors and codecs: round trips and one error per bad input."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.aggregation.encrypted_vector import EncryptedVector
from protocols.aggregation.packing import PackingCodec
from protocols.aggregation.secure_aggregation import encrypt_update
from protocols.aggregation.serde import (
    codec_from_bytes,
    codec_to_bytes,
    encrypted_vector_from_bytes,
    encrypted_vector_from_bytes_unchecked,
    encrypted_vector_to_bytes,
    validate_encrypted_vector,
)
from protocols.errors import (
    InvalidCiphertextError,
    KeyMismatchError,
    MalformedMessageError,
    PackingOverflowError,
    SchemeMismatchError,
    StaleRoundError,
    VectorLengthError,
)

CODEC = PackingCodec(lo=-2.0, hi=2.0, bits=12, max_parties=5, key_bits=512)


@pytest.fixture(scope="module")
def vector(small_keypair, small_table) -> EncryptedVector:
    return encrypt_update(np.linspace(-2, 2, 90), public_key=small_keypair[0], codec=CODEC,
                          run_id="run-1", round=7, rng=random.Random(0), table=small_table)


def _expect(pub, **overrides):
    kwargs = {"public_key": pub, "expected_length": 90, "run_id": "run-1", "round": 7,
              "codec": CODEC}
    kwargs.update(overrides)
    return kwargs


@settings(max_examples=60, deadline=None)
@given(run_id=st.text(min_size=1, max_size=40), round_=st.integers(0, 2**63 - 1),
       n_parties=st.integers(1, 2**32 - 1), cts=st.lists(st.integers(1, 2**1024 - 1),
                                                          min_size=1, max_size=6),
       length=st.integers(1, 2**63 - 1), integer=st.booleans())
def test_encrypted_vector_round_trip(run_id, round_, n_parties, cts, length, integer) -> None:
    vec = EncryptedVector(scheme="paillier-512-packedint8" if integer else "paillier-512-packed16",
                          key_fingerprint="ab" * 32, codec_digest="01" * 8, run_id=run_id,
                          round=round_, length=length, ciphertexts=tuple(cts),
                          n_parties=n_parties)
    assert encrypted_vector_from_bytes_unchecked(encrypted_vector_to_bytes(vec)) == vec


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(-1e6, 1e6), width=st.floats(1e-6, 1e6), bits=st.integers(1, 40),
       max_parties=st.integers(1, 1000), integer=st.booleans())
def test_codec_round_trip(lo, width, bits, max_parties, integer) -> None:
    codec = (PackingCodec.for_integers(bits=bits, max_parties=max_parties) if integer
             else PackingCodec(lo=lo, hi=lo + width, bits=bits, max_parties=max_parties))
    assert codec_from_bytes(codec_to_bytes(codec)) == codec


def test_validated_round_trip(small_keypair, vector) -> None:
    data = encrypted_vector_to_bytes(vector)
    assert encrypted_vector_from_bytes(data, **_expect(small_keypair[0])) == vector
    assert len(data) == 101 + len(vector.ciphertexts) * 128  # header + n^2-sized ciphertexts


def test_every_truncation_is_malformed(vector) -> None:
    data = encrypted_vector_to_bytes(vector)
    for cut in list(range(0, 120)) + [len(data) - 1]:
        with pytest.raises(MalformedMessageError):
            encrypted_vector_from_bytes_unchecked(data[:cut])
    with pytest.raises(MalformedMessageError, match="trailing"):
        encrypted_vector_from_bytes_unchecked(data + b"\x00")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_malformed(garbage) -> None:
    with pytest.raises(MalformedMessageError):
        encrypted_vector_from_bytes_unchecked(garbage)
    with pytest.raises(MalformedMessageError):
        encrypted_vector_from_bytes_unchecked(b"FCEV\x00\x01" + garbage)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_corrupted_bytes_never_leak_low_level_errors(vector, data) -> None:
    raw = bytearray(encrypted_vector_to_bytes(vector))
    pos = data.draw(st.integers(0, 90))  # header region
    raw[pos] ^= data.draw(st.integers(1, 255))
    # the intact encoding parses (a parser that refuses everything fails here) ...
    assert encrypted_vector_from_bytes_unchecked(encrypted_vector_to_bytes(vector)) == vector
    try:
        parsed = encrypted_vector_from_bytes_unchecked(bytes(raw))
    except MalformedMessageError:
        return
    # ... and a corrupted one that parses says exactly what its bytes say: it is not the
    # original, and it encodes back to the same bytes (nothing defaulted or dropped)
    assert parsed != vector
    assert encrypted_vector_to_bytes(parsed) == bytes(raw)


def test_bad_magic_version_and_fields_are_malformed(vector) -> None:
    data = encrypted_vector_to_bytes(vector)
    for bad in (b"XXXX" + data[4:], data[:4] + b"\x00\x02" + data[6:],
                data[:6] + b"\x05" + b"abcde" + data[6 + 1 + len(vector.scheme):]):
        with pytest.raises(MalformedMessageError):
            encrypted_vector_from_bytes_unchecked(bad)
    with pytest.raises(MalformedMessageError):
        codec_from_bytes(b'{"kind": "packing-codec", "bits": 0}')
    with pytest.raises(MalformedMessageError):
        codec_from_bytes(b"\xff")


def test_wrong_key_fingerprint(small_keypair, other_small_keypair, vector) -> None:
    data = encrypted_vector_to_bytes(vector)
    with pytest.raises(KeyMismatchError):
        encrypted_vector_from_bytes(data, **_expect(other_small_keypair[0]))


@pytest.mark.parametrize("overrides", [{"round": 6}, {"round": 8}, {"run_id": "run-2"}])
def test_stale_round_or_run(small_keypair, vector, overrides) -> None:
    with pytest.raises(StaleRoundError):
        encrypted_vector_from_bytes(encrypted_vector_to_bytes(vector),
                                    **_expect(small_keypair[0], **overrides))


def test_wrong_length(small_keypair, vector) -> None:
    with pytest.raises(VectorLengthError):
        validate_encrypted_vector(vector, **_expect(small_keypair[0], expected_length=91))
    short = dataclasses.replace(vector, ciphertexts=vector.ciphertexts[:-1])
    with pytest.raises(VectorLengthError):
        validate_encrypted_vector(short, **_expect(small_keypair[0]))


def test_wrong_codec_and_too_many_parties(small_keypair, vector) -> None:
    other = PackingCodec(lo=-1.0, hi=1.0, bits=12, max_parties=5, key_bits=512)
    with pytest.raises(SchemeMismatchError):
        validate_encrypted_vector(vector, **_expect(small_keypair[0], codec=other))
    with pytest.raises(PackingOverflowError):
        validate_encrypted_vector(dataclasses.replace(vector, n_parties=6),
                                  **_expect(small_keypair[0]))


@pytest.mark.parametrize("bad", ["zero", "nsquare", "multiple_of_p", "negative"])
def test_ciphertext_outside_group(small_keypair, vector, bad) -> None:
    pub, priv = small_keypair
    value = {"zero": 0, "nsquare": pub.n * pub.n, "multiple_of_p": priv.p * 12345,
             "negative": -5}[bad]
    forged = dataclasses.replace(vector, ciphertexts=(value,) + vector.ciphertexts[1:])
    with pytest.raises(InvalidCiphertextError, match="ciphertext 0"):
        validate_encrypted_vector(forged, **_expect(pub))


def test_encrypted_vector_post_init_checks() -> None:
    good = {"scheme": "paillier-512-packed16", "key_fingerprint": "a" * 64,
            "codec_digest": "b" * 16, "run_id": "r", "round": 0, "length": 1,
            "ciphertexts": (5,)}
    EncryptedVector(**good)
    for change, exc in [({"scheme": "rsa"}, ValueError), ({"round": -1}, ValueError),
                        ({"length": 0}, ValueError), ({"ciphertexts": ()}, ValueError),
                        ({"ciphertexts": [5]}, TypeError), ({"ciphertexts": (True,)}, TypeError),
                        ({"key_fingerprint": "A" * 64}, ValueError), ({"run_id": ""}, ValueError),
                        ({"round": 1.0}, TypeError), ({"schema_version": 2}, ValueError)]:
        with pytest.raises(exc):
            EncryptedVector(**{**good, **change})
