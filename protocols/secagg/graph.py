"""The public k-regular neighbour graph of SecAgg+.

Scheme
------
In SecAgg+ (Bell et al. 2020) a bank masks and shares secrets only with its ``k`` neighbours,
so a round costs ``O(k)`` key agreements, shares and mask expansions per bank instead of
``O(N)``. Parties ``0..N-1`` are placed on a cycle in an order drawn from a public seed
(``random.Random(SHA-256(seed))``), and each is joined to the ``k/2`` nearest positions on
each side (a circulant graph; for odd ``k`` and even ``N`` also to the opposite position).
With ``k >= N - 1`` the graph is complete (plain SecAgg). :func:`default_degree` picks
``k ~ 3 log2 N``, rounded up to an even number.

Security
--------
The graph is public and must not be chosen by the coordinator after seeing the keys: derive
the seed from the run id and round before the round starts. The security argument of SecAgg+
needs the colluding parties not to cover a neighbourhood: with threshold ``t``, fewer than
``t`` colluders among any bank's neighbours learn none of its secrets.
"""

from __future__ import annotations

import hashlib
import math
import random
from functools import lru_cache

__all__ = ["neighbour_graph", "default_degree", "shared_graph"]

GRAPHS_KEPT = 16
"""Graphs :func:`shared_graph` keeps per process (a round's few sessions, with room)."""


def default_degree(n_parties: int) -> int:
    """``k``: ``3 * ceil(log2 N)`` rounded up to even, capped at ``N - 1``."""
    if n_parties < 2:
        raise ValueError("need at least 2 parties")
    degree = 3 * math.ceil(math.log2(n_parties))
    degree += degree % 2
    return min(degree, n_parties - 1)


def neighbour_graph(n_parties: int, *, degree: int, seed: bytes) -> tuple[frozenset[int], ...]:
    """Neighbours of each party ``0..N-1`` (symmetric, no self loops, every set of size ``k``).

    Raises
    ------
    ValueError
        ``degree`` outside ``1..N-1``, or ``k`` odd with ``N`` odd (no k-regular graph exists).
    """
    if n_parties < 2 or not 1 <= degree <= n_parties - 1:
        raise ValueError("need N >= 2 parties and 1 <= degree <= N - 1")
    if degree % 2 and n_parties % 2:
        raise ValueError("an odd degree needs an even number of parties")
    order = list(range(n_parties))
    random.Random(hashlib.sha256(seed).digest()).shuffle(order)
    neighbours: list[set[int]] = [set() for _ in range(n_parties)]
    offsets = list(range(1, degree // 2 + 1)) + ([n_parties // 2] if degree % 2 else [])
    for position, party in enumerate(order):
        for offset in offsets:
            other = order[(position + offset) % n_parties]
            neighbours[party].add(other)
            neighbours[other].add(party)
    return tuple(frozenset(s) for s in neighbours)


@lru_cache(maxsize=GRAPHS_KEPT)
def shared_graph(n_parties: int, *, degree: int, seed: bytes) -> tuple[frozenset[int], ...]:
    """:func:`neighbour_graph`, built once per process for the same arguments (the result is
    immutable, so every bank a process hosts shares it). At ``N`` banks a graph takes
    ``O(N k)`` work and memory; each bank of a simulation builds its session's config anew."""
    return neighbour_graph(n_parties, degree=degree, seed=seed)
