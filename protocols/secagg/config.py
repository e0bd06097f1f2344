"""Public parameters of one SecAgg+ round, agreed before it starts.

Every party derives the same neighbour graph and the same round tag from this object; the
tag is bound into every message, key derivation and mask label, so messages and masks of
another run, round or parameter set are refused or useless.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from protocols.secagg.graph import shared_graph
from protocols.secagg.prg import MaskRing

__all__ = ["MaskingConfig", "CONFIG_SCHEMA_VERSION", "TAG_BYTES"]

CONFIG_SCHEMA_VERSION = 1
TAG_BYTES = 16
MAX_PARTIES = 2**16 - 1


# slots=False: the cached properties (ring, tag) live in the instance dict.
@dataclass(frozen=True, slots=False)
class MaskingConfig:
    """Parameters of one masked summation.

    Parameters
    ----------
    n_parties : int
        Banks invited to the round, numbered ``0..N-1`` (e.g. by sorted node id).
    degree : int
        ``k``, neighbours per bank (:func:`protocols.secagg.graph.default_degree`).
    threshold : int
        ``t``, shares needed to rebuild a secret; ``2 <= t <= k``. The coordinator plus
        ``t - 1`` banks learn nothing beyond the sum; each bank needs ``t`` live neighbours.
    modulus : int
        ``M`` of the mask ring (``2**k`` for plain masking, the Paillier ``n`` under encryption).
    length : int
        Elements per masked vector.
    run_id, round : str, int
        Bind the round tag, the graph and every mask to this run and round.
    """

    n_parties: int
    degree: int
    threshold: int
    modulus: int
    length: int
    run_id: str
    round: int
    schema_version: int = CONFIG_SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("n_parties", "degree", "threshold", "modulus", "length", "round",
                     "schema_version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"MaskingConfig.{name} must be an int")
        if self.schema_version != CONFIG_SCHEMA_VERSION:
            raise ValueError(f"unknown MaskingConfig schema_version {self.schema_version}")
        if not isinstance(self.run_id, str) or not 0 < len(self.run_id) <= 256:
            raise ValueError("run_id must be a str of 1..256 characters")
        if not 2 <= self.n_parties <= MAX_PARTIES or not 1 <= self.degree < self.n_parties:
            raise ValueError(f"need 2 <= n_parties <= {MAX_PARTIES} and 1 <= degree < n_parties")
        if not 2 <= self.threshold <= self.degree:
            raise ValueError("need 2 <= threshold <= degree (t = 1 would hand a whole secret "
                             "to one neighbour)")
        if self.length < 1 or self.round < 0:
            raise ValueError("need length >= 1 and round >= 0")
        MaskRing(self.modulus)

    @property
    def scheme_id(self) -> str:
        """``secagg+-k<degree>-t<threshold>``."""
        return f"secagg+-k{self.degree}-t{self.threshold}"

    @cached_property
    def ring(self) -> MaskRing:
        """The mask ring ``Z_M``."""
        return MaskRing(self.modulus)

    @cached_property
    def tag(self) -> bytes:
        """16-byte digest of every parameter (bound into messages, keys and masks)."""
        text = (f"fedcredit-secagg-v{self.schema_version}|{self.n_parties}|{self.degree}|"
                f"{self.threshold}|{self.modulus}|{self.length}|{self.round}|{self.run_id}")
        return hashlib.sha256(text.encode("utf-8")).digest()[:TAG_BYTES]

    @property
    def neighbours(self) -> tuple[frozenset[int], ...]:
        """The public neighbour graph of this round: built once per process and session
        (:func:`~protocols.secagg.graph.shared_graph`), never kept in the instance, so a
        pickled config (a bank's node state, every message) stays the size of its fields
        instead of ``N * k`` neighbour entries."""
        return shared_graph(self.n_parties, degree=self.degree, seed=b"graph|" + self.tag)
