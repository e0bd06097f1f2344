"""Exact encrypted sums of a few wide signed reals (federated preprocessing statistics).

Counts, sums and sums of squares of raw columns span too many orders of magnitude for the
packed codec (a sum of squared balances exceeds 2**48). Each value is instead encoded as a
signed fixed-point integer with :data:`FRAC_BITS` fractional bits, ``m = round(v * 2**f) mod n``,
one value per Paillier plaintext, and encrypted with the same fast randomiser table as packed
updates. Sums decode exactly while ``|sum| * 2**f < n / 4``; beyond that the value is refused.

Security: the same as packed aggregation (honest-but-curious coordinator that never holds the
private key; semantic security of Paillier under DCR). Only used for short vectors (~100 values
once per run), so one value per ciphertext costs little.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.aggregation.validation import check_ciphertexts
from protocols.errors import (
    KeyMismatchError,
    MalformedMessageError,
    PackingOverflowError,
    StaleRoundError,
    VectorLengthError,
)
from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.fast import RandomizerTable, encrypt_packed
from protocols.paillier.keys import key_fingerprint

SCHEMA_VERSION = 1
FRAC_BITS = 32
SCHEME = "paillier-wide-fixed32"


@dataclass(frozen=True)
class WideEncryptedVector:
    """Encrypted fixed-point values, one per ciphertext, with the metadata receivers check."""

    key_fingerprint: str
    run_id: str
    round: int
    ciphertexts: tuple[int, ...]
    n_parties: int = 1
    scheme: str = SCHEME
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.scheme != SCHEME or self.schema_version != SCHEMA_VERSION:
            raise MalformedMessageError(
                f"wide vector scheme {self.scheme!r} v{self.schema_version} is not supported "
                f"(this build reads {SCHEME} v{SCHEMA_VERSION})."
            )
        if not self.ciphertexts or self.n_parties < 1 or self.round < 0:
            raise MalformedMessageError("wide vector needs ciphertexts, n_parties >= 1, round >= 0.")

    @property
    def length(self) -> int:
        """Number of values."""
        return len(self.ciphertexts)


def encrypt_wide(values: Sequence[float] | np.ndarray, *, public_key: PaillierPublicKey,
                 run_id: str, round: int,
                 table: RandomizerTable | None = None,
                 mask: Callable[[list[int]], list[int]] | None = None) -> WideEncryptedVector:
    """Bank step: encode each value as signed fixed point and encrypt it (``table``: a
    precomputed randomizer table, e.g. the key holder's; the cached public one by default;
    ``mask``: SecAgg+ under Paillier, maps the plaintexts to masked ones modulo ``n`` before
    encryption)."""
    n = int(public_key.n)
    limit = n // 4
    plaintexts = []
    for idx, value in enumerate(np.asarray(values, dtype=np.float64).ravel()):
        if not np.isfinite(value):
            raise PackingOverflowError(f"value {idx} is not finite; cannot encrypt it.")
        scaled = int(np.rint(float(value) * (1 << FRAC_BITS)))
        if abs(scaled) >= limit:
            raise PackingOverflowError(f"value {idx} ({value:g}) is too large for the key.")
        plaintexts.append(scaled % n)
    if mask is not None:
        plaintexts = mask(plaintexts)
    return WideEncryptedVector(key_fingerprint(public_key), run_id, round,
                               tuple(encrypt_packed(plaintexts, public_key, table=table)))


def sum_wide(vectors: Sequence[WideEncryptedVector], *,
             public_key: PaillierPublicKey) -> WideEncryptedVector:
    """Coordinator step: homomorphic sum (product of ciphertexts mod n^2)."""
    if not vectors:
        raise MalformedMessageError("nothing to sum.")
    first = vectors[0]
    for vec in vectors:
        validate_wide(vec, public_key=public_key, expected_length=first.length,
                      run_id=first.run_id, round=first.round)
    nsq = int(public_key.n) ** 2
    totals = list(first.ciphertexts)
    for vec in vectors[1:]:
        totals = [a * b % nsq for a, b in zip(totals, vec.ciphertexts, strict=True)]
    return WideEncryptedVector(first.key_fingerprint, first.run_id, first.round, tuple(totals),
                               sum(v.n_parties for v in vectors))


def decrypt_wide(vector: WideEncryptedVector, *, private_key: PaillierPrivateKey,
                 memo: bool = False) -> np.ndarray:
    """Bank step: decrypt and decode the (summed) values (``memo``: answer ciphertexts this
    process opened before from memory, :mod:`protocols.paillier.decrypt`)."""
    public_key = private_key.public_key
    if vector.key_fingerprint != key_fingerprint(public_key):
        raise KeyMismatchError("this vector was encrypted under another key.")
    n = int(public_key.n)
    out = []
    for m in decrypt_raw_many(vector.ciphertexts, private_key, processes=1, memo=memo):
        signed = m - n if m > n // 2 else m
        if abs(signed) >= n // 4:
            raise PackingOverflowError("a decrypted sum is outside the safe range; refusing it.")
        out.append(signed / float(1 << FRAC_BITS))
    return np.asarray(out, dtype=np.float64)


def validate_wide(vector: WideEncryptedVector, *, public_key: PaillierPublicKey,
                  expected_length: int, run_id: str, round: int) -> WideEncryptedVector:
    """Receiver check: key, run, round, length, ciphertexts in Z*_{n^2}."""
    if vector.key_fingerprint != key_fingerprint(public_key):
        raise KeyMismatchError("wide vector was encrypted under another key; the sender uses "
                               "another key pair.")
    if (vector.run_id, vector.round) != (run_id, round):
        raise StaleRoundError(f"wide vector is from run {vector.run_id!r} round {vector.round}, "
                              f"expected {run_id!r} round {round}; dropping it.")
    if vector.length != expected_length:
        raise VectorLengthError(f"wide vector has {vector.length} values, expected "
                                f"{expected_length}.")
    check_ciphertexts(vector.ciphertexts, public_key)
    return vector


def wide_to_bytes(vector: WideEncryptedVector) -> bytes:
    """Canonical JSON encoding (ciphertexts in hex)."""
    doc = {"scheme": vector.scheme, "v": vector.schema_version, "fp": vector.key_fingerprint,
           "run": vector.run_id, "round": vector.round, "parties": vector.n_parties,
           "c": [format(c, "x") for c in vector.ciphertexts]}
    return json.dumps(doc, separators=(",", ":")).encode("ascii")


def wide_from_bytes(data: bytes) -> WideEncryptedVector:
    """Inverse of :func:`wide_to_bytes`; :class:`MalformedMessageError` on any bad input."""
    try:
        doc = json.loads(bytes(data).decode("ascii"))
        if not isinstance(doc["c"], list) or not all(isinstance(c, str) for c in doc["c"]):
            raise TypeError("ciphertexts must be a list of hex strings")
        cts = tuple(int(c, 16) for c in doc["c"])
        fields = (doc["fp"], doc["run"], doc["round"], doc["parties"], doc["scheme"], doc["v"])
        if not all(isinstance(f, t) for f, t in zip(fields, (str, str, int, int, str, int), strict=True)):
            raise TypeError("field of the wrong type")
        return WideEncryptedVector(doc["fp"], doc["run"], doc["round"], cts, doc["parties"],
                                   doc["scheme"], doc["v"])
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError,
            RecursionError) as exc:
        raise MalformedMessageError(f"invalid wide encrypted vector: {exc}") from exc
