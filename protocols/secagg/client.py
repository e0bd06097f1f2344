"""A bank's steps in SecAgg+ (Bell et al. 2020): double masking with shared seeds.

Protocol (bank ``u`` with neighbours ``N(u)`` in the public graph, threshold ``t``)
----------------------------------------------------------------------------------
0. ``advertise``: fresh X25519 key pairs ``(c_u, c_u^PK)`` for envelopes and ``(s_u, s_u^PK)``
   for pairwise masks; send both public keys.
1. ``share_keys``: draw a 32-byte self-mask seed ``b_u``; split ``b_u`` and the raw ``s_u``
   ``t``-of-``|N(u) ∩ U0|`` (Shamir, share index ``v + 1``); seal ``v``'s two shares with
   AES-GCM under ``c_uv`` (:mod:`protocols.secagg.derivation`) and send them via the coordinator.
2. ``mask``: open the envelopes received from ``U1(u)`` (neighbours that shared), then send
   ``y_u = x_u + PRG(b_u) + sum_{v in U1(u), v > u} PRG(s_uv) - sum_{v in U1(u), v < u} PRG(s_uv)
   (mod M)``. Pairwise masks cancel in the sum over all banks that sent ``y``; the self mask
   makes ``y_u`` useless even to whoever later learns ``s_uv``.
3. ``unmask``: told which neighbours survived (sent ``y``) and which dropped, reveal ``b_v``'s
   share for each survivor and ``s_v``'s share for each dropout. A bank answers once per round,
   never for a peer in both lists, and only if at least ``t`` banks (itself included) survive.
2b. ``attest`` (consistency round, between 2 and 3): sign the survivor list the coordinator
   announces, at most one list per session and only one naming this bank; step 3 then
   reveals only for a request consistent with that list (the signatures are checked by the
   caller, :func:`federation.steps.masking.check_attestations`).

Security
--------
Honest-but-curious coordinator colluding with at most ``t - 1`` banks (per neighbourhood):
for every bank ``u`` at most one of ``b_u`` and ``s_u`` can be rebuilt, because honest banks
reveal the share of one secret per peer only. If ``u`` survived, ``s_u`` stays secret, so the
pairwise masks with its honest neighbours hide ``y_u``; if ``u`` dropped, its ``y_u`` never
entered the sum. Hence the coordinator learns only the sum of the survivors' inputs
(Bell et al. 2020, Thm. 3.6, for a graph where colluders do not cover a neighbourhood).
An *active* coordinator that sends different survivor lists to different banks is held by the
consistency round (2b): an honest bank signs one list per session and reveals only for that
list, once a quorum of the federation signed the same list (Bonawitz et al. 2017's consistency
check; :func:`federation.steps.masking.attestation_quorum`, docs/security.md).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from protocols.byte_reader import ByteReader
from protocols.errors import (
    MalformedMessageError,
    MaskingRefusedError,
    ProtocolError,
    StaleRoundError,
    VectorLengthError,
)
from protocols.secagg.config import MaskingConfig
from protocols.secagg.derivation import agree, pairwise_mask_label, self_mask_label
from protocols.secagg.messages import (
    KeyAdvert,
    MaskedInput,
    SealedShares,
    UnmaskReply,
    UnmaskRequest,
)
from protocols.secagg.shamir import Share, read_share, share_to_bytes, split_secret

__all__ = ["MaskingClient", "raw_private", "raw_public"]

RandomBytes = Callable[[int], bytes]
_NONCE_BYTES = 12


def raw_public(key: X25519PrivateKey) -> bytes:
    """The raw 32-byte public half."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def raw_private(key: X25519PrivateKey) -> bytes:
    """The raw 32-byte private key (the secret that is Shamir-shared for dropout recovery)."""
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


_CIPHER, _MASK = "cipher", "mask"
"""Names of a session's two private keys in :class:`MaskingClient`'s state."""


def _aad(tag: bytes, sender: int, recipient: int) -> bytes:
    return tag + sender.to_bytes(2, "big") + recipient.to_bytes(2, "big")


class MaskingClient:
    """One bank's state for one SecAgg+ round (create a new one per round).

    Parameters
    ----------
    config : MaskingConfig
        Agreed parameters of the round.
    party : int
        This bank's number ``0..N-1``.
    random_bytes : callable, optional
        Source of keys, seeds and nonces; ``os.urandom`` by default (tests alone inject).
    rng : random.Random, optional
        Shamir coefficients; :class:`random.SystemRandom` by default.
    """

    def __init__(self, config: MaskingConfig, party: int, *,
                 random_bytes: RandomBytes = os.urandom,
                 rng: random.Random | None = None) -> None:
        if not 0 <= party < config.n_parties:
            raise ValueError(f"party must be in 0..{config.n_parties - 1}")
        self.config = config
        self.party = party
        self.neighbours = config.neighbours[party]
        self._random_bytes = random_bytes
        self._rng = rng
        cipher_key = X25519PrivateKey.from_private_bytes(random_bytes(32))
        mask_key = X25519PrivateKey.from_private_bytes(random_bytes(32))
        self._raw_keys = {_CIPHER: raw_private(cipher_key), _MASK: raw_private(mask_key)}
        """The session's two X25519 private keys as raw bytes (what is pickled)."""
        self._keys: dict[str, X25519PrivateKey] = {_CIPHER: cipher_key, _MASK: mask_key}
        """The same keys as objects, rebuilt on first use after a restore (a step that needs
        neither, the survivor list or the reveal, builds none)."""
        self._seed = random_bytes(32)
        self._adverts: dict[int, KeyAdvert] = {}
        self._seal_keys: dict[int, bytes] = {}
        """Envelope key with each neighbour, derived once in :meth:`share_keys` (the same
        X25519 agreement opens that neighbour's envelope to this bank in :meth:`mask`)."""
        self._held: dict[int, tuple[Share, Share]] = {}
        self._answered = False
        self._attested: tuple[int, ...] | None = None

    @property
    def _cipher_key(self) -> X25519PrivateKey:
        """The envelope key ``c_u`` (X25519 agreements that seal the shares)."""
        return self._private(_CIPHER)

    @property
    def _mask_key(self) -> X25519PrivateKey:
        """The mask key ``s_u`` (X25519 agreements that seed the pairwise masks)."""
        return self._private(_MASK)

    def _private(self, name: str) -> X25519PrivateKey:
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = X25519PrivateKey.from_private_bytes(self._raw_keys[name])
        return key

    def advertise(self) -> KeyAdvert:
        """Step 0: the two public keys."""
        return KeyAdvert(sender=self.party, tag=self.config.tag,
                         cipher_public=raw_public(self._cipher_key),
                         mask_public=raw_public(self._mask_key))

    def share_keys(self, adverts: Sequence[KeyAdvert]) -> tuple[SealedShares, ...]:
        """Step 1: shares of ``b_u`` and ``s_u`` for each neighbour that advertised.

        Raises
        ------
        StaleRoundError, ProtocolError
            An advert of another round, from a non-neighbour, twice from one bank, or keys
            that repeat.
        MaskingRefusedError
            Fewer than ``t`` neighbours advertised (the round cannot tolerate a dropout).
        """
        keys: set[bytes] = set()
        for advert in adverts:
            self._check_tag(advert.tag)
            if advert.sender not in self.neighbours or advert.sender in self._adverts:
                raise ProtocolError(f"advert from {advert.sender} is not from a new neighbour "
                                    "of this bank; the coordinator routed it wrongly")
            keys.update((advert.cipher_public, advert.mask_public))
            self._adverts[advert.sender] = advert
        if len(keys) != 2 * len(self._adverts) or raw_public(self._mask_key) in keys:
            raise ProtocolError("public keys repeat across adverts; abort the round")
        if len(self._adverts) < self.config.threshold:
            raise MaskingRefusedError(f"{len(self._adverts)} neighbours advertised keys, "
                                      f"{self.config.threshold} needed; abort the round")
        peers = sorted(self._adverts)
        indices = [v + 1 for v in peers]
        t = self.config.threshold
        seed_shares = split_secret(self._seed, threshold=t, indices=indices, rng=self._rng)
        key_shares = split_secret(raw_private(self._mask_key), threshold=t, indices=indices,
                                  rng=self._rng)
        return tuple(self._seal(v, seed_share, key_share)
                     for v, seed_share, key_share in zip(peers, seed_shares, key_shares,
                                                          strict=True))

    def _seal_key(self, peer: int) -> bytes:
        """The envelope key shared with ``peer`` (whose advert this bank accepted)."""
        key = self._seal_keys.get(peer)
        if key is None:
            key = agree(self._cipher_key, self._adverts[peer].cipher_public, purpose=b"seal",
                        tag=self.config.tag)
            self._seal_keys[peer] = key
        return key

    def _seal(self, peer: int, seed_share: Share, key_share: Share) -> SealedShares:
        key = self._seal_key(peer)
        nonce = self._random_bytes(_NONCE_BYTES)
        sealed = nonce + AESGCM(key).encrypt(
            nonce, share_to_bytes(seed_share) + share_to_bytes(key_share),
            _aad(self.config.tag, self.party, peer))
        return SealedShares(sender=self.party, recipient=peer, tag=self.config.tag,
                            sealed=sealed)

    def _open(self, message: SealedShares) -> tuple[Share, Share]:
        self._check_tag(message.tag)
        if message.recipient != self.party or message.sender not in self._adverts:
            raise ProtocolError(f"shares from {message.sender} to {message.recipient} were "
                                "not meant for this bank or come from a bank that did not "
                                "advertise")
        key = self._seal_key(message.sender)
        try:
            plain = AESGCM(key).decrypt(message.sealed[:_NONCE_BYTES],
                                        message.sealed[_NONCE_BYTES:],
                                        _aad(self.config.tag, message.sender, self.party))
        except InvalidTag as exc:
            raise MalformedMessageError(f"shares from {message.sender} fail authentication; "
                                        "treat that bank as dropped") from exc
        reader = ByteReader(plain, "sealed shares")
        shares = (read_share(reader), read_share(reader))
        reader.finish()
        if shares[0].index != self.party + 1 or shares[1].index != self.party + 1:
            raise MalformedMessageError("sealed shares carry another bank's index")
        return shares

    def mask(self, values: np.ndarray | list[int], sealed: Sequence[SealedShares]) -> np.ndarray:
        """Step 2: open the received shares and return ``y_u`` (elements of ``Z_M``).

        Raises
        ------
        MaskingRefusedError
            Fewer than ``t`` neighbours sent shares, or this bank already masked.
        ProtocolError
            Bad, repeated or misrouted envelopes; ``VectorLengthError`` on a wrong length.
        """
        if self._held:
            raise MaskingRefusedError("this bank already masked its input in this round")
        ring = self.config.ring
        x = ring.element(values)
        if x.shape != (self.config.length,):
            raise VectorLengthError(f"expected {self.config.length} values, got {x.shape}")
        held: dict[int, tuple[Share, Share]] = {}
        for message in sealed:
            if message.sender in held:
                raise ProtocolError(f"two share envelopes from {message.sender}")
            held[message.sender] = self._open(message)
        if len(held) < self.config.threshold:
            raise MaskingRefusedError(f"{len(held)} neighbours sent shares, "
                                      f"{self.config.threshold} needed; abort the round")
        self._held = held
        tag, length = self.config.tag, self.config.length
        y = ring.add(x, ring.expand(self._seed, length, label=self_mask_label(tag, self.party)))
        for v in sorted(held):
            seed = agree(self._mask_key, self._adverts[v].mask_public, purpose=b"pair", tag=tag)
            mask = ring.expand(seed, length, label=pairwise_mask_label(tag, self.party, v))
            y = ring.add(y, mask) if v > self.party else ring.sub(y, mask)
        return y

    def masked_input(self, values: np.ndarray | list[int],
                     sealed: Sequence[SealedShares]) -> MaskedInput:
        """Step 2 for the plain ring ``Z_{2**k}``: :meth:`mask` as a wire message."""
        if not self.config.ring.is_word:
            raise TypeError("masked_input is for a power-of-two ring; under Paillier use "
                            "protocols.secagg.paillier_masking.encrypt_masked_update")
        return MaskedInput(sender=self.party, tag=self.config.tag,
                           values=self.mask(values, sealed))

    def attest(self, survivors: Sequence[int]) -> tuple[int, ...]:
        """Step 2b: the survivor list this bank signs (sorted, deduplicated).

        Raises
        ------
        MaskingRefusedError
            This bank has not masked yet, the list leaves it out although it masked, or the
            coordinator asks it to sign a second, different list in this session.
        ProtocolError
            A bank number outside the session's parties.
        """
        ids = tuple(sorted({int(i) for i in survivors}))
        if any(not 0 <= i < self.config.n_parties for i in ids):
            raise ProtocolError("the survivor list names a bank outside this session")
        if not self._held:
            raise MaskingRefusedError("this bank has not masked its input in this session; "
                                      "there is no survivor list to sign yet")
        if self.party not in ids:
            raise MaskingRefusedError("the survivor list leaves out this bank, which masked "
                                      "its input; refusing to sign it")
        previous = self.__dict__.get("_attested")
        if previous is not None and previous != ids:
            raise MaskingRefusedError("asked to sign a second, different survivor list in this "
                                      "session; the coordinator tells banks different lists")
        self._attested = ids
        return ids

    @property
    def attested(self) -> tuple[int, ...] | None:
        """The survivor list this bank signed in step 2b (None before)."""
        return self.__dict__.get("_attested")

    def unmask(self, request: UnmaskRequest) -> UnmaskReply:
        """Step 3: seed shares of surviving neighbours, key shares of dropped ones.

        Raises
        ------
        MaskingRefusedError
            A second request this round, a peer listed as both survivor and dropout, this
            bank listed as dropped, or fewer than ``t`` survivors (itself included).
        ProtocolError
            A listed peer whose shares this bank does not hold.
        """
        self._check_tag(request.tag)
        if request.recipient != self.party:
            raise ProtocolError("this unmask request is addressed to another bank")
        if self._answered:
            raise MaskingRefusedError("this bank already revealed its shares this round; a "
                                      "second request could unmask an individual input")
        both = set(request.survivors) & set(request.dropped)
        if both or self.party in request.dropped:
            raise MaskingRefusedError(f"asked for both shares of {sorted(both or {self.party})}"
                                      ": revealing them would unmask that bank's input")
        if len(request.survivors) + 1 < self.config.threshold:
            raise MaskingRefusedError(f"only {len(request.survivors) + 1} banks survive; "
                                      f"{self.config.threshold} needed to reveal shares")
        unknown = set(request.survivors + request.dropped) - set(self._held)
        if unknown:
            raise ProtocolError(f"this bank holds no shares of {sorted(unknown)}")
        attested = self.attested
        if attested is not None and (not set(request.survivors) <= set(attested)
                                     or set(request.dropped) & set(attested)):
            raise MaskingRefusedError("the unmask request contradicts the survivor list this "
                                      "bank signed; refusing to reveal")
        self._answered = True
        return UnmaskReply(
            sender=self.party, tag=self.config.tag,
            seed_shares=tuple((v, self._held[v][0]) for v in request.survivors),
            key_shares=tuple((v, self._held[v][1]) for v in request.dropped))

    @property
    def answered(self) -> bool:
        """Whether this bank already revealed shares (:meth:`unmask`) in this round."""
        return self._answered

    def __getstate__(self) -> dict[str, object]:
        """Picklable state for the node's own storage between messages (keys as raw bytes;
        the Shamir ``rng`` is not kept: a restored client draws from the system source)."""
        state = dict(self.__dict__)
        del state["_keys"]
        state["_rng"] = None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        raw = state.get("_raw_keys")
        if not isinstance(raw, dict) or sorted(raw) != sorted((_CIPHER, _MASK)) or \
                not all(isinstance(v, bytes) and len(v) == 32 for v in raw.values()):
            raise TypeError("masking client state _raw_keys is not the two raw X25519 keys")
        self.__dict__.update(state)
        self._keys = {}

    def _check_tag(self, tag: bytes) -> None:
        if tag != self.config.tag:
            raise StaleRoundError("message of another run, round or parameter set")
