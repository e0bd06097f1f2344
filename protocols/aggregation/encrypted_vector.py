"""The wire message of encrypted aggregation: one bank's (or the summed) packed update.

Security
--------
An :class:`EncryptedVector` holds only Paillier ciphertexts and public metadata (scheme,
key fingerprint, codec digest, run id, round, logical length, number of summed
contributions). It is safe to hand to the coordinator, which never holds the private key.
The metadata is *not* authenticated: receivers check it against what they expect with
:func:`protocols.aggregation.validation.validate_encrypted_vector`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["EncryptedVector", "VECTOR_SCHEMA_VERSION", "SCHEME_PATTERN", "scheme_key_bits"]

VECTOR_SCHEMA_VERSION = 1
#: ``paillier-<key bits>-packed<bits>`` (floats) or ``paillier-<key bits>-packedint<bits>``.
SCHEME_PATTERN = re.compile(r"^paillier-(\d{3,5})-packed(?:int)?(\d{1,2})$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
MAX_RUN_ID_CHARS = 256


def scheme_key_bits(scheme: str) -> int:
    """Key size named by a scheme id (``paillier-2048-packed16`` -> 2048)."""
    match = SCHEME_PATTERN.match(scheme)
    if match is None:
        raise ValueError(f"unknown scheme id {scheme!r}")
    return int(match.group(1))


@dataclass(frozen=True, slots=True)
class EncryptedVector:
    """Packed Paillier ciphertexts of one vector plus the metadata to check them.

    Parameters
    ----------
    scheme : str
        Scheme id from :attr:`protocols.aggregation.packing.PackingCodec.scheme_id`.
    key_fingerprint : str
        SHA-256 hex of the public modulus (:func:`protocols.paillier.keys.key_fingerprint`).
    codec_digest : str
        :attr:`protocols.aggregation.packing.PackingCodec.digest` of the codec used to pack.
    run_id : str
        Federation run this vector belongs to.
    round : int
        Round number (>= 0); vectors of other rounds are refused as stale.
    length : int
        Logical number of values (not ciphertexts).
    ciphertexts : tuple of int
        Raw ciphertexts in ``Z*_{n**2}``.
    n_parties : int
        Number of contributions summed into this vector (1 for a single bank).
    schema_version : int
        Message schema version; only 1 exists.
    """

    scheme: str
    key_fingerprint: str
    codec_digest: str
    run_id: str
    round: int
    length: int
    ciphertexts: tuple[int, ...] = field(repr=False)
    n_parties: int = 1
    schema_version: int = VECTOR_SCHEMA_VERSION

    def __post_init__(self) -> None:
        self._check_types()
        if self.schema_version != VECTOR_SCHEMA_VERSION:
            raise ValueError(f"unknown EncryptedVector schema_version {self.schema_version}; "
                             f"this build reads version {VECTOR_SCHEMA_VERSION}")
        scheme_key_bits(self.scheme)
        if not _HEX64.match(self.key_fingerprint):
            raise ValueError("key_fingerprint must be 64 lowercase hex characters")
        if not _HEX16.match(self.codec_digest):
            raise ValueError("codec_digest must be 16 lowercase hex characters")
        if not 0 < len(self.run_id) <= MAX_RUN_ID_CHARS:
            raise ValueError(f"run_id must have 1..{MAX_RUN_ID_CHARS} characters")
        if not (0 <= self.round < 2**63 and 1 <= self.length < 2**63
                and 1 <= self.n_parties < 2**32):
            raise ValueError("need 0 <= round < 2**63, 1 <= length < 2**63 and "
                             "1 <= n_parties < 2**32")
        if not self.ciphertexts:
            raise ValueError("an EncryptedVector needs at least one ciphertext")

    def _check_types(self) -> None:
        for name in ("scheme", "key_fingerprint", "codec_digest", "run_id"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"EncryptedVector.{name} must be a str")
        for name in ("round", "length", "n_parties", "schema_version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"EncryptedVector.{name} must be an int")
        if not isinstance(self.ciphertexts, tuple):
            raise TypeError("EncryptedVector.ciphertexts must be a tuple of int")
        if not all(type(c) is int for c in self.ciphertexts):
            raise TypeError("EncryptedVector.ciphertexts must hold plain ints")

    @property
    def key_bits(self) -> int:
        """Key size named by :attr:`scheme`."""
        return scheme_key_bits(self.scheme)
