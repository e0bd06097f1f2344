"""Secure summation of bank vectors: one interface, plain or Paillier.

Every aggregate in a horizontal run (preprocessing statistics, weighted model updates, score
histograms) travels the same way: each bank *seals* its vector, the coordinator *combines* the
sealed vectors without opening them, the banks *open* the combined result.

- ``plain``: seal = the float64 bytes; the coordinator could read each bank's vector.
- ``paillier``: seal = packed Paillier ciphertexts under the banks' shared key; the
  coordinator holds only the public key and sees only ciphertexts. Security assumption:
  honest-but-curious coordinator that does not collude with a bank (see docs/security.md).

Kinds fix the encoding: ``stats`` (wide exact fixed point), ``weights`` (values clipped to
[-WEIGHT_CLIP, WEIGHT_CLIP], WEIGHT_BITS bits), ``counts`` (exact integers, COUNT_BITS bits),
``gradients`` (exact signed fixed point for boosted-tree histograms, below).

``gradients``: every value must be a multiple of ``2**-f`` (``f`` = the run's public
``gradient_bits``) with ``|v| < 2**GRADIENT_VALUE_BITS`` (so ``|x| < 2**(s - 1)`` for
``x = v * 2**f`` and the slot width ``s = f + GRADIENT_VALUE_BITS + 1``,
:mod:`federation.steps.gradient_grid`); anything else (off the grid, too large, NaN or infinite) is
refused, never rounded. Under Paillier a bank packs ``u = x + 2**(s - 1)`` as an unsigned
``s``-bit integer; the banks decode the sum of ``N`` contributions as
``(S - N * 2**(s - 1)) * 2**-f`` in exact integers and refuse a total of ``2**53`` units or
more, which float64 cannot hold. So the opened sum equals the float64 sum of the plain values
bit for bit, which keeps federated trees identical to pooled ones. The codec is public (from
``f``, a run setting), equal on both sides, and reveals nothing beyond the sum.

Score counts under a public bound (Paillier): when the caller passes ``most``, a public bound on
the sum over every bank of any one ``counts`` value (the horizontal score histograms:
:func:`federation.steps.horizontal_bank.score_count_bound`), the counts are grouped several to a
packed value in fields of ``bits(most)`` bits (:mod:`protocols.aggregation.count_groups`,
:func:`count_groups_for`) instead of one ``COUNT_BITS + carry`` slot each: fewer ciphertexts for
the same exact sums. The bound is public (the banks' opened row total and run settings), so the
coordinator derives the same codec; a bank refuses a count above it, and a decoded field above it
is refused. Under ``paillier-secagg`` the masking session covers the grouped values (its length
follows the same bound). Without ``most`` (boosted-tree bins, DP-noised histograms) nothing
changes.

Contributors (Paillier): every sealed vector ends with one secret random *tag* slot and carries
the bank's sealed tag box (:mod:`protocols.aggregation.contribution_tags`); the coordinator's
sum carries every contributor's box. :meth:`PaillierBankSum.open` refuses a sum unless its
boxes name distinct banks, as many as the sum claims, and the opened tag slot equals the sum
of their tags; it returns the values without the tag. So a bank never opens one bank's vector
relabelled as a sum (``sum.parties`` is then a verified count, which the bank's policy checks
against ``min-contributors``). Plain sums carry no tags: their ``parties`` is the coordinator's
claim (plain runs hide nothing from the coordinator anyway).

Each side sees the scheme through a small Protocol (:class:`BankSummation`,
:class:`CoordinatorSummation`); :func:`summation_scheme` is the one place that maps the run
config's ``aggregation`` name to a :class:`SummationScheme`, which builds either side and says
whether the run needs a Paillier key ceremony.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from federation.errors import ConfigError
from federation.run.key_store import load_bank_private_key, load_public_key
from federation.steps.gradient_grid import (
    FLOAT64_EXACT_LIMIT,
    GRADIENT_VALUE_BITS,
    GradientGridError,
    check_gradient_bits,
    gradient_offset,
    gradient_slot_bits,
    gradient_units,
    gradients_from_units,
    off_grid,
)
from protocols.aggregation.contribution_tags import ContributorsError as ContributorsError
from protocols.aggregation.contribution_tags import (
    check_count,
    derive_tag_key,
    draw_tag,
    open_tags,
    seal_tag,
)
from protocols.aggregation.count_groups import MAX_GROUP_BITS, CountGroups
from protocols.aggregation.packing import PLAINTEXT_MARGIN_BITS, PackingCodec
from protocols.aggregation.secure_aggregation import (
    PlaintextMask,
    decrypt_sum,
    encrypt_update,
    encrypted_sum,
)
from protocols.aggregation.serde import encrypted_vector_from_bytes, encrypted_vector_to_bytes
from protocols.aggregation.wide_sum import (
    WideEncryptedVector,
    decrypt_wide,
    encrypt_wide,
    plaintexts_for,
    sum_wide,
    validate_wide,
    wide_from_bytes,
    wide_to_bytes,
)
from protocols.errors import MalformedMessageError, ProtocolError
from protocols.paillier.fast import key_holder_table_for
from protocols.paillier.keys import key_fingerprint as paillier_fingerprint

if TYPE_CHECKING:  # the run config imports this module for its key-size rule
    from federation.run.config import RunConfig

SCHEMA_VERSION = 1
KIND_STATS, KIND_WEIGHTS, KIND_COUNTS = "stats", "weights", "counts"
KIND_GRADIENTS = "gradients"
KINDS = (KIND_STATS, KIND_WEIGHTS, KIND_COUNTS, KIND_GRADIENTS)
WEIGHT_CLIP = 16.0
WEIGHT_BITS = 24
COUNT_BITS = 20
DEFAULT_GRADIENT_BITS = 30
"""Used only when a caller builds a scheme by hand; runs pass ``RunConfig.gradient_bits``."""


@dataclass(frozen=True)
class Sealed:
    """A sealed vector as it crosses the wire (payload opaque to the coordinator)."""

    kind: str
    scheme: str
    length: int
    parties: int
    payload: bytes
    schema_version: int = SCHEMA_VERSION
    contributors: bytes = b""
    """Paillier: the contributors' tag boxes, concatenated (opaque to the coordinator)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.schema_version != SCHEMA_VERSION:
            raise MalformedMessageError(f"sealed vector of unknown kind {self.kind!r:.40} or "
                                        f"version {self.schema_version!r:.40}.")
        if not isinstance(self.scheme, str) or not isinstance(self.payload, bytes) or \
                not isinstance(self.contributors, bytes):
            raise MalformedMessageError("a sealed vector needs a str scheme and bytes payload "
                                        "and contributors.")
        for name, least in (("length", 0), ("parties", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise MalformedMessageError(f"sealed vector {name} must be an int >= {least}, "
                                            f"got {value!r:.40}.")


def _plain_values(sealed: Sealed) -> np.ndarray:
    """The float64 values of a plain sealed vector (``length`` of them, nothing else)."""
    if len(sealed.payload) != 8 * sealed.length:
        raise MalformedMessageError(f"plain sealed vector holds {len(sealed.payload)} bytes, "
                                    f"not the {8 * sealed.length} of {sealed.length} float64s.")
    return np.frombuffer(sealed.payload, dtype=np.float64)


def _check(sealed: Sealed, kind: str, scheme: str, length: int | None) -> None:
    if sealed.kind != kind or sealed.scheme != scheme:
        raise ProtocolError(f"expected a sealed '{kind}' vector under '{scheme}', got "
                            f"'{sealed.kind}' under '{sealed.scheme}'.")
    if length is not None and sealed.length != length:
        raise ProtocolError(f"sealed '{kind}' vector has {sealed.length} values, expected {length}.")


@runtime_checkable
class CoordinatorSummation(Protocol):
    """The coordinator's side of a summation scheme: combine sealed vectors unopened."""

    @property
    def scheme(self) -> str:
        """Scheme id stamped on every sealed vector (``plain``, ``paillier-<bits>``)."""
        ...

    @property
    def key_fingerprint(self) -> str:
        """What signatures bind as the aggregation key (the scheme name when there is none)."""
        ...

    def combine(self, sealed: Sequence[Sealed], *, kind: str, length: int | None, run_id: str,
                round: int, most: int | None = None) -> Sealed:
        """Sum the banks' sealed vectors of one kind, run and round without opening them
        (``most``: the public bound of a ``counts`` sum the banks sealed with, if any)."""
        ...


@runtime_checkable
class BankSummation(Protocol):
    """A bank's side of a summation scheme: seal its own vector, open the combined one."""

    @property
    def scheme(self) -> str:
        """Scheme id stamped on every sealed vector (``plain``, ``paillier-<bits>``)."""
        ...

    @property
    def key_fingerprint(self) -> str:
        """What signatures bind as the aggregation key (the scheme name when there is none)."""
        ...

    def seal(self, values: np.ndarray, *, kind: str, run_id: str, round: int,
             mask: PlaintextMask | None = None, most: int | None = None) -> Sealed:
        """The bank's vector, sealed for this run and round (``mask``: the SecAgg+ session's
        plaintext mask, for the masked schemes only; ``most``: a public bound on the sum of
        any one ``counts`` value over every bank, which lets a scheme pack counts tighter)."""
        ...

    def open(self, sealed: Sealed, *, kind: str, run_id: str, round: int,
             most: int | None = None) -> np.ndarray:
        """The values of a combined sealed vector (``most``: as when sealing)."""
        ...


class PlainSum:
    """Plaintext summation (no protection from the coordinator); both roles.

    ``gradient_bits`` is the run's public gradient quantisation: ``gradients`` vectors are
    checked against its grid on sealing and opening, as under Paillier.
    """

    scheme = "plain"

    def __init__(self, *, gradient_bits: int = DEFAULT_GRADIENT_BITS) -> None:
        self.gradient_bits = check_gradient_bits(gradient_bits)

    @property
    def key_fingerprint(self) -> str:
        """No key: signatures bind the scheme name instead."""
        return self.scheme

    def seal(self, values: np.ndarray, *, kind: str, run_id: str, round: int,
             mask: PlaintextMask | None = None, most: int | None = None) -> Sealed:
        """The float64 bytes (``most`` changes nothing: plain sums are exact)."""
        if mask is not None:
            raise ProtocolError("plain aggregation does not mask; the run config asked for "
                                "masking under another scheme.")
        arr = np.asarray(values, dtype=np.float64).ravel()
        if kind == KIND_GRADIENTS:
            gradient_units(arr, gradient_bits=self.gradient_bits)
        return Sealed(kind, self.scheme, arr.size, 1, arr.tobytes())

    def combine(self, sealed: Sequence[Sealed], *, kind: str, length: int | None, run_id: str,
                round: int, most: int | None = None) -> Sealed:
        for s in sealed:
            _check(s, kind, self.scheme, length if length is not None else sealed[0].length)
        total = np.sum([_plain_values(s) for s in sealed], axis=0)
        return Sealed(kind, self.scheme, total.size, sum(s.parties for s in sealed), total.tobytes())

    def open(self, sealed: Sealed, *, kind: str, run_id: str, round: int,
             most: int | None = None) -> np.ndarray:
        _check(sealed, kind, self.scheme, None)
        values = _plain_values(sealed).copy()
        if kind == KIND_GRADIENTS and off_grid(values, self.gradient_bits,
                                                FLOAT64_EXACT_LIMIT).any():
            raise GradientGridError(
                f"a plain gradient sum is not a finite multiple of 2**-{self.gradient_bits} "
                "below 2**53 units, so it may not be exact; lower --gradient-bits or check that "
                "every bank runs with the same --gradient-bits.")
        return values


class PaillierCoordinatorSum:
    """Coordinator role under Paillier: holds the public key only, combines ciphertexts.

    ``gradient_bits`` (the run's public ``f``) sets the slot width of ``gradients`` vectors.
    """

    def __init__(self, public_key: PaillierPublicKey, max_parties: int, *,
                 gradient_bits: int = DEFAULT_GRADIENT_BITS) -> None:
        self.public_key = public_key
        self.max_parties = max_parties
        self.gradient_bits = check_gradient_bits(gradient_bits)
        self.scheme = f"paillier-{int(public_key.n).bit_length()}"

    @property
    def key_fingerprint(self) -> str:
        """SHA-256 of the shared public modulus (bound into every signature)."""
        return paillier_fingerprint(self.public_key)

    def codec(self, kind: str) -> PackingCodec:
        """The agreed codec of a kind (public configuration)."""
        bits = int(self.public_key.n).bit_length()
        if kind == KIND_COUNTS:
            return PackingCodec.for_integers(COUNT_BITS, self.max_parties, bits)
        if kind == KIND_GRADIENTS:
            return PackingCodec.for_integers(gradient_slot_bits(self.gradient_bits),
                                             self.max_parties, bits)
        return PackingCodec(-WEIGHT_CLIP, WEIGHT_CLIP, WEIGHT_BITS, self.max_parties, bits)

    def count_groups(self, kind: str, most: int | None) -> CountGroups | None:
        """How ``counts`` under the public bound ``most`` are grouped (None: one slot each)."""
        if kind != KIND_COUNTS or most is None:
            return None
        return count_groups_for(most, self.max_parties, int(self.public_key.n).bit_length())

    def packed_codec(self, kind: str, groups: CountGroups | None) -> PackingCodec:
        """The codec of a kind's payload: the kind's own, or the grouped counts' values."""
        if groups is None:
            return self.codec(kind)
        return PackingCodec.for_integers(groups.value_bits, self.max_parties,
                                         int(self.public_key.n).bit_length())

    def packed_shape(self, kind: str, length: int, most: int | None) -> tuple[PackingCodec, int]:
        """The codec of a ``kind`` vector of ``length`` values sealed under ``most`` (None:
        ungrouped) and the packed values its payload carries, the tag slot included."""
        groups = self.count_groups(kind, most)
        values = length if groups is None else groups.n_values(length)
        return self.packed_codec(kind, groups), values + TAG_SLOTS

    def combine(self, sealed: Sequence[Sealed], *, kind: str, length: int | None, run_id: str,
                round: int, most: int | None = None) -> Sealed:
        """Validate each bank's ciphertexts (key, run, round, length, Z*_{n^2}) and sum them."""
        expected = length if length is not None else sealed[0].length
        for s in sealed:
            _check(s, kind, self.scheme, expected)
        if kind == KIND_STATS:
            wides = [self._wide(s, expected + TAG_SLOTS, run_id, round) for s in sealed]
            wide_total = sum_wide(wides, public_key=self.public_key)
            return Sealed(kind, self.scheme, expected, wide_total.n_parties,
                          wide_to_bytes(wide_total), contributors=_boxes(sealed))
        codec, values = self.packed_shape(kind, expected, most)
        vectors = [encrypted_vector_from_bytes(s.payload, public_key=self.public_key,
                                               expected_length=values, run_id=run_id,
                                               round=round, codec=codec)
                   for s in sealed]
        total = encrypted_sum(vectors, public_key=self.public_key, codec=codec)
        return Sealed(kind, self.scheme, expected, total.n_parties, encrypted_vector_to_bytes(total),
                      contributors=_boxes(sealed))

    def _wide(self, sealed: Sealed, length: int, run_id: str, round: int) -> WideEncryptedVector:
        return validate_wide(wide_from_bytes(sealed.payload), public_key=self.public_key,
                             expected_length=length, run_id=run_id, round=round)


TAG_SLOTS = 1
"""Paillier payloads hold ``Sealed.length`` values and then the contributors' tag slot."""


@lru_cache(maxsize=256)
def count_groups_for(most: int, max_parties: int, key_bits: int) -> CountGroups | None:
    """The grouping of ``counts`` under the public sum bound ``most`` (module docstring): the
    group that puts the most counts in one ciphertext, among those whose values still hold a
    ``COUNT_BITS`` contributors' tag; None when no grouping needs fewer ciphertexts than one
    ``COUNT_BITS + carry`` slot per count (the bound is too large to help).

    Both sides call it with the same public numbers, so they agree on the codec."""
    if isinstance(most, bool) or not isinstance(most, int) or most < 1:
        raise ProtocolError(f"a counts bound must be a positive int, got {most!r:.40}.")
    usable = key_bits - PLAINTEXT_MARGIN_BITS
    carry = (max_parties - 1).bit_length()
    width = most.bit_length()
    best, best_per = None, usable // (COUNT_BITS + carry)  # the ungrouped counts per plaintext
    for group in range(-(-COUNT_BITS // width), MAX_GROUP_BITS // width + 1):
        per = group * (usable // (group * width + carry))
        if per > best_per:
            best, best_per = CountGroups(most=most, group=group), per
    return best


def _boxes(sealed: Sequence[Sealed]) -> bytes:
    return b"".join(s.contributors for s in sealed)


WEIGHT_TAG_BITS = 22
"""A ``weights`` tag is ``-8 + q * 2**-18`` for a secret ``q < 2**22`` (inside the clip range)."""


def _tag_bits(kind: str, gradient_bits: int) -> int:
    if kind == KIND_WEIGHTS:
        return WEIGHT_TAG_BITS
    if kind == KIND_GRADIENTS:
        return min(gradient_bits + GRADIENT_VALUE_BITS - 1, 52)
    return COUNT_BITS  # counts and stats: exact integers


def _tag_value(kind: str, tag: int, gradient_bits: int) -> float:
    """The value a secret tag adds to the last slot of a vector of ``kind``."""
    if kind == KIND_WEIGHTS:
        return -8.0 + tag * 2.0 ** -18
    if kind == KIND_GRADIENTS:
        return float(np.ldexp(float(tag), -gradient_bits))
    return float(tag)


def _tag_tolerance(kind: str, parties: int) -> float:
    """How far an opened tag sum may be from the boxed tags' sum (quantisation of weights)."""
    if kind == KIND_WEIGHTS:
        return parties * 2 * WEIGHT_CLIP / 2 ** WEIGHT_BITS
    return 0.5 if kind in (KIND_COUNTS, KIND_STATS) else 0.0


@lru_cache(maxsize=64)
def _opened_boxes(tag_key: bytes, boxes: bytes, run_id: str, kind: str,
                  round: int) -> tuple[tuple[int, int], ...]:
    """:func:`open_tags`, memoised per process: every bank a simulation process hosts opens
    the same sums' boxes (one AES-GCM opening per box and bank otherwise). Keyed by the tag key
    and everything the boxes are bound to; a failure is never remembered (it raises again)."""
    return tuple(open_tags(tag_key, boxes, run_id=run_id, kind=kind, round=round))


class PaillierBankSum(PaillierCoordinatorSum):
    """Bank role under Paillier: also holds the shared private key, seals and opens.

    ``gradient_bits`` (the run's public ``f``) maps ``gradients`` values to exact integers and
    sets their slot width, as on the coordinator. ``bank`` is this bank's index, sealed in its
    contribution boxes; every vector sealed here ends with a secret tag (module docstring).
    """

    def __init__(self, private_key: PaillierPrivateKey, max_parties: int, *,
                 gradient_bits: int = DEFAULT_GRADIENT_BITS, bank: int = 0) -> None:
        super().__init__(private_key.public_key, max_parties, gradient_bits=gradient_bits)
        self.private_key = private_key
        self.bank = bank
        p, q = int(private_key.p), int(private_key.q)
        self._tag_key = derive_tag_key(b"".join(
            v.to_bytes((v.bit_length() + 7) // 8, "big") for v in sorted((p, q))))

    def seal(self, values: np.ndarray, *, kind: str, run_id: str, round: int,
             mask: PlaintextMask | None = None, most: int | None = None) -> Sealed:
        """Seal ``values`` plus this bank's secret tag; the box travels in ``contributors``.
        ``mask`` (``paillier-secagg``) masks the plaintexts modulo ``n`` before encryption;
        ``most`` (``counts`` only) groups the counts under that public sum bound.

        Raises
        ------
        PackingOverflowError
            A count above ``most`` (or outside the codec's range).
        """
        tag = draw_tag(_tag_bits(kind, self.gradient_bits))
        box = seal_tag(self._tag_key, bank=self.bank, tag=tag, run_id=run_id, kind=kind,
                       round=round)
        groups = self.count_groups(kind, most)
        if groups is not None:
            arr = np.asarray(np.rint(np.asarray(values, dtype=np.float64).ravel()),
                             dtype=np.int64)
            vec = encrypt_update(np.append(groups.pack(arr), tag),
                                 public_key=self.public_key,
                                 codec=self.packed_codec(kind, groups), run_id=run_id,
                                 round=round, table=key_holder_table_for(self.private_key),
                                 mask=mask)
            return Sealed(kind, self.scheme, arr.size, 1, encrypted_vector_to_bytes(vec),
                          contributors=box)
        sealed = self._seal(np.append(np.asarray(values, dtype=np.float64).ravel(),
                                      _tag_value(kind, tag, self.gradient_bits)),
                            kind=kind, run_id=run_id, round=round, mask=mask)
        return Sealed(kind, sealed.scheme, sealed.length - TAG_SLOTS, 1, sealed.payload,
                      contributors=box)

    def open(self, sealed: Sealed, *, kind: str, run_id: str, round: int,
             most: int | None = None) -> np.ndarray:
        """The values of a sum whose contributions check out (without the tag slot); ``most``
        must be the bound the banks sealed with (another codec is refused).

        Raises
        ------
        ContributorsError
            The boxes are forged, repeated or fewer or more than ``sealed.parties``, or the
            opened tag is not the sum of their tags (e.g. one bank's vector relabelled as a sum).
        """
        _check(sealed, kind, self.scheme, None)
        boxed = _opened_boxes(self._tag_key, sealed.contributors, run_id, kind, round)
        check_count(boxed, sealed.parties)
        groups = self.count_groups(kind, most)
        values = self._open(sealed, kind=kind, run_id=run_id, round=round, groups=groups)
        expected = sum(_tag_value(kind, tag, self.gradient_bits) for _, tag in boxed)
        if values.size < 1 or not abs(float(values[-1]) - expected) <= \
                _tag_tolerance(kind, sealed.parties):
            raise ContributorsError(
                f"the sum claims {sealed.parties} contributions but does not hold exactly the "
                "contributions its boxes name (its tag slot does not match); the coordinator "
                "sent something other than the sum of those banks' vectors. The bank does not "
                "use it.")
        if groups is not None:
            return groups.unpack_sums(values[:-1], sealed.length).astype(np.float64)
        return values[:-1]

    def plaintext_count(self, kind: str, n_values: int, most: int | None = None) -> int:
        """Paillier plaintexts a sealed vector of ``n_values`` values (plus the tag) takes:
        the length of a SecAgg+ session's masks under this scheme (``most``: the public bound
        :meth:`seal` groups ``counts`` under)."""
        if kind == KIND_STATS:
            return plaintexts_for(n_values + TAG_SLOTS, self.public_key)
        codec, values = self.packed_shape(kind, n_values, most)
        return codec.n_ciphertexts(values)

    def _seal(self, values: np.ndarray, *, kind: str, run_id: str, round: int,
              mask: PlaintextMask | None = None) -> Sealed:
        arr = np.asarray(values).ravel()
        if kind == KIND_STATS:
            wide = encrypt_wide(arr, public_key=self.public_key, run_id=run_id, round=round,
                                table=key_holder_table_for(self.private_key), mask=mask)
            return Sealed(kind, self.scheme, arr.size, 1, wide_to_bytes(wide))
        if kind == KIND_COUNTS:
            arr = np.asarray(np.rint(arr), dtype=np.int64)
        elif kind == KIND_GRADIENTS:
            arr = gradient_units(arr, gradient_bits=self.gradient_bits) + \
                gradient_offset(self.gradient_bits)
        vec = encrypt_update(arr, public_key=self.public_key, codec=self.codec(kind),
                             run_id=run_id, round=round,
                             table=key_holder_table_for(self.private_key), mask=mask)
        return Sealed(kind, self.scheme, arr.size, 1, encrypted_vector_to_bytes(vec))

    def _open(self, sealed: Sealed, *, kind: str, run_id: str, round: int,
              groups: CountGroups | None = None) -> np.ndarray:
        """Every value of the payload, the tag slot last (grouped counts: exact int64 sums of
        the grouped values, still to be split)."""
        length = sealed.length + TAG_SLOTS
        if kind == KIND_STATS:
            wide = self._wide(sealed, length, run_id, round)
            return decrypt_wide(wide, private_key=self.private_key, memo=True)
        if groups is not None:
            length = groups.n_values(sealed.length) + TAG_SLOTS
        out = _decoded_sum(self.private_key, sealed.payload, length=length, run_id=run_id,
                           round=round, codec=self.packed_codec(kind, groups),
                           parties=sealed.parties)
        if groups is not None:
            return np.asarray(out, dtype=np.int64)
        if kind == KIND_GRADIENTS:  # exact Python integers; clamped before int64 (a sum that
            # large is refused below anyway)
            total_offset = sealed.parties * gradient_offset(self.gradient_bits)
            limit = FLOAT64_EXACT_LIMIT
            units = np.array([max(-limit, min(limit, int(v) - total_offset)) for v in out],
                             dtype=np.int64)
            return gradients_from_units(units, gradient_bits=self.gradient_bits)
        return np.array(out, dtype=np.float64)  # a copy: the decoded sum is shared


@lru_cache(maxsize=64)
def _decoded_sum(private_key: PaillierPrivateKey, payload: bytes, *, length: int, run_id: str,
                 round: int, codec: PackingCodec, parties: int) -> np.ndarray:
    """A packed sum's payload validated (key, run, round, length, codec, ``Z*_{n^2}``),
    decrypted and decoded; memoised per process like :func:`_opened_boxes`: every bank a
    simulation process hosts opens the same sums (the same bytes under the same key, run,
    round, codec and parties give the same checks and values). A failure is never remembered
    (it raises again); the array returned is read-only."""
    vec = encrypted_vector_from_bytes(payload, public_key=private_key.public_key,
                                      expected_length=length, run_id=run_id, round=round,
                                      codec=codec)
    out = decrypt_sum(vec, private_key=private_key, codec=codec, n_parties=parties,
                      processes=1, memo=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True)
class SummationScheme:
    """One way of summing the banks' vectors, as the run config's ``aggregation`` names it.

    ``bank(cfg, k)`` builds bank k's side (under Paillier it opens bank k's copy of the private
    key), ``coordinator(cfg)`` the coordinator's side (the public key only).
    ``needs_paillier_key`` tells a launcher whether the key ceremony must make a Paillier key;
    ``min_key_bits`` is then the smallest Paillier key size the run config accepts.
    """

    name: str
    needs_paillier_key: bool
    min_key_bits: int
    bank: Callable[[RunConfig, int], BankSummation] = field(repr=False)
    coordinator: Callable[[RunConfig], CoordinatorSummation] = field(repr=False)
    masked: bool = False
    """SecAgg+ masks every sum (:mod:`federation.steps.masking`): the run adds the masking
    steps around each sealed step."""


def _plain_bank(cfg: RunConfig, bank: int) -> BankSummation:
    return PlainSum(gradient_bits=cfg.gradient_bits)


def _plain_coordinator(cfg: RunConfig) -> CoordinatorSummation:
    return PlainSum(gradient_bits=cfg.gradient_bits)


def _paillier_bank(cfg: RunConfig, bank: int) -> BankSummation:
    return PaillierBankSum(load_bank_private_key(cfg.keys_dir, bank), max_parties=cfg.banks,
                           gradient_bits=cfg.gradient_bits, bank=bank)


def _paillier_coordinator(cfg: RunConfig) -> CoordinatorSummation:
    return PaillierCoordinatorSum(load_public_key(cfg.keys_dir), max_parties=cfg.banks,
                                  gradient_bits=cfg.gradient_bits)


def _secagg_role(cfg: RunConfig, bank: int = 0) -> Any:
    from federation.steps.masking import SecAggSum  # masking builds on this module

    return SecAggSum(gradient_bits=cfg.gradient_bits)


SUMMATION_SCHEMES = {scheme.name: scheme for scheme in (
    SummationScheme("plain", needs_paillier_key=False, min_key_bits=0, bank=_plain_bank,
                    coordinator=_plain_coordinator),
    SummationScheme("paillier", needs_paillier_key=True, min_key_bits=2048,
                    bank=_paillier_bank, coordinator=_paillier_coordinator),
    SummationScheme("secagg", needs_paillier_key=False, min_key_bits=0, bank=_secagg_role,
                    coordinator=_secagg_role, masked=True),
    SummationScheme("paillier-secagg", needs_paillier_key=True, min_key_bits=2048,
                    bank=_paillier_bank, coordinator=_paillier_coordinator, masked=True),
)}
"""Every accepted ``aggregation`` name (``federation.run.config.AGGREGATIONS``) and its scheme."""


def summation_scheme(aggregation: str) -> SummationScheme:
    """The scheme the run config's ``aggregation`` setting names.

    Parameters
    ----------
    aggregation : str
        ``RunConfig.aggregation`` (``plain``, ``paillier``, ``secagg`` or ``paillier-secagg``).

    Returns
    -------
    SummationScheme

    Raises
    ------
    ConfigError
        When no scheme has that name.
    """
    if aggregation not in SUMMATION_SCHEMES:
        raise ConfigError(f"setting 'aggregation' is '{aggregation}'; choose one of "
                          f"{', '.join(SUMMATION_SCHEMES)}.")
    return SUMMATION_SCHEMES[aggregation]


def bank_summation(cfg: RunConfig, bank: int) -> BankSummation:
    """Bank ``bank``'s side of the run's summation scheme."""
    return summation_scheme(cfg.aggregation).bank(cfg, bank)


def coordinator_summation(cfg: RunConfig) -> CoordinatorSummation:
    """The coordinator's side of the run's summation scheme (public key only under Paillier)."""
    return summation_scheme(cfg.aggregation).coordinator(cfg)
