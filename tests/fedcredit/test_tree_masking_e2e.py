"""SecAgg+-masked boosted trees in a real Flower simulation (issue 12, part 3, trees).

4 banks grow 2 trees of depth 2 under ``paillier-secagg``; bank 3 sits out tree 2 after
sharing its keys for that tree's sessions. The run completes, its trees and AUC history are
those of the same run under ``paillier`` (the masks cancel exactly, every sum is exact), the
level requests travel with their session's envelopes (sessions opened two levels at a time),
and a bank holding the shared private key that decrypts bank 0's level ciphertext from the
wire reads uniform noise modulo ``n``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fedcredit.simulation.trees import same_trees
from federation.run.config import RunConfig
from federation.run.key_store import load_bank_private_key, provision_simulation_keys
from federation.steps.tree_bank import tree_model_of
from federation.wire.records import KEY_SEALED, bank_of, sealed_from_record
from federation.wire.secagg import KEY_SECAGG, STEP_SECAGG, bundle_of
from federation.wire.trees import STEP_TREE_LEVEL
from protocols.aggregation.serde import encrypted_vector_from_bytes_unchecked
from protocols.paillier.decrypt import decrypt_raw_many

from .test_simulate_e2e import record_run

pytestmark = pytest.mark.slow


def _bank0_level_plaintexts(seen: list, private_key: object) -> list[int]:  # noqa: ANN001
    """What a colluding key holder reads from bank 0's first level vector on the wire."""
    reply = next(m for d, m in seen if d == "reply" and m.has_content()
                 and m.metadata.message_type == STEP_TREE_LEVEL.message_type
                 and KEY_SEALED in m.content and bank_of(m.content) == 0)
    vector = encrypted_vector_from_bytes_unchecked(sealed_from_record(reply.content[KEY_SEALED])
                                                   .payload)
    return [int(v) for v in decrypt_raw_many(list(vector.ciphertexts), private_key)]


def test_masked_trees_survive_a_dropout_and_equal_the_paillier_trees(
    tmp_path: Path, data_dir: Path
) -> None:
    keys = tmp_path / "keys"
    provision_simulation_keys(keys, 4)
    base = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=4,
                     model="gbdt", trees=2, depth=2, bins=16, learning_rate=0.3, eval_every=1,
                     aggregation="paillier-secagg", keys_dir=str(keys), min_banks=3,
                     drop_schedule="2:3", out=str(tmp_path / "masked"))
    masked, seen_masked = record_run(base)
    plain, seen_plain = record_run(replace(base, aggregation="paillier",
                                           out=str(tmp_path / "unmasked")))
    assert masked.rounds_done == 2 and masked.round_banks == [4, 3]  # type: ignore[attr-defined]
    assert masked.tree_release is not None and plain.tree_release is not None  # type: ignore[attr-defined]
    assert same_trees(tree_model_of(masked.tree_release)[0],  # type: ignore[attr-defined]
                      tree_model_of(plain.tree_release)[0])  # type: ignore[attr-defined]
    assert [(h.round, h.auc, h.ks) for h in masked.history] == \
        [(h.round, h.auc, h.ks) for h in plain.history]  # type: ignore[attr-defined]
    levels = [m for d, m in seen_masked if d == "request"
              and m.metadata.message_type == STEP_TREE_LEVEL.message_type]
    assert levels and all(KEY_SECAGG in m.content for m in levels)  # envelopes ride along
    opened = {bundle_of(m.content).advertise for d, m in seen_masked if d == "request"
              and m.metadata.message_type == STEP_SECAGG.message_type} - {()}
    # 5 level requests (2 trees of 2 levels, then the final scores): sessions opened depth (2)
    # at a time, beside the stats and the bins
    assert opened == {("stats:0",), ("counts:0",), ("gradients:1", "gradients:2"),
                      ("gradients:3", "gradients:4"), ("gradients:5", "gradients:6")}
    assert len(levels) == 5 * 4 and not any(
        m.metadata.message_type == STEP_SECAGG.message_type for _, m in seen_plain)

    private_key = load_bank_private_key(str(keys), 1)
    n_bits = int(private_key.public_key.n).bit_length()
    noise = _bank0_level_plaintexts(seen_masked, private_key)
    packed = _bank0_level_plaintexts(seen_plain, private_key)
    assert all(v.bit_length() > n_bits - 16 for v in noise)  # uniform in Z_n
    assert len(noise) == len(packed) and not set(noise) & set(packed)
