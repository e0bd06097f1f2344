"""Issue 12, "done when": a bank refuses a deviating coordinator's plain run config and its
one-party "sum" before it reads a single row (its data file does not even exist here)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from flwr.app import Context, Message, Metadata, RecordDict

import clients.app  # noqa: F401  (registers every handler)
from clients.bank_app import finalize, schema, train
from clients.tree_app import tree_level_step
from federation.run.config import RunConfig
from federation.run.folder import KeyFolder
from federation.run.policy import PolicyRefusal
from federation.steps.opened_sums import OverlappingSumsError
from federation.steps.secure_sum import (
    KIND_WEIGHTS,
    PaillierBankSum,
    PaillierCoordinatorSum,
    PlainSum,
)
from federation.wire.message_types import MessageType
from federation.wire.records import (
    KEY_WEIGHTS_SUM,
    STEP_FINALIZE,
    STEP_SCHEMA,
    STEP_TRAIN,
    request_content,
)
from federation.wire.trees import KEY_LEVEL_SUM, STEP_TREE_LEVEL
from protocols.paillier.keys import generate_paillier_keypair, public_key_to_bytes
from server.exchange import remote_reason

MISSING = "/nonexistent/fedcredit/bank.csv"
"""The bank's own file: reading it would raise FileNotFoundError, so a refusal comes first."""
ENCRYPTED = RunConfig(aggregation="paillier", banks=3, release_model=False)


def _context(**node: str | int | bool) -> Context:
    return Context(run_id=1, node_id=7, state=RecordDict(), run_config={},
                   node_config={"data-path": MISSING, "bank-index": 0, **node})


def _request(cfg: RunConfig, step: MessageType, run_id: str = "run-1", **sums) -> Message:
    """A request as the bank receives it (metadata as the SuperLink sets it)."""
    return Message(request_content(cfg, run_id=run_id, round_index=2, sums=sums),
                   metadata=Metadata(  # type: ignore[call-overload]
                       run_id=1, message_id="m1", src_node_id=1, dst_node_id=7,
                       reply_to_message_id="", group_id="", created_at=0.0, ttl=60.0,
                       message_type=step.message_type))


@pytest.mark.parametrize("handler, step", [(schema, STEP_SCHEMA), (train, STEP_TRAIN),
                                           (finalize, STEP_FINALIZE)])
def test_a_plain_run_config_is_refused_by_a_bank_without_a_policy_table(handler, step) -> None:
    with pytest.raises(PolicyRefusal) as refused:
        handler(_request(replace(ENCRYPTED, aggregation="plain"), step), _context())
    assert "'aggregation' = plain" in str(refused.value)
    assert remote_reason(f"<class 'federation.run.policy.PolicyRefusal'>:<'{refused.value}'>") \
        == str(refused.value)  # what the coordinator records as this bank's refusal


def test_release_and_too_few_banks_are_refused_before_any_data_is_read() -> None:
    permissive = {"policy-aggregation": "plain"}
    with pytest.raises(PolicyRefusal, match="'release-model' = true"):
        finalize(_request(RunConfig(banks=3), STEP_FINALIZE), _context(**permissive))
    with pytest.raises(PolicyRefusal, match="'min-banks' = 1"):
        train(_request(RunConfig(banks=3, min_banks=1, release_model=False), STEP_TRAIN),
              _context(**permissive))


def test_a_deployed_bank_never_takes_its_key_folder_from_the_run_config(tmp_path) -> None:
    cfg = replace(ENCRYPTED, keys_dir=str(tmp_path))  # the coordinator's choice of folder
    with pytest.raises(PolicyRefusal, match=r"\[keys\] paillier-dir"):
        schema(_request(cfg, STEP_SCHEMA), _context())


def provision_signing_only(folder) -> None:
    """Bank 0's signing key and the registry (a deployed bank refuses to run without them)."""
    from federation.run.key_store import provision_simulation_keys

    provision_simulation_keys(folder, 1, paillier=False)


def test_a_deployed_bank_without_its_signing_key_or_the_registry_refuses_to_run(
        tmp_path) -> None:
    """Fail closed: before its data is read, a deployed bank checks for its signing key and
    the registry in its own key folder (never the run config's); the line names no path."""
    from federation.errors import ConfigError, DataError

    cfg = RunConfig(banks=3, release_model=False)
    node = _context(**{"keys-dir": str(tmp_path), "policy-aggregation": "plain"})
    with pytest.raises(ConfigError, match="no signing key") as refused:
        schema(_request(cfg, STEP_SCHEMA), node)
    assert str(tmp_path) not in str(refused.value)
    provision_signing_only(tmp_path)
    KeyFolder(tmp_path).signing_registry.unlink()
    with pytest.raises(ConfigError, match="holds no signing-registry.json"):
        schema(_request(cfg, STEP_SCHEMA), node)
    provision_signing_only(tmp_path)
    with pytest.raises(DataError, match="the bank's data file"):  # with both it reads its file
        schema(_request(cfg, STEP_SCHEMA), node)
    with pytest.raises(ConfigError, match="no signing key"):  # the coordinator's keys-dir
        schema(_request(replace(cfg, keys_dir=str(tmp_path)), STEP_SCHEMA),
               _context(**{"policy-aggregation": "plain"}))


def _one_bank_sum() -> object:
    """One bank's sealed update, forwarded as if it were the combined sum."""
    return PlainSum().seal(np.arange(4.0), kind=KIND_WEIGHTS, run_id="run-1", round=2)


@pytest.mark.parametrize("step, key", [(STEP_TRAIN, KEY_WEIGHTS_SUM),
                                       (STEP_TREE_LEVEL, KEY_LEVEL_SUM)])
def test_a_one_party_sum_from_the_coordinator_is_refused(step: MessageType, key: str) -> None:
    cfg = RunConfig(banks=3, release_model=False)
    node = _context(**{"policy-aggregation": "plain"})  # the bank allows plain runs, not this
    handler = train if step == STEP_TRAIN else tree_level_step
    with pytest.raises(PolicyRefusal, match=rf"sum of 1 bank\(s\) \('{key}'\).*min-contributors = 3"):
        handler(_request(cfg, step, **{key: _one_bank_sum()}), node)


def test_two_sums_of_a_round_differing_by_one_bank_are_refused(tmp_path) -> None:
    """The coordinator hands bank 0 the weights sum over banks {0, 1, 2, 3}, then over
    {0, 1, 2}: their difference would be bank 3's update. The second is refused before the
    bank reads its data (the first gets as far as the missing data file)."""
    public, private = generate_paillier_keypair(512, allow_insecure_test_key=True)
    KeyFolder(tmp_path).paillier_public.write_bytes(public_key_to_bytes(public))
    banks = [PaillierBankSum(private, 4, bank=k) for k in range(4)]
    sealed = [b.seal(np.full(3, 0.1), kind=KIND_WEIGHTS, run_id="run-1", round=2)
              for b in banks]
    coordinator = PaillierCoordinatorSum(public, 4)

    def total(which: tuple[int, ...]):
        return coordinator.combine([sealed[k] for k in which], kind=KIND_WEIGHTS, length=None,
                                   run_id="run-1", round=2)

    cfg = RunConfig(aggregation="paillier", banks=4, release_model=False)
    provision_signing_only(tmp_path)
    node = _context(**{"keys-dir": str(tmp_path), "policy-min-key-bits": 512})
    with pytest.raises(Exception) as first:
        train(_request(cfg, STEP_TRAIN, **{KEY_WEIGHTS_SUM: total((0, 1, 2, 3))}), node)
    assert not isinstance(first.value, (PolicyRefusal, OverlappingSumsError))
    assert "the bank's data file" in str(first.value)  # it got as far as reading its file
    with pytest.raises(OverlappingSumsError, match="different set of banks"):
        train(_request(cfg, STEP_TRAIN, **{KEY_WEIGHTS_SUM: total((0, 1, 2))}), node)
    with pytest.raises(OverlappingSumsError):  # another claimed run id does not reset it
        train(_request(cfg, STEP_TRAIN, "run-2", **{KEY_WEIGHTS_SUM: total((0, 1, 3))}), node)
