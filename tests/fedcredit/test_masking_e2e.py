"""SecAgg+ in real Flower simulations (issue 12, part 3).

7 banks under ``paillier-secagg`` for 2 rounds, 2 of them (29 %) vanishing in round 2 after
sharing their keys (neighbourhood 6, threshold 4; round 2's sessions are opened on round 1's
last unmask exchanges): the run completes on the survivors and its final model is bit for
bit the one of the same run under ``paillier`` (the masks cancel exactly). A bank
holding the shared private key that decrypts another bank's single update ciphertext from
the wire reads uniform noise modulo ``n`` under masking, small packed plaintexts without it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from federation.run.config import RunConfig
from federation.run.key_store import load_bank_private_key, provision_simulation_keys
from federation.wire.records import KEY_SEALED, KEY_SEALED_EVAL, bank_of, sealed_from_record
from protocols.aggregation.serde import encrypted_vector_from_bytes_unchecked
from protocols.paillier.decrypt import decrypt_raw_many

from .test_simulate_e2e import record_run

pytestmark = pytest.mark.slow


def _bank0_update_plaintexts(seen: list, private_key: object) -> list[int]:  # noqa: ANN001
    """What a colluding key holder reads from bank 0's first sealed update on the wire."""
    reply = next(m for d, m in seen if d == "reply" and m.has_content()
                 and m.metadata.message_type == "train" and KEY_SEALED in m.content
                 and bank_of(m.content) == 0)
    vector = encrypted_vector_from_bytes_unchecked(sealed_from_record(reply.content[KEY_SEALED])
                                                   .payload)
    return [int(v) for v in decrypt_raw_many(list(vector.ciphertexts), private_key)]


def _bank0_score_ciphertexts(seen: list) -> int:  # noqa: ANN001
    """Ciphertexts in bank 0's first sealed score histograms on the wire."""
    reply = next(m for d, m in seen if d == "reply" and m.has_content()
                 and KEY_SEALED_EVAL in m.content and bank_of(m.content) == 0)
    return len(encrypted_vector_from_bytes_unchecked(
        sealed_from_record(reply.content[KEY_SEALED_EVAL]).payload).ciphertexts)


def test_masked_paillier_run_survives_dropouts_and_equals_the_unmasked_model(
    tmp_path: Path, data_dir: Path
) -> None:
    keys = tmp_path / "keys"
    provision_simulation_keys(keys, 7)
    base = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=7,
                     rounds=2, aggregation="paillier-secagg", keys_dir=str(keys), min_banks=5,
                     drop_schedule="2:1,3", out=str(tmp_path / "masked"))
    masked, seen_masked = record_run(base)
    plain, seen_plain = record_run(replace(base, aggregation="paillier",
                                           out=str(tmp_path / "unmasked")))
    assert [h.banks for h in masked.history] == [7, 5]
    assert {(d["round"], d["step"]) for d in masked.dropouts} >= {(2, "train")}
    # masking requests: the statistics' session (advert, share, signed list, unmask: 4 x 7);
    # round 1 (advert + share of its update's session, then list + unmask, on which round 2's
    # two sessions' adverts and shares ride: 4 x 7); round 2 (its update and round 1's scores
    # in one exchange: list + unmask to all 7, carrying the adverts and shares of round 2's
    # scores); round 2's scores in a step of their own (list to the 5 survivors + unmask to 7)
    masking_requests = sum(1 for d, m in seen_masked
                           if d == "request" and m.metadata.message_type == "query.secagg")
    assert masking_requests == 4 * 7 + 4 * 7 + 2 * 7 + (5 + 7)  # 4 x 7 + 6 x 7 + 2 x 12 before
    secagg_steps = {m.metadata.message_type for d, m in seen_masked if d == "request"}
    assert "query.secagg" in secagg_steps
    for ours, theirs in zip(masked.weights, plain.weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert [h.auc for h in masked.history] == [h.auc for h in plain.history]
    # the masked score counts are packed under the public bound as the unmasked ones (not one
    # 20-bit slot each: 24 ciphertexts here instead of 11)
    assert _bank0_score_ciphertexts(seen_masked) == _bank0_score_ciphertexts(seen_plain)

    private_key = load_bank_private_key(str(keys), 1)
    n_bits = int(private_key.public_key.n).bit_length()
    opened_masked = _bank0_update_plaintexts(seen_masked, private_key)
    opened_plain = _bank0_update_plaintexts(seen_plain, private_key)
    assert all(v.bit_length() > n_bits - 16 for v in opened_masked)  # uniform in Z_n
    assert max(v.bit_length() for v in opened_plain) < n_bits - 64  # the packed update
    assert not set(opened_masked) & set(opened_plain)
