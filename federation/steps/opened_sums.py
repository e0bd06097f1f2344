"""A bank's memory of the contributor sets of the sums it was handed in a run.

Protocol step (bank, before it reads data for a request): every contribution box
(:mod:`protocols.aggregation.contribution_tags`) is unique to one sealed vector, since its
nonce and tag are fresh, and is bound (AES-GCM associated data) to the run, the vector kind
and the round it was sealed for. So two honest sums that share a box are the same sum, sent
twice (the combined statistics with every request, a round's weights sum with the evaluate and
the next train request). A deviating coordinator that hands a bank the sum over {A, B, C, D}
and, in another request, the sum over {A, B, C} would let it subtract D's vector: the two
sums share the boxes of A, B and C but are different sets, and the bank refuses the second.

Rounds only go forward: for each kind the bank keeps the latest round it was handed a sum of
and the box sets of that round's sums only, and refuses a sum of an *older* round of that
kind (:class:`StaleSumError`). Two sums that share a box share its kind and round (else one
of them fails to open), so a sum that could overlap a forgotten set is one of an older round,
and that is refused whatever its boxes. So the memory holds at most one round of each kind
(no longer one more set every round: a request carries it in the node's Flower state), and
refuses every pair of overlapping different sets the full memory refused. The honest
coordinator's rounds of one kind never go back (statistics and bins: round 0; weights and
score histograms: the run's round; tree levels: the state blob's request number).

Security assumption: the coordinator cannot forge boxes (AES-GCM under the banks' key;
checked when a sum is opened), the round a request's sum is labelled with here is the round
the bank opens it for (``clients.sum_checks`` derives both from the same request fields), and
the bank's node state survives between its requests of a run (Flower's ``context.state``). A
bank whose node restarts mid-run forgets what it saw. Plain sums carry no boxes and are not
checked (plain runs hide nothing from the coordinator).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

from federation.steps.secure_sum import Sealed
from protocols.aggregation.contribution_tags import BOX_BYTES
from protocols.errors import ProtocolError

SCHEMA_VERSION = 2
"""2: one round per kind (1 kept every box of the run)."""
DIGEST_BYTES = 32
BOX_DIGEST_BYTES = 8
"""Each box is remembered by the first 8 bytes of its SHA-256: a shared box always matches its
own digest, so no overlap is missed; two different boxes matching (about ``K**2 / 2**64`` for
two sets of K boxes) only refuses a sum, and honest runs hand a bank one set per round and
kind, so they never compare different sets. Small, since the node state travels with every
request."""


class OverlappingSumsError(ProtocolError):
    """Two sums of one run share a contribution but are not the same set of contributions."""


class StaleSumError(OverlappingSumsError):
    """A sum of an older round than the latest this bank was handed for that kind."""


@dataclass(frozen=True, slots=True)
class BoxSet:
    """The contributor set of one sum: a digest of the whole set and its boxes' digests.

    ``whole`` is SHA-256 over the sorted full SHA-256 digests of the boxes (so the order of
    the boxes does not matter, and two different sets never share it); ``boxes`` the sorted
    :data:`BOX_DIGEST_BYTES`-byte prefixes of those digests, concatenated (one bytes object:
    cheap to carry in the node state).
    """

    whole: bytes
    boxes: bytes

    def __post_init__(self) -> None:
        if len(self.whole) != DIGEST_BYTES or len(self.boxes) % BOX_DIGEST_BYTES:
            raise ValueError(f"a box set holds a {DIGEST_BYTES}-byte digest and whole "
                             f"{BOX_DIGEST_BYTES}-byte box digests.")

    def digests(self) -> frozenset[bytes]:
        """The boxes' (truncated) digests, as a set."""
        return frozenset(self.boxes[at:at + BOX_DIGEST_BYTES]
                         for at in range(0, len(self.boxes), BOX_DIGEST_BYTES))


@lru_cache(maxsize=64)
def box_set(contributors: bytes) -> BoxSet:
    """The :class:`BoxSet` of a sum's concatenated boxes (empty boxes: an empty set).

    Memoised per process (a simulation process hosts many banks, each handed the same sums):
    a pure function of the bytes, so every bank's check is unchanged.
    """
    digests = sorted(hashlib.sha256(contributors[at:at + BOX_BYTES]).digest()
                     for at in range(0, len(contributors), BOX_BYTES))
    return BoxSet(hashlib.sha256(b"".join(digests)).digest(),
                  b"".join(d[:BOX_DIGEST_BYTES] for d in digests))


@dataclass
class OpenedSums:
    """Per vector kind: the latest round this bank was handed a sum of, and that round's sets.

    Kept for the node's whole Flower run, whatever run id the requests claim: a coordinator
    switching run ids between requests must not reset it.
    """

    rounds: dict[str, int] = field(default_factory=dict)
    sets: dict[str, tuple[BoxSet, ...]] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def check(self, sealed: Sealed, what: str, *, round: int) -> None:
        """Remember ``sealed``'s contributor set; refuse an older round or an overlapping set.

        Parameters
        ----------
        sealed : Sealed
            A combined sum (its ``kind`` and ``contributors``).
        what : str
            The request key it came under (named in the refusal).
        round : int
            The round the bank opens it for (the boxes are bound to it).

        Raises
        ------
        StaleSumError
            ``round`` is older than the latest round of ``sealed.kind`` seen in this run.
        OverlappingSumsError
            A box of ``sealed`` was seen in this round in a different set of boxes.
        """
        if not sealed.contributors:
            return
        kind = sealed.kind
        latest = self.rounds.get(kind)
        if latest is not None and round < latest:
            raise StaleSumError(
                f"the coordinator sent a '{kind}' sum ('{what}') of round {round} after one of "
                f"round {latest}; a bank opens sums of a kind in round order only, so it does "
                "not open it (restart the run if the coordinator resumed from an older round).")
        if latest is None or round > latest:
            self.rounds[kind], self.sets[kind] = round, ()
        new = box_set(sealed.contributors)
        known = self.sets[kind]
        if any(old.whole == new.whole for old in known):
            return
        digests = new.digests()
        if any(not digests.isdisjoint(old.digests()) for old in known):
            raise OverlappingSumsError(
                f"the coordinator sent a sum ('{what}') that shares contributions with another "
                "sum of this run but holds a different set of banks; the difference of the two "
                "would expose a bank's vector, so this bank does not open it.")
        self.sets[kind] = (*known, new)
