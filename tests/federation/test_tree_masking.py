"""SecAgg+ masking of the boosted-tree sums, run with the functions the bank and the coordinator
apps call (in process, no Flower).

10 banks grow trees under ``secagg`` with 3 of them (30 %) dropping after sharing their keys in
every level's session: each unmasked level sum equals, value for value, the plain sum of the
7 survivors' vectors at the same state, and the trees are the plain run's. Under
``paillier-secagg`` a bank holding the private key that decrypts one bank's masked level
ciphertext reads full-size noise modulo ``n``, while the sum still opens exactly. The sessions
are opened for an upper bound (:mod:`federation.steps.tree_masking`): every vector fits it and
the banks mask a prefix.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedcredit.simulation.trees import same_trees
from federation.data.bank_data import bank_data
from federation.ml.preprocess import local_schema, merge_schemas
from federation.run.config import RunConfig
from federation.steps.gradient_grid import gradient_offset, gradient_units
from federation.steps.horizontal_bank import sealed_length
from federation.steps.masking import (
    SecAggSum,
    envelopes,
    mask_modulus,
    open_session,
    plaintext_count,
    remove_residual_sealed,
    session_config,
)
from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_GRADIENTS,
    TAG_SLOTS,
    BankSummation,
    PaillierBankSum,
    PaillierCoordinatorSum,
    PlainSum,
    Sealed,
)
from federation.steps.tree_bank import tree_finalize, tree_level, tree_model_of
from federation.steps.tree_masking import (
    PrefixMask,
    histogram_nodes_bound,
    session_batch,
    tree_session_values,
)
from federation.wire.secagg import parse_session, session_name
from protocols.aggregation.serde import encrypted_vector_from_bytes
from protocols.errors import VectorLengthError
from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.keys import generate_paillier_keypair
from protocols.secagg.client import MaskingClient
from protocols.secagg.config import MaskingConfig
from protocols.secagg.unmasking import residual_mask, unmask_requests

from .test_masking import shared_session
from .test_tree_bank import RUN, _contexts

BANKS = 10
DROPPED = (2, 5, 7)  # 30 % drop after sharing their keys, in every session
LIVE = [b for b in range(BANKS) if b not in DROPPED]
SIGNING = [Ed25519PrivateKey.generate() for _ in range(BANKS)]


@pytest.fixture(scope="module")
def federation(data_dir: Path):  # noqa: ANN201 - test data
    cfg = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=BANKS,
                    model="gbdt", trees=3, depth=3, bins=16, learning_rate=0.3,
                    early_stopping_rounds=2)
    datas = [bank_data(cfg, b) for b in range(BANKS)]
    return cfg, datas, _contexts(cfg, datas)


def _shared(config: MaskingConfig) -> tuple[list[MaskingClient], dict[int, list[bytes]]]:
    """Steps 0 and 1 of one session for every bank: signed adverts, routed envelopes."""
    return shared_session(config, SIGNING, RUN)


def _session(cfg: RunConfig, scheme: BankSummation, prep: object, seq: int,
             ) -> tuple[MaskingConfig, list[MaskingClient], dict[int, list[bytes]]]:
    """Session ``gradients:<seq>`` opened as the banks open it (mask length from the bound)."""
    values = tree_session_values(cfg, prep, KIND_GRADIENTS)  # type: ignore[arg-type]
    config = session_config(n_banks=BANKS, modulus=mask_modulus(scheme),
                            length=plaintext_count(scheme, KIND_GRADIENTS, values), run_id=RUN,
                            kind=KIND_GRADIENTS, round_index=seq)
    return (config, *_shared(config))


def _unmask(config: MaskingConfig, clients: list[MaskingClient], coordinator: object,
            total: Sealed, seq: int) -> Sealed:
    """Step 3: the survivors reveal, the coordinator removes the (prefix of the) residual."""
    replies = [clients[r.recipient].unmask(r) for r in unmask_requests(
        config, sharers=range(BANKS), survivors=set(LIVE))]
    residual = residual_mask(config, adverts={b: c.advertise() for b, c in enumerate(clients)},
                             sharers=range(BANKS), survivors=set(LIVE), replies=replies)
    assert len(residual) == config.length
    return remove_residual_sealed(coordinator, total, residual,  # type: ignore[arg-type]
                                  run_id=RUN, round=seq)


def test_masked_levels_sum_exactly_with_dropouts_and_grow_the_plain_trees(federation) -> None:  # noqa: ANN001
    cfg, datas, contexts = federation
    masked_cfg = dataclasses.replace(cfg, aggregation="secagg")
    scheme, plain = SecAggSum(gradient_bits=cfg.gradient_bits), PlainSum(
        gradient_bits=cfg.gradient_bits)
    blob = plain_blob = None
    level_sum = plain_sum = None
    seq = 0
    while True:
        seq += 1
        config, clients, routed = _session(cfg, scheme, contexts[0].prep, seq)
        masked = [tree_level(masked_cfg, datas[b], contexts[b], run_id=RUN, seq=seq, blob=blob,
                             level_sum=level_sum, mask=PrefixMask(
                                 clients[b], envelopes(routed[b]), name=f"gradients:{seq}"))
                  for b in LIVE]  # the dropped banks shared their keys, then vanished
        unmasked = [tree_level(cfg, datas[b], contexts[b], run_id=RUN, seq=seq, blob=plain_blob,
                               level_sum=plain_sum) for b in LIVE]
        assert {r.blob for r in masked} == {unmasked[0].blob}  # the same state, decisions
        words = np.frombuffer(masked[0].sealed.payload, dtype=np.uint64)
        assert words.size < config.length  # a prefix of the session's mask
        assert (words >= 2**48).mean() > 0.9  # masked limbs fill the ring, plain ones < 2**48
        total = scheme.combine([r.sealed for r in masked], kind=KIND_GRADIENTS, length=None,
                               run_id=RUN, round=seq)
        level_sum = _unmask(config, clients, scheme, total, seq)
        plain_sum = plain.combine([r.sealed for r in unmasked], kind=KIND_GRADIENTS,
                                  length=None, run_id=RUN, round=seq)
        np.testing.assert_array_equal(
            scheme.open(level_sum, kind=KIND_GRADIENTS, run_id=RUN, round=seq),
            plain.open(plain_sum, kind=KIND_GRADIENTS, run_id=RUN, round=seq))
        blob, plain_blob = (masked[0].blob, seq), (unmasked[0].blob, seq)
        if not masked[0].metrics["growing"]:
            break
    ours = tree_finalize(masked_cfg, datas[0], contexts[0], run_id=RUN, seq=seq + 1, blob=blob,
                         level_sum=level_sum)
    theirs = tree_finalize(cfg, datas[0], contexts[0], run_id=RUN, seq=seq + 1,
                           blob=plain_blob, level_sum=plain_sum)
    assert ours[0] == theirs[0] and ours[1] is not None and theirs[1] is not None
    assert same_trees(tree_model_of(ours[1])[0], tree_model_of(theirs[1])[0])
    assert seq > cfg.depth  # more than one tree's levels went through masked sessions


@pytest.fixture(scope="module")
def keypair():  # noqa: ANN201 - phe types
    return generate_paillier_keypair(1024, allow_insecure_test_key=True)


def test_a_key_holder_reads_noise_from_one_banks_masked_level(federation, keypair) -> None:  # noqa: ANN001
    cfg, datas, contexts = federation
    public, private = keypair
    banks = [PaillierBankSum(private, BANKS, gradient_bits=cfg.gradient_bits, bank=b)
             for b in range(BANKS)]
    coordinator = PaillierCoordinatorSum(public, BANKS, gradient_bits=cfg.gradient_bits)
    vectors = {b: np.frombuffer(tree_level(cfg, datas[b], contexts[b], run_id=RUN, seq=1,
                                           blob=None, level_sum=None).sealed.payload)
               for b in LIVE}  # each bank's root histograms (plain sealing: the raw values)
    config, clients, routed = _session(cfg, banks[0], contexts[0].prep, 1)
    sealed = {b: banks[b].seal(vectors[b], kind=KIND_GRADIENTS, run_id=RUN, round=1,
                               mask=PrefixMask(clients[b], envelopes(routed[b]),
                                               name="gradients:1")) for b in LIVE}
    total = coordinator.combine(list(sealed.values()), kind=KIND_GRADIENTS, length=None,
                                run_id=RUN, round=1)
    opened = banks[1].open(_unmask(config, clients, coordinator, total, 1), kind=KIND_GRADIENTS,
                           run_id=RUN, round=1)
    np.testing.assert_array_equal(opened, np.sum([vectors[b] for b in LIVE], axis=0))
    codec = coordinator.codec(KIND_GRADIENTS)
    one = encrypted_vector_from_bytes(sealed[0].payload, public_key=public,
                                      expected_length=sealed[0].length + TAG_SLOTS, run_id=RUN,
                                      round=1, codec=codec)
    assert len(one.ciphertexts) < config.length  # the bound's prefix
    n_bits = int(public.n).bit_length()
    raw = decrypt_raw_many(list(one.ciphertexts), private)
    assert all(int(v).bit_length() > n_bits - 16 for v in raw)  # uniform in Z_n
    f = cfg.gradient_bits
    packed = codec.pack(gradient_units(np.append(vectors[0], 0.0), gradient_bits=f)
                        + gradient_offset(f))  # what the ciphertexts would hold unmasked
    assert len(packed) == len(raw) and all(a != b for a, b in zip(raw, packed, strict=True))


def test_session_lengths_bound_every_vector_and_follow_from_the_run(federation) -> None:  # noqa: ANN001
    cfg, datas, contexts = federation
    prep, edges = contexts[0].prep, contexts[0].edges
    layout = merge_schemas([local_schema(d.train) for d in datas])
    values = tree_session_values(cfg, prep, KIND_GRADIENTS)
    widest = histogram_nodes_bound(cfg.depth) * int(edges.used_codes().sum()) * 2
    assert widest + 4 * 1024 < values  # the histograms of any level plus the score parts
    assert sealed_length(cfg, datas[3], KIND_GRADIENTS, 5, layout=layout, prep=prep) == values
    bins = sealed_length(cfg, datas[3], KIND_COUNTS, 0, layout=layout, prep=prep)
    assert bins == contexts[0].grid.n_features * contexts[0].grid.cells + 2
    assert [histogram_nodes_bound(d) for d in (1, 2, 3, 5)] == [1, 1, 2, 8]
    assert session_batch(7, depth=3, limit=8) == [7, 8, 9]
    assert session_batch(1, depth=12, limit=8) == list(range(1, 9))
    assert parse_session(session_name(KIND_GRADIENTS, 12)) == (KIND_GRADIENTS, 12)
    config = session_config(n_banks=3, modulus=2**64, length=4, run_id=RUN,
                            kind=KIND_GRADIENTS, round_index=1)
    clients = [open_session(None, config, b) for b in range(3)]
    with pytest.raises(VectorLengthError):  # a vector longer than the session is refused
        PrefixMask(clients[0], [], name="gradients:1")([1, 2, 3, 4, 5])


def test_boosted_trees_accept_the_masked_modes(data_dir: Path) -> None:
    for aggregation in ("secagg", "paillier-secagg"):
        cfg = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=3,
                        model="gbdt", aggregation=aggregation)
        assert cfg.model == "gbdt"
