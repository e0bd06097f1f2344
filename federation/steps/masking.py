"""SecAgg+ masking of the horizontal sums: session parameters, a bank's steps, the plain ring.

Two aggregation modes mask every sum of a FedAvg run (stats, weighted updates, histograms):

- ``secagg``: masking only. A bank encodes its vector as exact fixed point in limbs of
  ``Z_{2**64}`` (:mod:`protocols.secagg.fixed_point`) and adds its SecAgg+ masks; the
  coordinator adds the masked vectors, removes the residual mask after the unmask step and
  so learns the sum (and only the sum) of the surviving banks. Fast; no Paillier key.
- ``paillier-secagg``: the masks are added modulo ``n`` to the Paillier plaintexts before
  encryption (:mod:`protocols.secagg.paillier_masking`); the coordinator removes the residual
  from the product ciphertexts and still sees only ciphertexts. A bank holding the private key
  that decrypts one bank's ciphertext reads uniform noise modulo ``n``: no bank is a decryption
  oracle for another's update.

Session ``<kind>:<round>`` (:mod:`federation.wire.secagg`) has its own
:class:`~protocols.secagg.config.MaskingConfig` bound to the run id, kind and round; parties are
the bank indices ``0..K-1``. Every advert is signed with the bank's Ed25519 key and checked by
its neighbours against the signing registry, so the coordinator cannot substitute its own keys.
Before any bank reveals shares, the consistency round (step 2b) has every surviving bank sign
the survivor list it is told; a bank reveals only for the one list it signed, and only once
:func:`attestation_quorum` banks signed the same list.
Security assumption: a coordinator colluding with fewer than ``t`` banks of any neighbourhood
and, when it deviates, fewer than ``2T - N`` banks of the federation (Bell et al. 2020; the
consistency check of Bonawitz et al. 2017; docs/security.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from phe.paillier import PaillierPublicKey

from federation.steps.gradient_grid import (
    FLOAT64_EXACT_LIMIT,
    GradientGridError,
    check_gradient_bits,
    gradient_units,
    off_grid,
)
from federation.steps.secure_sum import (
    DEFAULT_GRADIENT_BITS,
    KIND_GRADIENTS,
    BankSummation,
    CoordinatorSummation,
    PaillierCoordinatorSum,
    Sealed,
    _check,
)
from federation.steps.verified_signatures import verify_once
from protocols.aggregation.serde import encrypted_vector_from_bytes, encrypted_vector_to_bytes
from protocols.aggregation.wide_sum import wide_from_bytes, wide_to_bytes
from protocols.errors import MaskingRefusedError, ProtocolError, VectorLengthError
from protocols.identity.signing import (
    InvalidSignatureError,
    UpdateStatement,
    encodings_by_bank,
    sign_update,
    statement_for,
    with_bank,
)
from protocols.secagg.client import MaskingClient
from protocols.secagg.config import MaskingConfig
from protocols.secagg.fixed_point import decode_limb_sum, encode_limbs, limb_count
from protocols.secagg.graph import default_degree
from protocols.secagg.messages import (
    KeyAdvert,
    SealedShares,
    message_from_bytes,
    survivors_to_bytes,
)
from protocols.secagg.paillier_masking import remove_residual

WORD_MODULUS = 2**64
LEAST_MASKED_BANKS = 3
"""SecAgg+ needs ``t >= 2`` shares from ``k >= t`` neighbours: at least three banks."""


def masking_parameters(n_banks: int) -> tuple[int, int]:
    """``(degree k, threshold t)`` for ``n_banks``: ``k`` from
    :func:`~protocols.secagg.graph.default_degree` (made even when ``n`` is odd) and
    ``t = floor(k/2) + 1``, so every bank tolerates ``k - t`` dropped neighbours while a
    minority of its neighbourhood can rebuild none of its secrets.

    Raises
    ------
    MaskingRefusedError
        Fewer than :data:`LEAST_MASKED_BANKS` banks.
    """
    if n_banks < LEAST_MASKED_BANKS:
        raise MaskingRefusedError(f"masked aggregation needs at least {LEAST_MASKED_BANKS} "
                                  f"banks, the run has {n_banks}.")
    degree = default_degree(n_banks)
    if degree % 2 and n_banks % 2:
        degree -= 1
    return degree, max(2, degree // 2 + 1)


def session_config(*, n_banks: int, modulus: int, length: int, run_id: str, kind: str,
                   round_index: int) -> MaskingConfig:
    """The public parameters of the session summing ``kind`` vectors of round ``round_index``."""
    degree, threshold = masking_parameters(n_banks)
    return MaskingConfig(n_parties=n_banks, degree=degree, threshold=threshold,
                         modulus=modulus, length=length, run_id=f"{run_id}|{kind}",
                         round=round_index)


def mask_modulus(summation: BankSummation | CoordinatorSummation) -> int:
    """``M`` of the mask ring: ``2**64`` for ``secagg``, the Paillier ``n`` otherwise."""
    public_key = getattr(summation, "public_key", None)
    if isinstance(public_key, PaillierPublicKey):
        return int(public_key.n)
    return WORD_MODULUS


def plaintext_count(summation: BankSummation, kind: str, n_values: int,
                    most: int | None = None) -> int:
    """Mask elements for a sealed vector of ``n_values`` values under ``summation``
    (``most``: the public bound its ``counts`` are packed under, if any)."""
    count = getattr(summation, "plaintext_count", None)
    if count is None:
        raise ProtocolError(f"aggregation scheme '{summation.scheme}' cannot be masked.")
    return int(count(kind, n_values, most))


@dataclass(frozen=True, slots=True)
class ClosedSession:
    """What a bank keeps of a session once it revealed its shares (step 3): the session's tag.

    The client itself (its session keys, self-mask seed and the neighbours' shares it held)
    is dropped, so the node state a bank carries from message to message stays the size of
    one round's sessions instead of growing with every round; a closed session still refuses
    to be re-opened, masked, attested or unmasked again."""

    tag: bytes


def close_session(client: MaskingClient) -> ClosedSession:
    """The :class:`ClosedSession` of a client that answered its unmask request."""
    if not client.answered:
        raise ProtocolError("a masking session is closed only after this bank revealed.")
    return ClosedSession(client.config.tag)


def live_client(stored: MaskingClient | ClosedSession, name: str) -> MaskingClient:
    """The session's client, or MaskingRefusedError when the session is closed."""
    if isinstance(stored, ClosedSession):
        raise MaskingRefusedError(f"masking session '{name}' was already unmasked by this "
                                  "bank; refusing another step of it.")
    return stored


def open_session(previous: MaskingClient | ClosedSession | None, config: MaskingConfig,
                 bank: int) -> MaskingClient:
    """Step 0 at a bank: fresh keys for a session (its advert is ``client.advertise()``).

    Raises
    ------
    MaskingRefusedError
        This bank already revealed shares in this session: masking the same input again
        under new keys could let the coordinator combine two sessions' reveals.
    """
    if _revealed_tag(previous) == config.tag:
        raise MaskingRefusedError("the coordinator re-opened a masking session this bank "
                                  "already unmasked; refusing to mask the same sum twice.")
    return MaskingClient(config, bank)


def _revealed_tag(stored: MaskingClient | ClosedSession | None) -> bytes | None:
    """The tag of the stored session when this bank already revealed in it, else None."""
    if isinstance(stored, ClosedSession):
        return stored.tag
    return stored.config.tag if stored is not None and stored.answered else None


ADVERT_STEP = "secagg-advert"
"""The ``step`` an advert's signed statement names (run id, session round, bank, payload)."""


def advert_statement(blob: bytes, *, run_id: str, bank: int, round_index: int,
                     ) -> UpdateStatement:
    """What a bank signs over its advert (the advert's round tag binds kind and parameters;
    node id 0: banks do not know each other's Flower node ids)."""
    return statement_for(run_id=run_id, step=ADVERT_STEP, round=round_index, bank=bank,
                         node_id=0, key_fingerprint=ADVERT_STEP, payload=blob)


def sign_advert(key: Ed25519PrivateKey, blob: bytes, *, run_id: str, bank: int,
                round_index: int) -> bytes:
    """Step 0 at a bank: its Ed25519 signature over its advert."""
    return sign_update(key, advert_statement(blob, run_id=run_id, bank=bank,
                                             round_index=round_index))


def share_keys(client: MaskingClient, adverts: Sequence[bytes], signatures: Sequence[bytes],
               registry: Mapping[int, Ed25519PublicKey], *, run_id: str,
               ) -> tuple[SealedShares, ...]:
    """Step 1 at a bank: shares for each neighbour among the forwarded adverts (the
    coordinator forwards every bank's advert; this bank keeps its neighbours' only), once each
    neighbour's advert verifies under that bank's key in the signing registry.

    Raises
    ------
    InvalidSignatureError
        A neighbour's advert is unsigned or its signature does not verify: the coordinator
        substituted keys (it would then read the shares sealed for that "neighbour").
    """
    if len(signatures) != len(adverts):
        raise InvalidSignatureError("the forwarded adverts and their signatures do not pair "
                                    "up; refusing to share keys.")
    mine = []
    for blob, signature in zip(adverts, signatures, strict=True):
        advert = message_from_bytes(blob)
        if not isinstance(advert, KeyAdvert) or advert.sender not in client.neighbours:
            continue
        if advert.sender not in registry:
            raise InvalidSignatureError(f"bank {advert.sender} has no registered signing key; "
                                        "refusing to share keys with it.")
        verify_once(registry[advert.sender], signature,
                    advert_statement(blob, run_id=run_id, bank=advert.sender,
                                     round_index=client.config.round))
        mine.append(advert)
    return client.share_keys(mine)


SURVIVORS_STEP = "secagg-survivors"
"""The ``step`` a survivor list's signed statement names (step 2b, the consistency round)."""


def survivors_statement(survivors: Sequence[int], *, run_id: str, bank: int, tag: bytes,
                        round_index: int) -> UpdateStatement:
    """What a bank signs over the survivor list of a session (the payload binds the session
    tag and the canonical list)."""
    return statement_for(run_id=run_id, step=SURVIVORS_STEP, round=round_index, bank=bank,
                         node_id=0, key_fingerprint=SURVIVORS_STEP,
                         payload=tag + survivors_to_bytes(list(survivors)))


def sign_survivors(key: Ed25519PrivateKey, client: MaskingClient, survivors: Sequence[int],
                   *, run_id: str) -> bytes:
    """Step 2b at a bank: sign the survivor list it is told (one list per session, one that
    names this bank; :meth:`~protocols.secagg.client.MaskingClient.attest` refuses others)."""
    ids = client.attest(survivors)
    return sign_update(key, survivors_statement(ids, run_id=run_id, bank=client.party,
                                                tag=client.config.tag,
                                                round_index=client.config.round))


def attestation_quorum(n_parties: int, threshold: int) -> int:
    """Signatures a survivor list needs before any bank reveals: ``max(t, ceil(2N/3))``.

    Honest banks sign one list per session, so two lists that each carry ``T`` signatures share
    at least ``2T - N`` signers: with ``T = ceil(2N/3)`` a coordinator needs ``c >= 2T - N``
    (about ``N/3``) colluding banks, each signing both lists, to show different banks different
    lists (one that keeps bank ``u`` and one that drops it, to rebuild both of ``u``'s secrets).
    The price: a sum needs ``T`` surviving banks (the default ``min-banks`` asks as many)."""
    return max(threshold, -(-2 * n_parties // 3))


def check_attestations(client: MaskingClient, survivors: Sequence[int],
                       signatures: Sequence[bytes], registry: Mapping[int, Ed25519PublicKey],
                       *, run_id: str) -> int:
    """Step 3 at a bank, before it reveals: the unmask request's survivor list is the one this
    bank signed and carries at least :func:`attestation_quorum` valid signatures of the
    federation's banks (``signatures[i]`` is ``survivors[i]``'s, empty where a bank did not
    sign). Returns the number of valid signatures.

    Raises
    ------
    MaskingRefusedError
        No list signed yet, another list, or too few signatures: the coordinator may be telling
        banks different lists (it would rebuild both secrets of one bank).
    """
    ids = tuple(sorted({int(i) for i in survivors}))
    if client.attested is None:
        raise MaskingRefusedError("asked to reveal shares before this bank signed a survivor "
                                  "list; the consistency step comes first.")
    if ids != client.attested or len(signatures) != len(ids):
        raise MaskingRefusedError("the unmask request carries another survivor list than the "
                                  "one this bank signed; refusing to reveal.")
    valid = 0
    # one statement per signer, differing only in the bank (the list is hashed and the rest
    # of the statement encoded once)
    statement = survivors_statement(ids, run_id=run_id, bank=0, tag=client.config.tag,
                                    round_index=client.config.round)
    encoded = encodings_by_bank(statement, list(ids))
    for bank, signature, message in zip(ids, signatures, encoded, strict=True):
        if not signature or bank not in registry:
            continue
        try:
            verify_once(registry[bank], signature, with_bank(statement, bank),
                        encoded=message)
        except InvalidSignatureError:
            continue
        valid += 1
    quorum = attestation_quorum(client.config.n_parties, client.config.threshold)
    if valid < quorum:
        raise MaskingRefusedError(f"only {valid} banks signed the survivor list, {quorum} "
                                  "needed; refusing to reveal (too many banks dropped, or the "
                                  "coordinator tells banks different lists).")
    return valid


def envelopes(blobs: Sequence[bytes]) -> list[SealedShares]:
    """Decoded share envelopes (anything else is refused)."""
    out = []
    for blob in blobs:
        message = message_from_bytes(blob)
        if not isinstance(message, SealedShares):
            raise ProtocolError("a share envelope of the masking session is another message.")
        out.append(message)
    return out


class SessionMask:
    """Step 2 at a bank: the plaintext mask of one session (callable once)."""

    def __init__(self, client: MaskingClient, sealed: Sequence[SealedShares], *,
                 name: str) -> None:
        self.client, self.sealed, self.name = client, list(sealed), name

    def __call__(self, plaintexts: list[int]) -> list[int]:
        return [int(y) for y in self.client.mask(plaintexts, self.sealed)]

    def words(self, limbs: np.ndarray) -> np.ndarray:
        """The same mask on ``Z_{2**64}`` limbs, ``uint64`` in and out (no Python ints)."""
        return np.asarray(self.client.mask(limbs, self.sealed), dtype=np.uint64)


class SecAggSum:
    """``secagg``: masked fixed point in ``Z_{2**64}``; both roles.

    ``seal`` needs the session's mask; ``combine`` adds masked vectors (still masked);
    :func:`remove_residual_sealed` then leaves the exact sum, which ``open`` decodes.
    """

    scheme = "secagg"

    def __init__(self, *, gradient_bits: int = DEFAULT_GRADIENT_BITS) -> None:
        self.gradient_bits = check_gradient_bits(gradient_bits)
        """The run's public ``f``: boosted-tree ``gradients`` are checked on its grid, as
        under Paillier, and their sums decode exactly (multiples of ``2**-f`` below
        ``2**53`` units are float64 values)."""

    @property
    def key_fingerprint(self) -> str:
        """No key: signatures bind the scheme name."""
        return self.scheme

    def plaintext_count(self, kind: str, n_values: int, most: int | None = None) -> int:
        """Ring elements of a sealed vector of ``n_values`` values (``most`` changes
        nothing: nothing is packed)."""
        return limb_count(n_values)

    def seal(self, values: np.ndarray, *, kind: str, run_id: str, round: int,
             mask: SessionMask | None = None, most: int | None = None) -> Sealed:
        """The masked limbs (``most`` changes nothing: the ring sums are exact)."""
        if mask is None:
            raise ProtocolError("secagg seals masked vectors only; the request carried no "
                                "share envelopes for this sum.")
        arr = np.asarray(values, dtype=np.float64).ravel()
        if kind == KIND_GRADIENTS:  # on the run's 2**-f grid (f <= 30 < FRAC_BITS: exact)
            gradient_units(arr, gradient_bits=self.gradient_bits)
        masked = mask.words(encode_limbs(arr))
        return Sealed(kind, self.scheme, arr.size, 1, masked.tobytes())

    def combine(self, sealed: Sequence[Sealed], *, kind: str, length: int | None, run_id: str,
                round: int, most: int | None = None) -> Sealed:
        expected = length if length is not None else sealed[0].length
        total = np.zeros(limb_count(expected), dtype=np.uint64)
        for s in sealed:
            _check(s, kind, self.scheme, expected)
            total += _words(s, expected)  # uint64 wraps modulo 2**64, the ring's addition
        return Sealed(kind, self.scheme, expected, sum(s.parties for s in sealed),
                      total.tobytes())

    def open(self, sealed: Sealed, *, kind: str, run_id: str, round: int,
             most: int | None = None) -> np.ndarray:
        _check(sealed, kind, self.scheme, None)
        values = decode_limb_sum(_words(sealed, sealed.length), parties=sealed.parties)
        if kind == KIND_GRADIENTS and off_grid(values, self.gradient_bits,
                                                FLOAT64_EXACT_LIMIT).any():
            raise GradientGridError(f"a secagg gradient sum is not a finite multiple of "
                                    f"2**-{self.gradient_bits} below 2**53 units; check that "
                                    "every bank runs with the same --gradient-bits.")
        return values


def _words(sealed: Sealed, length: int) -> np.ndarray:
    if len(sealed.payload) != 8 * limb_count(length):
        raise ProtocolError(f"secagg vector holds {len(sealed.payload)} bytes, not the "
                            f"{8 * limb_count(length)} of {length} values.")
    return np.frombuffer(sealed.payload, dtype=np.uint64)


def remove_residual_sealed(combiner: CoordinatorSummation, total: Sealed, residual: np.ndarray,
                           *, run_id: str, round: int, most: int | None = None) -> Sealed:
    """The coordinator's last step: ``total`` minus the residual mask (still sealed under
    Paillier; the plain sum under ``secagg``). A residual longer than the sum's ring elements
    belongs to a session opened for an upper bound (boosted trees,
    :mod:`federation.steps.tree_masking`), whose banks masked a prefix: its first elements
    are removed. ``most``: the public bound ``total``'s counts were packed under (the one
    :meth:`~federation.steps.secure_sum.PaillierCoordinatorSum.combine` was given)."""
    if isinstance(combiner, SecAggSum):
        words = _words(total, total.length)
        return replace(total, payload=(words - _prefix(residual, words.size, np.uint64))
                       .tobytes())
    if not isinstance(combiner, PaillierCoordinatorSum):
        raise ProtocolError(f"aggregation scheme '{combiner.scheme}' cannot be masked.")
    key = combiner.public_key
    if total.kind == "stats":
        wide = wide_from_bytes(total.payload)
        cleared = replace(wide, ciphertexts=remove_residual(
            wide.ciphertexts, _prefix(residual, len(wide.ciphertexts)), public_key=key))
        return replace(total, payload=wide_to_bytes(cleared))
    codec, values = combiner.packed_shape(total.kind, total.length, most)
    vec = encrypted_vector_from_bytes(total.payload, public_key=key, expected_length=values,
                                      run_id=run_id, round=round, codec=codec)
    cleared_vec = replace(vec, ciphertexts=remove_residual(
        vec.ciphertexts, _prefix(residual, len(vec.ciphertexts)), public_key=key))
    return replace(total, payload=encrypted_vector_to_bytes(cleared_vec))


def _prefix(residual: np.ndarray, count: int, dtype: type | None = None) -> np.ndarray:
    """The residual mask's first ``count`` elements (VectorLengthError if it has fewer)."""
    arr = np.asarray(residual, dtype=dtype)
    if arr.size < count:
        raise VectorLengthError(f"the residual mask has {arr.size} elements for a sum of "
                                f"{count}; the session was opened for a shorter vector.")
    return arr[:count]
