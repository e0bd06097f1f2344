"""Admission through a real Flower simulation (issue 17, part 4): in round 2 one bank's update
is forged on the way (a payload byte flipped), one bank's round-1 update is replayed, and bank
0 sends a second, validly signed update from another bank's node. The coordinator refuses
exactly those three with their named errors, records them, and the run goes on with the
two remaining banks; every other round admits all five.

The tampering is a test-only observer on the coordinator's side, where the replies arrive
(the channel or a malicious bank); nothing in the product changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.app import Message, RecordDict

from federation.run.config import RunConfig
from federation.run.key_store import load_signing_key, provision_simulation_keys
from federation.steps.secure_sum import bank_summation
from federation.wire.records import (
    KEY_METRICS,
    KEY_SEALED,
    KEY_SIGNATURE,
    METRIC_BANK,
    STEP_TRAIN,
    bank_of,
    sealed_of,
    signature_of,
)
from protocols.identity.signing import sign_update, statement_for

pytestmark = pytest.mark.slow
TAMPERED_ROUND = 2


class Tamper:
    """Coordinator-side observer that forges, replays and duplicates round-2 train replies."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.saved: dict[int, RecordDict] = {}
        self.nodes: dict[int, int] = {}
        self.tampered: dict[str, int] = {}

    def __call__(self, direction: str, msg: Message) -> None:
        if (direction != "reply" or msg.has_error()
                or msg.metadata.message_type != STEP_TRAIN.message_type):
            return
        bank, claim = bank_of(msg.content), signature_of(msg.content)
        self.nodes[bank] = msg.metadata.src_node_id
        if claim.round == TAMPERED_ROUND - 1 and bank == 2:
            self.saved[bank] = msg.content
        if claim.round != TAMPERED_ROUND:
            return
        if bank == 1:  # forged on the way: one payload byte flipped
            payload = bytearray(msg.content[KEY_SEALED]["payload"])
            payload[len(payload) // 2] ^= 0x01
            msg.content[KEY_SEALED]["payload"] = bytes(payload)
            self.tampered["forged"] = msg.metadata.src_node_id
        elif bank == 2:  # its genuinely signed round-1 update, sent again
            msg.content = self.saved[2]
            self.tampered["replayed"] = msg.metadata.src_node_id
        elif bank == 3:  # bank 0, owning this node too, signs a second update from it
            sealed = sealed_of(msg.content)
            assert sealed is not None
            statement = statement_for(
                run_id=claim.run_id, step=claim.step, round=claim.round, bank=0,
                node_id=msg.metadata.src_node_id,
                key_fingerprint=bank_summation(self.cfg, 0).key_fingerprint,
                payload=sealed.payload)
            key = load_signing_key(self.cfg.keys_dir, 0)
            assert key is not None
            msg.content[KEY_SIGNATURE]["signature"] = sign_update(key, statement)
            metrics = dict(msg.content[KEY_METRICS])
            metrics[METRIC_BANK] = 0
            msg.content[KEY_METRICS] = type(msg.content[KEY_METRICS])(metrics)
            self.tampered["duplicate"] = msg.metadata.src_node_id


def test_forged_replayed_and_duplicate_updates_are_refused_in_a_real_run(
        tmp_path: Path, data_dir: Path) -> None:
    from fedcredit.simulation.horizontal import run_federation

    keys = tmp_path / "keys"
    provision_simulation_keys(keys, 5, paillier=False)
    cfg = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=5,
                    rounds=3, min_banks=2, keys_dir=str(keys), out=str(tmp_path / "run"))
    tamper = Tamper(cfg)
    result = run_federation(cfg, observer=tamper)

    assert set(tamper.tampered) == {"forged", "replayed", "duplicate"}
    train = [d for d in result.dropouts if d.get("step") == STEP_TRAIN.message_type]
    by_error = {d["error"]: d for d in train}
    assert sorted(by_error) == ["DuplicateUpdateError", "InvalidSignatureError",
                                "StaleRoundError"]
    assert len(train) == 3 and all(d["round"] == TAMPERED_ROUND for d in train)
    assert by_error["InvalidSignatureError"]["node"] == tamper.tampered["forged"]
    assert by_error["StaleRoundError"]["node"] == tamper.tampered["replayed"]
    assert by_error["DuplicateUpdateError"]["node"] in (tamper.tampered["duplicate"],
                                                        tamper.nodes[0])
    assert [h.banks for h in result.history] == [5, 2, 5]  # round 2 went on with two banks
    assert result.round_banks == [5, 2, 5]

