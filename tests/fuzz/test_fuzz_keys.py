"""Fuzz the key ceremony files: public keys, private keys, identities, sealed and wrapped blobs.

Sealed and wrapped envelopes are authenticated, so a mutated envelope must fail as a whole
with :class:`KeyCeremonyError`; to reach the parsers behind the AEAD, garbage payloads are
also sealed and wrapped properly and then opened.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from protocols.errors import FedCreditError
from protocols.identity.envelopes import (
    open_with_passphrase,
    seal_with_passphrase,
    unwrap_as_recipient,
    wrap_for_recipient,
)
from protocols.identity.x25519 import PRIVATE_KIND as IDENTITY_KIND
from protocols.paillier.keys import (
    PRIVATE_KIND,
    BankIdentity,
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

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
FAST = 10  # scrypt log2(N); production uses 15
PASS = "correct horse battery"
#: Small factors: composite or repeated "primes" must not become a private key.
SMALL_INTS = st.integers(2, 2**40)


def _rand(seed: int):
    rng = random.Random(seed)
    return lambda k: rng.randbytes(k)


def _scrypt_is_cheap(blob: bytes) -> bool:
    """Keep fuzzing fast: skip documents that ask scrypt for more than 2**12 work."""
    try:
        log2_n = json.loads(blob)["kdf"]["log2_n"]
    except Exception:  # noqa: BLE001 - anything unreadable is cheap to refuse
        return True
    return not (type(log2_n) is int and 12 < log2_n <= 20)


@pytest.fixture(scope="module")
def blobs(paillier_pair, identity_key) -> dict[str, bytes]:
    public_key, private_key = paillier_pair
    return {
        "public": public_key_to_bytes(public_key),
        "private": private_key_to_bytes(private_key),
        "identity": identity_public_to_bytes("bank-1", identity_key),
        "sealed": seal_private_key(private_key, PASS, random_bytes=_rand(1), scrypt_log2_n=FAST),
        "sealed_identity": seal_identity("bank-1", identity_key, PASS, random_bytes=_rand(2),
                                         scrypt_log2_n=FAST),
        "wrapped": wrap_private_key(private_key, identity_key.public_key(),
                                    random_bytes=_rand(3)),
    }


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_public_key_files_raise_only_named_errors(data, fuzz, blobs, paillier_pair) -> None:
    valid = blobs["public"]
    # the valid input parses (a decoder refusing everything fails here)
    assert public_key_from_bytes(valid) == paillier_pair[0]
    try:
        key = public_key_from_bytes(data.draw(st.one_of(fuzz.json_like(json.loads(valid)),
                                                        fuzz.bytes_like(valid))))
    except FedCreditError:
        return
    assert public_key_from_bytes(public_key_to_bytes(key)) == key


@st.composite
def _private_docs(draw: st.DrawFn) -> dict:
    p, q = draw(SMALL_INTS), draw(SMALL_INTS)
    return {"schema_version": 1, "kind": PRIVATE_KIND, "n": format(p * q, "x"),
            "p": format(p, "x"), "q": format(q, "x")}


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_private_key_payloads_raise_only_named_errors(data, fuzz, blobs, paillier_pair) -> None:
    valid = blobs["private"]
    blob = data.draw(st.one_of(fuzz.json_like(json.loads(valid)), fuzz.bytes_like(valid),
                               _private_docs().map(lambda d: json.dumps(d).encode())))
    # the valid input parses (a decoder refusing everything fails here)
    assert private_key_from_bytes(valid) == paillier_pair[1]
    try:
        key = private_key_from_bytes(blob)
    except FedCreditError:
        return
    assert private_key_from_bytes(private_key_to_bytes(key)) == key
    assert key.decrypt(key.public_key.encrypt(5)) == 5


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_identity_public_files_raise_only_named_errors(data, fuzz, blobs) -> None:
    valid = blobs["identity"]
    # the valid input parses (a decoder refusing everything fails here)
    assert identity_public_from_bytes(valid).public_key is not None
    try:
        identity = identity_public_from_bytes(data.draw(st.one_of(
            fuzz.json_like(json.loads(valid)), fuzz.bytes_like(valid))))
    except FedCreditError:
        return
    assert isinstance(identity, BankIdentity)
    identity.public_key  # noqa: B018 - a valid identity holds a usable X25519 key


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_sealed_envelopes_raise_only_named_errors(data, fuzz, blobs) -> None:
    name = data.draw(st.sampled_from(["sealed", "sealed_identity"]))
    valid = blobs[name]
    blob = data.draw(st.one_of(fuzz.json_like(json.loads(valid)), fuzz.bytes_like(valid)))
    assume(_scrypt_is_cheap(blob))
    passphrase = data.draw(st.sampled_from([PASS, PASS + "!", "short"]))
    # the valid input parses (a decoder refusing everything fails here)
    opened = (open_private_key(valid, PASS) if name == "sealed"
              else open_identity(valid, PASS)[1].public_key())
    assert opened is not None
    try:
        if name == "sealed":
            key = open_private_key(blob, passphrase)
            assert key.public_key.n > 1
        else:
            bank, identity = open_identity(blob, passphrase)
            assert isinstance(bank, str) and identity.public_key()
    except FedCreditError:
        return


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_parsers_behind_authenticated_envelopes_raise_only_named_errors(data, fuzz,
                                                                        blobs) -> None:
    """Garbage sealed under the right passphrase (a buggy or hostile key owner)."""
    identity_doc = {"name": "bank-1", "private_key": "11" * 32}
    name = data.draw(st.sampled_from(["sealed", "sealed_identity"]))
    payload = data.draw(fuzz.json_like(json.loads(blobs["private"])) if name == "sealed"
                        else fuzz.json_like(identity_doc))
    kind = PRIVATE_KIND if name == "sealed" else IDENTITY_KIND
    blob = seal_with_passphrase(payload, PASS, kind=kind, random_bytes=_rand(4),
                                scrypt_log2_n=FAST)
    assert open_with_passphrase(blob, PASS, kind=kind) == payload
    try:
        if name == "sealed":
            open_private_key(blob, PASS)
        else:
            bank, identity = open_identity(blob, PASS)
            assert isinstance(bank, str) and identity.public_key()
    except FedCreditError:
        return


@settings(FUZZ, max_examples=350)
@given(data=st.data())
def test_wrapped_keys_raise_only_named_errors(data, fuzz, blobs, identity_key,
                                              paillier_pair) -> None:
    valid = blobs["wrapped"]
    if data.draw(st.booleans()):
        blob = data.draw(st.one_of(fuzz.json_like(json.loads(valid)), fuzz.bytes_like(valid)))
    else:  # properly wrapped garbage, with a garbage context
        payload = data.draw(fuzz.json_like(json.loads(blobs["private"])))
        context = data.draw(st.dictionaries(st.text(max_size=12), st.text(max_size=70),
                                            max_size=2)
                            | st.just({"fingerprint": key_fingerprint(paillier_pair[0])}))
        blob = wrap_for_recipient(payload, identity_key.public_key(), kind=PRIVATE_KIND,
                                  context=context, random_bytes=_rand(5))
    expected = data.draw(st.sampled_from([None, key_fingerprint(paillier_pair[0])]))
    # the valid input parses (a decoder refusing everything fails here)
    assert unwrap_private_key(valid, identity_key, expected_fingerprint=expected) \
        == paillier_pair[1]
    try:
        context, _ = unwrap_as_recipient(blob, identity_key, kind=PRIVATE_KIND)
        assert isinstance(context, dict)
        key = unwrap_private_key(blob, identity_key, expected_fingerprint=expected)
    except FedCreditError:
        return
    assert key_fingerprint(key.public_key) == context["fingerprint"]
