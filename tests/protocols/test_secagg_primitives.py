"""SecAgg+ building blocks: Shamir sharing, mask expansion, neighbour graph, message codecs."""

from __future__ import annotations

import pickle
import random

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import MalformedMessageError, SecretSharingError
from protocols.secagg.config import MaskingConfig
from protocols.secagg.graph import default_degree, neighbour_graph
from protocols.secagg.messages import (
    KeyAdvert,
    MaskedInput,
    SealedShares,
    UnmaskReply,
    UnmaskRequest,
    message_from_bytes,
    message_to_bytes,
)
from protocols.secagg.prg import MaskRing
from protocols.secagg.shamir import (
    PRIME,
    Share,
    combine_shares,
    share_from_bytes,
    share_to_bytes,
    split_secret,
)

SECRETS = st.binary(min_size=32, max_size=32)


@settings(max_examples=40, deadline=None)
@given(secret=SECRETS, n=st.integers(2, 12), data=st.data())
def test_any_t_shares_reconstruct(secret: bytes, n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(1, n))
    indices = data.draw(st.lists(st.integers(1, 500), min_size=n, max_size=n, unique=True))
    shares = split_secret(secret, threshold=t, indices=indices, rng=random.Random(0))
    subset = data.draw(st.permutations(shares))[:t]
    assert combine_shares(subset, threshold=t) == secret


def _lagrange_at(points: list[tuple[int, int]], x: int) -> int:
    total = 0
    for i, (x_i, y_i) in enumerate(points):
        num, den = 1, 1
        for j, (x_j, _) in enumerate(points):
            if i != j:
                num, den = num * (x - x_j) % PRIME, den * (x_i - x_j) % PRIME
        total = (total + y_i * num * pow(den, -1, PRIME)) % PRIME
    return total


@settings(max_examples=30, deadline=None)
@given(secret=SECRETS, other=SECRETS, t=st.integers(2, 6))
def test_t_minus_1_shares_fit_every_secret(secret: bytes, other: bytes, t: int) -> None:
    """Any t-1 shares lie on a degree-(t-1) polynomial through (0, s') for every s':
    they determine nothing about the secret (perfect secrecy, structurally)."""
    shares = split_secret(secret, threshold=t, indices=list(range(1, t + 1)))[: t - 1]
    points = [(s.index, s.value) for s in shares] + [(0, int.from_bytes(other, "big"))]
    forged = Share(index=t + 5, value=_lagrange_at(points, t + 5))
    assert combine_shares([*shares, forged], threshold=t) == other


def test_field_is_the_smallest_prime_above_2_256() -> None:
    assert PRIME == int(gmpy2.next_prime(2**256))


def test_too_few_or_inconsistent_shares_are_refused() -> None:
    shares = split_secret(bytes(range(32)), threshold=3, indices=[1, 2, 3, 4])
    with pytest.raises(SecretSharingError):
        combine_shares(shares[:2], threshold=3)
    with pytest.raises(SecretSharingError):
        combine_shares([*shares[:3], Share(index=1, value=(shares[0].value + 1) % PRIME)],
                       threshold=3)
    with pytest.raises(ValueError):
        split_secret(b"short", threshold=1, indices=[1])
    with pytest.raises(ValueError):
        split_secret(bytes(32), threshold=2, indices=[1, 1])


@settings(max_examples=50, deadline=None)
@given(index=st.integers(1, 2**16 - 1), value=st.integers(0, PRIME - 1))
def test_share_codec_round_trip(index: int, value: int) -> None:
    share = Share(index=index, value=value)
    assert share_from_bytes(share_to_bytes(share)) == share


def test_share_codec_refuses_bad_bytes() -> None:
    good = share_to_bytes(Share(index=3, value=5))
    for bad in (b"", good[:-1], good + b"\x00", b"\x02" + good[1:],
                good[:3] + PRIME.to_bytes(33, "big")):
        with pytest.raises(MalformedMessageError):
            share_from_bytes(bad)


def test_mask_expansion_is_deterministic_labelled_and_in_range() -> None:
    word = MaskRing(2**32)
    a = word.expand(bytes(32), 1000, label=b"x")
    assert a.dtype == np.uint64 and np.array_equal(a, word.expand(bytes(32), 1000, label=b"x"))
    assert not np.array_equal(a, word.expand(bytes(32), 1000, label=b"y"))
    assert int(a.max()) < 2**32 and int(a.max()) > 2**31  # uses the full range
    n = (2**127 - 1) * (2**89 - 1)
    big = MaskRing(n)
    b = big.expand(b"\x01" * 32, 400, label=b"x")
    assert all(0 <= int(v) < n for v in b)
    assert abs(np.mean([int(v) / n for v in b]) - 0.5) < 0.1
    assert np.array_equal(word.sub(word.add(a, a), a), a)
    assert list(big.sub(big.add(b, b), b)) == list(b)
    with pytest.raises(ValueError):
        MaskRing(2**65)
    with pytest.raises(ValueError):
        MaskRing(1001)


@pytest.mark.parametrize(("n", "k"), [(10, 4), (10, 6), (11, 6), (12, 5), (7, 6), (100, 14)])
def test_neighbour_graph_is_k_regular_and_public(n: int, k: int) -> None:
    graph = neighbour_graph(n, degree=k, seed=b"run-1")
    assert graph == neighbour_graph(n, degree=k, seed=b"run-1")
    assert graph != neighbour_graph(n, degree=k, seed=b"run-2") or k == n - 1
    for u, peers in enumerate(graph):
        assert len(peers) == k and u not in peers
        assert all(u in graph[v] for v in peers)


def test_a_configs_graph_is_shared_in_the_process_and_never_pickled() -> None:
    """A bank's node state pickles its session's config with every message: at 1,000 banks
    a kept graph would add 1,000 neighbour sets to each; it is the process's one copy."""
    config = MaskingConfig(n_parties=1000, degree=30, threshold=16, modulus=2**64, length=4,
                           run_id="r", round=1)
    graph = config.neighbours
    assert graph == neighbour_graph(1000, degree=30, seed=b"graph|" + config.tag)
    again = pickle.loads(pickle.dumps(config))
    assert again == config and again.neighbours is graph  # built once, shared
    assert len(pickle.dumps(config)) < 1000


def test_default_degree_grows_with_log_n() -> None:
    assert default_degree(10) == 9 and default_degree(100) == 22
    assert default_degree(10_000) == 42
    with pytest.raises(ValueError):
        neighbour_graph(11, degree=5, seed=b"")


def _config() -> MaskingConfig:
    return MaskingConfig(n_parties=10, degree=6, threshold=3, modulus=2**32, length=4,
                         run_id="r", round=1)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_message_codecs_round_trip(data: st.DataObject) -> None:
    tag = _config().tag
    party = data.draw(st.integers(0, 2**16 - 1))
    key = st.binary(min_size=32, max_size=32)
    ids = st.lists(st.integers(0, 2**16 - 1), max_size=5, unique=True).map(tuple)
    shares = st.lists(st.tuples(st.integers(0, 2**16 - 1),
                                st.builds(Share, st.integers(1, 99), st.integers(0, PRIME - 1))),
                      max_size=3, unique_by=lambda p: p[0]).map(tuple)
    message = data.draw(st.one_of(
        st.builds(KeyAdvert, st.just(party), st.just(tag), key, key),
        st.builds(SealedShares, st.just(party), st.integers(0, 99), st.just(tag),
                  st.binary(min_size=28, max_size=200)),
        st.builds(MaskedInput, st.just(party), st.just(tag),
                  st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=9).map(
                      lambda v: np.array(v, dtype=np.uint64))),
        st.builds(UnmaskRequest, st.just(party), st.just(tag), ids, ids),
        shares.map(lambda seeds: UnmaskReply(
            party, tag, seeds, tuple(((o + 1) % 2**16, s) for o, s in seeds
                                     if (o + 1) % 2**16 not in {p for p, _ in seeds})))))
    decoded = message_from_bytes(message_to_bytes(message))
    if isinstance(message, MaskedInput):
        assert isinstance(decoded, MaskedInput)
        assert np.array_equal(decoded.values, message.values)
    else:
        assert decoded == message


def test_message_decoder_refuses_malformed_bytes() -> None:
    tag = _config().tag
    good = message_to_bytes(UnmaskRequest(recipient=1, tag=tag, survivors=(2, 3), dropped=(4,)))
    bad_cases = [b"", good[:-1], good + b"\x00", b"\x09" + good[1:], good[:1] + b"\x07" + good[2:],
                 good[:20] + (1).to_bytes(2, "big") + b"\x00\x02\x00\x02\x00\x00"]
    for bad in bad_cases:
        with pytest.raises(MalformedMessageError):
            message_from_bytes(bad)
