"""Key and label derivation shared by the banks and the coordinator in SecAgg+.

* pairwise mask seed ``s_uv = HKDF-SHA256(X25519(s_u, s_v^PK), info = "pair" | tag)``: both
  ends compute it, and so can the coordinator once it rebuilds a dropped bank's ``s_u``;
* share-envelope key ``c_uv = HKDF-SHA256(X25519(c_u, c_v^PK), info = "seal" | tag)``: the
  coordinator never learns ``c_u`` (it is not shared), so it cannot open the envelopes;
* mask labels bind each expansion to its purpose, the round tag and the party pair.

An X25519 result of all zeros (a low-order peer key) is refused with
:class:`~protocols.errors.MalformedPointError`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocols.errors import MalformedPointError

__all__ = ["agree", "self_mask_label", "pairwise_mask_label"]


def agree(private_key: X25519PrivateKey, peer_public: bytes, *, purpose: bytes,
          tag: bytes) -> bytes:
    """32 bytes from X25519 between ``private_key`` and the raw ``peer_public``."""
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as exc:
        raise MalformedPointError("a peer's X25519 key is low order or malformed; drop that "
                                  "peer from the round") from exc
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"fedcredit-secagg|" + purpose + b"|" + tag).derive(shared)


def self_mask_label(tag: bytes, party: int) -> bytes:
    """Label of party ``party``'s self mask ``PRG(b_u)``."""
    return b"self|" + tag + party.to_bytes(2, "big")


def pairwise_mask_label(tag: bytes, u: int, v: int) -> bytes:
    """Label of the pairwise mask of ``{u, v}`` (symmetric in ``u`` and ``v``)."""
    low, high = sorted((u, v))
    return b"pair|" + tag + low.to_bytes(2, "big") + high.to_bytes(2, "big")
