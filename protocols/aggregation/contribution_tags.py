"""Contribution tags: how a bank checks how many banks are really inside a sum it opens.

Protocol step. Each bank appends one secret random value, its *tag* ``t_k``, to every vector
it encrypts, and sends beside the ciphertexts a *tag box*: ``(k, t_k)`` sealed with AES-256-GCM
under a key every bank derives from the banks' shared Paillier private key, bound to the run,
the vector kind and the round. The coordinator multiplies the ciphertexts (which adds the tags
in the last slot) and concatenates the boxes. A bank opening the sum decrypts every box,
requires distinct bank indices, as many boxes as the sum claims parties, and that the opened
tag slot equals the sum of the boxed tags.

Security assumption: the coordinator may deviate but holds only the public key. It cannot read
or forge a box (AES-GCM under a key derived from the private key), so the boxes name banks
that really sealed a vector of this run, kind and round. To pass one bank's tag-bearing (last)
ciphertext (or any combination other than the plain product of every listed contribution) off
as a sum, it would have to hit the sum of tags it cannot read: each failed guess is refused (probability of a
hit about ``2**-20`` per try for the 20-bit count slots, less for the others), and every refusal
is visible to the bank. Not covered: a bank colluding with the coordinator (it holds the
private key, so it can make boxes for any index, and can already decrypt any vector); adding
extra plaintext to the other slots (integrity of the values, not the privacy of a bank's vector);
and, open, swapping a vector's *other* ciphertexts: only the last one carries the tag, so one
bank's ciphertext at another position passes (``docs/security.md``, "Sums of too few banks").
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocols.errors import ProtocolError

__all__ = ["BOX_BYTES", "ContributorsError", "derive_tag_key", "seal_tag", "open_tags",
           "draw_tag", "check_count"]

_INFO = b"fedcredit/contribution-tags/v1"
_NONCE_BYTES = 12
_PLAIN = struct.Struct(">IQ")  # bank index, tag
BOX_BYTES = _NONCE_BYTES + _PLAIN.size + 16
"""One box: nonce, sealed ``(bank, tag)``, GCM tag."""


class ContributorsError(ProtocolError):
    """A sum's contributions do not check out (too few, repeated, forged or not all inside)."""


def derive_tag_key(secret: bytes) -> bytes:
    """The banks' AES-256 key for tag boxes, ``HKDF-SHA256(secret, info=...)``.

    ``secret`` is key material every bank holds and the coordinator does not (the shared
    private key's primes); at least 16 bytes.
    """
    if not isinstance(secret, bytes) or len(secret) < 16:
        raise ValueError("derive the tag key from at least 16 bytes of the banks' shared "
                         "private key material")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)


def draw_tag(bits: int, *, random_bytes: Callable[[int], bytes] = os.urandom) -> int:
    """A uniform secret tag in ``[0, 2**bits)`` (``random_bytes``: the OS RNG by default)."""
    if not 1 <= bits <= 63:
        raise ValueError("tag bits must be in 1..63")
    return int.from_bytes(random_bytes(8), "big") >> (64 - bits)


def _associated(run_id: str, kind: str, round: int) -> bytes:
    return b"\x00".join((run_id.encode("utf-8"), kind.encode("utf-8"), str(round).encode()))


def seal_tag(key: bytes, *, bank: int, tag: int, run_id: str, kind: str, round: int,
             nonce: bytes | None = None) -> bytes:
    """Bank step: the box of ``(bank, tag)`` for this run, kind and round (:data:`BOX_BYTES`)."""
    nonce = os.urandom(_NONCE_BYTES) if nonce is None else nonce
    sealed = AESGCM(key).encrypt(nonce, _PLAIN.pack(bank, tag), _associated(run_id, kind, round))
    return nonce + sealed


def open_tags(key: bytes, boxes: bytes, *, run_id: str, kind: str,
              round: int) -> list[tuple[int, int]]:
    """Opening bank's step: the ``(bank, tag)`` of every box, each bank at most once.

    Raises
    ------
    ContributorsError
        The boxes are truncated, forged, of another run, kind or round, or name a bank twice.
    """
    if not isinstance(boxes, bytes) or len(boxes) % BOX_BYTES:
        raise ContributorsError("a sum's contribution boxes are truncated; the coordinator "
                                "must forward every contributor's box unchanged.")
    out = []
    aad = _associated(run_id, kind, round)
    for at in range(0, len(boxes), BOX_BYTES):
        box = boxes[at:at + BOX_BYTES]
        try:
            plain = AESGCM(key).decrypt(box[:_NONCE_BYTES], box[_NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise ContributorsError("a contribution box of this sum was not sealed by a bank "
                                    "for this run, step and round; the bank does not open "
                                    "the sum.") from exc
        out.append(_PLAIN.unpack(plain))
    banks = [bank for bank, _ in out]
    if len(set(banks)) != len(banks):
        raise ContributorsError("a sum names one bank's contribution twice; the bank does not "
                                "open it.")
    return out


def check_count(opened: Sequence[tuple[int, int]], claimed_parties: int) -> None:
    """The sum claims exactly as many parties as it holds boxes."""
    if len(opened) != claimed_parties:
        raise ContributorsError(f"a sum claims {claimed_parties} contributions but carries "
                                f"{len(opened)} contribution boxes; the bank does not open it.")
