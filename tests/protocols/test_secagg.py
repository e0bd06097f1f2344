"""SecAgg+ rounds in the plain ring Z_{2**32}: exact sums with and without dropouts, and the
refusals that keep a bank from unmasking another bank's input."""

from __future__ import annotations

import random
from collections.abc import Collection

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import (
    MalformedMessageError,
    MaskingRefusedError,
    ProtocolError,
    SecretSharingError,
    StaleRoundError,
)
from protocols.secagg.client import MaskingClient
from protocols.secagg.config import MaskingConfig
from protocols.secagg.messages import (
    KeyAdvert,
    SealedShares,
    UnmaskRequest,
    survivors_from_bytes,
    survivors_to_bytes,
)
from protocols.secagg.shamir import Share
from protocols.secagg.unmasking import unmask_requests, unmask_sum

N, K, T, LENGTH, M = 10, 6, 3, 50, 2**32


def _config(round: int = 1) -> MaskingConfig:
    return MaskingConfig(n_parties=N, degree=K, threshold=T, modulus=M, length=LENGTH,
                         run_id="run-a", round=round)


def _clients(config: MaskingConfig) -> list[MaskingClient]:
    source = random.Random(7)
    return [MaskingClient(config, u, random_bytes=source.randbytes, rng=random.Random(u))
            for u in range(config.n_parties)]


def _inputs(config: MaskingConfig) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 2**20, size=config.length, dtype=np.uint64)
            for _ in range(config.n_parties)]


def run_round(config: MaskingConfig, *, gone_after_advert: Collection[int] = (),
              gone_after_shares: Collection[int] = (),
              gone_after_input: Collection[int] = ()) -> tuple[np.ndarray, set[int]]:
    """One round with all parties in-process; returns (unmasked sum, survivors)."""
    clients, inputs = _clients(config), _inputs(config)
    adverts = {c.party: c.advertise() for c in clients}
    alive = set(range(config.n_parties))
    sealed: dict[int, list[SealedShares]] = {u: [] for u in alive}
    alive -= set(gone_after_advert)
    for u in sorted(alive):
        peers = [adverts[v] for v in sorted(config.neighbours[u]) if v in adverts]
        for message in clients[u].share_keys(peers):
            sealed[message.recipient].append(message)
    sharers = set(alive)
    alive -= set(gone_after_shares)
    masked = [clients[u].masked_input(inputs[u], sealed[u]) for u in sorted(alive)]
    survivors = set(alive)
    answering = survivors - set(gone_after_input)
    requests = unmask_requests(config, sharers=sharers, survivors=survivors)
    replies = [clients[r.recipient].unmask(r) for r in requests if r.recipient in answering]
    total = unmask_sum(config, adverts=adverts, sharers=sharers, masked=masked, replies=replies)
    return total, survivors


def _expected(config: MaskingConfig, parties: Collection[int]) -> np.ndarray:
    inputs = _inputs(config)
    return sum((inputs[u] for u in parties), np.zeros(config.length, dtype=np.uint64)) % M


def test_exact_sum_without_dropouts() -> None:
    config = _config()
    total, survivors = run_round(config)
    assert survivors == set(range(N))
    assert np.array_equal(total, _expected(config, survivors))


@pytest.mark.parametrize("stage", ["gone_after_advert", "gone_after_shares", "gone_after_input"])
def test_exact_sum_with_30_percent_dropping(stage: str) -> None:
    """3 of 10 banks drop: after advertising keys (never masked), after sharing (their
    pairwise masks are rebuilt from s-shares), or after sending y (their b is rebuilt)."""
    config = _config()
    gone = {1, 4, 8}
    total, survivors = run_round(config, **{stage: gone})
    expected_parties = set(range(N)) if stage == "gone_after_input" else set(range(N)) - gone
    assert survivors == expected_parties
    assert np.array_equal(total, _expected(config, expected_parties))


def test_dropouts_at_every_stage_at_once() -> None:
    config = _config()
    total, survivors = run_round(config, gone_after_advert={0}, gone_after_shares={5},
                                 gone_after_input={9})
    assert survivors == set(range(N)) - {0, 5}
    assert np.array_equal(total, _expected(config, survivors))


def test_masked_input_alone_looks_uniform_and_unrelated() -> None:
    config = MaskingConfig(n_parties=N, degree=K, threshold=T, modulus=M, length=4000,
                           run_id="run-a", round=2)
    clients, x = _clients(config), np.arange(4000, dtype=np.uint64) * 1000
    adverts = {c.party: c.advertise() for c in clients}
    sealed: dict[int, list[SealedShares]] = {u: [] for u in range(N)}
    for c in clients:
        for message in c.share_keys([adverts[v] for v in sorted(c.neighbours)]):
            sealed[message.recipient].append(message)
    y = clients[0].masked_input(x, sealed[0]).values.astype(np.float64) / M
    counts = np.histogram(y, bins=16, range=(0, 1))[0]
    chi2 = float(((counts - 250) ** 2 / 250).sum())
    assert chi2 < 37.7  # chi-square, 15 degrees of freedom, p = 0.001
    assert abs(np.corrcoef(y, x.astype(np.float64))[0, 1]) < 0.08


def _after_masking(config: MaskingConfig) -> tuple[list[MaskingClient], set[int]]:
    clients, inputs = _clients(config), _inputs(config)
    adverts = {c.party: c.advertise() for c in clients}
    sealed: dict[int, list[SealedShares]] = {u: [] for u in range(N)}
    for c in clients:
        for message in c.share_keys([adverts[v] for v in sorted(c.neighbours)]):
            sealed[message.recipient].append(message)
    for c in clients:
        c.masked_input(inputs[c.party], sealed[c.party])
    return clients, set(range(N))


def test_bank_refuses_both_shares_of_one_peer() -> None:
    config = _config()
    clients, _ = _after_masking(config)
    peers = sorted(clients[0].neighbours)
    with pytest.raises(MaskingRefusedError, match="both shares"):
        clients[0].unmask(UnmaskRequest(recipient=0, tag=config.tag, survivors=tuple(peers),
                                        dropped=(peers[0],)))
    reply = clients[0].unmask(UnmaskRequest(recipient=0, tag=config.tag,
                                            survivors=tuple(peers), dropped=()))
    assert {o for o, _ in reply.seed_shares} == set(peers) and not reply.key_shares
    with pytest.raises(MaskingRefusedError, match="already revealed"):
        clients[0].unmask(UnmaskRequest(recipient=0, tag=config.tag,
                                        survivors=tuple(peers[1:]), dropped=(peers[0],)))


def test_bank_refuses_too_few_survivors_or_being_called_dropped() -> None:
    config = _config()
    clients, _ = _after_masking(config)
    peers = sorted(clients[0].neighbours)
    with pytest.raises(MaskingRefusedError):
        clients[0].unmask(UnmaskRequest(recipient=0, tag=config.tag, survivors=(peers[0],),
                                        dropped=tuple(peers[1:])))
    with pytest.raises(MaskingRefusedError):
        clients[1].unmask(UnmaskRequest(recipient=1, tag=config.tag, survivors=(),
                                        dropped=(1,)))
    outsider = next(v for v in range(N) if v not in clients[2].neighbours and v != 2)
    with pytest.raises(ProtocolError):
        clients[2].unmask(UnmaskRequest(recipient=2, tag=config.tag,
                                        survivors=tuple(sorted(clients[2].neighbours)),
                                        dropped=(outsider,)))


def test_misrouted_stale_or_tampered_messages_are_refused() -> None:
    config, other = _config(), _config(round=2)
    clients = _clients(config)
    adverts = {c.party: c.advertise() for c in clients}
    stale = MaskingClient(other, 3).advertise()
    with pytest.raises(StaleRoundError):
        clients[0].share_keys([stale])
    outsider = next(v for v in range(N) if v not in clients[0].neighbours and v != 0)
    with pytest.raises(ProtocolError):
        _clients(config)[0].share_keys([adverts[outsider]])
    with pytest.raises(MaskingRefusedError):  # fewer than t neighbours advertised
        _clients(config)[0].share_keys([adverts[v] for v in sorted(clients[0].neighbours)][:2])
    sealed: dict[int, list[SealedShares]] = {u: [] for u in range(N)}
    for c in clients:
        for message in c.share_keys([adverts[v] for v in sorted(c.neighbours)]):
            sealed[message.recipient].append(message)
    first = sealed[0][0]
    flipped = SealedShares(sender=first.sender, recipient=0, tag=first.tag,
                           sealed=first.sealed[:-1] + bytes([first.sealed[-1] ^ 1]))
    with pytest.raises(MalformedMessageError):
        clients[0].masked_input(np.zeros(LENGTH, dtype=np.uint64), [flipped, *sealed[0][1:]])
    with pytest.raises(MaskingRefusedError):  # fewer than t neighbours shared
        clients[0].masked_input(np.zeros(LENGTH, dtype=np.uint64), sealed[0][:2])


def test_wrong_key_shares_are_detected() -> None:
    config = _config()
    clients, inputs = _clients(config), _inputs(config)
    adverts = {c.party: c.advertise() for c in clients}
    sealed: dict[int, list[SealedShares]] = {u: [] for u in range(N)}
    for c in clients:
        for message in c.share_keys([adverts[v] for v in sorted(c.neighbours)]):
            sealed[message.recipient].append(message)
    survivors = set(range(N)) - {4}
    masked = [clients[u].masked_input(inputs[u], sealed[u]) for u in sorted(survivors)]
    requests = unmask_requests(config, sharers=set(range(N)), survivors=survivors)
    replies = [clients[r.recipient].unmask(r) for r in requests]
    forged = [type(r)(sender=r.sender, tag=r.tag, seed_shares=r.seed_shares,
                      key_shares=tuple((o, Share(index=s.index, value=s.value ^ 1))
                                       for o, s in r.key_shares)) for r in replies]
    with pytest.raises(SecretSharingError):
        unmask_sum(config, adverts=adverts, sharers=set(range(N)), masked=masked,
                   replies=forged)
    with pytest.raises(SecretSharingError):  # too few replies to rebuild the secrets
        unmask_sum(config, adverts=adverts, sharers=set(range(N)), masked=masked,
                   replies=replies[:1])


@given(st.lists(st.integers(0, 2**16 - 1), max_size=40))
def test_survivor_lists_round_trip_canonically(ids: list[int]) -> None:
    blob = survivors_to_bytes(ids)
    assert survivors_from_bytes(blob) == tuple(sorted(set(ids)))
    assert survivors_to_bytes(list(reversed(ids))) == blob  # one encoding per set


@pytest.mark.parametrize("blob", [b"", b"\x00\x02\x00\x01", b"\x00\x02\x00\x02\x00\x01",
                                  b"\x00\x01\x00\x01\x00"])
def test_malformed_survivor_lists_are_refused(blob: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        survivors_from_bytes(blob)


def _shared_keys() -> tuple[MaskingConfig, list[MaskingClient], list[np.ndarray],
                            dict[int, KeyAdvert], dict[int, list[SealedShares]]]:
    """Steps 0 and 1 for every party: the config, clients, inputs, adverts and each party's
    received share envelopes."""
    config = _config()
    clients, inputs = _clients(config), _inputs(config)
    adverts = {c.party: c.advertise() for c in clients}
    sealed: dict[int, list[SealedShares]] = {u: [] for u in range(N)}
    for u in range(N):
        for message in clients[u].share_keys([adverts[v] for v in sorted(config.neighbours[u])]):
            sealed[message.recipient].append(message)
    return config, clients, inputs, adverts, sealed


def test_each_envelope_key_is_agreed_once_per_neighbour_and_survives_a_pickle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bank agrees one envelope key with each neighbour when it seals its shares and opens
    that neighbour's envelope with the same key (X25519 is symmetric), also after its node
    stored and restored it between the two messages; the sum is still exact."""
    import pickle

    from protocols.secagg import client as client_module

    calls: list[bytes] = []
    real = client_module.agree

    def counted(private: object, public: bytes, *, purpose: bytes, tag: bytes) -> bytes:
        calls.append(purpose)
        return real(private, public, purpose=purpose, tag=tag)  # type: ignore[arg-type]

    monkeypatch.setattr(client_module, "agree", counted)
    config, clients, inputs, adverts, sealed = _shared_keys()
    assert calls.count(b"seal") == N * K
    clients = [pickle.loads(pickle.dumps(c)) for c in clients]  # the node state, between steps
    masked = [clients[u].masked_input(inputs[u], sealed[u]) for u in range(N)]
    assert calls.count(b"seal") == N * K  # opening the envelopes agreed nothing new
    requests = unmask_requests(config, sharers=set(range(N)), survivors=set(range(N)))
    replies = [clients[r.recipient].unmask(r) for r in requests]
    total = unmask_sum(config, adverts=adverts, sharers=set(range(N)), masked=masked,
                       replies=replies)
    np.testing.assert_array_equal(total, _expected(config, range(N)))


def test_a_restored_client_rebuilds_its_keys_only_for_the_steps_that_use_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bank's node state restores its session client at every message; the survivor list
    and the reveal need no X25519 key, so a restored client builds one only when a step uses
    it (the advert and masks are those of the client before the pickle), and a state whose
    raw keys are not two 32-byte strings is refused."""
    import pickle

    from protocols.secagg import client as client_module

    config, clients, inputs, adverts, sealed = _shared_keys()
    built: list[bytes] = []
    real = client_module.X25519PrivateKey.from_private_bytes

    def counted(raw: bytes) -> object:
        built.append(raw)
        return real(raw)

    monkeypatch.setattr(client_module.X25519PrivateKey, "from_private_bytes", counted)
    restored = [pickle.loads(pickle.dumps(c)) for c in clients]
    assert built == []
    assert [c.advertise() for c in restored] == [adverts[u] for u in range(N)]
    assert len(built) == 2 * N  # the advert needs both public keys
    restored = [pickle.loads(pickle.dumps(c)) for c in restored]
    masked = [restored[u].masked_input(inputs[u], sealed[u]) for u in range(N)]
    assert len(built) == 3 * N  # masking agrees with the mask key only
    restored = [pickle.loads(pickle.dumps(c)) for c in restored]
    requests = unmask_requests(config, sharers=set(range(N)), survivors=set(range(N)))
    replies = [restored[r.recipient].unmask(r) for r in requests]
    assert len(built) == 3 * N  # the reveal builds none
    total = unmask_sum(config, adverts=adverts, sharers=set(range(N)), masked=masked,
                       replies=replies)
    np.testing.assert_array_equal(total, _expected(config, range(N)))
    state = clients[0].__getstate__()
    with pytest.raises(TypeError, match="raw X25519 keys"):
        pickle.loads(pickle.dumps(clients[0])).__setstate__({**state, "_raw_keys": {}})
