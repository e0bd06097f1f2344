"""The coordinator's steps in SecAgg+: route, sum the masked inputs, remove what is left.

Protocol
--------
With ``U1`` the banks that sent shares, ``U2 ⊆ U1`` those that sent a masked input ``y_u``,
and replies from at least ``t`` neighbours of every bank in ``U1``:

* ``unmask_requests``: tell each bank in ``U2`` which of its neighbours in ``U1`` survived
  (``U2``) and which dropped (``U1 \\ U2``);
* ``residual_mask``: rebuild ``b_u`` for every ``u`` in ``U2`` and ``s_v`` for every ``v`` in
  ``U1 \\ U2`` from ``t`` shares each, and compute
  ``R = sum_{u in U2} PRG(b_u) + sum_{v in U1\\U2} sum_{u in U2 ∩ N(v)} ±PRG(s_uv)`` (the sign
  ``u`` used), so ``sum_{u in U2} y_u - R = sum_{u in U2} x_u (mod M)``;
* ``unmask_sum`` does both for the plain ring; under Paillier ``R`` is removed from the
  encrypted product instead (:mod:`protocols.secagg.paillier_masking`).

Security
--------
The coordinator learns ``b_u`` of survivors and ``s_v`` of dropouts only, so it learns the
sum over ``U2`` and nothing else (see :mod:`protocols.secagg.client`). Each rebuilt ``s_v`` is
checked against ``v``'s advertised public key: inconsistent shares end in
:class:`~protocols.errors.SecretSharingError`, never in a silently wrong unmasking of pairs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocols.errors import ProtocolError, SecretSharingError, StaleRoundError
from protocols.secagg.client import raw_public
from protocols.secagg.config import MaskingConfig
from protocols.secagg.derivation import agree, pairwise_mask_label, self_mask_label
from protocols.secagg.messages import KeyAdvert, MaskedInput, UnmaskReply, UnmaskRequest
from protocols.secagg.shamir import Share, combine_shares

__all__ = ["unmask_requests", "residual_mask", "unmask_sum"]


def unmask_requests(config: MaskingConfig, *, sharers: Collection[int],
                    survivors: Collection[int]) -> tuple[UnmaskRequest, ...]:
    """One request per survivor, listing its neighbours in ``U1`` by fate."""
    alive, shared = set(survivors), set(sharers)
    if not alive <= shared:
        raise ProtocolError("a bank sent a masked input without having shared its keys")
    requests = []
    for u in sorted(alive):
        peers = config.neighbours[u] & shared
        requests.append(UnmaskRequest(recipient=u, tag=config.tag,
                                      survivors=tuple(sorted(peers & alive)),
                                      dropped=tuple(sorted(peers - alive))))
    return tuple(requests)


def _collect(config: MaskingConfig, replies: Sequence[UnmaskReply], survivors: set[int],
             ) -> tuple[dict[int, list[Share]], dict[int, list[Share]]]:
    seeds: dict[int, list[Share]] = {}
    keys: dict[int, list[Share]] = {}
    for reply in replies:
        if reply.tag != config.tag:
            raise StaleRoundError("unmask reply of another run, round or parameter set")
        if reply.sender not in survivors:
            raise ProtocolError(f"unmask reply from {reply.sender}, which sent no input")
        for owner, share in reply.seed_shares:
            seeds.setdefault(owner, []).append(share)
        for owner, share in reply.key_shares:
            keys.setdefault(owner, []).append(share)
    return seeds, keys


def residual_mask(config: MaskingConfig, *, adverts: Mapping[int, KeyAdvert],
                  sharers: Collection[int], survivors: Collection[int],
                  replies: Sequence[UnmaskReply]) -> np.ndarray:
    """``R``: what remains of the masks in the sum of the survivors' ``y_u`` (mod ``M``).

    Raises
    ------
    SecretSharingError
        Fewer than ``t`` shares of a needed secret arrived, or a rebuilt key does not match
        its advert (abort the round).
    """
    alive, dropped = set(survivors), set(sharers) - set(survivors)
    seeds, keys = _collect(config, replies, alive)
    ring, tag, t, length = config.ring, config.tag, config.threshold, config.length
    residual = ring.zeros(length)
    for u in sorted(alive):
        seed = combine_shares(seeds.get(u, []), threshold=t)
        residual = ring.add(residual, ring.expand(seed, length, label=self_mask_label(tag, u)))
    for v in sorted(dropped):
        secret = X25519PrivateKey.from_private_bytes(combine_shares(keys.get(v, []), threshold=t))
        if raw_public(secret) != adverts[v].mask_public:
            raise SecretSharingError(f"the rebuilt mask key of bank {v} does not match its "
                                     "advert (wrong shares); abort the round")
        for u in sorted(config.neighbours[v] & alive):
            seed = agree(secret, adverts[u].mask_public, purpose=b"pair", tag=tag)
            mask = ring.expand(seed, length, label=pairwise_mask_label(tag, u, v))
            residual = ring.add(residual, mask) if v > u else ring.sub(residual, mask)
    return residual


def unmask_sum(config: MaskingConfig, *, adverts: Mapping[int, KeyAdvert],
               sharers: Collection[int], masked: Sequence[MaskedInput],
               replies: Sequence[UnmaskReply]) -> np.ndarray:
    """Plain ring: ``sum_{u in U2} x_u mod 2**k`` from the masked inputs and the replies."""
    ring = config.ring
    total = ring.zeros(config.length)
    senders = set()
    for message in masked:
        if message.tag != config.tag:
            raise StaleRoundError("masked input of another run, round or parameter set")
        if message.sender in senders or message.values.shape != (config.length,):
            raise ProtocolError(f"masked input from {message.sender} repeats or has a wrong "
                                "length")
        senders.add(message.sender)
        total = ring.add(total, message.values)
    return ring.sub(total, residual_mask(config, adverts=adverts, sharers=sharers,
                                         survivors=senders, replies=replies))
