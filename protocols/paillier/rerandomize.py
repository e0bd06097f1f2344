"""Uniform re-randomisation of ciphertexts that go back to the key holder.

Maths
-----
A Paillier ciphertext is ``c = (1 + m n) * s**n mod n**2`` with ``s`` in ``Z*_n``. Whoever
holds the private key recovers ``s`` as well as ``m``: ``c mod n = s**n mod n`` and
``s = (c mod n)**(n**-1 mod lambda) mod n``. When a party returns to the key holder a
ciphertext computed from the key holder's own ciphertexts ``c_i = (1 + m_i n) s_i**n`` -
products and powers with its secret coefficients ``e_i`` (features, bin membership), packing,
added plaintexts - the key holder sees

    s = prod_i s_i**e_i * t,

where ``t`` is whatever the sender multiplied in. This module makes ``t`` uniform in
``Z*_n``: the sender multiplies by ``r**n mod n**2`` with ``r`` uniform in ``Z*_n`` (drawn
with 128 extra bits, so within statistical distance ``2**-128``). Then ``s`` is uniform and
independent of the ``e_i``: the returned ciphertext tells the key holder its plaintext and
nothing else (statistically, no assumption needed).

Why the fast DJN randomiser is not enough here
----------------------------------------------
:mod:`protocols.paillier.fast` multiplies by ``hs**a = (h**a)**n`` with one fixed
``h = -x**2 mod n``, so ``t = h**a`` ranges over the cyclic subgroup ``<h>`` only. ``Z*_n``
is not cyclic (its exponent ``lambda`` is at most ``phi(n) / 2``), so ``<h>`` is a proper
subgroup, and any character ``chi`` of ``Z*_n`` that is trivial on ``<h>`` survives:
``chi(s) = prod chi(s_i)**e_i``. The key holder knows ``p`` and ``q`` and can evaluate such
characters - e.g. when ``3 | gcd(p - 1, q - 1)``, a combination of the cubic residue symbols
modulo ``p`` and ``q`` - which hands it the sender's coefficients modulo the character's
order, checked against its own randomness ``s_i``. DJN's assumption (DCR in ``<h>``) protects
ciphertexts against parties *without* the key; it says nothing about hiding a computation
from the key holder, so no assumption rescues the subgroup randomiser on this path.
``tests/protocols/test_paillier_rerandomize.py`` reproduces the cubic-character attack
against ``hs**a`` and shows it at chance level after :func:`rerandomize_for_key_holder`.

Cost
----
One full exponentiation ``r**n mod n**2`` per ciphertext (a 2048-bit exponent modulo a
4096-bit modulus: a few milliseconds). Only the few packed ciphertexts that go back to the
key holder need it, not the per-row encryptions under a party's own key.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import gmpy2
from gmpy2 import mpz
from phe.paillier import PaillierPublicKey

from protocols.paillier.fast import STATISTICAL_SECURITY_BITS, RandomSource

__all__ = ["uniform_randomizer", "rerandomize_for_key_holder"]


def uniform_randomizer(public_key: PaillierPublicKey, rng: RandomSource | None = None) -> mpz:
    """``r**n mod n**2`` for ``r`` uniform in ``Z*_n`` (statistical distance ``2**-128``).

    ``rng`` defaults to :class:`random.SystemRandom`; a seeded rng is for tests only.
    """
    rng = rng if rng is not None else random.SystemRandom()
    n = mpz(public_key.n)
    while True:
        r = mpz(rng.getrandbits(n.bit_length() + STATISTICAL_SECURITY_BITS)) % n
        if r > 0 and gmpy2.gcd(r, n) == 1:
            return gmpy2.powmod(r, n, n * n)


def rerandomize_for_key_holder(ciphertexts: Sequence[int], public_key: PaillierPublicKey, *,
                               rng: RandomSource | None = None) -> list[int]:
    """Multiply each ciphertext by a fresh uniform ``r**n``: same plaintexts, and the key
    holder learns nothing from the randomness (see the module docstring).

    Use it on every ciphertext a party computed from the key holder's own ciphertexts and
    sends back to the key holder (masked gradients, histogram and bin sums).

    Parameters
    ----------
    ciphertexts : sequence of int
        Elements of ``Z*_{n**2}`` under ``public_key``.
    public_key : phe.paillier.PaillierPublicKey
        The key holder's public key.
    rng : RandomSource, optional
        Defaults to :class:`random.SystemRandom`; inject a seeded rng only in tests.

    Returns
    -------
    list of int
        The re-randomised ciphertexts, in order.
    """
    rng = rng if rng is not None else random.SystemRandom()
    nsq = mpz(public_key.nsquare)
    return [int(mpz(c) * uniform_randomizer(public_key, rng) % nsq) for c in ciphertexts]
