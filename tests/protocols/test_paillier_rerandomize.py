"""Uniform re-randomisation for the key holder: the subgroup-randomiser leak and its fix."""

from __future__ import annotations

import random

import gmpy2
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.fast import build_randomizer_table, encrypt_packed
from protocols.paillier.rerandomize import rerandomize_for_key_holder, uniform_randomizer


def _power_product(cts, exponents, nsq):
    acc = gmpy2.mpz(1)
    for c, e in zip(cts, exponents, strict=True):
        acc = acc * gmpy2.powmod(gmpy2.mpz(c), e, nsq) % nsq
    return int(acc)


def on_line(v: tuple[int, int], direction: tuple[int, int]) -> bool:
    """``v`` lies in the line of ``Z_3**2`` spanned by ``direction``."""
    return (v[0] * direction[1] - v[1] * direction[0]) % 3 == 0


def _residual_index(view, returned: int, own: list[int], exponents: list[int]) -> tuple[int, int]:
    """Index of the returned randomness minus what the key holder's own randomness predicts."""
    seen = view.cubic_index(view.randomness(returned))
    own_idx = [view.cubic_index(view.randomness(c)) for c in own]
    pred = [sum(e * i[k] for e, i in zip(exponents, own_idx, strict=True)) for k in (0, 1)]
    return ((seen[0] - pred[0]) % 3, (seen[1] - pred[1]) % 3)


TRIALS = 24


def _matches(view, public, rerandomize) -> int:
    """Trials (of :data:`TRIALS`) in which the key holder's prediction of the sender's coefficients holds."""
    rng = random.Random(5)
    table = build_randomizer_table(public, rng=random.Random(8))  # the sender's hs = h**n
    direction = view.cubic_index(view.randomness(int(table.rows[0][1])))
    assert direction != (0, 0)  # h is not a cube: the test is not trivially true
    nsq = int(public.nsquare)
    hits = 0
    for _ in range(TRIALS):
        own = encrypt_packed([rng.randrange(1000) for _ in range(6)], public, rng=rng)
        secret = [rng.randrange(-640, 641) for _ in own]  # the sender's coefficients
        product = _power_product(own, secret, nsq)
        returned = rerandomize(product, table, rng)
        hits += on_line(_residual_index(view, returned, own, secret), direction)
    return hits


def test_subgroup_randomiser_leaks_a_character_to_the_key_holder(cubic_keypair,
                                                                key_holder_view) -> None:
    public = cubic_keypair[0]
    nsq = int(public.nsquare)

    def subgroup(c, table, rng):  # the old re-randomisation: times a fresh Enc(0) = hs**a
        return c * encrypt_packed([0], public, rng=rng, table=table)[0] % nsq

    assert _matches(key_holder_view, public, subgroup) == TRIALS  # always, not 1 in 3


def test_uniform_randomiser_leaves_the_character_at_chance(cubic_keypair, key_holder_view) -> None:
    public = cubic_keypair[0]

    def uniform(c, _table, rng):
        return rerandomize_for_key_holder([c], public, rng=rng)[0]

    assert _matches(key_holder_view, public, uniform) <= 14  # 8 expected (1 in 3)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2**200), min_size=1, max_size=4), st.integers(0, 2**32))
def test_rerandomize_keeps_plaintexts_and_changes_ciphertexts(small_keypair, plaintexts,
                                                              seed) -> None:
    public, private = small_keypair
    rng = random.Random(seed)
    cts = encrypt_packed(plaintexts, public, rng=rng)
    fresh = rerandomize_for_key_holder(cts, public, rng=rng)
    assert decrypt_raw_many(fresh, private, processes=1) == plaintexts
    assert all(a != b for a, b in zip(cts, fresh, strict=True))
    assert all(0 < c < public.nsquare for c in fresh)


def test_uniform_randomizer_is_an_nth_residue_of_a_unit(small_keypair) -> None:
    public, private = small_keypair
    r = uniform_randomizer(public, random.Random(1))
    assert decrypt_raw_many([int(r)], private, processes=1) == [0]
    assert gmpy2.gcd(r, public.n) == 1
