"""SecAgg+ masking of the horizontal sums, run with the functions the bank and the coordinator
apps call (in process, no Flower): the unmasked sum equals the sum of the surviving banks'
vectors with 30 % of the banks dropping after sharing their keys, under ``secagg`` and
``paillier-secagg``; a bank holding the Paillier key that opens another bank's single sealed
vector reads noise; clients survive the node-state pickling between messages; the consistency
round stops a coordinator that tells banks different survivor lists."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.errors import ConfigError
from federation.run.config import RunConfig
from federation.steps.masking import (
    SecAggSum,
    SessionMask,
    attestation_quorum,
    check_attestations,
    close_session,
    envelopes,
    live_client,
    mask_modulus,
    masking_parameters,
    open_session,
    plaintext_count,
    remove_residual_sealed,
    session_config,
    share_keys,
    sign_advert,
    sign_survivors,
)
from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_STATS,
    KIND_WEIGHTS,
    TAG_SLOTS,
    BankSummation,
    PaillierBankSum,
    PaillierCoordinatorSum,
    Sealed,
)
from protocols.aggregation.serde import (
    encrypted_vector_from_bytes,
    encrypted_vector_from_bytes_unchecked,
)
from protocols.errors import MaskingRefusedError, ProtocolError
from protocols.identity.signing import InvalidSignatureError
from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.keys import generate_paillier_keypair
from protocols.secagg.client import MaskingClient
from protocols.secagg.config import MaskingConfig
from protocols.secagg.messages import UnmaskRequest, message_from_bytes, message_to_bytes
from protocols.secagg.shamir import combine_shares
from protocols.secagg.unmasking import residual_mask, unmask_requests

BANKS = 10
SIGNING = [Ed25519PrivateKey.generate() for _ in range(BANKS)]
REGISTRY = {b: key.public_key() for b, key in enumerate(SIGNING)}
DROPPED = (2, 5, 7)  # 30 % drop after sharing their keys
RUN = "run-masking-test"


@pytest.fixture(scope="module")
def keypair():  # noqa: ANN201 - phe types
    return generate_paillier_keypair(1024, allow_insecure_test_key=True)


def _vectors(kind: str, length: int) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    if kind == KIND_COUNTS:
        return [rng.integers(0, 50, size=length).astype(np.float64) for _ in range(BANKS)]
    if kind == KIND_STATS:  # wide values: sums of squares of balances
        return [rng.normal(0, 1e6, size=length) ** 2 for _ in range(BANKS)]
    return [rng.normal(0, 0.5, size=length) for _ in range(BANKS)]


def shared_session(config: MaskingConfig, signing: list[Ed25519PrivateKey], run_id: str,
                   ) -> tuple[list[MaskingClient], dict[int, list[bytes]]]:
    """Steps 0 and 1 for every party of ``config``: adverts signed with ``signing``, share
    envelopes routed to their recipients (as the coordinator routes them)."""
    registry = {b: key.public_key() for b, key in enumerate(signing)}
    clients = [open_session(None, config, b) for b in range(config.n_parties)]
    adverts = [message_to_bytes(c.advertise()) for c in clients]
    signatures = [sign_advert(signing[b], blob, run_id=run_id, bank=b, round_index=config.round)
                  for b, blob in enumerate(adverts)]
    routed: dict[int, list[bytes]] = {}
    for client in clients:
        for envelope in share_keys(client, adverts, signatures, registry, run_id=run_id):
            routed.setdefault(envelope.recipient, []).append(message_to_bytes(envelope))
    return clients, routed


def _shared(config: MaskingConfig) -> tuple[list[MaskingClient], dict[int, list[bytes]]]:
    return shared_session(config, SIGNING, RUN)


def _masked_sum(banks: list[BankSummation], coordinator: object, kind: str,
                vectors: list[np.ndarray], dropped: tuple[int, ...] = DROPPED,
                most: int | None = None) -> tuple[Sealed, list[Sealed]]:
    """One session end to end: advertise, share, mask (dropouts skip), unmask, remove
    (``most``: the public bound the counts are grouped under, on every side)."""
    length = plaintext_count(banks[0], kind, vectors[0].size, most)
    config = session_config(n_banks=BANKS, modulus=mask_modulus(banks[0]), length=length,
                            run_id=RUN, kind=kind, round_index=1)
    clients, routed = _shared(config)
    clients = [pickle.loads(pickle.dumps(c)) for c in clients]  # node state between messages
    sealed = {}
    for b, client in enumerate(clients):
        if b in dropped:
            continue
        mask = SessionMask(client, envelopes(routed[b]), name=f"{kind}:1")
        sealed[b] = banks[b].seal(vectors[b], kind=kind, run_id=RUN, round=1, mask=mask,
                                  most=most)
    total = coordinator.combine(list(sealed.values()), kind=kind, length=None,  # type: ignore[attr-defined]
                                run_id=RUN, round=1, most=most)
    survivors = set(sealed)
    listed = sorted(survivors)
    signed = [sign_survivors(SIGNING[b], clients[b], listed, run_id=RUN) for b in listed]
    replies = []
    for r in unmask_requests(config, sharers=range(BANKS), survivors=survivors):
        check_attestations(clients[r.recipient], listed, signed, REGISTRY, run_id=RUN)
        replies.append(clients[r.recipient].unmask(message_from_bytes(message_to_bytes(r))))
    residual = residual_mask(config, adverts={b: c.advertise() for b, c in enumerate(clients)},
                             sharers=range(BANKS), survivors=survivors, replies=replies)
    return remove_residual_sealed(coordinator, total, residual, run_id=RUN, round=1,
                                  most=most), list(sealed.values())


@pytest.mark.parametrize("kind,length,tolerance", [(KIND_WEIGHTS, 40, 1e-9),
                                                   (KIND_COUNTS, 64, 0.0),
                                                   (KIND_STATS, 12, 1e-6)])
def test_secagg_sum_of_survivors_is_exact(kind: str, length: int, tolerance: float) -> None:
    vectors = _vectors(kind, length)
    scheme = SecAggSum()
    unmasked, _ = _masked_sum([scheme] * BANKS, scheme, kind, vectors)
    expected = np.sum([v for b, v in enumerate(vectors) if b not in DROPPED], axis=0)
    opened = scheme.open(unmasked, kind=kind, run_id=RUN, round=1)
    assert unmasked.parties == BANKS - len(DROPPED)
    np.testing.assert_allclose(opened, expected, rtol=0, atol=tolerance * max(1.0, abs(expected).max()))


def test_secagg_single_masked_vector_is_not_the_input() -> None:
    vectors = _vectors(KIND_COUNTS, 64)
    scheme = SecAggSum()
    _, sealed = _masked_sum([scheme] * BANKS, scheme, KIND_COUNTS, vectors, dropped=())
    words = np.frombuffer(sealed[0].payload, dtype=np.uint64)
    # unmasked limbs are below 2**48; masked ones spread over the whole 64-bit ring
    assert (words >= 2**48).mean() > 0.9


def test_paillier_secagg_exact_with_dropouts_and_one_ciphertext_is_noise(keypair) -> None:  # noqa: ANN001
    public, private = keypair
    banks: list[BankSummation] = [PaillierBankSum(private, BANKS, bank=b) for b in range(BANKS)]
    coordinator = PaillierCoordinatorSum(public, BANKS)
    for kind, length in ((KIND_COUNTS, 40), (KIND_STATS, 6), (KIND_WEIGHTS, 30)):
        vectors = _vectors(kind, length)
        unmasked, sealed = _masked_sum(banks, coordinator, kind, vectors)
        expected = np.sum([v for b, v in enumerate(vectors) if b not in DROPPED], axis=0)
        opened = banks[0].open(unmasked, kind=kind, run_id=RUN, round=1)  # tags verified
        bound = 2 * 16.0 / 2**24 * BANKS if kind == KIND_WEIGHTS else 1e-6 * abs(expected).max()
        assert np.abs(opened - expected).max() <= bound
    # a bank with the private key opens bank 0's single weights ciphertext: noise mod n
    codec = coordinator.codec(KIND_WEIGHTS)
    vec = encrypted_vector_from_bytes(sealed[0].payload, public_key=public,
                                      expected_length=sealed[0].length + TAG_SLOTS, run_id=RUN,
                                      round=1, codec=codec)
    raw = decrypt_raw_many(list(vec.ciphertexts), private)
    unmasked_plain = codec.pack(np.append(vectors[0], 0.0))
    n_bits = int(public.n).bit_length()
    assert all(int(v).bit_length() > n_bits - 16 for v in raw)  # uniform in Z_n, not packed
    assert all(int(v).bit_length() < n_bits - 64 for v in unmasked_plain)
    with pytest.raises(Exception):  # noqa: B017 - any refusal: not a valid one-party sum
        banks[1].open(sealed[0], kind=KIND_WEIGHTS, run_id=RUN, round=1)


def test_paillier_secagg_groups_score_counts_under_the_public_bound(keypair) -> None:  # noqa: ANN001
    """The masked score counts are packed as the unmasked ones: the session's length is the
    grouped codec's, and the unmasked sum opens to the exact counts."""
    public, private = keypair
    banks: list[BankSummation] = [PaillierBankSum(private, BANKS, bank=b) for b in range(BANKS)]
    coordinator = PaillierCoordinatorSum(public, BANKS)
    vectors, most = _vectors(KIND_COUNTS, 2048), 50 * BANKS
    assert coordinator.count_groups(KIND_COUNTS, most) is not None
    grouped = plaintext_count(banks[0], KIND_COUNTS, 2048, most)
    assert grouped < plaintext_count(banks[0], KIND_COUNTS, 2048) / 2
    unmasked, sealed = _masked_sum(banks, coordinator, KIND_COUNTS, vectors, most=most)
    assert len(encrypted_vector_from_bytes_unchecked(sealed[0].payload).ciphertexts) == grouped
    expected = np.sum([v for b, v in enumerate(vectors) if b not in DROPPED], axis=0)
    opened = banks[0].open(unmasked, kind=KIND_COUNTS, run_id=RUN, round=1, most=most)
    np.testing.assert_array_equal(opened, expected)


def test_a_bank_refuses_to_reopen_a_session_it_unmasked() -> None:
    scheme = SecAggSum()
    config = session_config(n_banks=3, modulus=mask_modulus(scheme), length=3, run_id=RUN,
                            kind=KIND_WEIGHTS, round_index=2)
    clients, routed = _shared(config)
    for b, client in enumerate(clients):
        SessionMask(client, envelopes(routed[b]), name="weights:2")([1, 2, 3])
    request = unmask_requests(config, sharers=range(3), survivors=range(3))[0]
    sign_survivors(SIGNING[0], clients[0], [0, 1, 2], run_id=RUN)
    clients[0].unmask(request)
    with pytest.raises(MaskingRefusedError):
        open_session(clients[0], config, 0)
    assert open_session(clients[1], config, 1) is not clients[1]  # not unmasked: fresh keys
    # what the bank keeps of the session afterwards: its tag only, still refusing everything
    closed = close_session(clients[0])
    assert len(pickle.dumps(closed)) < len(pickle.dumps(clients[0])) // 10
    with pytest.raises(MaskingRefusedError, match="re-opened"):
        open_session(closed, config, 0)
    with pytest.raises(MaskingRefusedError, match="already unmasked"):
        live_client(closed, "weights:2")
    assert live_client(clients[1], "weights:2") is clients[1]
    with pytest.raises(ProtocolError):  # a session is closed only after its reveal
        close_session(clients[1])
    other = session_config(n_banks=3, modulus=mask_modulus(scheme), length=3, run_id=RUN,
                           kind=KIND_WEIGHTS, round_index=3)
    assert isinstance(open_session(closed, other, 0), MaskingClient)  # another session


@pytest.mark.parametrize("banks,degree,threshold", [(3, 2, 2), (10, 9, 5), (100, 22, 12)])
def test_masking_parameters(banks: int, degree: int, threshold: int) -> None:
    assert masking_parameters(banks) == (degree, threshold)
    with pytest.raises(MaskingRefusedError):
        masking_parameters(2)


def test_a_bank_refuses_an_advert_the_coordinator_substituted() -> None:
    """Active coordinator: it replaces bank 1's advert by keys of its own (to read the shares
    sealed for bank 1); bank 0 checks bank 1's signature and refuses to share."""
    scheme = SecAggSum()
    config = session_config(n_banks=3, modulus=mask_modulus(scheme), length=3, run_id=RUN,
                            kind=KIND_WEIGHTS, round_index=2)
    clients = [open_session(None, config, b) for b in range(3)]
    adverts = [message_to_bytes(c.advertise()) for c in clients]
    signatures = [sign_advert(SIGNING[b], blob, run_id=RUN, bank=b, round_index=2)
                  for b, blob in enumerate(adverts)]
    forged = open_session(None, config, 1)  # the coordinator's own keys, claiming to be bank 1
    adverts[1] = message_to_bytes(forged.advertise())
    with pytest.raises(InvalidSignatureError):
        share_keys(clients[0], adverts, signatures, REGISTRY, run_id=RUN)
    resigned = sign_advert(SIGNING[2], adverts[1], run_id=RUN, bank=1, round_index=2)
    with pytest.raises(InvalidSignatureError):  # signed by another bank's key
        share_keys(clients[0], adverts, [signatures[0], resigned, signatures[2]], REGISTRY,
                   run_id=RUN)


def _masked_session(n_banks: int = BANKS) -> tuple[MaskingConfig, list[MaskingClient]]:
    """A ``secagg`` session where every bank has shared keys and masked a small vector."""
    scheme = SecAggSum()
    config = session_config(n_banks=n_banks, modulus=mask_modulus(scheme), length=4,
                            run_id=RUN, kind=KIND_WEIGHTS, round_index=3)
    clients, routed = _shared(config)
    for b, client in enumerate(clients):
        SessionMask(client, envelopes(routed[b]), name="weights:3")([b, 1, 2, 3])
    return config, clients


def test_a_bank_signs_one_survivor_list_that_names_it() -> None:
    config, clients = _masked_session()
    fresh = open_session(None, config, 4)
    with pytest.raises(MaskingRefusedError, match="not masked"):
        sign_survivors(SIGNING[4], fresh, range(BANKS), run_id=RUN)
    with pytest.raises(MaskingRefusedError, match="leaves out"):
        sign_survivors(SIGNING[0], clients[0], range(1, BANKS), run_id=RUN)
    sign_survivors(SIGNING[1], clients[1], range(BANKS), run_id=RUN)
    sign_survivors(SIGNING[1], clients[1], range(BANKS), run_id=RUN)  # the same list again
    with pytest.raises(MaskingRefusedError, match="second, different"):
        sign_survivors(SIGNING[1], clients[1], [1, 2, 3, 4, 5, 6, 7], run_id=RUN)
    restored = pickle.loads(pickle.dumps(clients[1]))  # node state between messages
    assert restored.attested == tuple(range(BANKS))


def test_a_bank_reveals_only_for_its_signed_list_with_a_quorum() -> None:
    config, clients = _masked_session()
    quorum = attestation_quorum(BANKS, config.threshold)
    assert quorum == 7
    survivors = list(range(BANKS))
    signed = [sign_survivors(SIGNING[b], clients[b], survivors, run_id=RUN) for b in survivors]
    assert check_attestations(clients[0], survivors, signed, REGISTRY, run_id=RUN) == BANKS
    short = [sig if b < quorum - 1 else b"" for b, sig in enumerate(signed)]
    with pytest.raises(MaskingRefusedError, match=f"6 banks signed .* {quorum} needed"):
        check_attestations(clients[0], survivors, short, REGISTRY, run_id=RUN)
    forged = [SIGNING[0].sign(b"x" * 8) if b >= 3 else sig for b, sig in enumerate(signed)]
    with pytest.raises(MaskingRefusedError, match="3 banks signed"):  # bad ones not counted
        check_attestations(clients[0], survivors, forged, REGISTRY, run_id=RUN)
    with pytest.raises(MaskingRefusedError, match="another survivor list"):
        check_attestations(clients[0], survivors[1:], signed[1:], REGISTRY, run_id=RUN)
    contradicting = UnmaskRequest(recipient=0, tag=config.tag, survivors=tuple(range(1, 9)),
                                  dropped=(9,))  # bank 9 is on the list bank 0 signed
    with pytest.raises(MaskingRefusedError, match="contradicts"):
        clients[0].unmask(contradicting)


def _split_view_attack(consistency: bool) -> tuple[int, int]:
    """An active coordinator with one colluding bank (1) targets bank 0 in a 10-bank session:
    banks 2-5 are told bank 0 survived (they reveal shares of its self-mask seed), banks 6-9
    that it dropped (they reveal shares of its pairwise key). Returns how many shares of each
    secret the coordinator collects (the colluder adds its own)."""
    config, clients = _masked_session()
    everyone, without_0 = list(range(BANKS)), list(range(1, BANKS))
    seeds, keys = 1, 1  # the colluder's own share of each secret
    groups = ((range(2, 6), everyone), (range(6, 10), without_0))
    lists: dict[int, tuple[list[int], list[bytes]]] = {}
    for banks, listed in groups:
        signers = [*banks, 1] + ([0] if 0 in listed else [])  # the colluder signs both
        by_bank = {b: sign_survivors(SIGNING[b], clients[b] if b != 1 else
                                     pickle.loads(pickle.dumps(clients[1])), listed, run_id=RUN)
                   for b in signers}
        lists[id(listed)] = (listed, [by_bank.get(b, b"") for b in listed])
    for banks, listed in groups:
        for b in banks:
            peers = set(config.neighbours[b]) - {b}
            request = UnmaskRequest(recipient=b, tag=config.tag,
                                    survivors=tuple(sorted(peers & set(listed))),
                                    dropped=tuple(sorted(peers - set(listed))))
            try:
                if consistency:
                    _, signatures = lists[id(listed)]
                    check_attestations(clients[b], listed, signatures, REGISTRY, run_id=RUN)
                reply = clients[b].unmask(request)
            except MaskingRefusedError:
                continue
            seeds += any(owner == 0 for owner, _ in reply.seed_shares)
            keys += any(owner == 0 for owner, _ in reply.key_shares)
    return seeds, keys


def test_a_split_survivor_view_rebuilds_a_bank_without_the_consistency_round_only() -> None:
    """Without step 2b the coordinator and one bank collect ``t`` shares of both of bank 0's
    secrets (so its input); with it every honest bank refuses (neither list has a quorum)."""
    threshold = masking_parameters(BANKS)[1]
    seeds, keys = _split_view_attack(consistency=False)
    assert seeds >= threshold and keys >= threshold
    assert _split_view_attack(consistency=True) == (1, 1)


def test_shares_of_a_secret_rebuild_it() -> None:
    """The attack above counts shares: ``t`` of them do rebuild the seed (sanity of the count)."""
    config, clients = _masked_session()
    held = [clients[b]._held[0][0] for b in range(1, config.threshold + 1)]
    assert combine_shares(held, threshold=config.threshold) == clients[0]._seed


def test_a_masked_run_with_min_banks_below_the_quorum_is_refused_up_front() -> None:
    """The run would stall at its first unmask step (fewer signers than the quorum): the run
    config says so before any bank is asked, naming ``min-banks``."""
    with pytest.raises(ConfigError, match="'min-banks' is 5; .* 7 of the 10 banks"):
        RunConfig(banks=10, aggregation="secagg", min_banks=5)
    RunConfig(banks=10, aggregation="secagg", min_banks=7)
    RunConfig(banks=10, aggregation="paillier", min_banks=5)  # no masking, no quorum
