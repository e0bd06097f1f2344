"""Bytes on the wire for the encrypted-aggregation layer (``x_to_bytes`` / ``x_from_bytes``).

Formats
-------
``EncryptedVector`` (big-endian, version 1)::

    b"FCEV" | u16 format version | u8 len + scheme (ascii) | 32 B key fingerprint
    | 8 B codec digest | u16 len + run id (utf-8) | u64 round | u64 length
    | u32 n_parties | u32 count | u16 width | count * width B ciphertexts

``PackingCodec``: canonical JSON with ``kind = "packing-codec"``.

Security
--------
Bytes come from another party and are untrusted. Any truncated, padded or garbled input
raises :class:`~protocols.errors.MalformedMessageError` (never ``struct.error``,
``IndexError`` or ``ValueError``), and :func:`encrypted_vector_from_bytes` always runs
:func:`~protocols.aggregation.validation.validate_encrypted_vector` before returning.
"""

from __future__ import annotations

import json

from phe.paillier import PaillierPublicKey

from protocols.aggregation.encrypted_vector import EncryptedVector
from protocols.aggregation.packing import PackingCodec
from protocols.aggregation.validation import validate_encrypted_vector
from protocols.byte_reader import ByteReader
from protocols.errors import MalformedMessageError

__all__ = [
    "encrypted_vector_to_bytes", "encrypted_vector_from_bytes",
    "encrypted_vector_from_bytes_unchecked", "codec_to_bytes", "codec_from_bytes",
    "validate_encrypted_vector",
]

MAGIC = b"FCEV"
WIRE_VERSION = 1
MAX_CIPHERTEXTS = 10_000_000
MAX_WIDTH = 2048  # bytes of one ciphertext; n**2 of an 8192-bit key
CODEC_KIND = "packing-codec"


def encrypted_vector_to_bytes(vector: EncryptedVector) -> bytes:
    """Serialise an :class:`EncryptedVector` (fixed-width big-endian ciphertexts)."""
    scheme = vector.scheme.encode("ascii")
    run_id = vector.run_id.encode("utf-8")
    width = max(1, (vector.key_bits * 2 + 7) // 8, *((c.bit_length() + 7) // 8
                                                      for c in vector.ciphertexts))
    parts = [MAGIC, WIRE_VERSION.to_bytes(2, "big"), len(scheme).to_bytes(1, "big"), scheme,
             bytes.fromhex(vector.key_fingerprint), bytes.fromhex(vector.codec_digest),
             len(run_id).to_bytes(2, "big"), run_id, vector.round.to_bytes(8, "big"),
             vector.length.to_bytes(8, "big"), vector.n_parties.to_bytes(4, "big"),
             len(vector.ciphertexts).to_bytes(4, "big"), width.to_bytes(2, "big")]
    parts.extend(c.to_bytes(width, "big") for c in vector.ciphertexts)
    return b"".join(parts)


def encrypted_vector_from_bytes_unchecked(data: bytes) -> EncryptedVector:
    """Parse the structure only (no key, round or ciphertext checks): for tools and tests.

    Raises
    ------
    MalformedMessageError
        Anything that is not a well-formed version-1 encoded vector.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("expected bytes")
    reader = ByteReader(data, "encrypted vector")
    if reader.take(4) != MAGIC:
        raise MalformedMessageError("not an encrypted vector (bad magic bytes)")
    version = reader.uint(2)
    if version != WIRE_VERSION:
        raise MalformedMessageError(f"encrypted vector wire version {version} is not "
                                    f"supported (this build reads {WIRE_VERSION}); upgrade")
    scheme = reader.text(1, "ascii")
    fingerprint, digest = reader.take(32).hex(), reader.take(8).hex()
    run_id = reader.text(2, "utf-8")
    round_, length, n_parties = reader.uint(8), reader.uint(8), reader.uint(4)
    count, width = reader.uint(4), reader.uint(2)
    if not 0 < count <= MAX_CIPHERTEXTS or not 0 < width <= MAX_WIDTH:
        raise MalformedMessageError(f"implausible ciphertext count {count} or width {width}")
    body = reader.take(count * width)
    reader.finish()
    cts = tuple(int.from_bytes(body[i:i + width], "big") for i in range(0, len(body), width))
    try:
        return EncryptedVector(scheme=scheme, key_fingerprint=fingerprint, codec_digest=digest,
                               run_id=run_id, round=round_, length=length, ciphertexts=cts,
                               n_parties=n_parties)
    except (TypeError, ValueError) as exc:
        raise MalformedMessageError(f"encrypted vector fields are invalid: {exc}") from exc


def encrypted_vector_from_bytes(data: bytes, *, public_key: PaillierPublicKey,
                                expected_length: int, run_id: str, round: int,
                                codec: PackingCodec | None = None) -> EncryptedVector:
    """Parse and validate a received vector (see :func:`validate_encrypted_vector`).

    Raises
    ------
    MalformedMessageError, KeyMismatchError, StaleRoundError, VectorLengthError,
    SchemeMismatchError, PackingOverflowError, InvalidCiphertextError
    """
    vector = encrypted_vector_from_bytes_unchecked(data)
    return validate_encrypted_vector(vector, public_key=public_key,
                                     expected_length=expected_length, run_id=run_id,
                                     round=round, codec=codec)


def codec_to_bytes(codec: PackingCodec) -> bytes:
    """Serialise codec parameters as canonical JSON (floats round-trip exactly)."""
    doc = {"kind": CODEC_KIND, "schema_version": codec.schema_version, "lo": float(codec.lo),
           "hi": float(codec.hi), "bits": codec.bits, "max_parties": codec.max_parties,
           "key_bits": codec.key_bits, "integer_mode": codec.integer_mode}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def codec_from_bytes(data: bytes) -> PackingCodec:
    """Parse :func:`codec_to_bytes` output; :class:`MalformedMessageError` if invalid."""
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
        if not isinstance(doc, dict) or doc.pop("kind", None) != CODEC_KIND:
            raise ValueError("not a packing-codec document")
        return PackingCodec(**doc)
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise MalformedMessageError(f"invalid packing codec parameters: {exc}") from exc
