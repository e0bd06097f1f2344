"""Wire messages of the vertical logistic regression, their bytes and their checks.

Messages (sender -> receiver, all relayed by the coordinator)
-------------------------------------------------------------
===========================  ==================  =================================  =========
kind                         sender -> receiver  content                            key
===========================  ==================  =================================  =========
``bank-residuals``           bank -> center      ``[[d_B]]`` per batch row          ``PK_B``
``center-partials``          center -> bank      ``[[u_C]]`` per batch row          ``PK_C``
``center-masked-gradient``   center -> bank      packed ``[[S_C + r_C]]``          ``PK_B``
``bank-masked-gradient``     bank -> center      packed ``[[S_B + r_B]]``          ``PK_C``
``center-gradient-opened``   bank -> center      packed ``S_C + r_C`` (plaintext)   ``PK_B``
``bank-gradient-opened``     center -> bank      packed ``S_B + r_B`` (plaintext)   ``PK_C``
``center-scores``            center -> bank      packed ``[[u_C]]`` for scoring     ``PK_B``
===========================  ==================  =================================  =========

The first five carry :class:`VerticalCiphertexts`, the "opened" ones
:class:`MaskedGradientValues`: statistically masked values (see
:mod:`protocols.vertical_lr.encoding`), safe for the coordinator to see.

Wire format (big-endian, version 1), the same for both classes::

    b"FCVL" | u16 wire version | u8 len + scheme | u8 len + kind | 32 B key fingerprint
    | u16 len + run id (utf-8) | u32 epoch | u32 batch | u64 length | u32 count
    | u16 width | count * width B integers

Security
--------
Metadata is not authenticated; receivers check it against what they expect (kind, key,
run, epoch, batch, length) with the ``validate_*`` functions, which the ``*_from_bytes``
functions always run. Ciphertexts must lie in ``Z*_{n**2}`` and opened values in ``Z_n``.
Bytes that do not parse raise :class:`~protocols.errors.MalformedMessageError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import gmpy2
from gmpy2 import mpz
from phe.paillier import PaillierPublicKey

from protocols.aggregation.validation import check_ciphertexts
from protocols.byte_reader import ByteReader
from protocols.errors import (
    KeyMismatchError,
    MalformedMessageError,
    StaleRoundError,
    UnexpectedMessageError,
    VectorLengthError,
)
from protocols.paillier.keys import key_fingerprint
from protocols.vertical_lr.encoding import slots_per_plaintext

__all__ = [
    "SCHEME", "SCHEMA_VERSION", "KIND_BANK_RESIDUALS", "KIND_CENTER_PARTIALS",
    "KIND_CENTER_MASKED_GRADIENT", "KIND_BANK_MASKED_GRADIENT", "KIND_CENTER_SCORES",
    "KIND_CENTER_GRADIENT_OPENED", "KIND_BANK_GRADIENT_OPENED", "CIPHERTEXT_KINDS",
    "OPENED_KINDS", "VerticalCiphertexts", "MaskedGradientValues",
    "validate_vertical_ciphertexts", "validate_masked_values",
    "vertical_ciphertexts_to_bytes", "vertical_ciphertexts_from_bytes",
    "masked_values_to_bytes", "masked_values_from_bytes", "parse_vertical_message",
    "check_units",
]

SCHEME = "paillier-vlr-fixed32"
SCHEMA_VERSION = 1
MAGIC = b"FCVL"
WIRE_VERSION = 1
KIND_BANK_RESIDUALS = "bank-residuals"
KIND_CENTER_PARTIALS = "center-partials"
KIND_CENTER_MASKED_GRADIENT = "center-masked-gradient"
KIND_BANK_MASKED_GRADIENT = "bank-masked-gradient"
KIND_CENTER_SCORES = "center-scores"
KIND_CENTER_GRADIENT_OPENED = "center-gradient-opened"
KIND_BANK_GRADIENT_OPENED = "bank-gradient-opened"
CIPHERTEXT_KINDS = (KIND_BANK_RESIDUALS, KIND_CENTER_PARTIALS, KIND_CENTER_MASKED_GRADIENT,
                    KIND_BANK_MASKED_GRADIENT, KIND_CENTER_SCORES)
OPENED_KINDS = (KIND_CENTER_GRADIENT_OPENED, KIND_BANK_GRADIENT_OPENED)
_PACKED_KINDS = (KIND_CENTER_SCORES, KIND_CENTER_MASKED_GRADIENT, KIND_BANK_MASKED_GRADIENT)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_RUN_ID_BYTES = 256
MAX_COUNT = 10_000_000
MAX_WIDTH = 2048
_U32 = 2**32


def _check_header(kind: str, kinds: tuple[str, ...], fingerprint: str, run_id: str,
                  epoch: int, batch: int, scheme: str, schema_version: int) -> None:
    if scheme != SCHEME or schema_version != SCHEMA_VERSION:
        raise ValueError(f"scheme {scheme!r} v{schema_version} is not supported (this build "
                         f"reads {SCHEME} v{SCHEMA_VERSION}); upgrade both parties")
    if kind not in kinds:
        raise ValueError(f"unknown message kind {kind!r}")
    if not isinstance(fingerprint, str) or not _HEX64.match(fingerprint):
        raise ValueError("key_fingerprint must be 64 lowercase hex characters")
    if not isinstance(run_id, str) or len(run_id.encode("utf-8")) > MAX_RUN_ID_BYTES:
        raise ValueError(f"run_id must be a string of at most {MAX_RUN_ID_BYTES} bytes")
    for name, value in (("epoch", epoch), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U32:
            raise ValueError(f"{name} must be an int in [0, 2**32)")


def _check_ints(values: tuple[int, ...], name: str) -> None:
    if not isinstance(values, tuple) or not 0 < len(values) <= MAX_COUNT:
        raise ValueError(f"{name} must be a non-empty tuple of at most {MAX_COUNT} ints")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise ValueError(f"{name} must hold non-negative ints")


@dataclass(frozen=True, slots=True)
class VerticalCiphertexts:
    """Raw Paillier ciphertexts of one protocol step and the metadata to check them.

    Parameters
    ----------
    kind : str
        One of :data:`CIPHERTEXT_KINDS` (which step and sender).
    key_fingerprint : str
        Fingerprint of the key the ciphertexts are under.
    run_id : str
        Training or scoring run.
    epoch, batch : int
        Position in the batch schedule (scoring: epoch 0, batch = chunk index).
    length : int
        Logical number of values; equals the ciphertext count except for the packed kinds
        (scores and masked gradients, several values per plaintext).
    ciphertexts : tuple of int
        Elements of ``Z*_{n**2}``.
    """

    kind: str
    key_fingerprint: str
    run_id: str
    epoch: int
    batch: int
    length: int
    ciphertexts: tuple[int, ...] = field(repr=False)
    scheme: str = SCHEME
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_header(self.kind, CIPHERTEXT_KINDS, self.key_fingerprint, self.run_id,
                      self.epoch, self.batch, self.scheme, self.schema_version)
        _check_ints(self.ciphertexts, "ciphertexts")
        if isinstance(self.length, bool) or not isinstance(self.length, int) or self.length < 1:
            raise ValueError("length must be a positive int")
        if self.kind not in _PACKED_KINDS and self.length != len(self.ciphertexts):
            raise ValueError(f"{self.kind} carries one ciphertext per value, but length is "
                             f"{self.length} for {len(self.ciphertexts)} ciphertexts")
        if len(self.ciphertexts) > self.length:
            raise ValueError(f"{len(self.ciphertexts)} ciphertexts for {self.length} values")


@dataclass(frozen=True, slots=True)
class MaskedGradientValues:
    """Decrypted, still masked gradient sums returned to their owner.

    Each value is one decrypted plaintext holding several slots ``S + 2**b + r`` (see
    :class:`~protocols.vertical_lr.encoding.GradientSlotLayout`); the masks ``r`` hide the
    sums statistically from the decrypting peer and the relay. ``key_fingerprint`` names
    the key that decrypted them (the owner's peer); values are below its ``n``.
    """

    kind: str
    key_fingerprint: str
    run_id: str
    epoch: int
    batch: int
    values: tuple[int, ...] = field(repr=False)
    scheme: str = SCHEME
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_header(self.kind, OPENED_KINDS, self.key_fingerprint, self.run_id,
                      self.epoch, self.batch, self.scheme, self.schema_version)
        _check_ints(self.values, "values")

    @property
    def length(self) -> int:
        """Number of values."""
        return len(self.values)


Message = VerticalCiphertexts | MaskedGradientValues


def check_units(ciphertexts: tuple[int, ...], public_key: PaillierPublicKey) -> None:
    """:func:`~protocols.aggregation.validation.check_ciphertexts` with one gcd per vector.

    Every ``c`` must satisfy ``0 < c < n**2`` and ``gcd(c, n) = 1``; the latter holds for
    all of them iff ``gcd(prod c mod n, n) = 1`` (a prime factor of ``n`` dividing the
    product divides one of the ``c``). On failure the per-ciphertext check names the culprit.

    Raises
    ------
    InvalidCiphertextError
        A ciphertext outside ``Z*_{n**2}``.
    """
    n = mpz(public_key.n)
    nsq = n * n
    acc = mpz(1)
    for c in ciphertexts:
        if not 0 < c < nsq:
            break
        acc = acc * c % n
    else:
        if gmpy2.gcd(acc, n) == 1:
            return
    check_ciphertexts(ciphertexts, public_key)
    raise AssertionError("unreachable: check_ciphertexts accepted a non-unit")  # pragma: no cover


def _check_expected(msg: Message, *, public_key: PaillierPublicKey, kind: str, run_id: str,
                    epoch: int, batch: int, length: int) -> None:
    if msg.kind != kind:
        raise UnexpectedMessageError(f"expected a {kind!r} message but got {msg.kind!r}; "
                                     "check the step order and the sender")
    fingerprint = key_fingerprint(public_key)
    if msg.key_fingerprint != fingerprint:
        raise KeyMismatchError(f"{kind} message is under key {msg.key_fingerprint[:16]}..., "
                               f"expected {fingerprint[:16]}...; the peer uses another key pair")
    if (msg.run_id, msg.epoch, msg.batch) != (run_id, epoch, batch):
        raise StaleRoundError(f"{kind} message is for run {msg.run_id!r} epoch {msg.epoch} "
                              f"batch {msg.batch}, expected run {run_id!r} epoch {epoch} batch "
                              f"{batch}; dropping it (replay or straggler)")
    if msg.length != length:
        raise VectorLengthError(f"{kind} message has {msg.length} values, expected {length}")


def validate_vertical_ciphertexts(msg: VerticalCiphertexts, *, public_key: PaillierPublicKey,
                                  kind: str, run_id: str, epoch: int, batch: int, length: int,
                                  n_ciphertexts: int | None = None) -> VerticalCiphertexts:
    """Check a received message against the receiver's expectations; return it.

    ``n_ciphertexts`` is the expected ciphertext count: by default ``length`` for the
    unpacked kinds and the 64-bit-slot count for scores; masked gradients need it
    (:meth:`~protocols.vertical_lr.encoding.GradientSlotLayout.n_plaintexts`).

    Raises
    ------
    UnexpectedMessageError
        Another kind (step or sender).
    KeyMismatchError
        Ciphertexts under another key.
    StaleRoundError
        Another run, epoch or batch.
    VectorLengthError
        Another number of values (or of packed ciphertexts).
    InvalidCiphertextError
        A ciphertext outside ``Z*_{n**2}``.
    """
    if not isinstance(msg, VerticalCiphertexts):
        raise TypeError("expected a VerticalCiphertexts message")
    _check_expected(msg, public_key=public_key, kind=kind, run_id=run_id, epoch=epoch,
                    batch=batch, length=length)
    if n_ciphertexts is None:
        if kind not in (KIND_BANK_RESIDUALS, KIND_CENTER_PARTIALS, KIND_CENTER_SCORES):
            raise ValueError(f"pass n_ciphertexts to validate a {kind} message")
        n_ciphertexts = (-(-length // slots_per_plaintext(int(public_key.n)))
                         if kind == KIND_CENTER_SCORES else length)
    if len(msg.ciphertexts) != n_ciphertexts:
        raise VectorLengthError(f"{kind} message packs {length} values into "
                                f"{len(msg.ciphertexts)} ciphertexts, expected {n_ciphertexts}")
    check_units(msg.ciphertexts, public_key)
    return msg


def validate_masked_values(msg: MaskedGradientValues, *, public_key: PaillierPublicKey,
                           kind: str, run_id: str, epoch: int, batch: int,
                           length: int) -> MaskedGradientValues:
    """Check returned masked values; ``public_key`` is the key that decrypted them.

    Raises
    ------
    UnexpectedMessageError, KeyMismatchError, StaleRoundError, VectorLengthError
        As :func:`validate_vertical_ciphertexts`.
    MalformedMessageError
        A value is not below the modulus ``n``.
    """
    if not isinstance(msg, MaskedGradientValues):
        raise TypeError("expected a MaskedGradientValues message")
    _check_expected(msg, public_key=public_key, kind=kind, run_id=run_id, epoch=epoch,
                    batch=batch, length=length)
    n = int(public_key.n)
    if any(v >= n for v in msg.values):
        raise MalformedMessageError(f"{kind} message holds a value >= n; ask the peer to "
                                    "decrypt again")
    return msg


def _to_bytes(msg: Message, ints: tuple[int, ...]) -> bytes:
    scheme, kind = msg.scheme.encode("ascii"), msg.kind.encode("ascii")
    run_id = msg.run_id.encode("utf-8")
    width = max(1, *((v.bit_length() + 7) // 8 for v in ints))
    parts = [MAGIC, WIRE_VERSION.to_bytes(2, "big"), len(scheme).to_bytes(1, "big"), scheme,
             len(kind).to_bytes(1, "big"), kind, bytes.fromhex(msg.key_fingerprint),
             len(run_id).to_bytes(2, "big"), run_id, msg.epoch.to_bytes(4, "big"),
             msg.batch.to_bytes(4, "big"), msg.length.to_bytes(8, "big"),
             len(ints).to_bytes(4, "big"), width.to_bytes(2, "big")]
    parts.extend(v.to_bytes(width, "big") for v in ints)
    return b"".join(parts)


def vertical_ciphertexts_to_bytes(msg: VerticalCiphertexts) -> bytes:
    """Serialise a :class:`VerticalCiphertexts` (fixed-width big-endian integers)."""
    return _to_bytes(msg, msg.ciphertexts)


def masked_values_to_bytes(msg: MaskedGradientValues) -> bytes:
    """Serialise a :class:`MaskedGradientValues` (same framing as ciphertexts)."""
    return _to_bytes(msg, msg.values)


def parse_vertical_message(data: bytes) -> Message:
    """Parse the structure only (no key, round or range checks): for tools and tests.

    Raises
    ------
    MalformedMessageError
        Anything that is not a well-formed version-1 vertical message.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("expected bytes")
    reader = ByteReader(data, "vertical message")
    if reader.take(4) != MAGIC or reader.uint(2) != WIRE_VERSION:
        raise MalformedMessageError("not a version-1 vertical message (bad magic or version)")
    scheme, kind = reader.text(1, "ascii"), reader.text(1, "ascii")
    fingerprint, run_id = reader.take(32).hex(), reader.text(2, "utf-8")
    epoch, batch, length = reader.uint(4), reader.uint(4), reader.uint(8)
    count, width = reader.uint(4), reader.uint(2)
    if not 0 < count <= MAX_COUNT or not 0 < width <= MAX_WIDTH or reader.left() != count * width:
        raise MalformedMessageError(f"vertical message body does not hold {count} integers of "
                                    f"{width} bytes; the sender must re-send it")
    body = reader.take(count * width)
    ints = tuple(int.from_bytes(body[i:i + width], "big") for i in range(0, len(body), width))
    try:
        if kind in OPENED_KINDS:
            if length != count:
                raise ValueError(f"opened values declare length {length} for {count} values")
            return MaskedGradientValues(kind, fingerprint, run_id, epoch, batch, ints, scheme)
        return VerticalCiphertexts(kind, fingerprint, run_id, epoch, batch, length, ints, scheme)
    except (TypeError, ValueError) as exc:
        raise MalformedMessageError(f"vertical message fields are invalid: {exc}") from exc


def vertical_ciphertexts_from_bytes(data: bytes, *, public_key: PaillierPublicKey, kind: str,
                                    run_id: str, epoch: int, batch: int, length: int,
                                    n_ciphertexts: int | None = None) -> VerticalCiphertexts:
    """Parse and validate (:func:`validate_vertical_ciphertexts`) received ciphertexts."""
    msg = parse_vertical_message(data)
    if not isinstance(msg, VerticalCiphertexts):
        raise UnexpectedMessageError(f"expected a {kind!r} message but got {msg.kind!r}")
    return validate_vertical_ciphertexts(msg, public_key=public_key, kind=kind, run_id=run_id,
                                         epoch=epoch, batch=batch, length=length,
                                         n_ciphertexts=n_ciphertexts)


def masked_values_from_bytes(data: bytes, *, public_key: PaillierPublicKey, kind: str,
                             run_id: str, epoch: int, batch: int,
                             length: int) -> MaskedGradientValues:
    """Parse and validate (:func:`validate_masked_values`) returned masked values."""
    msg = parse_vertical_message(data)
    if not isinstance(msg, MaskedGradientValues):
        raise UnexpectedMessageError(f"expected a {kind!r} message but got {msg.kind!r}")
    return validate_masked_values(msg, public_key=public_key, kind=kind, run_id=run_id,
                                  epoch=epoch, batch=batch, length=length)
