"""Exact encrypted sums of a few wide signed reals (federated preprocessing statistics).

Counts, sums and sums of squares of raw columns span too many orders of magnitude for the
packed codec (a sum of squared balances exceeds 2**48). Each value is instead encoded as a
signed fixed-point integer with :data:`FRAC_BITS` fractional bits, ``s = round(v * 2**f)``,
``|s| < 2**OFFSET_BITS``, shifted to ``u = s + 2**OFFSET_BITS`` and put in a slot of
:data:`SLOT_BITS` bits; a plaintext holds ``(bits(n) - 1) // SLOT_BITS`` slots (7 at 2048
bits), encrypted with the same fast randomiser table as packed updates. The sum of ``K <=
2**16`` banks' slots stays below ``2**(OFFSET_BITS + 17) <= 2**SLOT_BITS``, so no slot carries
into the next, and ``sum s = sum u - K * 2**OFFSET_BITS`` decodes exactly; a slot sum outside
that range is refused. Schema 1 (one value per plaintext, ``m = s mod n``) is still read, so
an older release's checkpoint resumes.

Security: the same as packed aggregation (honest-but-curious coordinator that never holds the
private key; semantic security of Paillier under DCR). The slots of a plaintext are summed
and opened together, as the values of a packed update are.
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

SCHEMA_VERSION = 2
FRAC_BITS = 32
SCHEME = "paillier-wide-packed"
SLOT_BITS = 256
OFFSET_BITS = SLOT_BITS - 18
"""A bank's ``|s|`` stays below ``2**OFFSET_BITS``: ``2**16`` banks' shifted slots sum below
``2**SLOT_BITS`` (values up to ~``2**206``, far beyond any statistic)."""
MAX_PARTIES = 2**16
_READS = {("paillier-wide-fixed32", 1), (SCHEME, SCHEMA_VERSION)}


def slots_per_plaintext(public_key: PaillierPublicKey) -> int:
    """Wide values one plaintext holds under ``public_key`` (at least 1)."""
    return max(1, (int(public_key.n).bit_length() - 1) // SLOT_BITS)


def plaintexts_for(n_values: int, public_key: PaillierPublicKey) -> int:
    """Plaintexts (ciphertexts) a vector of ``n_values`` wide values takes."""
    per = slots_per_plaintext(public_key)
    return -(-n_values // per)


@dataclass(frozen=True)
class WideEncryptedVector:
    """Encrypted fixed-point values, packed in slots (schema 2) or one per ciphertext
    (schema 1, read only), with the metadata receivers check."""

    key_fingerprint: str
    run_id: str
    round: int
    ciphertexts: tuple[int, ...]
    n_parties: int = 1
    scheme: str = SCHEME
    schema_version: int = SCHEMA_VERSION
    n_values: int = 0
    """Values packed (schema 2; schema 1 holds one per ciphertext)."""

    def __post_init__(self) -> None:
        if (self.scheme, self.schema_version) not in _READS:
            raise MalformedMessageError(
                f"wide vector scheme {self.scheme!r} v{self.schema_version} is not supported "
                f"(this build reads {SCHEME} v{SCHEMA_VERSION} and v1)."
            )
        if not self.ciphertexts or not 1 <= self.n_parties <= MAX_PARTIES or self.round < 0:
            raise MalformedMessageError("wide vector needs ciphertexts, 1 <= n_parties <= 2**16 "
                                        "and round >= 0.")
        if self.packed and self.n_values < 1:
            raise MalformedMessageError("a packed wide vector needs its number of values.")

    @property
    def packed(self) -> bool:
        """Schema 2: several values a plaintext."""
        return self.schema_version == SCHEMA_VERSION

    @property
    def length(self) -> int:
        """Number of values."""
        return self.n_values if self.packed else len(self.ciphertexts)


def encrypt_wide(values: Sequence[float] | np.ndarray, *, public_key: PaillierPublicKey,
                 run_id: str, round: int,
                 table: RandomizerTable | None = None,
                 mask: Callable[[list[int]], list[int]] | None = None) -> WideEncryptedVector:
    """Bank step: encode each value as signed fixed point and encrypt it (``table``: a
    precomputed randomizer table, e.g. the key holder's; the cached public one by default;
    ``mask``: SecAgg+ under Paillier, maps the plaintexts to masked ones modulo ``n`` before
    encryption)."""
    offset = 1 << OFFSET_BITS  # also the bound on |s|
    shifted = []
    for idx, value in enumerate(np.asarray(values, dtype=np.float64).ravel()):
        if not np.isfinite(value):
            raise PackingOverflowError(f"value {idx} is not finite; cannot encrypt it.")
        scaled = int(np.rint(float(value) * (1 << FRAC_BITS)))
        if abs(scaled) >= offset:
            raise PackingOverflowError(f"value {idx} ({value:g}) is too large for the wide "
                                       f"codec (|value| < 2**{OFFSET_BITS - FRAC_BITS}).")
        shifted.append(scaled + offset)
    per = slots_per_plaintext(public_key)
    plaintexts = [sum(u << (SLOT_BITS * k) for k, u in enumerate(shifted[i:i + per]))
                  for i in range(0, len(shifted), per)]
    if mask is not None:
        plaintexts = mask(plaintexts)
    return WideEncryptedVector(key_fingerprint(public_key), run_id, round,
                               tuple(encrypt_packed(plaintexts, public_key, table=table)),
                               n_values=len(shifted))


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
                               sum(v.n_parties for v in vectors), first.scheme,
                               first.schema_version, first.n_values)


def decrypt_wide(vector: WideEncryptedVector, *, private_key: PaillierPrivateKey,
                 memo: bool = False) -> np.ndarray:
    """Bank step: decrypt and decode the (summed) values (``memo``: answer ciphertexts this
    process opened before from memory, :mod:`protocols.paillier.decrypt`)."""
    public_key = private_key.public_key
    if vector.key_fingerprint != key_fingerprint(public_key):
        raise KeyMismatchError("this vector was encrypted under another key.")
    n = int(public_key.n)
    plaintexts = decrypt_raw_many(vector.ciphertexts, private_key, processes=1, memo=memo)
    if not vector.packed:
        out = []
        for m in plaintexts:
            signed = m - n if m > n // 2 else m
            if abs(signed) >= n // 4:
                raise PackingOverflowError("a decrypted sum is outside the safe range; "
                                           "refusing it.")
            out.append(signed / float(1 << FRAC_BITS))
        return np.asarray(out, dtype=np.float64)
    per = slots_per_plaintext(public_key)
    total_offset = vector.n_parties << OFFSET_BITS
    slot_mask = (1 << SLOT_BITS) - 1
    values: list[float] = []
    for m in plaintexts:
        if m >> (SLOT_BITS * per):
            raise PackingOverflowError("a decrypted wide sum overflows its slots; refusing it.")
        for k in range(per):
            if len(values) == vector.n_values:
                break
            signed = ((m >> (SLOT_BITS * k)) & slot_mask) - total_offset
            if abs(signed) >= total_offset:
                raise PackingOverflowError("a decrypted wide sum is outside the range its "
                                           f"{vector.n_parties} contributions allow; refusing it.")
            values.append(signed / float(1 << FRAC_BITS))
    return np.asarray(values, dtype=np.float64)


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
    if vector.packed and len(vector.ciphertexts) != plaintexts_for(expected_length, public_key):
        raise VectorLengthError(f"wide vector packs {expected_length} values into "
                                f"{len(vector.ciphertexts)} ciphertexts, expected "
                                f"{plaintexts_for(expected_length, public_key)}.")
    check_ciphertexts(vector.ciphertexts, public_key)
    return vector


def wide_to_bytes(vector: WideEncryptedVector) -> bytes:
    """Canonical JSON encoding (ciphertexts in hex)."""
    doc = {"scheme": vector.scheme, "v": vector.schema_version, "fp": vector.key_fingerprint,
           "run": vector.run_id, "round": vector.round, "parties": vector.n_parties,
           "c": [format(c, "x") for c in vector.ciphertexts]}
    if vector.packed:
        doc["values"] = vector.n_values
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
        n_values = doc.get("values", 0)
        if type(n_values) is not int:
            raise TypeError("the number of values must be an integer")
        return WideEncryptedVector(doc["fp"], doc["run"], doc["round"], cts, doc["parties"],
                                   doc["scheme"], doc["v"], n_values)
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError,
            RecursionError) as exc:
        raise MalformedMessageError(f"invalid wide encrypted vector: {exc}") from exc
